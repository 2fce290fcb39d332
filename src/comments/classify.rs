//! Deciding a new comment's status. The rules run in DESIGN.md's order, first match wins, and
//! every outcome except a plain approval says why in `held_reason`.

use std::sync::{Arc, Mutex};

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
    /// Made before the write transaction by `keyword_hits` over the same fields.
    pub keywords: &'a KeywordHits,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: CommentStatus,
    /// Why it was held, in words for moderators (kept as `held_reason`).
    pub reason: Option<String>,
    /// The rule that held it, as a fixed name for metrics (no keyword, no count).
    pub rule: Option<&'static str>,
}

fn verdict(status: CommentStatus, rule: &'static str, reason: impl Into<String>) -> Verdict {
    Verdict {
        status,
        reason: Some(reason.into()),
        rule: Some(rule),
    }
}

const APPROVED: Verdict = Verdict {
    status: CommentStatus::Approved,
    reason: None,
    rule: None,
};

/// Why a comment is spam when a bot gave itself away (honeypot, too fast, forged form). Its
/// author is shown it exactly as a held comment: a person who types fast loses nothing, and a
/// bot learns nothing.
pub const BOT_SIGNAL_REASONS: [&str; 3] = [
    "honeypot field filled in",
    "form submitted too fast",
    "form token missing or forged",
];

pub fn classify(settings: &DiscussionSettings, s: &Submission<'_>) -> Verdict {
    if s.staff {
        return APPROVED;
    }
    if s.blocked {
        return verdict(CommentStatus::Spam, "blocked", "blocked");
    }
    if s.honeypot_filled {
        return verdict(CommentStatus::Spam, "honeypot", "honeypot field filled in");
    }
    match s.form_token {
        FormTokenCheck::TooFast => {
            return verdict(CommentStatus::Spam, "too_fast", "form submitted too fast");
        }
        FormTokenCheck::Forged => {
            return verdict(
                CommentStatus::Spam,
                "forged_token",
                "form token missing or forged",
            );
        }
        FormTokenCheck::Valid | FormTokenCheck::Expired => {}
    }
    if let Some(word) = &s.keywords.disallowed {
        return verdict(
            CommentStatus::Spam,
            "disallowed_keyword",
            format!("disallowed keyword: {word}"),
        );
    }
    if let Some(word) = &s.keywords.moderation {
        return verdict(
            CommentStatus::Pending,
            "moderation_keyword",
            format!("moderation keyword: {word}"),
        );
    }
    let links = crate::render::count_links(s.body) + usize::from(s.website.is_some());
    if settings.link_limit > 0 && links >= settings.link_limit as usize {
        let noun = if links == 1 { "link" } else { "links" };
        return verdict(
            CommentStatus::Pending,
            "link_limit",
            format!("{links} {noun} (hold at {} or more)", settings.link_limit),
        );
    }
    if settings.require_approval {
        return verdict(
            CommentStatus::Pending,
            "manual_approval",
            "comments must be manually approved",
        );
    }
    if settings.trust_returning_commenters && s.returning_commenter {
        return APPROVED;
    }
    if settings.trust_returning_commenters {
        verdict(
            CommentStatus::Pending,
            "first_comment",
            "first comment from this author",
        )
    } else {
        verdict(
            CommentStatus::Pending,
            "all_moderated",
            "every comment is moderated",
        )
    }
}

/// Total compiled size allowed for one list's regular expressions together. 1,500 ordinary
/// patterns fit; one list cannot make every comment slow or the server large.
const KEYWORD_SET_BYTES: usize = 8 << 20;

/// A keyword list ready to match: its `/regex/` lines compiled once into one `RegexSet`
/// (linear-time engine, size-limited), its plain words lowered once.
#[derive(Debug)]
pub struct KeywordList {
    keywords: Vec<String>,
    /// Per keyword: its index in `regexes`, or `None` for a plain word.
    regex_index: Vec<Option<usize>>,
    words: Vec<String>,
    regexes: regex::RegexSet,
}

impl KeywordList {
    /// Compiles a list; an invalid expression, or a list whose expressions together pass the
    /// size limit, is an error that names the problem.
    pub fn compile(keywords: &[String]) -> Result<KeywordList, String> {
        let mut patterns = Vec::new();
        let mut regex_index = Vec::with_capacity(keywords.len());
        let mut words = Vec::with_capacity(keywords.len());
        for keyword in keywords {
            match regex_keyword(keyword) {
                Some(pattern) => {
                    if compile(pattern).is_none() {
                        return Err(format!(
                            "{keyword} is not a valid regular expression (or too large)"
                        ));
                    }
                    regex_index.push(Some(patterns.len()));
                    patterns.push(pattern);
                    words.push(String::new());
                }
                None => {
                    regex_index.push(None);
                    words.push(keyword.trim().to_lowercase());
                }
            }
        }
        let regexes = regex::RegexSetBuilder::new(&patterns)
            .case_insensitive(true)
            .size_limit(KEYWORD_SET_BYTES)
            .dfa_size_limit(KEYWORD_SET_BYTES)
            .build()
            .map_err(|_| {
                format!(
                    "the {} regular expressions of this list are too large together \
                     (at most {} MiB compiled): use fewer or simpler ones",
                    patterns.len(),
                    KEYWORD_SET_BYTES >> 20
                )
            })?;
        Ok(KeywordList {
            keywords: keywords.to_vec(),
            regex_index,
            words,
            regexes,
        })
    }

