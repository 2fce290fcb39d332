//! The comment form as submitted, and the checked input made from it. Every limit is counted
//! in Unicode characters after CR LF becomes LF; nothing is ever truncated.

use crate::crypto::Signer;
use crate::db::ids::{CommentId, PostId};
use crate::text::normalize_newlines;

pub const MAX_NAME: usize = 100;
pub const MAX_EMAIL: usize = 254;
pub const MAX_WEBSITE: usize = 200;
pub const MAX_BODY: usize = 10_000;
/// The whole form body; above this the answer is 413.
pub const MAX_FORM_BYTES: usize = 256 * 1024;

/// The honeypot's field name: a plausible one, so bots fill it; people never see it.
pub const HONEYPOT_FIELD: &str = "homepage";

/// The form exactly as it arrived (newlines normalised), for validation and for re-rendering.
#[derive(Debug, Clone, Default)]
pub struct RawCommentForm {
    pub name: String,
    pub email: String,
    pub website: String,
    pub body: String,
    pub parent_id: String,
    pub notify: bool,
    pub remember: bool,
    pub honeypot: String,
    pub form_token: String,
    /// The Preview button was pressed: render, store nothing.
    pub preview: bool,
}

impl RawCommentForm {
    pub fn from_pairs(pairs: Vec<(String, String)>) -> RawCommentForm {
        let mut form = RawCommentForm::default();
        for (key, value) in pairs {
            let value = normalize_newlines(&value);
            match key.as_str() {
                "name" => form.name = value,
                "email" => form.email = value,
                "website" | "url" => form.website = value,
                "body" | "comment" => form.body = value,
                "parent_id" => form.parent_id = value,
                "notify" => form.notify = true,
                "remember" => form.remember = true,
                "form_token" => form.form_token = value,
                "preview" => form.preview = true,
                HONEYPOT_FIELD => form.honeypot = value,
                _ => {}
            }
        }
        form
    }
}

/// A commenter's name: one line, 1–100 characters, no control or direction-override characters.
#[derive(Debug, Clone)]
pub struct CommenterName(String);

/// A commenter's email address, lower-cased.
#[derive(Debug, Clone)]
pub struct CommenterEmail(String);

/// A commenter's website: http or https only.
#[derive(Debug, Clone)]
pub struct Website(String);

#[derive(Debug, Clone)]
pub struct CommentBody(String);

macro_rules! text_newtype {
    ($($t:ty),*) => {$(
        impl $t {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    )*};
}
text_newtype!(CommenterName, CommenterEmail, Website, CommentBody);

fn char_count(text: &str) -> usize {
    text.chars().count()
}

/// Control characters other than newline and tab never belong in a comment (and PostgreSQL
/// cannot store NUL at all).
fn has_forbidden_control(text: &str, allow_newlines: bool) -> bool {
    text.chars()
        .any(|c| c.is_control() && !(allow_newlines && (c == '\n' || c == '\t')))
}

/// Characters that reorder text and can make a name display as something else.
fn has_bidi_override(text: &str) -> bool {
    text.chars()
        .any(|c| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'))
}

impl CommenterName {
    pub fn parse(text: &str) -> Result<CommenterName, String> {
        let name = text.trim();
        if name.is_empty() {
            return Err("Please enter your name.".into());
        }
        if char_count(name) > MAX_NAME {
            return Err(format!(
                "Your name is {} characters long; the limit is {MAX_NAME}.",
                char_count(name)
            ));
        }
        if has_forbidden_control(name, false) {
            return Err("Your name must be a single line without control characters.".into());
        }
        if has_bidi_override(name) {
            return Err("Your name contains text-direction control characters.".into());
        }
        Ok(CommenterName(name.to_string()))
    }
}

impl CommenterEmail {
    /// The shape WordPress accepts: local@domain.tld, no spaces or special characters.
    pub fn parse(text: &str) -> Result<CommenterEmail, String> {
        let email = text.trim();
        if email.is_empty() {
            return Err("Please enter your email address.".into());
        }
        if char_count(email) > MAX_EMAIL {
            return Err(format!(
                "The email address is longer than {MAX_EMAIL} characters."
            ));
        }
        let invalid = || Err("Please enter a valid email address.".to_string());
        let Some((local, domain)) = email.rsplit_once('@') else {
            return invalid();
        };
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && local
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c))
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..");
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if !(local_ok && domain_ok) {
            return invalid();
        }
        Ok(CommenterEmail(email.to_lowercase()))
    }
}

