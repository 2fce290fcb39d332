//! Commenters' own data: "manage my comments" links, export, deletion and erasure (with a search
//! of every table of the backend under test for the erased address), the admin's privacy tool
//! and the generated privacy page.

use diesel::prelude::*;

use crate::common::{TestApp, WELCOME, client, comment_id_from, hidden_value, settings_form};

const ADA: &str = "ada@example.com";

/// An app with an admin, whose client is returned too.
async fn site() -> (TestApp, reqwest::Client) {
    let app = TestApp::spawn().await;
    let admin = app.staff_client("admin").await;
    (app, admin)
}

/// Posts a comment on the welcome post from a reader's browser, with the flood limits' time
/// let pass first.
async fn say(app: &TestApp, name: &str, email: &str, body: &str, extra: &[(&str, &str)]) -> i32 {
    app.advance(400);
    let mut fields = vec![("name", name), ("email", email), ("body", body)];
    fields.extend_from_slice(extra);
    let response = app.comment_as(&client(), WELCOME, &fields).await;
    assert_eq!(response.status(), 303, "the comment {body:?} is taken");
    comment_id_from(&response)
}

async fn moderate(app: &TestApp, admin: &reqwest::Client, id: i32, action: &str) {
    let response = app
        .staff_post(admin, &format!("/admin/comments/{id}/{action}"), &[])
        .await;
    assert_eq!(response.status(), 303, "{action} #{id}");
}

/// Asks for a link for `email` from the browser `http`, as the page's form does.
async fn ask_for_link(app: &TestApp, http: &reqwest::Client, email: &str) -> reqwest::Response {
    let page = app.get_text_as(http, "/my-comments").await;
    let csrf = hidden_value(&page, "csrf_token").expect("the form has a CSRF token");
    http.post(app.url("/my-comments"))
        .form(&[("email", email), ("csrf_token", &csrf)])
        .send()
        .await
        .unwrap()
}

/// The "manage my comments" links in the outbox, newest first, as paths.
async fn links_mailed_to(app: &TestApp, email: &str) -> Vec<String> {
    use lectern::db::schema::outbox;
    let email = email.to_string();
    let texts: Vec<String> = app
        .db(move |conn| {
            Ok(outbox::table
                .filter(outbox::kind.eq("my-comments"))
                .filter(outbox::to_address.eq(email))
                .order(outbox::id.desc())
                .select(outbox::body_text)
                .load(conn)?)
        })
        .await;
    texts
        .iter()
        .map(|text| {
            let at = text.find("/my-comments/").expect("the mail holds the link");
            let end = text[at..]
                .find(char::is_whitespace)
                .map_or(text.len(), |e| at + e);
            text[at..end].to_string()
        })
        .collect()
}

/// A fresh link for `email` (which must be known), as its owner gets it.
async fn link_for(app: &TestApp, email: &str) -> String {
    let response = ask_for_link(app, &client(), email).await;
    assert_eq!(response.status(), 200);
    links_mailed_to(app, email)
        .await
        .into_iter()
        .next()
        .expect("a link was mailed")
}

/// The public post page as a stranger sees it.
async fn public_page(app: &TestApp) -> String {
    app.get_text_as(&client(), &format!("/posts/{WELCOME}"))
        .await
}

async fn post(app: &TestApp, path: String) -> reqwest::Response {
    app.client.post(app.url(&path)).send().await.unwrap()
}

