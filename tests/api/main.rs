//! Black-box tests over HTTP against the real application.

// clippy.toml's allow-*-in-tests covers only #[test] functions, not the harness and the
// helpers beside them; a failed unwrap here is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod abuse;
mod admin_pages;
mod archive;
mod auth;
mod browser;
mod browser_desk;
mod browser_reader;
mod cli;
mod cluster;
mod commenting;
mod common;
mod delivery;
mod desk;
mod email;
mod import;
mod layers;
mod mail_faults;
mod media;
mod moderation;
mod observability;
mod operations;
mod privacy;
mod publishing;
mod reader;
mod reading;
mod schema;
mod search;
mod smtp;
mod thread_cache;
mod validators;
