//! Deciding a new comment's status. The rules run in DESIGN.md's order, first match wins, and
//! every outcome except a plain approval says why in `held_reason`.

use super::CommentStatus;
use super::domain::FormTokenCheck;
use crate::site::DiscussionSettings;

/// Everything the rules look at besides the settings.
#[derive(Debug)]
pub struct Submission<'a> {
    pub staff: bool,
    pub blocked: bool,
    pub honeypot_filled: bool,
    pub form_token: FormTokenCheck,
    pub name: &'a str,
    pub email: &'a str,
    pub website: Option<&'a str>,
    pub body: &'a str,
    pub ip: &'a str,
    pub user_agent: &'a str,
    /// An earlier approved comment with the same email and name exists.
    pub returning_commenter: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: CommentStatus,
    pub reason: Option<String>,
}

fn verdict(status: CommentStatus, reason: impl Into<String>) -> Verdict {
    Verdict {
        status,
        reason: Some(reason.into()),
    }
}

pub fn classify(settings: &DiscussionSettings, s: &Submission<'_>) -> Verdict {
    if s.staff {
        return Verdict {
            status: CommentStatus::Approved,
            reason: None,
        };
    }
    if s.blocked {
        return verdict(CommentStatus::Spam, "blocked");
    }
    if s.honeypot_filled {
        return verdict(CommentStatus::Spam, "honeypot field filled in");
    }
    match s.form_token {
        FormTokenCheck::TooFast => return verdict(CommentStatus::Spam, "form submitted too fast"),
        FormTokenCheck::Forged => {
            return verdict(CommentStatus::Spam, "form token missing or forged");
        }
        FormTokenCheck::Valid | FormTokenCheck::Expired => {}
    }
    let fields = [
        s.body,
        s.name,
        s.email,
        s.website.unwrap_or(""),
        s.ip,
        s.user_agent,
    ];
    if let Some(word) = first_match(&settings.disallowed_keywords, &fields) {
        return verdict(CommentStatus::Spam, format!("disallowed keyword: {word}"));
    }
    if let Some(word) = first_match(&settings.moderation_keywords, &fields) {
        return verdict(
            CommentStatus::Pending,
            format!("moderation keyword: {word}"),
        );
    }
    let links = crate::render::count_links(s.body) + usize::from(s.website.is_some());
    if settings.link_limit > 0 && links >= settings.link_limit as usize {
        let noun = if links == 1 { "link" } else { "links" };
        return verdict(
            CommentStatus::Pending,
            format!("{links} {noun} (limit {})", settings.link_limit),
        );
    }
    if settings.require_approval {
        return verdict(CommentStatus::Pending, "comments must be manually approved");
    }
    if settings.trust_returning_commenters && s.returning_commenter {
        return Verdict {
            status: CommentStatus::Approved,
            reason: None,
        };
    }
    if settings.trust_returning_commenters {
        verdict(CommentStatus::Pending, "first comment from this author")
    } else {
        verdict(CommentStatus::Pending, "every comment is moderated")
    }
}

/// The first keyword found in any field. A keyword matches as a whole word, ignoring case;
/// `/pattern/` is a regular expression (linear-time engine, size-limited).
pub fn first_match<'k>(keywords: &'k [String], fields: &[&str]) -> Option<&'k str> {
    let lowered: Vec<String> = fields.iter().map(|f| f.to_lowercase()).collect();
    keywords
        .iter()
        .map(String::as_str)
        .find(|keyword| match regex_keyword(keyword) {
            Some(pattern) => match compile(pattern) {
                Some(re) => fields.iter().any(|f| re.is_match(f)),
                None => false,
            },
            None => {
                let needle = keyword.trim().to_lowercase();
                !needle.is_empty() && lowered.iter().any(|f| contains_word(f, &needle))
            }
        })
}

fn regex_keyword(keyword: &str) -> Option<&str> {
    let k = keyword.trim();
    (k.len() > 2 && k.starts_with('/') && k.ends_with('/')).then(|| &k[1..k.len() - 1])
}

fn compile(pattern: &str) -> Option<regex::Regex> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
        .ok()
}

/// Whether `needle` occurs in `haystack` with no letter or digit on either side.
fn contains_word(haystack: &str, needle: &str) -> bool {
    let mut start = 0;
    while let Some(pos) = haystack[start..].find(needle) {
        let begin = start + pos;
        let end = begin + needle.len();
        let before = haystack[..begin].chars().next_back();
        let after = haystack[end..].chars().next();
        let boundary = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
        if boundary(before) && boundary(after) {
            return true;
        }
        start = begin + needle.chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// Checks a keyword list for an admin form: every `/regex/` must compile within the limits.
pub fn check_keywords(keywords: &[String]) -> Result<(), String> {
    for keyword in keywords {
        if let Some(pattern) = regex_keyword(keyword)
            && compile(pattern).is_none()
        {
            return Err(format!(
                "{keyword} is not a valid regular expression (or too large)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_match_whole_words_ignoring_case() {
        let words = vec!["press".to_string()];
        assert_eq!(first_match(&words, &["I use WordPress"]), None);
        assert_eq!(first_match(&words, &["Hot off the PRESS!"]), Some("press"));
        let regex = vec!["/v[i1]agra/".to_string()];
        assert_eq!(first_match(&regex, &["cheap V1AGRA"]), Some("/v[i1]agra/"));
    }

    #[test]
    fn a_hostile_regex_is_refused_or_runs_in_linear_time() {
        let hostile = vec!["/(a+)+$/".to_string()];
        let input = "a".repeat(50_000) + "!";
        assert_eq!(first_match(&hostile, &[&input]), None);
        assert!(check_keywords(&["/(unclosed/".to_string()]).is_err());
    }
}