fn count(page: &str, needle: &str) -> usize {
    page.matches(needle).count()
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Column {
    #[diesel(sql_type = diesel::sql_types::Text)]
    table_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    column_name: String,
}

#[derive(QueryableByName)]
struct Hits {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// "table.column" for every column of every table (read from the backend's own catalogue, so
/// tables added later are searched too) whose text holds `needle`, in any case.
async fn places_holding(app: &TestApp, needle: &str) -> Vec<String> {
    let needle = needle.to_lowercase();
    app.db(move |conn| {
        let columns: Vec<(String, String)> = match conn {
            lectern::db::DbConn::Sqlite(c) => {
                let tables: Vec<Name> = diesel::sql_query(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
                )
                .load(c)?;
                let mut columns = Vec::new();
                for table in tables {
                    let names: Vec<Name> = diesel::sql_query(format!(
                        "SELECT name FROM pragma_table_info('{}')",
                        table.name
                    ))
                    .load(c)?;
                    columns.extend(names.into_iter().map(|n| (table.name.clone(), n.name)));
                }
                columns
            }
            lectern::db::DbConn::Postgresql(c) => {
                let rows: Vec<Column> = diesel::sql_query(
                    "SELECT table_name::text AS table_name, column_name::text AS column_name \
                     FROM information_schema.columns WHERE table_schema = 'public'",
                )
                .load(c)?;
                rows.into_iter()
                    .map(|r| (r.table_name, r.column_name))
                    .collect()
            }
        };
        assert!(columns.len() > 50, "the catalogue lists every column");
        let mut found = Vec::new();
        for (table, column) in columns {
            let sql = format!(
                "SELECT COUNT(*) AS n FROM \"{table}\" WHERE lower(CAST(\"{column}\" AS TEXT)) LIKE '%{needle}%'"
            );
            let hits: Vec<Hits> = match conn {
                lectern::db::DbConn::Sqlite(c) => diesel::sql_query(sql).load(c)?,
                lectern::db::DbConn::Postgresql(c) => diesel::sql_query(sql).load(c)?,
            };
            if hits.first().is_some_and(|h| h.n > 0) {
                found.push(format!("{table}.{column}"));
            }
        }
        Ok(found)
    })
    .await
}

#[tokio::test]
async fn known_and_unknown_addresses_get_the_same_answer_and_only_a_known_one_is_mailed() {
    let (app, _admin) = site().await;
    say(&app, "Ada", ADA, "Hello from Ada", &[]).await;
    let http = client();
    let form = app.get("/my-comments").await;
    assert_eq!(form.status(), 200);

    let known = ask_for_link(&app, &http, "Ada@Example.COM").await;
    let unknown = ask_for_link(&app, &http, "nobody@example.com").await;
    assert_eq!(known.status(), 200);
    assert_eq!(unknown.status(), 200);
    let headers = |r: &reqwest::Response| {
        let mut h: Vec<String> = r
            .headers()
            .iter()
            .filter(|(k, _)| *k != "date" && *k != "x-request-id")
            .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap()))
            .collect();
        h.sort();
        h
    };
    assert_eq!(headers(&known), headers(&unknown));
    let (known, unknown) = (known.text().await.unwrap(), unknown.text().await.unwrap());
    assert_eq!(known, unknown, "the two answers are the same bytes");
    assert!(known.contains("If this site has comments from that address"));
    assert!(!known.contains("nobody@example.com") && !known.contains(ADA));

    // Both requests did the same work: each is counted, by a keyed hash of its address.
    let counted: Vec<String> = app
        .db(|conn| {
            use lectern::db::schema::my_comments_requests as r;
            Ok(r::table.select(r::address_key).order(r::id).load(conn)?)
        })
        .await;
    let signer = &app.state.signer;
    assert_eq!(
        counted,
        [
            signer.address_key(ADA),
            signer.address_key("nobody@example.com")
        ]
    );

    let links = links_mailed_to(&app, ADA).await;
    assert_eq!(links.len(), 1, "the known address is mailed once");
    assert!(links_mailed_to(&app, "nobody@example.com").await.is_empty());
    let token = links[0].trim_start_matches("/my-comments/");
    let payload = token.split('.').next().unwrap();
    use base64::Engine;
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&decoded).contains("ada") && !token.contains("ada"),
        "the link does not carry the address readably"
    );

    // A bad address is a 422 that keeps what was typed, whoever asks.
    let page = app.get_text_as(&http, "/my-comments").await;
    let csrf = hidden_value(&page, "csrf_token").unwrap();
    let bad = http
        .post(app.url("/my-comments"))
        .form(&[("email", "not an address"), ("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    let forged = http
        .post(app.url("/my-comments"))
        .form(&[("email", ADA)])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403, "the form needs its CSRF token");
    assert_eq!(links_mailed_to(&app, ADA).await.len(), 1);
}

#[tokio::test]
async fn the_link_lists_every_status_but_spam_says_so_and_works_all_day() {
    let (app, admin) = site().await;
    let published = say(&app, "Ada", ADA, "Published words", &[]).await;
    moderate(&app, &admin, published, "approve").await;
    say(&app, "Ada", ADA, "Waiting words", &[]).await;
    let trashed = say(&app, "Ada", ADA, "Trashed words", &[]).await;
    moderate(&app, &admin, trashed, "trash").await;
    let spam = say(&app, "Ada", ADA, "Spammy words", &[]).await;
    moderate(&app, &admin, spam, "spam").await;
    say(&app, "Bob", "bob@example.com", "Bob's words", &[]).await;

    let link = link_for(&app, ADA).await;
    let response = app.get(&link).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "private, no-store");
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
    let page = response.text().await.unwrap();
    for words in ["Published words", "Waiting words", "Trashed words"] {
        assert!(page.contains(words), "{words} is listed");
    }
    assert!(!page.contains("Spammy words") && !page.contains("Bob"));
    assert!(
        page.contains("marked as spam"),
        "the page says spam is left out"
    );
    assert!(page.contains("Welcome to lectern"), "with its post");
    assert!(page.contains("published") && page.contains("awaiting moderation"));

    // Usable again and again for a day, then 410; a tampered link is 404.
    app.advance(20 * 3600);
    assert_eq!(app.get(&link).await.status(), 200);
    let download = app
        .client
        .post(app.url(&format!("{link}/download")))
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(app.get(&link).await.status(), 200);
    assert_eq!(app.get(&format!("{link}x")).await.status(), 404);
    app.advance(5 * 3600);
    assert_eq!(app.get(&link).await.status(), 410);
    let late = app
        .client
        .post(app.url(&format!("{link}/erase")))
        .send()
        .await
        .unwrap();
    assert_eq!(late.status(), 410);
    assert_eq!(
        app.stored_comment(published).await.0,
        "approved",
        "nothing changed"
    );
}

