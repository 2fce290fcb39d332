//! Real validators over real pages: the Nu HTML Checker (vnu: no error, no warning) and axe-core
//! in Chromium (no violation), on a seeded site — a post with threaded formatted comments, a
//! page, a tag, an author, search results, the 422 and 429 pages, /privacy, /my-comments and
//! more. The page table below has a slot for admin pages (name, path, logged-in role).
//!
//! Needs `npm ci` in scripts/validators (vnu-jar, axe-core, playwright-core), Java 17 and
//! Debian's Chromium. Without them the test says it was skipped, except in CI (`CI` set),
//! where it fails instead. `.ci/run` installs them.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{PASSWORD, TestApp, client, comment_id_from, hidden_value};
use crate::smtp::SmtpServer;

/// A page fetched with GET, as an anonymous reader or as a logged-in `role`.
struct Page {
    name: &'static str,
    path: &'static str,
    /// `None`: an anonymous reader; `Some("admin")` or `Some("moderator")`: logged in.
    role: Option<&'static str>,
}

const fn page(name: &'static str, path: &'static str) -> Page {
    Page {
        name,
        path,
        role: None,
    }
}

/// The public pages every change must keep valid. The seeded site has these addresses.
const PUBLIC_PAGES: &[Page] = &[
    page("home", "/"),
    page("post-with-comments", "/posts/field-notes"),
    page("post-reply-form", "/posts/field-notes?replytocom=REPLY_TO"),
    page("page", "/pages/about"),
    page("tag", "/tags/garden"),
    page("author", "/authors/ada-admin"),
    page("search-results", "/search?q=garden"),
    page("search-empty", "/search?q="),
    page("search-nothing", "/search?q=zucchini"),
    page("privacy", "/privacy"),
    page("my-comments", "/my-comments"),
    page("not-found", "/posts/no-such-post"),
];

/// The moderator's and admin's desk, each page as the role that works it.
/// `POST_ID` stands for the seeded post's id.
const ADMIN_PAGES: &[Page] = &[
    staff("admin-dashboard", "/admin", "admin"),
    staff("moderator-dashboard", "/admin", "moderator"),
    staff(
        "queue-pending",
        "/admin/comments?status=pending",
        "moderator",
    ),
    staff(
        "queue-approved",
        "/admin/comments?status=approved",
        "moderator",
    ),
    staff("queue-spam", "/admin/comments?status=spam", "moderator"),
    staff("queue-trash", "/admin/comments?status=trash", "moderator"),
    staff("queue-all", "/admin/comments?status=all", "moderator"),
    staff("audit", "/admin/audit", "moderator"),
    staff("blocks", "/admin/blocks", "moderator"),
    staff("profile", "/admin/profile", "moderator"),
    staff("posts", "/admin/posts", "admin"),
    staff("editor-new", "/admin/posts/new", "admin"),
    staff("editor-edit", "/admin/posts/POST_ID/edit", "admin"),
    staff("settings", "/admin/settings", "admin"),
    staff("users", "/admin/users", "admin"),
    staff("mail", "/admin/mail", "admin"),
    staff("admin-privacy", "/admin/privacy", "admin"),
    staff("admin-import", "/admin/import", "admin"),
    staff("admin-export", "/admin/export", "admin"),
    staff("admin-media", "/admin/media", "admin"),
    staff("post-as-admin", "/posts/field-notes", "admin"),
    staff("admin-site", "/admin/site", "admin"),
];

const fn staff(name: &'static str, path: &'static str, role: &'static str) -> Page {
    Page {
        name,
        path,
        role: Some(role),
    }
}

