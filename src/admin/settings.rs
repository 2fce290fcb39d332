//! The discussion settings page (admins only). Every field is checked before anything is
//! written, so a refused form changes nothing; an accepted one is saved in one transaction and
//! applies to the next request, since the settings are read from the database per request.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::auth::Admin;
use crate::comments::classify::check_keywords;
use crate::db::DbError;
use crate::error::AppResult;
use crate::http::forms::{FieldErrors, FormFields};
use crate::http::response::{render, see_other};
use crate::site::{CommentOrder, DiscussionSettings};
use crate::staff::{AdminLayout, web_actor};
use crate::state::AppState;

/// The form as typed, so a refused form comes back exactly as it was sent.
pub struct SettingsForm {
    pub require_approval: bool,
    pub trust_returning_commenters: bool,
    pub link_limit: String,
    pub moderation_keywords: String,
    pub disallowed_keywords: String,
    pub close_after_days: String,
    pub thread_depth: String,
    pub comments_per_page: String,
    pub comment_order: String,
    pub flood_interval_secs: String,
    pub flood_per_hour: String,
    pub retention_days: String,
    pub edit_window_minutes: String,
}

fn optional_text(value: Option<u32>) -> String {
    value.map(|n| n.to_string()).unwrap_or_default()
}

impl SettingsForm {
    fn from_settings(s: &DiscussionSettings) -> SettingsForm {
        SettingsForm {
            require_approval: s.require_approval,
            trust_returning_commenters: s.trust_returning_commenters,
            link_limit: s.link_limit.to_string(),
            moderation_keywords: s.moderation_keywords.join("\n"),
            disallowed_keywords: s.disallowed_keywords.join("\n"),
            close_after_days: optional_text(s.close_after_days),
            thread_depth: s.thread_depth.to_string(),
            comments_per_page: optional_text(s.comments_per_page),
            comment_order: match s.comment_order {
                CommentOrder::OldestFirst => "oldest",
                CommentOrder::NewestFirst => "newest",
            }
            .to_string(),
            flood_interval_secs: s.flood_interval_secs.to_string(),
            flood_per_hour: s.flood_per_hour.to_string(),
            retention_days: s.retention_days.to_string(),
            edit_window_minutes: s.edit_window_minutes.to_string(),
        }
    }

    fn from_fields(form: &FormFields) -> SettingsForm {
        let text = |name: &str| crate::text::normalize_newlines(form.get(name).unwrap_or(""));
        // An unticked checkbox is simply absent from the form; a script may also say "0".
        let ticked = |name: &str| {
            form.get(name)
                .is_some_and(|v| !matches!(v.trim(), "" | "0" | "false" | "off"))
        };
        SettingsForm {
            require_approval: ticked("require_approval"),
            trust_returning_commenters: ticked("trust_returning_commenters"),
            link_limit: text("link_limit"),
            moderation_keywords: text("moderation_keywords"),
            disallowed_keywords: text("disallowed_keywords"),
            close_after_days: text("close_after_days"),
            thread_depth: text("thread_depth"),
            comments_per_page: text("comments_per_page"),
            comment_order: text("comment_order"),
            flood_interval_secs: text("flood_interval_secs"),
            flood_per_hour: text("flood_per_hour"),
            retention_days: text("retention_days"),
            edit_window_minutes: text("edit_window_minutes"),
        }
    }

    /// The settings this form asks for, or every field's problem.
    fn parse(&self) -> Result<DiscussionSettings, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut number = |field: &'static str, text: &str, min: u32, max: u32| {
            parse_number(text, min, max)
                .map_err(|e| errors.push((field, e)))
                .ok()
        };
        let link_limit = number("link_limit", &self.link_limit, 0, 100);
        let thread_depth = number("thread_depth", &self.thread_depth, 1, 10);
        let flood_interval_secs = number("flood_interval_secs", &self.flood_interval_secs, 0, 3600);
        let flood_per_hour = number("flood_per_hour", &self.flood_per_hour, 0, 10_000);
        let retention_days = number("retention_days", &self.retention_days, 1, 3650);
        let edit_window_minutes = number("edit_window_minutes", &self.edit_window_minutes, 0, 1440);
        let mut optional = |field: &'static str, text: &str, min: u32, max: u32| {
            if text.trim().is_empty() {
                return Some(None);
            }
            parse_number(text, min, max)
                .map(Some)
                .map_err(|e| errors.push((field, e)))
                .ok()
        };
        let close_after_days = optional("close_after_days", &self.close_after_days, 1, 3650);
        let comments_per_page = optional("comments_per_page", &self.comments_per_page, 1, 500);
        let comment_order = match self.comment_order.as_str() {
            "oldest" => Some(CommentOrder::OldestFirst),
            "newest" => Some(CommentOrder::NewestFirst),
            _ => {
                errors.push(("comment_order", "Choose oldest or newest first.".into()));
                None
            }
        };
        let mut keywords = |field: &'static str, text: &str| {
            parse_keywords(text)
                .map_err(|e| errors.push((field, e)))
                .ok()
        };
        let moderation_keywords = keywords("moderation_keywords", &self.moderation_keywords);
        let disallowed_keywords = keywords("disallowed_keywords", &self.disallowed_keywords);
        match (
            link_limit,
            thread_depth,
            flood_interval_secs,
            flood_per_hour,
            retention_days,
            close_after_days,
            comments_per_page,
            comment_order,
            moderation_keywords,
            disallowed_keywords,
            edit_window_minutes,
        ) {
            (
                Some(link_limit),
                Some(thread_depth),
                Some(flood_interval_secs),
                Some(flood_per_hour),
                Some(retention_days),
                Some(close_after_days),
                Some(comments_per_page),
                Some(comment_order),
                Some(moderation_keywords),
                Some(disallowed_keywords),
                Some(edit_window_minutes),
            ) if errors.is_empty() => Ok(DiscussionSettings {
                require_approval: self.require_approval,
                trust_returning_commenters: self.trust_returning_commenters,
                link_limit,
                moderation_keywords,
                disallowed_keywords,
                close_after_days,
                thread_depth,
                comments_per_page,
                comment_order,
                flood_interval_secs,
                flood_per_hour,
                retention_days,
                edit_window_minutes,
            }),
            _ => Err(errors),
        }
    }
}