#[tokio::test]
async fn the_link_works_only_here_and_other_links_do_not_work_here() {
    use lectern::notify::tokens::{Link, issue};
    let (app, _admin) = site().await;
    let id = say(&app, "Ada", ADA, "Mine", &[]).await;
    let link = link_for(&app, ADA).await;
    let token = link.trim_start_matches("/my-comments/").to_string();
    for route in [
        "/unsubscribe/",
        "/confirm/",
        "/moderate/",
        "/admin/password-reset/",
    ] {
        let path = format!("{route}{token}");
        assert_eq!(app.get(&path).await.status(), 404, "GET {path}");
        if !route.starts_with("/admin/") {
            assert_eq!(post(&app, path.clone()).await.status(), 404, "POST {path}");
        }
    }

    let signer = &app.state.signer;
    let later = app.state.clock.now() + chrono::Duration::days(1);
    let others = [
        Link::Unsubscribe { email: ADA.into() },
        Link::Confirm { email: ADA.into() },
        Link::Moderate {
            comment_id: lectern::db::ids::CommentId(id),
            action: lectern::actions::Action::Approve,
            user_id: lectern::db::ids::UserId(1),
        },
        Link::PasswordReset {
            user_id: lectern::db::ids::UserId(1),
            stamp: "x".into(),
        },
    ];
    for other in others {
        let path = format!("/my-comments/{}", issue(signer, &other, later));
        assert_eq!(
            app.get(&path).await.status(),
            404,
            "{other:?} opens nothing"
        );
        for action in ["download", "erase"] {
            let post = app
                .client
                .post(app.url(&format!("{path}/{action}")))
                .send()
                .await
                .unwrap();
            assert_eq!(post.status(), 404, "{other:?} {action}");
        }
    }
    assert_eq!(app.stored_comment(id).await.2, "Mine");
}