struct Tools {
    java: PathBuf,
    vnu: PathBuf,
    node: PathBuf,
    axe: PathBuf,
    chromium: PathBuf,
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

fn tools() -> Result<Tools, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/validators");
    let vnu = dir.join("node_modules/vnu-jar/build/dist/vnu.jar");
    let axe = dir.join("axe.js");
    let chromium = PathBuf::from(
        std::env::var("LECTERN_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
    );
    let missing = |what: &str| format!("{what} is missing (run `npm ci` in scripts/validators)");
    if !vnu.is_file() {
        return Err(missing("vnu.jar"));
    }
    if !dir.join("node_modules/axe-core/axe.min.js").is_file()
        || !dir.join("node_modules/playwright-core").is_dir()
    {
        return Err(missing("axe-core or playwright-core"));
    }
    if !chromium.is_file() {
        return Err(format!("{} is missing", chromium.display()));
    }
    Ok(Tools {
        java: which("java").ok_or("java is missing")?,
        node: which("node").ok_or("node is missing")?,
        vnu,
        axe,
        chromium,
    })
}

/// One page to check: its HTML saved to `file`, and how axe should load it.
struct Checked {
    name: String,
    file: PathBuf,
    /// Anonymous GET pages are loaded from the site; the others are rendered from `file`.
    url: Option<String>,
    base: String,
}

async fn text_of(response: reqwest::Response, expect: u16, what: &str) -> String {
    assert_eq!(response.status().as_u16(), expect, "{what}");
    response.text().await.unwrap()
}

/// A site with everything the public pages can show.
async fn seed(app: &TestApp) -> (reqwest::Client, String, reqwest::Client) {
    let admin_id = app
        .create_user("ada@example.com", "Ada Admin", "admin", PASSWORD)
        .await
        .to_string();
    let admin = app.login_client("ada@example.com", PASSWORD).await;
    let profile = app
        .staff_post(
            &admin,
            "/admin/profile",
            &[
                ("display_name", "Ada Admin"),
                ("bio", "Writes about gardens and software."),
            ],
        )
        .await;
    assert!(profile.status().is_redirection() || profile.status().is_success());
    let body = "Notes from the *garden* this week.\n\n## What grew\n\n| Plant | Height |\n|:------|-------:|\n| Basil | 20 cm |\n| Mint | 35 cm |\n\n- [x] Water the beds\n- [ ] Cut the hedge\n\n```\nwater(beds);\n```\n\nA footnote[^1].\n\n[box type=\"info\"]\nRemember the **frost**.\n[/box]\n\n[^1]: The footnote text.\n";
    for (title, body, kind, tags) in [
        ("Field notes", body, "post", "Garden, Notes"),
        (
            "About",
            "This site is a *garden* diary.\n\nIt is written by Ada.",
            "page",
            "",
        ),
        (
            "Older garden post",
            "The first **garden** post.",
            "post",
            "Garden",
        ),
    ] {
        let response = app
            .staff_post(
                &admin,
                "/admin/posts/new",
                &[
                    ("title", title),
                    ("slug", ""),
                    ("body", body),
                    ("excerpt", ""),
                    ("tags", tags),
                    ("kind", kind),
                    ("status", "published"),
                    ("publish_at", ""),
                    ("author", &admin_id),
                    ("comments_open", "1"),
                ],
            )
            .await;
        assert_eq!(response.status(), 303, "{title} is published");
    }
    let saved = app
        .staff_post(
            &admin,
            "/admin/site",
            &[
                ("title", "Garden Diary"),
                ("tagline", "Notes from a small garden, by Ada."),
                ("menu", "About | /pages/about"),
                ("footer", "Grown with care."),
                ("accent", "#1a6b3c"),
                ("custom_css", ""),
            ],
        )
        .await;
    assert_eq!(saved.status(), 303);

    // Threaded, formatted comments: a reader's comment and a reply, approved.
    let reader = client();
    let mut approved = Vec::new();
    for (name, email, text, parent) in [
        (
            "Rita Reader",
            "rita@example.com",
            "I *love* this. Try `mulch`:\n\n> It keeps the soil wet.\n\n- less water\n- fewer weeds\n\nSee https://example.com/mulch",
            None,
        ),
        (
            "Bob Gardener",
            "bob@example.com",
            "**Agreed.** Mint spreads fast, though.",
            Some(0),
        ),
    ] {
        app.advance(60);
        let parent_id = parent.map(|i: usize| approved[i]);
        let parent_text = parent_id.map(|p: i32| p.to_string()).unwrap_or_default();
        let mut fields = vec![("name", name), ("email", email), ("body", text)];
        if parent_id.is_some() {
            fields.push(("parent_id", &parent_text));
        }
        let response = app.comment_as(&reader, "field-notes", &fields).await;
        assert_eq!(response.status(), 303);
        let id = comment_id_from(&response);
        let approve = app
            .staff_post(&admin, &format!("/admin/comments/{id}/approve"), &[])
            .await;
        assert_eq!(approve.status(), 303);
        approved.push(id);
    }
    (admin, approved[0].to_string(), reader)
}

#[tokio::test]
async fn public_pages_pass_the_html_checker_and_axe() {
    let tools = match tools() {
        Ok(tools) => tools,
        Err(why) if std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED validators: {why}");
            return;
        }
        Err(why) => panic!("the validators must run in CI: {why}"),
    };
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(&[("LECTERN_SMTP_URL", &smtp.url())]).await;
    let (admin, reply_to, reader) = seed(&app).await;
    let post_id = app
        .db(|conn| {
            use diesel::prelude::*;
            use lectern::db::schema::posts;
            Ok(posts::table
                .filter(posts::slug.eq("field-notes"))
                .select(posts::id)
                .first::<i32>(conn)?)
        })
        .await
        .to_string();
    let moderator = {
        app.create_user("mo@example.com", "Mo Moderator", "moderator", PASSWORD)
            .await;
        app.login_client("mo@example.com", PASSWORD).await
    };
    let dir = tempfile::tempdir().unwrap();
    let mut pages: Vec<Checked> = Vec::new();
    let mut save = |name: &str, html: &str, url: Option<String>, base: String| {
        let file = dir.path().join(format!("{name}.html"));
        std::fs::write(&file, html).unwrap();
        pages.push(Checked {
            name: name.to_string(),
            file,
            url,
            base,
        });
    };

