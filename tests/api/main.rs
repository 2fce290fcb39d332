//! Black-box tests over HTTP against the real application.

mod admin_pages;
mod auth;
mod browser;
mod cli;
mod commenting;
mod common;
mod email;
mod moderation;
mod reading;
mod smtp;
