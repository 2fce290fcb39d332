//! The `lectern` command line.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::db::Db;
use crate::startup::Application;
use crate::users::password::{Password, hash_password};
use crate::users::{self, NewStaff, Role};

#[derive(Parser)]
#[command(
    name = "lectern",
    version,
    about = "A blog engine whose heart is the comment section"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run migrations, then serve the site (the default).
    Serve,
    /// Run pending migrations and exit.
    Migrate {
        /// List the pending migrations without running them.
        #[arg(long)]
        dry_run: bool,
    },
    /// Check the settings, database, migrations, mail server and addresses; change nothing.
    Check {
        /// Also send one test email to this address.
        #[arg(long, value_name = "ADDRESS")]
        send_test_email: Option<String>,
    },
    /// Manage staff accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage posts.
    #[command(subcommand)]
    Post(PostCommand),
    /// Import a WordPress export, a Disqus export, an Isso database or a lectern archive (safe
    /// to run again).
    Import {
        #[arg(value_parser = ["wordpress", "disqus", "isso", "lectern"])]
        kind: String,
        file: PathBuf,
        /// Check everything and print the report, writing nothing.
        #[arg(long)]
        dry_run: bool,
        /// Disqus and Isso: look up thread paths starting with OLD_PREFIX under NEW_PREFIX.
        #[arg(long = "map", value_name = "OLD_PREFIX=NEW_PREFIX", value_parser = crate::import::Options::parse_map)]
        maps: Vec<(String, String)>,
        /// lectern: bring the archive into a database that holds a site (matched by identity).
        #[arg(long)]
        merge: bool,
        /// WordPress: a local copy of wp-content/uploads; the pictures posts show are imported
        /// into the media library and their addresses rewritten.
        #[arg(long, value_name = "DIR")]
        uploads: Option<PathBuf>,
    },
    /// Write the whole site to a lectern archive (`.gz` compresses) or a WordPress WXR file.
    Export {
        file: PathBuf,
        #[arg(long, value_parser = ["lectern", "wordpress"], default_value = "lectern")]
        format: String,
        /// Also password hashes and the secret key (keep the file as safe as the database).
        #[arg(long)]
        include_secrets: bool,
    },
    /// Take a consistent copy of the site while it is served (SQLite: the database's own copy;
    /// PostgreSQL: an archive with secrets), or with --verify check one.
    Backup {
        file: PathBuf,
        /// Open the copy, check its integrity and print its counts.
        #[arg(long)]
        verify: bool,
    },
    /// Restore a backup (an SQLite copy or an archive) into an empty database.
    Restore { file: PathBuf },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; the password comes from standard input, or is prompted for twice.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = ["admin", "moderator"])]
        role: String,
    },
    /// Set a new password and end the user's sessions.
    Passwd {
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand)]
enum PostCommand {
    /// Publish Markdown files with front matter; re-running updates posts by slug.
    Publish {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    // `check` reports a bad setting as one of its lines rather than stopping at it.
    if let Some(Command::Check { send_test_email }) = &cli.command {
        return check(send_test_email.as_deref());
    }
    let config = match Config::load(&std::env::current_dir().unwrap_or_default()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    crate::telemetry::init(
        &config.log_filter,
        config.log_format == crate::config::LogFormat::Json,
    );
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config),
        Command::Migrate { dry_run: false } => {
            open_db(&config).map(|_| println!("migrations are up to date"))
        }
        Command::Migrate { dry_run: true } => pending_migrations(&config),
        Command::Check { .. } => unreachable!("answered above"),
        Command::User(UserCommand::Add { email, name, role }) => {
            add_user(&config, &email, &name, &role)
        }
        Command::User(UserCommand::Passwd { email }) => set_password(&config, &email),
        Command::Post(PostCommand::Publish { files }) => publish(&config, &files),
        Command::Import {
            kind,
            file,
            dry_run,
            maps: _,
            merge,
            uploads: _,
        } if kind == "lectern" => {
            if dry_run {
                archive_check(&file)
            } else {
                import_archive(&config, &file, merge)
            }
        }
        Command::Import {
            kind,
            file,
            dry_run,
            maps,
            merge: _,
            uploads,
        } => import(&config, &kind, &file, dry_run, maps, uploads),
        Command::Export {
            file,
            format,
            include_secrets,
        } => export(&config, &file, &format, include_secrets),
        Command::Backup {
            file,
            verify: false,
        } => backup(&config, &file),
        Command::Backup { file, verify: true } => archive_check(&file),
        Command::Restore { file } => restore(&config, &file),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            // A setting only the server could check (the mail library's reading of the SMTP
            // URL) exits like the ones `Config::load` refused.
            if e.downcast_ref::<crate::config::ConfigError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn check(send_to: Option<&str>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let dir = std::env::current_dir().unwrap_or_default();
    let findings = runtime.block_on(crate::check::run(&dir, send_to));
    // A database connection still being attempted past its deadline must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    let mut out = std::io::stdout();
    for finding in &findings {
        let _ = writeln!(out, "{}", finding.line());
    }
    let failed = findings
        .iter()
        .filter(|f| f.mark == crate::check::Mark::Fail)
        .count();
    let warned = findings
        .iter()
        .filter(|f| f.mark == crate::check::Mark::Warn)
        .count();
    let _ = match failed {
        0 => writeln!(out, "ready to serve ({warned} warning(s))"),
        n => writeln!(out, "not ready: {n} check(s) failed"),
    };
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `migrate --dry-run`: names what `migrate` would run, runs nothing, creates nothing.
fn pending_migrations(config: &Config) -> anyhow::Result<()> {
    let status = crate::db::migration_status(&config.database_url)
        .map_err(|e| anyhow!("LECTERN_DATABASE_URL: {e}"))?;
    if !status.unknown.is_empty() {
        println!(
            "the database has migrations this lectern does not know (a newer version ran): {}",
            status.unknown.join(", ")
        );
    }
    if status.pending.is_empty() {
        println!("migrations are up to date");
        return Ok(());
    }
    if !status.exists {
        println!("the database does not exist yet; `lectern migrate` creates it");
    }
    println!("{} pending migration(s):", status.pending.len());
    for name in &status.pending {
        println!("  {name}");
    }
    Ok(())
}

fn open_db(config: &Config) -> anyhow::Result<Db> {
    Db::open(&config.database_url, config.sqlite_sync, 2)
        .map_err(|e| anyhow!("LECTERN_DATABASE_URL: {e}"))
}

fn serve(config: Config) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(config).await?;
        // Standard output may be a pipe nobody reads any more; that must not stop the server.
        let mut out = std::io::stdout();
        let _ = writeln!(out, "listening on {}", listen_url(&app));
        if let Some(url) = app.setup_url() {
            let _ = writeln!(out, "setup: {url}");
        }
        let _ = out.flush();
        app.run_until_stopped().await.context("the server stopped")
    })
}