impl Website {
    /// Empty is no website; a bare `example.com` gets `http://`.
    pub fn parse(text: &str) -> Result<Option<Website>, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        if char_count(text) > MAX_WEBSITE {
            return Err(format!(
                "The website address is {} characters long; the limit is {MAX_WEBSITE}.",
                char_count(text)
            ));
        }
        if text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '<' | '>' | '\\'))
        {
            return Err(
                "The website address must not contain spaces, quotes or angle brackets.".into(),
            );
        }
        let lower = text.to_ascii_lowercase();
        let with_scheme = if lower.starts_with("http://") || lower.starts_with("https://") {
            text.to_string()
        } else if lower.contains("://")
            || lower.starts_with("javascript:")
            || lower.starts_with("data:")
        {
            return Err("The website address must start with http:// or https://.".into());
        } else {
            format!("http://{text}")
        };
        if char_count(&with_scheme) > MAX_WEBSITE {
            return Err(format!(
                "The website address is longer than {MAX_WEBSITE} characters."
            ));
        }
        match url::Url::parse(&with_scheme) {
            Ok(url)
                if matches!(url.scheme(), "http" | "https")
                    && url
                        .host_str()
                        .is_some_and(|h| h.contains('.') || h == "localhost") =>
            {
                Ok(Some(Website(with_scheme)))
            }
            _ => Err("Please enter a valid website address, such as https://example.com.".into()),
        }
    }
}

impl CommentBody {
    pub fn parse(text: &str) -> Result<CommentBody, String> {
        if text.trim().is_empty() {
            return Err("Please type your comment.".into());
        }
        let count = char_count(text);
        if count > MAX_BODY {
            return Err(format!(
                "Your comment is {count} characters long; the limit is {MAX_BODY}. Nothing was cut: please shorten it."
            ));
        }
        if has_forbidden_control(text, true) {
            return Err("Your comment contains control characters.".into());
        }
        Ok(CommentBody(text.to_string()))
    }
}

/// The form after every field passed its checks.
#[derive(Debug, Clone)]
pub struct CommentInput {
    pub name: CommenterName,
    pub email: CommenterEmail,
    pub website: Option<Website>,
    pub body: CommentBody,
    pub parent_id: Option<CommentId>,
    pub notify: bool,
    pub remember: bool,
}

/// Field name → message, in form order.
use crate::http::forms::FieldErrors;

pub fn validate(raw: &RawCommentForm) -> Result<CommentInput, FieldErrors> {
    let mut errors = FieldErrors::new();
    let name = CommenterName::parse(&raw.name)
        .map_err(|e| errors.push(("name", e)))
        .ok();
    let email = CommenterEmail::parse(&raw.email)
        .map_err(|e| errors.push(("email", e)))
        .ok();
    let website = Website::parse(&raw.website)
        .map_err(|e| errors.push(("website", e)))
        .ok();
    let body = CommentBody::parse(&raw.body)
        .map_err(|e| errors.push(("body", e)))
        .ok();
    let parent_id = match raw.parent_id.trim() {
        "" | "0" => Some(None),
        text => match text.parse::<i32>() {
            Ok(id) if id > 0 => Some(Some(CommentId(id))),
            _ => {
                errors.push((
                    "parent_id",
                    "The comment you are replying to does not exist.".into(),
                ));
                None
            }
        },
    };
    match (name, email, website, body, parent_id) {
        (Some(name), Some(email), Some(website), Some(body), Some(parent_id))
            if errors.is_empty() =>
        {
            Ok(CommentInput {
                name,
                email,
                website,
                body,
                parent_id,
                notify: raw.notify,
                remember: raw.remember,
            })
        }
        _ => Err(errors),
    }
}