    /// The compiled form of `keywords`, compiled once per list content (that is, once per
    /// settings version) and shared by every comment after that. A list that no longer
    /// compiles (saved before the size limit) matches with its plain words only.
    pub fn cached(keywords: &[String]) -> Arc<KeywordList> {
        static CACHE: Mutex<Vec<Arc<KeywordList>>> = Mutex::new(Vec::new());
        // A poisoned cache only means a thread panicked while holding it; the entries are whole.
        let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = cache.iter().find(|list| list.keywords == keywords) {
            return found.clone();
        }
        let list = KeywordList::compile(keywords).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "a keyword list's regular expressions are ignored");
            let words: Vec<String> = keywords
                .iter()
                .filter(|k| regex_keyword(k).is_none())
                .cloned()
                .collect();
            let mut list = KeywordList::compile(&words).unwrap_or_else(|_| KeywordList::empty());
            list.keywords = keywords.to_vec();
            list
        });
        let list = Arc::new(list);
        // The moderation and the disallowed list, and a version or two being replaced.
        if cache.len() >= 4 {
            cache.remove(0);
        }
        cache.push(list.clone());
        list
    }

    fn empty() -> KeywordList {
        KeywordList {
            keywords: Vec::new(),
            regex_index: Vec::new(),
            words: Vec::new(),
            regexes: regex::RegexSet::empty(),
        }
    }

    /// The first keyword, in list order, found in any field. A word matches as a whole word,
    /// ignoring case.
    pub fn first_match(&self, fields: &[&str]) -> Option<&str> {
        let lowered: Vec<String> = fields.iter().map(|f| f.to_lowercase()).collect();
        let mut regex_hits = vec![false; self.regexes.len()];
        if !self.regexes.is_empty() {
            for field in fields {
                for hit in self.regexes.matches(field).iter() {
                    regex_hits[hit] = true;
                }
            }
        }
        self.keywords
            .iter()
            .zip(self.regex_index.iter().zip(&self.words))
            .find(|(_, (regex, word))| match regex {
                Some(index) => regex_hits.get(*index).copied().unwrap_or(false),
                None => !word.is_empty() && lowered.iter().any(|f| contains_word(f, word)),
            })
            .map(|(keyword, _)| keyword.as_str())
    }
}

/// The keyword checks of a submission, made before the write transaction: keyword lists can
/// be long, and nothing else may wait on them.
pub fn keyword_hits(settings: &DiscussionSettings, fields: &[&str]) -> KeywordHits {
    KeywordHits {
        disallowed: KeywordList::cached(&settings.disallowed_keywords)
            .first_match(fields)
            .map(str::to_string),
        moderation: KeywordList::cached(&settings.moderation_keywords)
            .first_match(fields)
            .map(str::to_string),
    }
}

/// The first disallowed and the first moderation keyword a submission contains.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeywordHits {
    pub disallowed: Option<String>,
    pub moderation: Option<String>,
}

/// The first keyword found in any field (`KeywordList::first_match` of the cached list).
pub fn first_match(keywords: &[String], fields: &[&str]) -> Option<String> {
    KeywordList::cached(keywords)
        .first_match(fields)
        .map(str::to_string)
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

/// Checks a keyword list for an admin form: every `/regex/` must compile within the limits,
/// alone and together.
pub fn check_keywords(keywords: &[String]) -> Result<(), String> {
    KeywordList::compile(keywords).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_match_whole_words_ignoring_case() {
        let words = vec!["press".to_string()];
        assert_eq!(first_match(&words, &["I use WordPress"]), None);
        assert_eq!(
            first_match(&words, &["Hot off the PRESS!"]).as_deref(),
            Some("press")
        );
        let regex = vec!["/v[i1]agra/".to_string()];
        assert_eq!(
            first_match(&regex, &["cheap V1AGRA"]).as_deref(),
            Some("/v[i1]agra/")
        );
        let mixed = vec![
            "/z{3}/".to_string(),
            "pills".to_string(),
            "/cheap/".to_string(),
        ];
        assert_eq!(
            first_match(&mixed, &["cheap pills"]).as_deref(),
            Some("pills"),
            "the first keyword in list order wins"
        );
    }

    #[test]
    fn a_hostile_regex_is_refused_or_runs_in_linear_time() {
        let hostile = vec!["/(a+)+$/".to_string()];
        let input = "a".repeat(50_000) + "!";
        assert_eq!(first_match(&hostile, &[&input]), None);
        assert!(check_keywords(&["/(unclosed/".to_string()]).is_err());
    }

    #[test]
    fn regex_lines_that_are_too_large_together_are_refused_with_a_reason() {
        let each_fits: Vec<String> = (0..400)
            .map(|n| format!("/\\w{{8}}x{n}\\w{{8}}/"))
            .collect();
        assert!(check_keywords(&each_fits[..1]).is_ok());
        let error = check_keywords(&each_fits).unwrap_err();
        assert!(error.contains("too large together"), "{error}");
    }
}
