//! Settings from the environment and an optional `lectern.toml`; the environment wins.
//!
//! Every value is checked here, once, so a bad setting stops start-up with one line that names
//! the variable, and the rest of the program works with parsed values only.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use url::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqliteSync {
    /// An acknowledged comment survives power loss.
    Full,
    /// An acknowledged comment survives a crash of lectern.
    Normal,
}

impl SqliteSync {
    pub fn pragma(self) -> &'static str {
        match self {
            SqliteSync::Full => "FULL",
            SqliteSync::Normal => "NORMAL",
        }
    }
}

/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One readable line per event (colour only at a terminal).
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub bind: SocketAddr,
    /// `None` until the server has bound: then `http://` + the bound address.
    pub base_url: Option<Url>,
    pub site_title: String,
    pub timezone: chrono_tz::Tz,
    pub smtp_url: Option<Url>,
    pub mail_from: String,
    pub mail_retry_secs: u64,
    /// The deadline of each SMTP step (greeting, EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA, the
    /// final reply); the mail worker's lease is a few of them.
    pub smtp_timeout: std::time::Duration,
    pub mail_dir: PathBuf,
    pub secret_key: Option<Vec<u8>>,
    pub trusted_proxies: Vec<IpNet>,
    pub flood_limits: bool,
    pub sqlite_sync: SqliteSync,
    pub pool_size: u32,
    pub log_filter: String,
    pub log_format: LogFormat,
    /// The bearer token that opens `/metrics` to clients beyond loopback.
    pub metrics_token: Option<String>,
    /// Addresses per sitemap file (sitemaps.org allows 50,000); past them, `/sitemap.xml` is
    /// an index of several files.
    pub sitemap_file_urls: i64,
    /// `LECTERN_PAGE_CACHES=off` (benchmarks only): no kept threads, pages, dashboard readings or
    /// sessions, so every view is built from the database (the cold path).
    pub page_caches: bool,
    /// How long a request waits for a database connection while every one is busy.
    pub database_timeout: std::time::Duration,
    /// `/healthz`'s wait for the database, and how soon an outage (or its end) is noticed.
    pub database_probe: std::time::Duration,
    /// How long a request body may take to arrive; a slower one is answered 408 and dropped.
    pub body_timeout: std::time::Duration,
}

/// A setting that cannot be used, named as the user wrote it.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct ConfigError {
    pub name: &'static str,
    pub problem: String,
}

/// A whole-number setting within `range` (`unit` names what it counts, or is empty).
fn whole_number(
    get: &dyn Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
    unit: &str,
) -> Result<u64, ConfigError> {
    let Some(text) = get(name) else {
        return Ok(default);
    };
    text.parse::<u64>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            let of = if unit.is_empty() {
                String::new()
            } else {
                format!(" of {unit}")
            };
            bad(
                name,
                format!(
                    "must be a whole number{of} from {} to {}",
                    range.start(),
                    range.end()
                ),
            )
        })
}

fn bad(name: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        name,
        problem: problem.into(),
    }
}

const KEYS: &[&str] = &[
    "LECTERN_DATABASE_URL",
    "LECTERN_BIND",
    "LECTERN_BASE_URL",
    "LECTERN_SITE_TITLE",
    "LECTERN_TIMEZONE",
    "LECTERN_SMTP_URL",
    "LECTERN_MAIL_FROM",
    "LECTERN_MAIL_RETRY_SECS",
    "LECTERN_SMTP_TIMEOUT_SECS",
    "LECTERN_MAIL_DIR",
    "LECTERN_SECRET_KEY",
    "LECTERN_TRUSTED_PROXIES",
    "LECTERN_FLOOD_LIMITS",
    "LECTERN_SQLITE_SYNC",
    "LECTERN_DATABASE_POOL_SIZE",
    "LECTERN_DATABASE_TIMEOUT_SECS",
    "LECTERN_DATABASE_PROBE_MS",
    "LECTERN_BODY_TIMEOUT_SECS",
    "LECTERN_METRICS_TOKEN",
    "LECTERN_LOG_FORMAT",
    "LECTERN_SITEMAP_FILE_URLS",
    "LECTERN_PAGE_CACHES",
    "RUST_LOG",
];

