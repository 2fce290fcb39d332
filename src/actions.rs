//! What a moderator can do to a comment, who did it and how it arrived: plain names shared by
//! moderation (which applies them), the signed links in emails (which carry them) and every
//! page that logs a change. It imports nothing else of the crate, so any layer may name it.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Approve,
    Unapprove,
    Spam,
    NotSpam,
    Trash,
    Restore,
    Delete,
}

impl Action {
    pub const ALL: [Action; 7] = [
        Action::Approve,
        Action::Unapprove,
        Action::Spam,
        Action::NotSpam,
        Action::Trash,
        Action::Restore,
        Action::Delete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Approve => "approve",
            Action::Unapprove => "unapprove",
            Action::Spam => "spam",
            Action::NotSpam => "not-spam",
            Action::Trash => "trash",
            Action::Restore => "restore",
            Action::Delete => "delete",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Action::Approve => "Approve",
            Action::Unapprove => "Unapprove",
            Action::Spam => "Spam",
            Action::NotSpam => "Not spam",
            Action::Trash => "Trash",
            Action::Restore => "Restore",
            Action::Delete => "Delete permanently",
        }
    }

    pub fn parse(text: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == text)
    }
}

/// Where an action came from, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Web,
    Email,
    Cli,
    System,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Web => "web",
            Via::Email => "email",
            Via::Cli => "cli",
            Via::System => "system",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: Option<i32>,
    pub via: Via,
    pub ip: Option<String>,
}