#[tokio::test]
async fn erasing_by_anonymising_keeps_the_thread_and_its_text() {
    let (app, admin) = site().await;
    let first = say(
        &app,
        "Ada Lovelace",
        ADA,
        "First thoughts",
        &[("website", "https://ada.example")],
    )
    .await;
    moderate(&app, &admin, first, "approve").await;
    let reply = say(
        &app,
        "Bob",
        "bob@example.com",
        "Bob answers",
        &[("parent_id", &first.to_string())],
    )
    .await;
    moderate(&app, &admin, reply, "approve").await;
    let again = say(
        &app,
        "Ada Lovelace",
        ADA,
        "Ada again",
        &[("parent_id", &reply.to_string())],
    )
    .await;
    moderate(&app, &admin, again, "approve").await;

    let before = public_page(&app).await;
    assert!(before.contains("Ada Lovelace") && before.contains("https://ada.example"));
    let shape = |page: &str| {
        [first, reply, again]
            .iter()
            .map(|id| page.find(&format!("id=\"comment-{id}\"")).unwrap())
            .collect::<Vec<_>>()
            .windows(2)
            .all(|w| w[0] < w[1])
    };
    assert!(shape(&before));
    let seed_of = |id: i32| {
        app.db(move |conn| {
            use lectern::db::schema::comments;
            Ok(comments::table
                .find(id)
                .select(comments::avatar_seed)
                .first::<i32>(conn)?)
        })
    };
    let old_seed = seed_of(first).await;

    let link = link_for(&app, ADA).await;
    // No mode: anonymise is the default.
    let done = app
        .client
        .post(app.url(&format!("{link}/erase")))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
    assert_eq!(
        done.headers()["location"].to_str().unwrap(),
        format!("{link}?done=anonymised")
    );

    let after = public_page(&app).await;
    assert!(shape(&after), "every comment keeps its place");
    assert_eq!(
        count(&after, "class=\"comment "),
        count(&before, "class=\"comment ")
    );
    for text in ["First thoughts", "Bob answers", "Ada again"] {
        assert!(after.contains(text), "{text} is kept");
    }
    assert!(!after.contains("Ada Lovelace") && !after.contains("https://ada.example"));
    assert_eq!(count(&after, "\">Anonymous</h3>"), 2);
    assert_ne!(seed_of(first).await, old_seed, "the picture changes");
    let feed = app.get_text("/comments/feed.xml").await;
    assert!(!feed.contains("Ada Lovelace"));
    let listed = app.get_text(&link).await;
    assert!(listed.contains("We keep no comments from this address."));
    assert!(places_holding(&app, ADA).await.is_empty());
}

#[tokio::test]
async fn erasing_by_deleting_leaves_placeholders_only_where_replies_exist() {
    let (app, admin) = site().await;
    let answered = say(&app, "Ada", ADA, "Answered one", &[]).await;
    moderate(&app, &admin, answered, "approve").await;
    let reply = say(
        &app,
        "Bob",
        "bob@example.com",
        "Bob replies",
        &[("parent_id", &answered.to_string())],
    )
    .await;
    moderate(&app, &admin, reply, "approve").await;
    let alone = say(&app, "Ada", ADA, "Lonely one", &[]).await;
    moderate(&app, &admin, alone, "approve").await;
    let pending = say(&app, "Ada", ADA, "Pending one", &[]).await;
    let before = public_page(&app).await;
    assert!(before.contains("Lonely one"));

    let link = link_for(&app, ADA).await;
    let done = app
        .client
        .post(app.url(&format!("{link}/erase")))
        .form(&[("mode", "delete")])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);

    let after = public_page(&app).await;
    assert!(after.contains(&format!("id=\"comment-{answered}\"")));
    assert!(after.contains("This comment was removed."));
    assert!(after.contains("Bob replies"));
    assert!(!after.contains("Answered one") && !after.contains("Lonely one"));
    assert!(!after.contains(&format!("id=\"comment-{alone}\"")));
    assert_eq!(
        app.comment_count().await,
        3,
        "welcome, the placeholder and Bob's reply"
    );
    for gone in [alone, pending] {
        let found = app
            .db(move |conn| {
                use lectern::db::schema::comments;
                Ok(comments::table.find(gone).count().get_result::<i64>(conn)?)
            })
            .await;
        assert_eq!(found, 0);
    }
    assert!(places_holding(&app, ADA).await.is_empty());
}