impl Config {
    /// Reads `lectern.toml` in `dir` (if any) and then the process environment.
    pub fn load(dir: &Path) -> Result<Config, ConfigError> {
        let mut values = read_toml(&dir.join("lectern.toml"))?;
        for key in KEYS {
            if let Ok(value) = std::env::var(key) {
                values.insert((*key).to_string(), value);
            }
        }
        Config::from_values(&values)
    }

    /// Builds a configuration from `LECTERN_*` keys; absent keys take their defaults.
    pub fn from_values(values: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let get = |key: &str| {
            values
                .get(key)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };

        let database_url =
            get("LECTERN_DATABASE_URL").unwrap_or_else(|| "sqlite://lectern.db".into());
        if !(database_url.starts_with("sqlite://")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(bad(
                "LECTERN_DATABASE_URL",
                "must start with sqlite:// or postgres://",
            ));
        }
        if database_url == "sqlite://" {
            return Err(bad("LECTERN_DATABASE_URL", "sqlite:// needs a file path"));
        }

        let bind_text = get("LECTERN_BIND").unwrap_or_else(|| "127.0.0.1:8080".into());
        let bind = bind_text
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| {
                bad(
                    "LECTERN_BIND",
                    format!("{bind_text:?} is not an address:port"),
                )
            })?;