/// What the signed form token says about the submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormTokenCheck {
    Valid,
    /// Sent back sooner than a person could have typed anything.
    TooFast,
    /// Older than a day: the form is shown again with the input kept.
    Expired,
    /// Missing, malformed, for another post, or not signed by this site.
    Forged,
}

pub const FORM_TOKEN_MIN_AGE_SECS: i64 = 3;
pub const FORM_TOKEN_MAX_AGE_SECS: i64 = 24 * 60 * 60;

/// A form token: `{post_id}.{issued_unix_secs}.{signature}`.
pub fn issue_form_token(signer: &Signer, post_id: PostId, now_unix: i64) -> String {
    let message = format!("{post_id}.{now_unix}");
    format!("{message}.{}", signer.sign("comment-form", &message))
}

pub fn check_form_token(
    signer: &Signer,
    token: &str,
    post_id: PostId,
    now_unix: i64,
) -> FormTokenCheck {
    let mut parts = token.trim().splitn(3, '.');
    let (Some(post), Some(issued), Some(signature)) = (parts.next(), parts.next(), parts.next())
    else {
        return FormTokenCheck::Forged;
    };
    let message = format!("{post}.{issued}");
    if post.parse::<i32>().ok() != Some(post_id.0)
        || !signer.verify("comment-form", &message, signature)
    {
        return FormTokenCheck::Forged;
    }
    let Ok(issued) = issued.parse::<i64>() else {
        return FormTokenCheck::Forged;
    };
    let age = now_unix - issued;
    if age < FORM_TOKEN_MIN_AGE_SECS {
        FormTokenCheck::TooFast
    } else if age > FORM_TOKEN_MAX_AGE_SECS {
        FormTokenCheck::Expired
    } else {
        FormTokenCheck::Valid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_checked_without_truncation() {
        assert!(CommenterName::parse(&"a".repeat(100)).is_ok());
        assert!(CommenterName::parse(&"a".repeat(101)).is_err());
        assert!(CommenterName::parse("Eve\u{202E}gnp.exe").is_err());
        assert!(CommenterName::parse("two\nlines").is_err());
        assert!(CommenterEmail::parse("someone@example.com").is_ok());
        assert!(CommenterEmail::parse("not-an-email").is_err());
        assert!(CommenterEmail::parse("a@b").is_err());
        assert!(CommenterEmail::parse("a b@example.com").is_err());
        assert_eq!(
            Website::parse("example.com").unwrap().unwrap().as_str(),
            "http://example.com"
        );
        assert!(Website::parse("javascript:alert(1)").is_err());
        assert!(Website::parse("ftp://example.com").is_err());
        assert!(Website::parse("").unwrap().is_none());
        assert!(CommentBody::parse(&"é".repeat(10_000)).is_ok());
        assert!(CommentBody::parse(&"é".repeat(10_001)).is_err());
        assert!(CommentBody::parse("nul\0here").is_err());
        assert!(CommentBody::parse("   ").is_err());
    }

    #[test]
    fn form_tokens_are_bound_to_post_and_time() {
        let signer = Signer::new(vec![7; 32]);
        let token = issue_form_token(&signer, PostId(5), 1_000);
        assert_eq!(
            check_form_token(&signer, &token, PostId(5), 1_001),
            FormTokenCheck::TooFast
        );
        assert_eq!(
            check_form_token(&signer, &token, PostId(5), 1_003),
            FormTokenCheck::Valid
        );
        assert_eq!(
            check_form_token(&signer, &token, PostId(5), 1_000 + 86_401),
            FormTokenCheck::Expired
        );
        assert_eq!(
            check_form_token(&signer, &token, PostId(6), 1_003),
            FormTokenCheck::Forged
        );
        assert_eq!(
            check_form_token(&signer, "5.1000.AAAA", PostId(5), 1_003),
            FormTokenCheck::Forged
        );
        assert_eq!(
            check_form_token(&signer, "", PostId(5), 1_003),
            FormTokenCheck::Forged
        );
    }
}