    for page in PUBLIC_PAGES.iter().chain(ADMIN_PAGES) {
        let path = page
            .path
            .replace("REPLY_TO", &reply_to)
            .replace("POST_ID", &post_id);
        let http = match page.role {
            None => client(),
            Some("admin") => admin.clone(),
            Some("moderator") => moderator.clone(),
            Some(other) => panic!("no client for role {other}"),
        };
        let response = http.get(app.url(&path)).send().await.unwrap();
        let expect = if page.name == "not-found" { 404 } else { 200 };
        let html = text_of(response, expect, page.name).await;
        let url = page.role.is_none().then(|| app.url(&path));
        save(page.name, &html, url, app.url(&path));
    }

    // Pages only a POST answers with.
    let post = "/posts/field-notes";
    let submit = "/posts/field-notes/comments";
    let token = app.form_token("field-notes").await;
    let invalid = app
        .post_form(
            submit,
            &[
                ("form_token", token.as_str()),
                ("name", ""),
                ("email", "not-an-address"),
                ("website", "javascript:alert(1)"),
                ("body", ""),
            ],
        )
        .await;
    save(
        "422",
        &text_of(invalid, 422, "422").await,
        None,
        app.url(post),
    );
    let preview = app
        .post_form(
            submit,
            &[
                ("form_token", token.as_str()),
                ("name", "Pat Preview"),
                ("email", "pat@example.com"),
                ("website", "https://pat.example"),
                ("body", "A *preview* with `code`."),
                ("preview", "1"),
            ],
        )
        .await;
    save(
        "preview",
        &text_of(preview, 200, "preview").await,
        None,
        app.url(post),
    );
    // The reader's own pending comment, its edit page, then a 429 from posting again at once.
    app.advance(60);
    let own = app
        .comment_as(
            &reader,
            "field-notes",
            &[
                ("name", "Rita Reader"),
                ("email", "rita@example.com"),
                ("body", "One more thought, *pending*."),
            ],
        )
        .await;
    assert_eq!(own.status(), 303);
    let own_id = comment_id_from(&own);
    let mine = reader.get(app.url(post)).send().await.unwrap();
    save(
        "post-own-pending",
        &text_of(mine, 200, "own").await,
        None,
        app.url(post),
    );
    let edit = reader
        .get(app.url(&format!("/comments/{own_id}/edit")))
        .send()
        .await
        .unwrap();
    let edit = text_of(edit, 200, "edit").await;
    assert!(hidden_value(&edit, "token").is_some());
    save("comment-edit", &edit, None, app.url(post));
    let page = reader
        .get(app.url(post))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = hidden_value(&page, "form_token").unwrap();
    let flooded = reader
        .post(app.url(submit))
        .form(&[
            ("form_token", token.as_str()),
            ("name", "Rita Reader"),
            ("email", "rita@example.com"),
            ("body", "And another one."),
        ])
        .send()
        .await
        .unwrap();
    save(
        "429",
        &text_of(flooded, 429, "429").await,
        None,
        app.url(post),
    );