        let base_url = match get("LECTERN_BASE_URL") {
            None => None,
            Some(text) => {
                let url = Url::parse(&text)
                    .map_err(|e| bad("LECTERN_BASE_URL", format!("{text:?} is not a URL ({e})")))?;
                if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                    return Err(bad(
                        "LECTERN_BASE_URL",
                        "must be an http:// or https:// URL",
                    ));
                }
                if url.query().is_some() || url.fragment().is_some() {
                    return Err(bad("LECTERN_BASE_URL", "must not have a query or fragment"));
                }
                Some(url)
            }
        };

        let site_title = get("LECTERN_SITE_TITLE").unwrap_or_else(|| "lectern".into());
        if site_title.chars().any(char::is_control) || site_title.chars().count() > 200 {
            return Err(bad(
                "LECTERN_SITE_TITLE",
                "must be at most 200 characters with no control characters",
            ));
        }

        let tz_text = get("LECTERN_TIMEZONE").unwrap_or_else(|| "UTC".into());
        let timezone: chrono_tz::Tz = tz_text.parse().map_err(|_| {
            bad(
                "LECTERN_TIMEZONE",
                format!("{tz_text:?} is not an IANA time zone"),
            )
        })?;

        let smtp_url = match get("LECTERN_SMTP_URL") {
            None => None,
            Some(text) => {
                let url = Url::parse(&text).map_err(|_| bad("LECTERN_SMTP_URL", "is not a URL"))?;
                if !matches!(url.scheme(), "smtp" | "smtps") || url.host_str().is_none() {
                    return Err(bad(
                        "LECTERN_SMTP_URL",
                        "must be smtp://host[:port] or smtps://host[:port]",
                    ));
                }
                // The mail library reads `tls` itself; checked here so that a typo stops
                // start-up like any other bad setting, before anything is opened.
                let tls = url
                    .query_pairs()
                    .find(|(key, _)| key == "tls")
                    .map(|(_, value)| value.into_owned());
                match (url.scheme(), tls.as_deref()) {
                    (_, None | Some("required")) | ("smtp", Some("opportunistic")) => {}
                    ("smtps", Some(other)) => {
                        return Err(bad(
                            "LECTERN_SMTP_URL",
                            format!("tls={other:?}: smtps:// is always TLS; leave tls out"),
                        ));
                    }
                    (_, Some(other)) => {
                        return Err(bad(
                            "LECTERN_SMTP_URL",
                            format!("tls={other:?} must be required or opportunistic"),
                        ));
                    }
                }
                Some(url)
            }
        };

        let mail_from =
            get("LECTERN_MAIL_FROM").unwrap_or_else(|| "lectern <lectern@localhost>".into());
        if mail_from.contains(['\r', '\n']) || !mail_from.contains('@') {
            return Err(bad(
                "LECTERN_MAIL_FROM",
                "must be an address such as `Blog <blog@example.com>`",
            ));
        }

        let mail_retry_secs =
            whole_number(&get, "LECTERN_MAIL_RETRY_SECS", 60, 1..=3600, "seconds")?;

        let smtp_timeout_secs =
            whole_number(&get, "LECTERN_SMTP_TIMEOUT_SECS", 15, 1..=300, "seconds")?;
        let smtp_timeout = std::time::Duration::from_secs(smtp_timeout_secs);

        let mail_dir = PathBuf::from(get("LECTERN_MAIL_DIR").unwrap_or_else(|| "mail".into()));

        let secret_key = match get("LECTERN_SECRET_KEY") {
            None => None,
            Some(text) if text.len() >= 32 => Some(text.into_bytes()),
            Some(_) => return Err(bad("LECTERN_SECRET_KEY", "must be at least 32 characters")),
        };

        let trusted_proxies = match get("LECTERN_TRUSTED_PROXIES") {
            None => Vec::new(),
            Some(text) => text
                .split([',', ' '])
                .filter(|part| !part.is_empty())
                .map(|part| {
                    part.parse::<IpNet>()
                        .or_else(|_| part.parse::<std::net::IpAddr>().map(IpNet::from))
                        .map_err(|_| {
                            bad("LECTERN_TRUSTED_PROXIES", format!("{part:?} is not a CIDR"))
                        })
                })
                .collect::<Result<_, _>>()?,
        };

        let flood_limits = match get("LECTERN_FLOOD_LIMITS").as_deref() {
            None | Some("on") => true,
            Some("off") => false,
            Some(_) => return Err(bad("LECTERN_FLOOD_LIMITS", "must be on or off")),
        };

        let sqlite_sync = match get("LECTERN_SQLITE_SYNC").as_deref() {
            None | Some("full") => SqliteSync::Full,
            Some("normal") => SqliteSync::Normal,
            Some(_) => return Err(bad("LECTERN_SQLITE_SYNC", "must be full or normal")),
        };

        let pool_size = whole_number(&get, "LECTERN_DATABASE_POOL_SIZE", 8, 1..=256, "")? as u32;

        let database_timeout = whole_number(
            &get,
            "LECTERN_DATABASE_TIMEOUT_SECS",
            10,
            1..=300,
            "seconds",
        )?;
        let database_probe = whole_number(
            &get,
            "LECTERN_DATABASE_PROBE_MS",
            1000,
            50..=10_000,
            "milliseconds",
        )?;

        let body_timeout = whole_number(&get, "LECTERN_BODY_TIMEOUT_SECS", 30, 1..=30, "seconds")?;

        let log_filter = get("RUST_LOG").unwrap_or_else(|| "info".into());
        if tracing_subscriber::EnvFilter::try_new(&log_filter).is_err() {
            return Err(bad(
                "RUST_LOG",
                format!("{log_filter:?} is not a tracing filter"),
            ));
        }

        let log_format = match get("LECTERN_LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(_) => return Err(bad("LECTERN_LOG_FORMAT", "must be text or json")),
        };

        let metrics_token = match get("LECTERN_METRICS_TOKEN") {
            None => None,
            Some(token) if token.len() >= 16 && token.bytes().all(|b| b.is_ascii_graphic()) => {
                Some(token)
            }
            Some(_) => {
                return Err(bad(
                    "LECTERN_METRICS_TOKEN",
                    "must be at least 16 printable characters without spaces",
                ));
            }
        };

        let sitemap_file_urls =
            whole_number(&get, "LECTERN_SITEMAP_FILE_URLS", 50_000, 10..=50_000, "")? as i64;

        let page_caches = match get("LECTERN_PAGE_CACHES").as_deref() {
            None | Some("on") => true,
            Some("off") => false,
            Some(_) => return Err(bad("LECTERN_PAGE_CACHES", "must be on or off")),
        };

        Ok(Config {
            database_url,
            bind,
            base_url,
            site_title,
            timezone,
            smtp_url,
            mail_from,
            mail_retry_secs,
            smtp_timeout,
            mail_dir,
            secret_key,
            trusted_proxies,
            flood_limits,
            sqlite_sync,
            pool_size,
            log_filter,
            log_format,
            metrics_token,
            sitemap_file_urls,
            page_caches,
            database_timeout: std::time::Duration::from_secs(database_timeout),
            database_probe: std::time::Duration::from_millis(database_probe),
            body_timeout: std::time::Duration::from_secs(body_timeout),
        })
    }
}