#[tokio::test]
async fn after_an_erase_the_address_is_in_no_table_and_a_block_on_it_still_holds() {
    // Mail cannot leave (nothing listens), so some of it is still queued at the erasure.
    let port = crate::smtp::SmtpServer::reserve_port();
    let app =
        TestApp::spawn_with(&[("LECTERN_SMTP_URL", &format!("smtp://127.0.0.1:{port}"))]).await;
    let admin = app.staff_client("admin").await;
    let published = say(&app, "Ada", ADA, "Email me", &[("notify", "1")]).await;
    moderate(&app, &admin, published, "approve").await;
    let spam = say(&app, "Ada", ADA, "Marked as spam", &[]).await;
    moderate(&app, &admin, spam, "spam").await;
    say(&app, "Ada", ADA, "Still held", &[]).await;
    let blocked = app
        .staff_post(
            &admin,
            "/admin/blocks",
            &[("kind", "email"), ("value", ADA), ("duration", "forever")],
        )
        .await;
    assert_eq!(blocked.status(), 303);
    // A failed staff login with the address.
    let login = client();
    let page = app.get_text_as(&login, "/admin/login").await;
    let csrf = hidden_value(&page, "csrf_token").unwrap();
    let failed = login
        .post(app.url("/admin/login"))
        .form(&[
            ("email", ADA),
            ("password", "wrong password!"),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 401);
    let link = link_for(&app, ADA).await;
    // Some mail went out before the erasure: the moderators' notice about Ada's held comment,
    // and the confirmation to Ada.
    app.db(|conn| {
        use lectern::db::schema::outbox;
        diesel::update(outbox::table.filter(outbox::kind.eq_any(["moderate", "confirm"])))
            .set((
                outbox::status.eq("sent"),
                outbox::sent_at.eq(Some(lectern::db::now())),
            ))
            .execute(conn)?;
        Ok(())
    })
    .await;
    let mut before = places_holding(&app, ADA).await;
    before.sort();
    for place in [
        "comments.author_email",
        "notify_addresses.email",
        "outbox.to_address",
        "outbox.body_text",
        "blocks.value",
        "moderation_log.detail",
        "login_failures.email",
    ] {
        assert!(
            before.contains(&place.to_string()),
            "{place} holds the address before: {before:?}"
        );
    }

    let done = app
        .client
        .post(app.url(&format!("{link}/erase")))
        .form(&[("mode", "anonymise")])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
    assert_eq!(places_holding(&app, ADA).await, Vec::<String>::new());

    let key = app.state.signer.address_key(ADA);
    let log: Vec<(String, String, String)> = app
        .db(|conn| {
            use lectern::db::schema::moderation_log as l;
            Ok(l::table
                .filter(l::action.eq("erase"))
                .select((l::detail, l::via, l::action))
                .load(conn)?)
        })
        .await;
    assert_eq!(log.len(), 1);
    assert!(
        log[0].0.contains(&key),
        "the log names the address by its keyed hash"
    );
    let audit = app.get_text_as(&admin, "/admin/audit").await;
    assert!(!audit.contains(ADA));

    // The block survives as the key: Ada's next comment still goes to spam.
    let id = say(&app, "Ada", ADA, "I am back", &[]).await;
    let (status, reason, _) = app.stored_comment(id).await;
    assert_eq!(
        (status.as_str(), reason.as_deref()),
        ("spam", Some("blocked"))
    );
}

#[tokio::test]
async fn the_export_is_json_with_every_comment_of_the_address_and_no_one_elses() {
    let (app, admin) = site().await;
    let mut ada = Vec::new();
    for (body, action) in [
        ("One", Some("approve")),
        ("Two", None),
        ("Three", Some("trash")),
    ] {
        let id = say(&app, "Ada", ADA, body, &[]).await;
        if let Some(action) = action {
            moderate(&app, &admin, id, action).await;
        }
        ada.push(id);
    }
    say(&app, "Bob", "bob@example.com", "Bob's secret", &[]).await;
    let link = link_for(&app, ADA).await;
    let response = app
        .client
        .post(app.url(&format!("{link}/download")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let text = response.text().await.unwrap();
    assert!(!text.contains("bob@example.com") && !text.contains("Bob's secret"));
    assert!(!text.contains("Test admin"), "no staff identities");
    let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(json["email"], ADA);
    let mut ids: Vec<i64> = json["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ada.iter().map(|&i| i64::from(i)).collect::<Vec<_>>());
    let first = &json["comments"].as_array().unwrap()[2];
    for field in [
        "author_name",
        "author_email",
        "author_url",
        "text",
        "ip",
        "user_agent",
        "created_at",
        "post_title",
        "post_url",
        "status",
        "held_reason",
        "notify_me",
    ] {
        assert!(first.get(field).is_some(), "{field} is exported");
    }
    assert_eq!(first["author_email"], ADA);
    assert_eq!(first["text"], "One");
    assert_eq!(first["ip"], "127.0.0.1");
    let decisions = json["moderation_decisions"].as_array().unwrap();
    assert!(decisions.iter().any(|d| d["action"] == "approve"));
    assert!(decisions.iter().all(|d| d.get("user_id").is_none()));
    let cookies = json["cookies"].as_array().unwrap();
    assert!(cookies.iter().any(|c| c["name"] == "lectern_pending"));
}

#[tokio::test]
async fn a_reader_deletes_one_comment_of_theirs_and_no_one_elses() {
    let (app, admin) = site().await;
    let answered = say(&app, "Ada", ADA, "Answered", &[]).await;
    moderate(&app, &admin, answered, "approve").await;
    let reply = say(
        &app,
        "Bob",
        "bob@example.com",
        "Reply to Ada",
        &[("parent_id", &answered.to_string())],
    )
    .await;
    moderate(&app, &admin, reply, "approve").await;
    let spam = say(&app, "Ada", ADA, "Spam of Ada", &[]).await;
    moderate(&app, &admin, spam, "spam").await;
    let link = link_for(&app, ADA).await;
    let delete = |id: i32| post(&app, format!("{link}/comments/{id}/delete"));
    assert_eq!(
        delete(reply).await.status(),
        404,
        "Bob's comment is not Ada's"
    );
    assert_eq!(
        delete(spam).await.status(),
        404,
        "spam is not listed, nor deleted here"
    );
    let done = delete(answered).await;
    assert_eq!(done.status(), 303);
    assert_eq!(
        done.headers()["location"].to_str().unwrap(),
        format!("{link}?done=deleted")
    );
    let page = public_page(&app).await;
    assert!(page.contains("This comment was removed.") && page.contains("Reply to Ada"));
    assert!(!page.contains(">Answered<"));
    assert_eq!(delete(answered).await.status(), 404, "already gone");
    assert!(
        app.get_text(&format!("{link}?done=deleted"))
            .await
            .contains("The comment was deleted.")
    );
}

#[tokio::test]
async fn link_requests_are_limited_per_address_and_per_network() {
    let (app, _admin) = site().await;
    say(&app, "Ada", ADA, "Hi", &[]).await;
    let http = client();
    for _ in 0..4 {
        assert_eq!(ask_for_link(&app, &http, ADA).await.status(), 200);
    }
    assert_eq!(
        links_mailed_to(&app, ADA).await.len(),
        3,
        "three an hour to one address"
    );
    for n in 0..6 {
        let response = ask_for_link(&app, &http, &format!("other{n}@example.com")).await;
        assert_eq!(response.status(), 200);
    }
    let refused = ask_for_link(&app, &http, "eleventh@example.com").await;
    assert_eq!(refused.status(), 429, "ten an hour from one network");
    assert!(refused.headers().contains_key("retry-after"));
    app.advance(3601);
    assert_eq!(ask_for_link(&app, &http, ADA).await.status(), 200);
    assert_eq!(links_mailed_to(&app, ADA).await.len(), 4);
}

#[tokio::test]
async fn admins_look_up_export_and_erase_an_address_after_confirming() {
    let (app, admin) = site().await;
    let moderator = app.staff_client("moderator").await;
    assert_eq!(
        moderator
            .get(app.url("/admin/privacy"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let refused = app
        .staff_post(
            &moderator,
            "/admin/privacy",
            &[("op", "erase"), ("email", ADA), ("confirm", "yes")],
        )
        .await;
    assert_eq!(refused.status(), 403);

    let answered = say(&app, "Ada", ADA, "Ada's words", &[]).await;
    moderate(&app, &admin, answered, "approve").await;
    let reply = say(
        &app,
        "Bob",
        "bob@example.com",
        "Bob's words",
        &[("parent_id", &answered.to_string())],
    )
    .await;
    moderate(&app, &admin, reply, "approve").await;
    say(&app, "Ada", ADA, "More of Ada", &[]).await;

    let page = admin.get(app.url("/admin/privacy")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Look up"));
    let found = app
        .staff_post(
            &admin,
            "/admin/privacy",
            &[("op", "lookup"), ("email", "ADA@example.com")],
        )
        .await;
    assert_eq!(found.status(), 200);
    let found = found.text().await.unwrap();
    assert!(found.contains("2 comments"), "{found}");

    let export = app
        .staff_post(
            &admin,
            "/admin/privacy",
            &[("op", "export"), ("email", ADA)],
        )
        .await;
    assert_eq!(export.status(), 200);
    let json: serde_json::Value = serde_json::from_str(&export.text().await.unwrap()).unwrap();
    assert_eq!(json["comments"].as_array().unwrap().len(), 2);

    let confirm = app
        .staff_post(
            &admin,
            "/admin/privacy",
            &[("op", "erase"), ("email", ADA), ("mode", "delete")],
        )
        .await;
    assert_eq!(confirm.status(), 200);
    assert!(confirm.text().await.unwrap().contains("Yes, erase it"));
    assert_eq!(
        app.stored_comment(answered).await.2,
        "Ada's words",
        "nothing changed yet"
    );

    let done = app
        .staff_post(
            &admin,
            "/admin/privacy",
            &[
                ("op", "erase"),
                ("email", ADA),
                ("mode", "delete"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(done.status(), 303);
    assert_eq!(done.headers()["location"], "/admin/privacy?done=erased");
    let page = public_page(&app).await;
    assert!(page.contains("This comment was removed.") && page.contains("Bob's words"));
    assert!(places_holding(&app, ADA).await.is_empty());
    let log: Vec<(String, Option<i32>, String)> = app
        .db(|conn| {
            use lectern::db::schema::moderation_log as l;
            Ok(l::table
                .filter(l::action.eq_any(["erase", "privacy-export"]))
                .order(l::id)
                .select((l::action, l::user_id, l::via))
                .load(conn)?)
        })
        .await;
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].0, "privacy-export");
    assert_eq!((log[1].0.as_str(), log[1].2.as_str()), ("erase", "web"));
    assert!(log[1].1.is_some(), "the admin is named");
    let again = app
        .staff_post(
            &admin,
            "/admin/privacy",
            &[("op", "lookup"), ("email", ADA)],
        )
        .await;
    assert!(
        again
            .text()
            .await
            .unwrap()
            .contains("Erased before: 1 time")
    );

    // A staff account's address is not erased from here.
    let staff = app
        .staff_post(
            &admin,
            "/admin/privacy",
            &[
                ("op", "erase"),
                ("email", "admin@example.com"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(staff.status(), 409);
}

#[tokio::test]
async fn the_privacy_page_says_what_the_settings_do() {
    let (app, admin) = site().await;
    let page = app.get_text("/privacy").await;
    assert!(page.contains("deleted 30 days after they were moved there"));
    assert!(page.contains("lectern_pending") && page.contains("lectern_commenter"));
    assert!(page.contains("href=\"/my-comments\""));
    let home = app.get_text("/").await;
    assert!(home.contains("href=\"/privacy\""), "the footer links it");
    let post = public_page(&app).await;
    assert!(post.contains("href=\"/privacy\"") && post.contains("href=\"/my-comments\""));

    let saved = app
        .staff_post(
            &admin,
            "/admin/settings",
            &settings_form(&[("retention_days", "7")]),
        )
        .await;
    assert_eq!(saved.status(), 303);
    let page = app.get_text("/privacy").await;
    let words = "Comments marked as spam and comments moved to the trash are deleted 7 days after they were moved there.";
    assert!(page.contains(words));
    assert!(page.contains("deleted after 7 days"));
    let settings = app.get_text_as(&admin, "/admin/settings").await;
    assert!(
        settings.contains(words),
        "the settings page uses the same words"
    );

    let text = app
        .staff_post(
            &admin,
            "/admin/privacy",
            &[
                ("op", "text"),
                ("above", "We are **Example Ltd**."),
                ("below", "Write to us."),
            ],
        )
        .await;
    assert_eq!(text.status(), 303);
    let page = app.get_text("/privacy").await;
    let (above, generated, below) = (
        page.find("<strong>Example Ltd</strong>").unwrap(),
        page.find("What we keep when you comment").unwrap(),
        page.find("Write to us.").unwrap(),
    );
    assert!(above < generated && generated < below);
}

#[tokio::test]
async fn emails_to_commenters_link_to_their_comments() {
    let (app, admin) = site().await;
    let id = say(&app, "Ada", ADA, "Tell me", &[("notify", "1")]).await;
    moderate(&app, &admin, id, "approve").await;
    let texts: Vec<(String, String)> = app
        .db(|conn| {
            use lectern::db::schema::outbox;
            Ok(outbox::table
                .filter(outbox::to_address.eq(ADA))
                .select((outbox::body_text, outbox::body_html))
                .load(conn)?)
        })
        .await;
    assert!(!texts.is_empty());
    for (text, html) in texts {
        assert!(text.contains("/my-comments") && html.contains("/my-comments"));
    }
}

/// Asking for a link for a known address takes as long as for an unknown one, within noise:
/// the medians of interleaved requests (each round an hour later, so no limit answers instead).
#[tokio::test]
async fn known_and_unknown_addresses_take_the_same_time_within_noise() {
    let (app, _admin) = site().await;
    say(&app, "Ada", ADA, "Hello from Ada", &[]).await;
    let http = client();
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for round in 0..15 {
        app.advance(3700);
        for (email, times) in [(ADA, &mut known), ("nobody@example.com", &mut unknown)] {
            let page = app.get_text_as(&http, "/my-comments").await;
            let csrf = hidden_value(&page, "csrf_token").unwrap();
            let started = std::time::Instant::now();
            let response = http
                .post(app.url("/my-comments"))
                .form(&[("email", email), ("csrf_token", &csrf)])
                .send()
                .await
                .unwrap();
            let body = response.text().await.unwrap();
            // The first round warms both paths up (prepared statements, templates).
            if round > 0 {
                times.push(started.elapsed());
            }
            assert!(body.contains("If this site has comments from that address"));
        }
    }
    let median = |times: &mut Vec<std::time::Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let (known, unknown) = (median(&mut known), median(&mut unknown));
    let (low, high) = (known.min(unknown), known.max(unknown));
    assert!(
        high <= low * 2 || high - low < std::time::Duration::from_millis(3),
        "known {known:?}, unknown {unknown:?}"
    );
    assert_eq!(links_mailed_to(&app, ADA).await.len(), 15);
}
