//! Signed links in emails: what a link may do is written in it and signed with the site
//! secret, so nothing needs storing until it is used; a link that works once is recorded
//! in `used_tokens` when it is used.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::actions::Action;
use crate::crypto::{Signer, token_hash};
use crate::db::ids::{CommentId, UserId};
use crate::db::schema::used_tokens;
use crate::db::{DbConn, DbError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// One action on one comment, by one moderator.
    Moderate {
        comment_id: CommentId,
        action: Action,
        user_id: UserId,
    },
    /// Undo what a moderation link just did (the moves are kept in admin notice `notice`),
    /// for the moderator it was made for; valid for an hour, once.
    UndoModeration { notice: i32, user_id: UserId },
    /// Confirm that this address wants reply notifications.
    Confirm { email: String },
    /// Stop all notifications to this address.
    Unsubscribe { email: String },
    /// Set a new password; `stamp` is part of the current hash, so the link dies once used.
    PasswordReset { user_id: UserId, stamp: String },
    /// A commenter's own comments ("manage my comments"): the address is sealed, so the link
    /// does not carry it in readable form (`my_comments_link`, `my_comments_address`).
    MyComments { sealed: String },
}

/// What seals the address in a "manage my comments" link.
const MY_COMMENTS_SEAL: &str = "my-comments-address";

/// The "manage my comments" link for `email` (lower-cased).
pub fn my_comments_link(signer: &Signer, email: &str) -> Link {
    Link::MyComments {
        sealed: signer.seal(MY_COMMENTS_SEAL, &email.to_lowercase()),
    }
}