/// `lectern.toml` may use the environment names or the short lower-case ones (`bind = "…"`).
fn read_toml(path: &Path) -> Result<HashMap<String, String>, ConfigError> {
    let mut values = HashMap::new();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(values),
        Err(e) => return Err(bad("lectern.toml", e.to_string())),
    };
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| bad("lectern.toml", e.message().to_string()))?;
    for (key, value) in table {
        let name = if key == "rust_log" || key == "RUST_LOG" {
            "RUST_LOG".to_string()
        } else if key.starts_with("LECTERN_") {
            key.clone()
        } else {
            format!("LECTERN_{}", key.to_ascii_uppercase())
        };
        if !KEYS.contains(&name.as_str()) {
            return Err(bad("lectern.toml", format!("unknown setting {key:?}")));
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Boolean(true) => "on".into(),
            toml::Value::Boolean(false) => "off".into(),
            toml::Value::Array(items) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| item.to_string())
                })
                .collect::<Vec<_>>()
                .join(","),
            other => other.to_string(),
        };
        values.insert(name, text);
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let values = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_values(&values)
    }

    #[test]
    fn defaults_need_no_settings() {
        let config = config(&[]).unwrap();
        assert_eq!(config.database_url, "sqlite://lectern.db");
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert!(config.flood_limits);
        assert_eq!(config.sqlite_sync, SqliteSync::Full);
    }

    #[test]
    fn the_tls_modes_of_the_mail_library_are_accepted() {
        for url in [
            "smtp://mail.example.com",
            "smtp://u:p@mail.example.com:587?tls=required",
            "smtp://mail.example.com:587?tls=opportunistic",
            "smtps://mail.example.com",
            "smtps://mail.example.com?tls=required",
        ] {
            assert!(config(&[("LECTERN_SMTP_URL", url)]).is_ok(), "{url}");
        }
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (key, value) in [
            ("LECTERN_BIND", "nowhere"),
            ("LECTERN_TIMEZONE", "Mars/Olympus"),
            ("LECTERN_BASE_URL", "ftp://x"),
            ("LECTERN_MAIL_RETRY_SECS", "-1"),
            ("LECTERN_SMTP_TIMEOUT_SECS", "0"),
            ("LECTERN_FLOOD_LIMITS", "maybe"),
            ("LECTERN_SQLITE_SYNC", "off"),
            ("LECTERN_TRUSTED_PROXIES", "10.0.0.0/99"),
            ("LECTERN_DATABASE_URL", "mysql://x"),
            ("LECTERN_SECRET_KEY", "short"),
            ("LECTERN_SMTP_URL", "smtp://mail.example.com?tls=yes"),
            (
                "LECTERN_SMTP_URL",
                "smtps://mail.example.com?tls=opportunistic",
            ),
            ("LECTERN_DATABASE_TIMEOUT_SECS", "0"),
            ("LECTERN_BODY_TIMEOUT_SECS", "31"),
            ("LECTERN_DATABASE_PROBE_MS", "1"),
            ("LECTERN_LOG_FORMAT", "xml"),
            ("LECTERN_METRICS_TOKEN", "short"),
        ] {
            let err = config(&[(key, value)]).unwrap_err();
            assert_eq!(err.name, key);
            assert!(err.to_string().starts_with(key));
        }
    }
}