    // The signed-link pages a moderator reaches from the held comment's email, without a session:
    // the confirmation, the result with its own Undo, and the Undo's confirmation.
    app.advance(60);
    let newcomer = app
        .comment(
            "field-notes",
            &[
                ("name", "Cleo Newcomer"),
                ("email", "cleo@example.com"),
                ("body", "A first visit, held for a moderator."),
            ],
        )
        .await;
    assert_eq!(newcomer.status(), 303);
    let held = {
        let mut n = 1;
        loop {
            let mails = smtp.wait_for(n).await;
            if let Some(link) = mails
                .iter()
                .filter(|mail| mail.text().contains("A first visit"))
                .find_map(|mail| mail.link("/moderate/"))
            {
                break link;
            }
            n = mails.len() + 1;
        }
    };
    let link = held.trim_start_matches(&app.address).to_string();
    let scanner = client();
    let confirm = scanner.get(app.url(&link)).send().await.unwrap();
    save(
        "link-confirm",
        &text_of(confirm, 200, "link-confirm").await,
        None,
        app.url(&link),
    );
    let done = scanner.post(app.url(&link)).send().await.unwrap();
    let done = text_of(done, 200, "link-done").await;
    let undo_at = done.find("action=\"/moderate/").expect("an Undo form") + 8;
    let undo = done[undo_at..undo_at + done[undo_at..].find('"').unwrap()].to_string();
    save("link-done", &done, None, app.url(&link));
    let undo_page = scanner.get(app.url(&undo)).send().await.unwrap();
    save(
        "link-undo",
        &text_of(undo_page, 200, "link-undo").await,
        None,
        app.url(&undo),
    );

    let html_problems = run_vnu(&tools, &pages);
    let axe_problems = run_axe(&tools, &pages, dir.path());
    assert!(
        html_problems.is_empty() && axe_problems.is_empty(),
        "vnu:\n{}\n\naxe:\n{}",
        html_problems.join("\n"),
        axe_problems.join("\n")
    );
}

/// Every vnu error and warning, as "page: line: message".
fn run_vnu(tools: &Tools, pages: &[Checked]) -> Vec<String> {
    let output = Command::new(&tools.java)
        .arg("-jar")
        .arg(&tools.vnu)
        .args(["--format", "json", "--exit-zero-always"])
        .args(pages.iter().map(|p| &p.file))
        .output()
        .expect("java runs vnu");
    let report: serde_json::Value = serde_json::from_slice(&output.stderr).unwrap_or_else(|e| {
        panic!(
            "vnu's report: {e}: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let mut problems = Vec::new();
    for message in report["messages"].as_array().into_iter().flatten() {
        let kind = message["type"].as_str().unwrap_or("");
        let sub = message["subType"].as_str().unwrap_or("");
        if kind == "info" && sub != "warning" {
            continue;
        }
        let url = message["url"].as_str().unwrap_or("");
        let name = pages
            .iter()
            .find(|p| url.ends_with(&format!("/{}.html", p.name)))
            .map_or(url, |p| p.name.as_str());
        problems.push(format!(
            "{name}:{}: {} {}: {} [{}]",
            message["lastLine"],
            kind,
            sub,
            message["message"].as_str().unwrap_or(""),
            message["extract"].as_str().unwrap_or("").replace('\n', " ")
        ));
    }
    problems
}

/// Every axe violation, as "page: rule (impact): help — targets".
fn run_axe(tools: &Tools, pages: &[Checked], dir: &Path) -> Vec<String> {
    let jobs: Vec<serde_json::Value> = pages
        .iter()
        .map(|p| match &p.url {
            Some(url) => serde_json::json!({ "name": p.name, "url": url }),
            None => serde_json::json!({
                "name": p.name, "base": p.base, "file": p.file.display().to_string()
            }),
        })
        .collect();
    let jobs_file = dir.join("axe-jobs.json");
    std::fs::write(&jobs_file, serde_json::to_vec(&jobs).unwrap()).unwrap();
    let output = Command::new(&tools.node)
        .arg(&tools.axe)
        .arg(&jobs_file)
        .env("LECTERN_CHROMIUM", &tools.chromium)
        .output()
        .expect("node runs axe");
    assert!(
        output.status.success(),
        "axe.js failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut problems = Vec::new();
    for result in results.as_array().into_iter().flatten() {
        for v in result["violations"].as_array().into_iter().flatten() {
            problems.push(format!(
                "{}: {} ({}): {} — {}",
                result["name"].as_str().unwrap_or(""),
                v["id"].as_str().unwrap_or(""),
                v["impact"].as_str().unwrap_or(""),
                v["help"].as_str().unwrap_or(""),
                v["targets"]
            ));
        }
    }
    problems
}
