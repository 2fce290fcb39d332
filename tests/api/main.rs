//! Black-box tests over HTTP against the real application.

mod abuse;
mod admin_pages;
mod auth;
mod browser;
mod cli;
mod cluster;
mod commenting;
mod common;
mod email;
mod mail_faults;
mod moderation;
mod operations;
mod publishing;
mod reading;
mod schema;
mod smtp;
mod thread_cache;
