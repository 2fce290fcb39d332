//! The admin's pages: posts, users, settings, site identity, profile and mail. Their layout is `crate::staff`.

pub mod mail;
pub mod media;
pub mod posts;
pub mod profile;
pub mod settings;
pub mod site;
pub mod users;
