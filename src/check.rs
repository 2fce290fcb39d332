//! `lectern check`: reads the settings exactly as `serve` does and says, one line each, whether
//! the site can run with them: ✓ fine, ! a warning (right for trying lectern on one's own
//! machine, wrong for a public site), ✗ a failure that names its variable. Nothing is written:
//! no database is created or migrated, no mail is queued.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use url::{Host, Url};

use crate::config::Config;
use crate::db::{self, MigrationStatus};
use crate::notify::emails::{Site, TestEmail};
use crate::notify::transport::Transport;

/// The longest any one network check may take (the database, the SMTP conversation).
pub const DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Pass,
    Warn,
    Fail,
}

impl Mark {
    pub fn symbol(self) -> &'static str {
        match self {
            Mark::Pass => "✓",
            Mark::Warn => "!",
            Mark::Fail => "✗",
        }
    }
}

/// One line of the report: what was checked, what was found, and what to do about it.
#[derive(Debug)]
pub struct Finding {
    pub mark: Mark,
    pub text: String,
    pub hint: Option<String>,
}

impl Finding {
    fn pass(text: impl Into<String>) -> Finding {
        Finding {
            mark: Mark::Pass,
            text: text.into(),
            hint: None,
        }
    }

    fn warn(text: impl Into<String>, hint: impl Into<String>) -> Finding {
        Finding {
            mark: Mark::Warn,
            text: text.into(),
            hint: Some(hint.into()),
        }
    }