fn listen_url(app: &Application) -> String {
    let bound = app.state().config.bind;
    format!("http://{}:{}", bound.ip(), app.port())
}

/// The password from standard input when it is piped, else prompted for twice.
fn read_new_password() -> anyhow::Result<Password> {
    let text = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("New password: ")?;
        let second = rpassword::prompt_password("Repeat it: ")?;
        if first != second {
            bail!("the two passwords differ");
        }
        first
    } else {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the password from standard input")?;
        let trimmed = text.strip_suffix('\n').unwrap_or(&text);
        trimmed.strip_suffix('\r').unwrap_or(trimmed).to_string()
    };
    Password::parse(&text).map_err(|e| anyhow!(e))
}

fn add_user(config: &Config, email: &str, name: &str, role: &str) -> anyhow::Result<()> {
    let email = users::parse_staff_email(email).map_err(|e| anyhow!("--email: {e}"))?;
    let name = users::parse_display_name(name).map_err(|e| anyhow!("--name: {e}"))?;
    let role = Role::parse(role).ok_or_else(|| anyhow!("--role: must be admin or moderator"))?;
    let password = read_new_password()?;
    let hash = hash_password(&password)?;
    let db = open_db(config)?;
    let user = db
        .write_blocking(|conn| {
            let staff = NewStaff {
                email: &email,
                display_name: &name,
                role,
                password_hash: &hash,
            };
            let now = crate::db::now();
            let user = users::create(conn, &staff, now)?;
            if let Some(user) = &user {
                crate::audit::log(
                    conn,
                    None,
                    "user-add",
                    &format!("{} {}", role.as_str(), user.display_name),
                    &cli_actor(),
                    now,
                )?;
            }
            Ok::<_, crate::db::DbError>(user)
        })?
        .ok_or_else(|| anyhow!("a user with the email {email} already exists"))?;
    println!(
        "created {} {} ({})",
        role.as_str(),
        user.email,
        user.display_name
    );
    println!("they log in at {}", login_url(config));
    Ok(())
}

