//! The admin's pages: posts, users, settings, profile and mail. Their layout is `crate::staff`.

pub mod mail;
pub mod posts;
pub mod profile;
pub mod settings;
pub mod users;