/// A whole number from `min` to `max`; the message says the allowed range.
fn parse_number(text: &str, min: u32, max: u32) -> Result<u32, String> {
    let text = text.trim();
    match text.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ if text.is_empty() => Err(format!("Enter a number from {min} to {max}.")),
        _ => Err(format!(
            "“{text}” is not allowed here: enter a whole number from {min} to {max}."
        )),
    }
}

/// One keyword per line (blank lines dropped); every `/regex/` must compile, and the message
/// names the line that does not; all of them together must fit the compiled-size limit.
fn parse_keywords(text: &str) -> Result<Vec<String>, String> {
    let mut keywords = Vec::new();
    let mut problems = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let keyword = line.trim();
        if keyword.is_empty() {
            continue;
        }
        let keyword = keyword.to_string();
        match check_keywords(std::slice::from_ref(&keyword)) {
            Ok(()) => keywords.push(keyword),
            Err(e) => problems.push(format!("Line {}: {e}.", index + 1)),
        }
    }
    if !problems.is_empty() {
        return Err(problems.join(" "));
    }
    // Each line compiles alone; together they must also fit the compiled-size limit.
    check_keywords(&keywords).map_err(|e| {
        let mut message = e;
        if let Some(first) = message.get(..1) {
            message = first.to_uppercase() + &message[1..];
        }
        format!("{message}. Nothing was saved.")
    })?;
    Ok(keywords)
}

#[derive(Template)]
#[template(path = "admin/settings.html")]
struct SettingsPage {
    layout: AdminLayout,
    form: SettingsForm,
    errors: FieldErrors,
    saved: bool,
    /// What the saved retention settings mean, in the privacy page's words.
    retention_policy: Vec<String>,
}

#[derive(Deserialize)]
pub struct SettingsQuery {
    saved: Option<String>,
}

/// `GET /admin/settings`
pub async fn form(
    state: web::Data<AppState>,
    Admin(staff): Admin,
    query: web::Query<SettingsQuery>,
) -> AppResult<HttpResponse> {
    let current = state.db.read(DiscussionSettings::load).await?;
    render(
        SettingsPage {
            layout: AdminLayout::new(&state, &staff, "Settings", "settings").await?,
            form: SettingsForm::from_settings(&current),
            errors: FieldErrors::new(),
            saved: query.saved.is_some(),
            retention_policy: crate::moderation::retention::policy(&current),
        },
        StatusCode::OK,
    )
}

/// `POST /admin/settings`: all fields or nothing.
pub async fn save(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(staff): Admin,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let fields = FormFields::parse(&body)?;
    let typed = SettingsForm::from_fields(&fields);
    let settings = match typed.parse() {
        Ok(settings) => settings,
        Err(errors) => {
            let current = state.db.read(DiscussionSettings::load).await?;
            return render(
                SettingsPage {
                    layout: AdminLayout::new(&state, &staff, "Settings", "settings").await?,
                    form: typed,
                    errors,
                    saved: false,
                    retention_policy: crate::moderation::retention::policy(&current),
                },
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };
    let actor = web_actor(&state, &req, &staff);
    let now = state.clock.now();
    state
        .db
        .write(move |conn| -> Result<(), DbError> {
            let before = DiscussionSettings::load(conn)?.to_rows();
            let after = settings.to_rows();
            // The log shows each change as old → new; a keyword list as its count of lines.
            let changed: Vec<String> = after
                .iter()
                .filter(|row| !before.contains(row))
                .map(|(name, new)| {
                    let old = before
                        .iter()
                        .find(|(n, _)| n == name)
                        .map_or("", |(_, v)| v.as_str());
                    format!("{name}: {} → {}", logged_value(old), logged_value(new))
                })
                .collect();
            settings.save(conn)?;
            let detail = if changed.is_empty() {
                "no changes".to_string()
            } else {
                format!("changed {}", changed.join("; "))
            };
            crate::audit::log(conn, None, "settings", &detail, &actor, now)
        })
        .await?;
    Ok(see_other("/admin/settings?saved=1"))
}

/// A setting's value as the moderation log shows it: short values whole, lists by their size.
fn logged_value(value: &str) -> String {
    let lines = value.lines().filter(|l| !l.trim().is_empty()).count();
    if value.trim().is_empty() {
        "(empty)".into()
    } else if lines > 1 || value.chars().count() > 40 {
        format!("{lines} line{}", if lines == 1 { "" } else { "s" })
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_must_be_whole_and_in_range() {
        assert_eq!(parse_number(" 7 ", 1, 10), Ok(7));
        assert!(parse_number("99", 1, 10).is_err());
        assert!(parse_number("-1", 0, 10).is_err());
        assert!(parse_number("2.5", 0, 10).is_err());
        assert!(parse_number("", 0, 10).is_err());
    }

    #[test]
    fn a_bad_regex_keyword_is_named_by_its_line() {
        let err = parse_keywords("casino\n\n/(unclosed/").unwrap_err();
        assert!(err.starts_with("Line 3: /(unclosed/"), "{err}");
        assert_eq!(
            parse_keywords(" casino \n\n/v[i1]agra/\n").unwrap(),
            vec!["casino".to_string(), "/v[i1]agra/".to_string()]
        );
    }
}