/// Who made a change from the command line, for the moderation log ("command line").
fn cli_actor() -> crate::actions::Actor {
    crate::actions::Actor {
        user_id: None,
        via: crate::actions::Via::Cli,
        ip: None,
    }
}

/// Where staff log in: the base URL's `/admin/login`, or the default bind address's.
fn login_url(config: &Config) -> String {
    match &config.base_url {
        Some(base) => format!("{}/admin/login", base.as_str().trim_end_matches('/')),
        None => format!("http://{}/admin/login", config.bind),
    }
}

fn set_password(config: &Config, email: &str) -> anyhow::Result<()> {
    let email = users::parse_staff_email(email).map_err(|e| anyhow!("--email: {e}"))?;
    let db = open_db(config)?;
    let user = db
        .read_blocking(|conn| users::find_by_email(conn, &email))?
        .ok_or_else(|| anyhow!("no user has the email {email}"))?;
    let password = read_new_password()?;
    let hash = hash_password(&password)?;
    db.write_blocking(|conn| -> anyhow::Result<()> {
        users::set_password_hash(conn, user.id, &hash)?;
        users::end_sessions(conn, user.id)?;
        crate::audit::log(
            conn,
            None,
            "user-passwd",
            &format!("new password for {}", user.display_name),
            &cli_actor(),
            crate::db::now(),
        )?;
        Ok(())
    })?;
    println!("password changed for {email}; their sessions were ended");
    Ok(())
}

fn publish(config: &Config, files: &[PathBuf]) -> anyhow::Result<()> {
    let db = open_db(config)?;
    for published in crate::posts::publish::publish_files(&db, files, config.timezone)? {
        let verb = if published.created {
            "created"
        } else {
            "updated"
        };
        let detail = format!("{verb} /posts/{}", published.slug);
        db.write_blocking(|conn| {
            crate::audit::log(
                conn,
                None,
                "post-publish",
                &detail,
                &cli_actor(),
                crate::db::now(),
            )
        })?;
        println!(
            "{verb} /posts/{} ({})",
            published.slug,
            published.status.as_str()
        );
    }
    Ok(())
}

fn import(
    config: &Config,
    kind: &str,
    file: &std::path::Path,
    dry_run: bool,
    maps: Vec<(String, String)>,
    uploads: Option<PathBuf>,
) -> anyhow::Result<()> {
    use crate::import::{self, Kind};
    if uploads.is_some() && kind != "wordpress" {
        anyhow::bail!("--uploads is for WordPress imports only");
    }
    if let Some(dir) = &uploads
        && !dir.is_dir()
    {
        anyhow::bail!("--uploads {}: not a folder", dir.display());
    }
    let kind = match kind {
        "wordpress" => Kind::WordPress,
        "disqus" => Kind::Disqus,
        _ => Kind::Isso,
    };
    // A wrong or unreadable file is named before the database is touched.
    import::check_kind(file, kind)?;
    let db = open_db(config)?;
    let secret =
        db.write_blocking(|conn| crate::site::secret_key(conn, config.secret_key.as_deref()))?;
    let env = import::Env {
        db,
        signer: crate::crypto::Signer::new(secret),
        now: crate::db::now(),
    };
    let options = import::Options {
        dry_run,
        maps,
        uploads,
    };
    let mut progress = import::progress::for_command();
    let report = import::run(&env, kind, file, &options, progress.as_mut())?;
    if !report.dry_run {
        import::log_run(&env.db, &report, &cli_actor())?;
    }
    print!("{report}");
    Ok(())
}

/// `import lectern --dry-run` and `backup --verify`: reads and checks, writes nothing.
fn archive_check(file: &std::path::Path) -> anyhow::Result<()> {
    use crate::archive::{backup, describe_counts, progress};
    let mut progress = progress::for_command("verify");
    let (kind, counts) = backup::verify(file, progress.as_mut())?;
    let what = match kind {
        backup::BackupKind::Sqlite => "an SQLite copy; integrity check passed",
        backup::BackupKind::Archive => "a lectern archive; every record and the trailer check out",
    };
    println!("{}: {what}", file.display());
    println!("contains: {}", describe_counts(&counts));
    Ok(())
}

