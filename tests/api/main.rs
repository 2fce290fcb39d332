//! Black-box tests over HTTP against the real application.

mod cli;
mod commenting;
mod common;
mod reading;
