//! Login, sessions, throttling, CSRF and access control.

use crate::common::{PASSWORD, TestApp, client, hidden_value};

async fn login_attempt(
    app: &TestApp,
    http: &reqwest::Client,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let page = http
        .get(app.url("/admin/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden_value(&page, "csrf_token").unwrap();
    http.post(app.url("/admin/login"))
        .form(&[
            ("email", email),
            ("password", password),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap()
}

async fn status_of(http: &reqwest::Client, url: String) -> u16 {
    http.get(url).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn the_setup_link_creates_the_first_admin_once() {
    let app = TestApp::spawn().await;
    let row: Option<String> = app
        .db(|conn| lectern::site::get(conn, lectern::auth::handlers::SETUP_NONCE_SETTING))
        .await;
    assert!(row.is_some(), "a new site has a setup token");
    let token = app
        .setup_url
        .as_deref()
        .unwrap()
        .rsplit_once("token=")
        .unwrap()
        .1
        .to_string();
    // Deriving it again, as a restart or a second server does, gives the same link.
    let signer = app.state.signer.clone();
    let again = app
        .state
        .db
        .write(move |conn| lectern::auth::handlers::issue_setup_token(conn, &signer))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, token);
    let http = client();
    assert_eq!(
        status_of(&http, app.url("/admin/setup?token=forged")).await,
        404
    );
    let page = http
        .get(app.url(&format!("/admin/setup?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csrf = hidden_value(&page.text().await.unwrap(), "csrf_token").unwrap();
    let short = http
        .post(app.url("/admin/setup"))
        .form(&[
            ("token", token.as_str()),
            ("csrf_token", &csrf),
            ("name", "Owner"),
            ("email", "owner@example.com"),
            ("password", "short"),
            ("password_confirm", "short"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(short.status(), 422);
    let done = http
        .post(app.url("/admin/setup"))
        .form(&[
            ("token", token.as_str()),
            ("csrf_token", &csrf),
            ("name", "Owner"),
            ("email", "owner@example.com"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
    assert_eq!(done.headers()["location"], "/admin");
    assert_eq!(status_of(&http, app.url("/admin")).await, 200);
    // Single use: now an admin exists, the link is gone.
    assert_eq!(
        status_of(&client(), app.url(&format!("/admin/setup?token={token}"))).await,
        410
    );
    // The welcome post now names the new admin.
    assert!(
        app.get_text("/posts/welcome-to-lectern")
            .await
            .contains("About <a href=\"/authors/owner\">Owner</a>")
    );
}

#[tokio::test]
async fn login_succeeds_and_fails_with_one_generic_message() {
    let app = TestApp::spawn().await;
    app.create_user("mod@example.com", "Mo", "moderator", PASSWORD)
        .await;
    let http = client();
    for (email, password) in [
        ("mod@example.com", "wrong password here"),
        ("nobody@example.com", PASSWORD),
    ] {
        let response = login_attempt(&app, &http, email, password).await;
        assert_eq!(response.status(), 401);
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("Invalid email or password.")
        );
    }
    let response = login_attempt(&app, &http, "MOD@example.com", PASSWORD).await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/admin");
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_string())
        .find(|c| c.starts_with("lectern_session="))
        .unwrap();
    assert!(cookie.contains("HttpOnly"));
    assert!(cookie.contains("SameSite=Lax"));
    assert!(cookie.contains("Path=/"));
    let dashboard = http.get(app.url("/admin")).send().await.unwrap();
    assert_eq!(dashboard.status(), 200);
    assert_eq!(dashboard.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn an_https_site_uses_a_secure_host_prefixed_session_cookie() {
    let app = TestApp::spawn_with(&[("LECTERN_BASE_URL", "https://blog.example.com")]).await;
    app.create_user("a@example.com", "A", "admin", PASSWORD)
        .await;
    // The test client speaks plain HTTP, so it cannot send the Secure cookie back; read the
    // login response's header instead.
    let http = client();
    let page = http.get(app.url("/admin/login")).send().await.unwrap();
    let csrf_cookie = page.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(csrf_cookie.starts_with("__Host-lectern_csrf="));
    assert!(csrf_cookie.contains("Secure"));
}

#[tokio::test]
async fn throttling_locks_even_the_right_password_and_expires_by_itself() {
    let app = TestApp::spawn().await;
    app.create_user("a@example.com", "A", "admin", PASSWORD)
        .await;
    let http = client();
    for _ in 0..10 {
        assert_eq!(
            login_attempt(&app, &http, "a@example.com", "not the password")
                .await
                .status(),
            401
        );
    }
    let locked = login_attempt(&app, &http, "a@example.com", PASSWORD).await;
    assert_eq!(locked.status(), 429);
    let retry: i64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 15 * 60, "{retry}");
    app.advance(retry);
    assert_eq!(
        login_attempt(&app, &http, "a@example.com", PASSWORD)
            .await
            .status(),
        303
    );
}

#[tokio::test]
async fn parallel_wrong_guesses_are_checked_at_most_ten_times_and_lock_out_the_right_password() {
    let app = TestApp::spawn().await;
    app.create_user("a@example.com", "A", "admin", PASSWORD)
        .await;
    let http = client();
    let page = http
        .get(app.url("/admin/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden_value(&page, "csrf_token").unwrap();
    let mut guesses = tokio::task::JoinSet::new();
    for n in 0..40 {
        let (http, url, csrf) = (http.clone(), app.url("/admin/login"), csrf.clone());
        guesses.spawn(async move {
            let guess = format!("wrong guess number {n}");
            let form = [
                ("email", "a@example.com"),
                ("password", guess.as_str()),
                ("csrf_token", csrf.as_str()),
            ];
            http.post(url)
                .form(&form)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    let statuses = guesses.join_all().await;
    // A 401 is a guess whose password was checked; the rest were refused before any check.
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let locked = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(checked + locked, 40, "{statuses:?}");
    assert!(
        checked <= 10,
        "{checked} guesses were checked: {statuses:?}"
    );
    let recorded: i64 = app
        .db(|conn| {
            use diesel::prelude::*;
            use lectern::db::schema::login_failures;
            Ok(login_failures::table.count().get_result(conn)?)
        })
        .await;
    assert!(recorded <= 10, "{recorded} failures recorded");

    let right = login_attempt(&app, &http, "a@example.com", PASSWORD).await;
    assert_eq!(right.status(), 429);
    assert!(right.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn a_session_id_planted_before_login_is_not_the_one_after() {
    let app = TestApp::spawn().await;
    app.create_user("a@example.com", "A", "admin", PASSWORD)
        .await;
    let http = client();
    let jar_cookie = "lectern_session=planted-by-an-attacker-0123456789";
    let page = http
        .get(app.url("/admin/login"))
        .header("cookie", jar_cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden_value(&page, "csrf_token").unwrap();
    let response = http
        .post(app.url("/admin/login"))
        .form(&[
            ("email", "a@example.com"),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let set = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_string())
        .collect::<Vec<_>>();
    let session = set
        .iter()
        .find(|c| c.starts_with("lectern_session="))
        .unwrap();
    assert!(!session.contains("planted-by-an-attacker"));
    // The planted id does not log anyone in.
    let attacker = client();
    let r = attacker
        .get(app.url("/admin"))
        .header("cookie", jar_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
}

fn session_cookie_of(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_string())
        .find(|c| c.starts_with("lectern_session="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn logout_ends_the_session_on_the_server() {
    let app = TestApp::spawn().await;
    app.create_user("a@example.com", "A", "admin", PASSWORD)
        .await;
    let http = client();
    let response = login_attempt(&app, &http, "a@example.com", PASSWORD).await;
    let stolen = session_cookie_of(&response);
    let csrf = app.csrf(&http).await;
    let out = http
        .post(app.url("/admin/logout"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let replay = client()
        .get(app.url("/admin"))
        .header("cookie", stolen)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 303);
    assert!(
        replay.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/admin/login")
    );
}

#[tokio::test]
async fn sessions_expire_when_idle_and_after_twelve_hours() {
    let app = TestApp::spawn().await;
    app.create_user("a@example.com", "A", "admin", PASSWORD)
        .await;
    let http = app.login_client("a@example.com", PASSWORD).await;
    app.advance(29 * 60);
    assert_eq!(status_of(&http, app.url("/admin")).await, 200);
    app.advance(31 * 60);
    assert_eq!(
        status_of(&http, app.url("/admin")).await,
        303,
        "idle for 31 minutes"
    );

    let http = app.login_client("a@example.com", PASSWORD).await;
    for _ in 0..28 {
        app.advance(25 * 60);
        assert_eq!(status_of(&http, app.url("/admin")).await, 200);
    }
    app.advance(25 * 60);
    assert_eq!(
        status_of(&http, app.url("/admin")).await,
        303,
        "past the absolute limit"
    );
}

#[tokio::test]
async fn a_password_change_from_the_cli_ends_every_session() {
    let app = TestApp::spawn().await;
    let id = app
        .create_user("a@example.com", "A", "admin", PASSWORD)
        .await;
    let http = app.login_client("a@example.com", PASSWORD).await;
    app.db(move |conn| lectern::users::end_sessions(conn, id))
        .await;
    assert_eq!(status_of(&http, app.url("/admin")).await, 303);
}

#[tokio::test]
async fn a_session_kept_between_commits_hears_of_every_change_to_it() {
    use diesel::prelude::*;
    use lectern::db::schema::users;
    let app = TestApp::spawn().await;
    let id = app
        .create_user("a@example.com", "A", "admin", PASSWORD)
        .await;
    let http = app.login_client("a@example.com", PASSWORD).await;
    // Two views with nothing committed between them: the second may judge the session kept.
    assert_eq!(status_of(&http, app.url("/admin/users")).await, 200);
    assert_eq!(status_of(&http, app.url("/admin/users")).await, 200);
    // Changes made in plain SQL, as a database console would.
    app.db(move |conn| {
        Ok(diesel::update(users::table.find(id))
            .set(users::role.eq("moderator"))
            .execute(conn)?)
    })
    .await;
    assert_eq!(
        status_of(&http, app.url("/admin/users")).await,
        403,
        "a moderator now"
    );
    assert_eq!(status_of(&http, app.url("/admin")).await, 200);
    app.db(move |conn| {
        Ok(diesel::update(users::table.find(id))
            .set(users::disabled.eq(true))
            .execute(conn)?)
    })
    .await;
    assert_eq!(status_of(&http, app.url("/admin")).await, 303, "disabled");
}

/// A concrete URL for a route pattern.
fn fill(path: &str, comment_id: i32) -> String {
    format!("/admin{path}")
        .replace("{id}", &comment_id.to_string())
        .replace("{action}", "approve")
}

/// Everything a forged request could change, summed up.
async fn fingerprint(app: &TestApp) -> (i64, i64, i64, i64, Vec<(i32, String)>) {
    use diesel::prelude::*;
    use lectern::db::schema::{comments, moderation_log, sessions, users};
    app.db(|conn| {
        Ok((
            comments::table.count().get_result(conn)?,
            moderation_log::table.count().get_result(conn)?,
            sessions::table.count().get_result(conn)?,
            users::table.count().get_result(conn)?,
            comments::table
                .select((comments::id, comments::status))
                .order(comments::id)
                .load(conn)?,
        ))
    })
    .await
}

#[tokio::test]
async fn every_admin_post_route_refuses_a_missing_or_foreign_csrf_token_and_a_cross_site_origin() {
    let app = TestApp::spawn().await;
    let pending = crate::common::comment_id_from(
        &app.comment(
            "welcome-to-lectern",
            &[
                ("name", "P"),
                ("email", "p@example.com"),
                ("body", "pending one"),
            ],
        )
        .await,
    );
    let http = app.staff_client("admin").await;
    let own = app.csrf(&http).await;
    let other = app.staff_client("moderator").await;
    let foreign = app.csrf(&other).await;
    let before = fingerprint(&app).await;
    let routes = lectern::startup::admin_routes();
    let posts: Vec<_> = routes
        .iter()
        .filter(|(m, _, _)| m == actix_web::http::Method::POST)
        .collect();
    assert!(posts.len() >= 7, "the table lists the admin POST routes");
    for (_, path, _) in posts {
        let url = app.url(&fill(path, pending));
        let fields = [
            ("body", "x"),
            ("action", "approve"),
            ("ids", "1"),
            ("email", "a@example.com"),
            ("password", PASSWORD),
        ];
        let missing = http.post(&url).form(&fields).send().await.unwrap();
        assert_eq!(missing.status(), 403, "{path} without a token");
        let mut with_foreign = fields.to_vec();
        with_foreign.push(("csrf_token", &foreign));
        let forged = http.post(&url).form(&with_foreign).send().await.unwrap();
        assert_eq!(forged.status(), 403, "{path} with another session's token");
        let mut with_own = fields.to_vec();
        with_own.push(("csrf_token", &own));
        let cross = http
            .post(&url)
            .header("origin", "https://evil.example")
            .form(&with_own)
            .send()
            .await
            .unwrap();
        assert_eq!(cross.status(), 403, "{path} from another origin");
        let fetch = http
            .post(&url)
            .header("sec-fetch-site", "cross-site")
            .form(&with_own)
            .send()
            .await
            .unwrap();
        assert_eq!(
            fetch.status(),
            403,
            "{path} with Sec-Fetch-Site: cross-site"
        );
    }
    assert_eq!(fingerprint(&app).await, before, "nothing changed");
}

#[tokio::test]
async fn anonymous_visitors_are_sent_to_login_from_every_admin_page() {
    let app = TestApp::spawn().await;
    let http = client();
    for (method, path, _) in lectern::startup::admin_routes() {
        if method != actix_web::http::Method::GET
            || [
                "/login",
                "/setup",
                "/password-reset",
                "/password-reset/{token}",
            ]
            .contains(&path)
        {
            continue;
        }
        let response = http.get(app.url(&fill(path, 1))).send().await.unwrap();
        assert_eq!(response.status(), 303, "{path}");
        assert!(
            response.headers()["location"]
                .to_str()
                .unwrap()
                .starts_with("/admin/login?next="),
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_login_form_posted_from_another_site_is_refused() {
    let app = TestApp::spawn().await;
    app.create_user("a@example.com", "A", "admin", PASSWORD)
        .await;
    let http = client();
    let response = http
        .post(app.url("/admin/login"))
        .form(&[("email", "a@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403, "login without a token");
}

#[tokio::test]
async fn a_next_with_a_control_character_logs_in_to_the_dashboard_with_one_session() {
    use diesel::prelude::*;
    use lectern::db::schema::sessions;
    let app = TestApp::spawn().await;
    app.create_user("a@example.com", "A", "admin", PASSWORD)
        .await;
    for (n, next) in [
        "/admin/comments\r\nSet-Cookie: planted=1",
        "/admin\n",
        "/admin\u{7f}",
        "/admin/caf\u{e9}",
    ]
    .into_iter()
    .enumerate()
    {
        let http = client();
        let page = http
            .get(app.url("/admin/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = hidden_value(&page, "csrf_token").unwrap();
        let response = http
            .post(app.url("/admin/login"))
            .form(&[
                ("email", "a@example.com"),
                ("password", PASSWORD),
                ("csrf_token", &csrf),
                ("next", next),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303, "next {next:?}");
        assert_eq!(response.headers()["location"], "/admin", "next {next:?}");
        let count: i64 = app
            .db(|conn| Ok(sessions::table.count().get_result(conn)?))
            .await;
        assert_eq!(count, n as i64 + 1, "one session per login, none orphaned");
        // Already logged in, the login page sends the same `next` to the dashboard too.
        let again = http
            .get(app.url(&format!(
                "/admin/login?next={}",
                lectern::auth::urlencode(next)
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 303, "next {next:?}");
        assert_eq!(again.headers()["location"], "/admin", "next {next:?}");
    }
}