fn import_archive(config: &Config, file: &std::path::Path, merge: bool) -> anyhow::Result<()> {
    use crate::archive::{progress, restore};
    // An unreadable, foreign, newer or truncated file is refused before the database is
    // touched (or created).
    let mut progress = progress::for_command("import");
    crate::archive::check_file(file, progress.as_mut())?;
    let db = open_db(config)?;
    let summary = restore::restore_checked_file(
        &db,
        file,
        restore::RestoreOptions { merge },
        progress.as_mut(),
    )?;
    log_archive(&db, &format!("import lectern {}", file.display()), &summary)?;
    print!("{summary}");
    Ok(())
}

fn log_archive(
    db: &Db,
    what: &str,
    summary: &crate::archive::restore::Summary,
) -> anyhow::Result<()> {
    let detail = format!(
        "{what}: {}",
        crate::archive::describe_counts(&summary.written)
    );
    db.write_blocking(|conn| {
        crate::audit::log(
            conn,
            None,
            "import",
            &detail,
            &cli_actor(),
            crate::db::now(),
        )
    })?;
    Ok(())
}

fn export(
    config: &Config,
    file: &std::path::Path,
    format: &str,
    include_secrets: bool,
) -> anyhow::Result<()> {
    use crate::archive::{describe_counts, export, progress};
    let db = open_db(config)?;
    let mut progress = progress::for_command("export");
    if format == "wordpress" {
        if include_secrets {
            bail!("--include-secrets: a WordPress export never carries secrets");
        }
        let base = config
            .base_url
            .as_ref()
            .map(|u| u.as_str().trim_end_matches('/').to_string())
            .unwrap_or_else(|| format!("http://{}", config.bind));
        let counts = crate::archive::wxr::export_file(
            &db,
            &base,
            &config.site_title,
            config.timezone,
            file,
            progress.as_mut(),
        )?;
        println!("wrote {} (WordPress WXR 1.2)", file.display());
        println!("contains: {}", describe_counts(&counts));
        return Ok(());
    }
    // Only a lectern archive needs the site's key (a WordPress export must not make one).
    let signer = export::site_signer(&db, config.secret_key.as_deref())?;
    let trailer = export::export_file(
        &db,
        &signer,
        export::ExportOptions {
            secrets: include_secrets,
        },
        file,
        progress.as_mut(),
    )?;
    println!(
        "wrote {} (lectern archive, format version {}{})",
        file.display(),
        crate::archive::FORMAT_VERSION,
        if include_secrets {
            ", with password hashes and the secret key"
        } else {
            ", without secrets"
        }
    );
    println!("contains: {}", describe_counts(&trailer.counts));
    Ok(())
}

fn backup(config: &Config, file: &std::path::Path) -> anyhow::Result<()> {
    use crate::archive::{backup, describe_counts, export, progress};
    let started = std::time::Instant::now();
    let db = open_db(config)?;
    let signer = export::site_signer(&db, config.secret_key.as_deref())?;
    let mut progress = progress::for_command("backup");
    let done = backup::backup(&db, &signer, file, progress.as_mut())?;
    let kind = match done.kind {
        backup::BackupKind::Sqlite => "SQLite copy",
        backup::BackupKind::Archive => "lectern archive with secrets",
    };
    println!(
        "backed up to {} ({kind}, {} bytes, {:.1}s)",
        file.display(),
        done.bytes,
        started.elapsed().as_secs_f64()
    );
    println!("contains: {}", describe_counts(&done.counts));
    Ok(())
}

fn restore(config: &Config, file: &std::path::Path) -> anyhow::Result<()> {
    use crate::archive::{backup, progress};
    // A file that cannot be read is named before the database is touched.
    let mut progress = progress::for_command("restore");
    // Checked before the database is touched (or created); an archive is read through once.
    let kind = backup::verify(file, progress.as_mut())?.0;
    let db = open_db(config)?;
    let summary = match kind {
        backup::BackupKind::Archive => crate::archive::restore::restore_checked_file(
            &db,
            file,
            Default::default(),
            progress.as_mut(),
        )?,
        backup::BackupKind::Sqlite => backup::restore(&db, file, progress.as_mut())?,
    };
    log_archive(&db, &format!("restore {}", file.display()), &summary)?;
    print!("{summary}");
    Ok(())
}