    fn fail(text: impl Into<String>, hint: impl Into<String>) -> Finding {
        Finding {
            mark: Mark::Fail,
            text: text.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn line(&self) -> String {
        match &self.hint {
            Some(hint) => format!("{} {}\n    → {hint}", self.mark.symbol(), self.text),
            None => format!("{} {}", self.mark.symbol(), self.text),
        }
    }
}

/// Every check, in the order a person fixing them would want: settings, database, mail,
/// addresses. `send_to` also sends one test email.
pub async fn run(dir: &Path, send_to: Option<&str>) -> Vec<Finding> {
    let config = match Config::load(dir) {
        Ok(config) => config,
        Err(e) => {
            return vec![Finding::fail(
                format!("{e}"),
                "fix this setting (environment or lectern.toml); the other checks need it",
            )];
        }
    };
    let mut findings = vec![Finding::pass(
        "settings: every value is valid (environment and lectern.toml)",
    )];
    findings.extend(database(&config).await);
    findings.extend(mail(&config, send_to).await);
    findings.extend(addresses(&config));
    findings
}

async fn database(config: &Config) -> Vec<Finding> {
    let url = config.database_url.clone();
    let shown = redact_url(&config.database_url);
    let status = tokio::time::timeout(
        DEADLINE,
        tokio::task::spawn_blocking(move || {
            let status = db::migration_status(&url)?;
            let secret_stored = if status.exists && status.pending.is_empty() {
                db::ConnectionManager::new(&url, crate::config::SqliteSync::Full)
                    .connect()
                    .and_then(|mut conn| crate::site::get(&mut conn, "secret_key"))
                    .ok()
                    .map(|stored| stored.is_some())
            } else {
                None
            };
            Ok::<_, db::DbError>((status, secret_stored))
        }),
    )
    .await;
    let (status, secret_stored) = match status {
        Err(_) => {
            return vec![Finding::fail(
                format!(
                    "LECTERN_DATABASE_URL: {shown} did not answer within {} s",
                    DEADLINE.as_secs()
                ),
                "is the database server running and reachable from here?",
            )];
        }
        Ok(Err(e)) => {
            return vec![Finding::fail(
                format!("LECTERN_DATABASE_URL: the check could not run: {e}"),
                "try again; if it persists, report it",
            )];
        }
        Ok(Ok(Err(e))) => {
            return vec![Finding::fail(
                format!("LECTERN_DATABASE_URL: {shown}: {e}"),
                "check the URL, the server, the user's rights (or the SQLite file's folder)",
            )];
        }
        Ok(Ok(Ok(found))) => found,
    };
    let mut findings = vec![migrations(&shown, &status)];
    findings.push(match (&config.secret_key, secret_stored) {
        (Some(key), _) => Finding::pass(format!(
            "LECTERN_SECRET_KEY: set ({} characters); email links and form tokens are signed \
             with it",
            key.len()
        )),
        (None, Some(true)) => Finding::pass(
            "secret key: kept in the database (generated at the first start; every server on \
             this database shares it)",
        ),
        (None, _) => Finding::pass(
            "secret key: generated at the first start and kept in the database (or set \
             LECTERN_SECRET_KEY)",
        ),
    });
    findings
}

fn migrations(shown: &str, status: &MigrationStatus) -> Finding {
    if !status.unknown.is_empty() {
        return Finding::fail(
            format!(
                "LECTERN_DATABASE_URL: {shown} has {} migration(s) this lectern does not know \
                 ({}): a newer version ran on it",
                status.unknown.len(),
                status.unknown.join(", ")
            ),
            "run the newer lectern, or restore a backup taken before the upgrade",
        );
    }
    if !status.exists {
        return Finding::warn(
            format!(
                "LECTERN_DATABASE_URL: {shown} does not exist yet; {} migration(s) will create it",
                status.pending.len()
            ),
            "`lectern serve` (or `lectern migrate`) creates it",
        );
    }
    if status.pending.is_empty() {
        Finding::pass(format!(
            "LECTERN_DATABASE_URL: {shown} answers; migrations are current"
        ))
    } else {
        Finding::warn(
            format!(
                "LECTERN_DATABASE_URL: {shown} answers; {} migration(s) pending",
                status.pending.len()
            ),
            "`lectern serve` runs them at start (`lectern migrate --dry-run` lists them)",
        )
    }
}

async fn mail(config: &Config, send_to: Option<&str>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let from: lettre::message::Mailbox = match config.mail_from.parse() {
        Ok(from) => from,
        Err(e) => {
            findings.push(Finding::fail(
                format!("LECTERN_MAIL_FROM: {e}"),
                "use an address such as `Blog <blog@example.com>`",
            ));
            return findings;
        }
    };
    let transport = match &config.smtp_url {
        None => {
            findings.push(Finding::warn(
                "LECTERN_SMTP_URL: not set; every email is written as an .eml file instead",
                "set it to your mail server (smtp://user:pass@host:587?tls=required) for \
                 mail to leave",
            ));
            let dir = &config.mail_dir;
            findings.push(match writable(dir) {
                Ok(()) => {
                    Finding::pass(format!("LECTERN_MAIL_DIR: {}/ is writable", dir.display()))
                }
                Err(e) => Finding::fail(
                    format!("LECTERN_MAIL_DIR: {} is not writable: {e}", dir.display()),
                    "give lectern's user write access, or choose another folder",
                ),
            });
            if findings.last().is_some_and(|f| f.mark == Mark::Fail) {
                return findings;
            }
            Transport::Files { dir: dir.clone() }
        }
        Some(url) => {
            let step = config.smtp_timeout.min(DEADLINE);
            let transport = match Transport::from_settings(Some(url), &config.mail_dir, step) {
                Ok(transport) => transport,
                Err(e) => {
                    findings.push(Finding::fail(e, "fix LECTERN_SMTP_URL"));
                    return findings;
                }
            };
            let shown = redact_url(url.as_str());
            match tokio::time::timeout(DEADLINE, transport.check()).await {
                Ok(Ok(())) => findings.push(Finding::pass(format!(
                    "LECTERN_SMTP_URL: {shown} answers: {}",
                    smtp_steps(url)
                ))),
                Ok(Err(e)) => {
                    findings.push(Finding::fail(
                        format!("LECTERN_SMTP_URL: {shown}: {e}"),
                        "check the host, port, TLS mode and credentials; mail waits in the \
                         outbox until they work",
                    ));
                    return findings;
                }
                Err(_) => {
                    findings.push(Finding::fail(
                        format!(
                            "LECTERN_SMTP_URL: {shown} did not finish within {} s",
                            DEADLINE.as_secs()
                        ),
                        "the server accepts connections but does not answer: is it the mail \
                         port, and is TLS (smtps:// or ?tls=) what the server expects?",
                    ));
                    return findings;
                }
            }
            transport
        }
    };
    if let Some(address) = send_to {
        findings.push(send_test(config, &transport, &from, address).await);
    }
    findings
}

/// What the SMTP check went through, as the URL asks for it.
fn smtp_steps(url: &Url) -> String {
    let mut steps = vec!["greeting and EHLO"];
    match (
        url.scheme(),
        url.query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned())
            .as_deref(),
    ) {
        ("smtps", _) => steps.insert(0, "TLS"),
        (_, Some("required")) => steps.push("STARTTLS"),
        (_, Some("opportunistic")) => steps.push("STARTTLS if offered"),
        _ => {}
    }
    if url.password().is_some() {
        steps.push("AUTH accepted");
    }
    format!("{} (no message sent)", steps.join(", "))
}

async fn send_test(
    config: &Config,
    transport: &Transport,
    from: &lettre::message::Mailbox,
    address: &str,
) -> Finding {
    let site_url = config
        .base_url
        .as_ref()
        .map_or_else(|| format!("http://{}/", config.bind), Url::to_string);
    let email = TestEmail {
        site: Site {
            title: config.site_title.clone(),
            url: site_url,
        },
        name: "there".into(),
        transport: transport.describe(),
    };
    let sent = tokio::time::timeout(
        DEADLINE,
        crate::notify::send_now(transport, from, from.email.domain(), &email, address),
    )
    .await;
    match sent {
        Ok(Ok(message_id)) => Finding::pass(format!(
            "test email to {address}: handed over ({message_id})"
        )),
        Ok(Err(e)) => Finding::fail(
            format!("test email to {address}: {e}"),
            "LECTERN_SMTP_URL and LECTERN_MAIL_FROM must be accepted by the server",
        ),
        Err(_) => Finding::fail(
            format!(
                "test email to {address}: no answer within {} s",
                DEADLINE.as_secs()
            ),
            "check LECTERN_SMTP_URL",
        ),
    }
}

fn addresses(config: &Config) -> Vec<Finding> {
    let mut findings = Vec::new();
    let Some(base) = &config.base_url else {
        findings.push(Finding::warn(
            format!(
                "LECTERN_BASE_URL: not set; links in emails and feeds will use http://{}",
                config.bind
            ),
            "set it to the site's public address, e.g. https://blog.example.com",
        ));
        return findings;
    };
    let local = is_loopback(base);
    findings.push(if local {
        Finding::warn(
            format!("LECTERN_BASE_URL: {base} is this machine only"),
            "fine for trying lectern; a public site needs its public https:// address",
        )
    } else if base.scheme() == "http" {
        Finding::warn(
            format!("LECTERN_BASE_URL: {base} is plain http"),
            "use https:// in production: cookies become Secure and __Host-, and HSTS is sent",
        )
    } else {
        Finding::pass(format!(
            "LECTERN_BASE_URL: {base} (Secure cookies and HSTS)"
        ))
    });
    if !local {
        findings.push(match (config.trusted_proxies.is_empty(), base.scheme()) {
            (false, _) => Finding::pass(format!(
                "LECTERN_TRUSTED_PROXIES: X-Forwarded-For is believed from {}",
                config
                    .trusted_proxies
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            // lectern speaks no TLS itself: an https site has a proxy in front of it.
            (true, "https") => Finding::fail(
                "LECTERN_TRUSTED_PROXIES: empty, but the https site has a proxy in front of \
                 lectern, so every reader would share the proxy's address (flood limits, IPs)",
                "set it to the proxy's address, e.g. 127.0.0.1/32 when it runs on this machine",
            ),
            (true, _) => Finding::warn(
                "LECTERN_TRUSTED_PROXIES: empty; readers are told apart by the socket's address",
                "if a reverse proxy forwards to lectern, set it to the proxy's address",
            ),
        });
    }
    if let Some(host) = base.host_str()
        && let Ok(from) = config.mail_from.parse::<lettre::message::Mailbox>()
    {
        let domain = from.email.domain().to_ascii_lowercase();
        let host = host.to_ascii_lowercase();
        let related = host == domain
            || host.ends_with(&format!(".{domain}"))
            || domain.ends_with(&format!(".{host}"));
        if !related && !local {
            findings.push(Finding::warn(
                format!("LECTERN_MAIL_FROM: sends as @{domain}, but the site is {host}"),
                "mail from another domain than the site's is more often marked as spam; \
                 check that domain's SPF and DKIM allow this server",
            ));
        }
    }
    findings
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(name)) => {
            name.eq_ignore_ascii_case("localhost") || name.ends_with(".localhost")
        }
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// A URL without its password, for a line on a terminal.
fn redact_url(text: &str) -> String {
    match Url::parse(text) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => text.to_string(),
    }
}

/// Whether lectern could write files in `dir` (creating it, as serve does, if absent): tried
/// with a file created and removed again.
fn writable(dir: &Path) -> std::io::Result<()> {
    let mut existing = dir;
    while !existing.exists() {
        match existing.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => existing = parent,
            _ => {
                existing = Path::new(".");
                break;
            }
        }
    }
    let probe = existing.join(format!(".lectern-check-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            redact_url("postgres://lectern:hunter2@db.example.com/blog"),
            "postgres://lectern:***@db.example.com/blog"
        );
        assert_eq!(redact_url("sqlite://lectern.db"), "sqlite://lectern.db");
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        for url in [
            "http://127.0.0.1:8080/",
            "http://localhost/",
            "http://[::1]/",
        ] {
            assert!(is_loopback(&Url::parse(url).unwrap()), "{url}");
        }
        assert!(!is_loopback(
            &Url::parse("https://blog.example.com/").unwrap()
        ));
    }
}
