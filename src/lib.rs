//! lectern: a server-rendered blog engine whose heart is the comment section.

pub mod actions;
pub mod admin;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod comments;
pub mod config;
pub mod crypto;
pub mod db;
pub mod error;
pub mod feeds;
pub mod http;
pub mod moderation;
pub mod notify;
pub mod posts;
pub mod render;
pub mod site;
pub mod staff;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod text;
pub mod thread_cache;
pub mod users;
pub mod views;
pub mod welcome;