/// The address a "manage my comments" link is for, if it is one and was sealed here.
pub fn my_comments_address(signer: &Signer, link: &Link) -> Option<String> {
    match link {
        Link::MyComments { sealed } => signer.open(MY_COMMENTS_SEAL, sealed),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// Not made by this site, or for another purpose: 404.
    Forged,
    /// Made here, but past its time or already used: 410.
    Expired,
    Used,
}

impl Link {
    fn encode(&self) -> String {
        match self {
            Link::Moderate {
                comment_id,
                action,
                user_id,
            } => format!("m|{comment_id}|{}|{user_id}", action.as_str()),
            Link::UndoModeration { notice, user_id } => format!("x|{notice}|{user_id}"),
            Link::Confirm { email } => format!("c|{email}"),
            Link::Unsubscribe { email } => format!("u|{email}"),
            Link::PasswordReset { user_id, stamp } => format!("r|{user_id}|{stamp}"),
            Link::MyComments { sealed } => format!("p|{sealed}"),
        }
    }

    fn decode(text: &str) -> Option<Link> {
        // Addresses may contain `|`, so they are taken whole after their prefix.
        if let Some(email) = text.strip_prefix("c|") {
            return Some(Link::Confirm {
                email: email.to_string(),
            });
        }
        if let Some(email) = text.strip_prefix("u|") {
            return Some(Link::Unsubscribe {
                email: email.to_string(),
            });
        }
        let parts: Vec<&str> = text.split('|').collect();
        match parts.as_slice() {
            ["m", comment_id, action, user_id] => Some(Link::Moderate {
                comment_id: CommentId(comment_id.parse().ok()?),
                action: Action::parse(action)?,
                user_id: UserId(user_id.parse().ok()?),
            }),
            ["x", notice, user_id] => Some(Link::UndoModeration {
                notice: notice.parse().ok()?,
                user_id: UserId(user_id.parse().ok()?),
            }),
            ["r", user_id, stamp] => Some(Link::PasswordReset {
                user_id: UserId(user_id.parse().ok()?),
                stamp: (*stamp).to_string(),
            }),
            ["p", sealed] => Some(Link::MyComments {
                sealed: (*sealed).to_string(),
            }),
            _ => None,
        }
    }
}

/// A URL-safe token for `link`, valid until `expires`.
pub fn issue(signer: &Signer, link: &Link, expires: NaiveDateTime) -> String {
    let payload = URL_SAFE_NO_PAD.encode(format!(
        "{}|{}",
        link.encode(),
        expires.and_utc().timestamp()
    ));
    let signature = signer.sign("email-link", &payload);
    format!("{payload}.{signature}")
}

/// What a token says, if this site signed it and it is still in time.
pub fn verify(
    signer: &Signer,
    token: &str,
    now: NaiveDateTime,
) -> Result<(Link, NaiveDateTime), LinkError> {
    let (payload, signature) = token.split_once('.').ok_or(LinkError::Forged)?;
    if !signer.verify("email-link", payload, signature) {
        return Err(LinkError::Forged);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| LinkError::Forged)?;
    let text = String::from_utf8(bytes).map_err(|_| LinkError::Forged)?;
    let (body, expires) = text.rsplit_once('|').ok_or(LinkError::Forged)?;
    let expires = expires
        .parse::<i64>()
        .ok()
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .ok_or(LinkError::Forged)?
        .naive_utc();
    let link = Link::decode(body).ok_or(LinkError::Forged)?;
    if expires < now {
        return Err(LinkError::Expired);
    }
    Ok((link, expires))
}

pub fn is_used(conn: &mut DbConn, token: &str) -> Result<bool, DbError> {
    let found: Option<String> = used_tokens::table
        .find(token_hash(token))
        .select(used_tokens::token_hash)
        .first(conn)
        .optional()?;
    Ok(found.is_some())
}

/// Records a single-use token as spent (inside the transaction that acts on it). Spent
/// tokens past their expiry are forgotten, since they would be refused anyway.
pub fn mark_used(
    conn: &mut DbConn,
    token: &str,
    expires: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    diesel::delete(used_tokens::table.filter(used_tokens::expires_at.lt(now))).execute(conn)?;
    diesel::insert_into(used_tokens::table)
        .values((
            used_tokens::token_hash.eq(token_hash(token)),
            used_tokens::used_at.eq(now),
            used_tokens::expires_at.eq(expires),
        ))
        .execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_says_only_what_was_signed() {
        let signer = Signer::new(vec![1; 32]);
        let now = chrono::DateTime::from_timestamp(1_000_000, 0)
            .unwrap()
            .naive_utc();
        let link = Link::Moderate {
            comment_id: CommentId(7),
            action: Action::Approve,
            user_id: UserId(2),
        };
        let token = issue(&signer, &link, now + chrono::Duration::days(7));
        assert_eq!(verify(&signer, &token, now).unwrap().0, link);
        assert_eq!(
            verify(&signer, &token, now + chrono::Duration::days(8)),
            Err(LinkError::Expired)
        );
        let tampered = token.replacen('.', "x.", 1);
        assert_eq!(verify(&signer, &tampered, now), Err(LinkError::Forged));
        assert_eq!(
            verify(&Signer::new(vec![2; 32]), &token, now),
            Err(LinkError::Forged)
        );
        let odd = Link::Unsubscribe {
            email: "a|b@example.com".into(),
        };
        let token = issue(&signer, &odd, now + chrono::Duration::days(1));
        assert_eq!(verify(&signer, &token, now).unwrap().0, odd);
    }

    #[test]
    fn a_my_comments_link_hides_its_address_and_names_it_only_for_itself() {
        let signer = Signer::new(vec![1; 32]);
        let now = chrono::DateTime::from_timestamp(1_000_000, 0)
            .unwrap()
            .naive_utc();
        let link = my_comments_link(&signer, "Ada@Example.com");
        let token = issue(&signer, &link, now + chrono::Duration::days(1));
        let payload = URL_SAFE_NO_PAD
            .decode(token.split_once('.').unwrap().0)
            .unwrap();
        assert!(!String::from_utf8_lossy(&payload).contains("example"));
        let (read, _) = verify(&signer, &token, now).unwrap();
        assert_eq!(
            my_comments_address(&signer, &read).as_deref(),
            Some("ada@example.com")
        );
        let unsubscribe = Link::Unsubscribe {
            email: "ada@example.com".into(),
        };
        assert_eq!(my_comments_address(&signer, &unsubscribe), None);
    }
}
