//! Staff accounts for admins: the list, adding a user, changing a role, disabling and enabling.
//!
//! The site must never be left without an enabled admin: an admin cannot disable or demote
//! themselves, and the last enabled admin can be neither disabled nor demoted. Those checks run
//! inside the write transaction that makes the change, so two tabs cannot race past them.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use diesel::prelude::*;
use serde::Deserialize;

use crate::auth::handlers::hash_off_thread;
use crate::auth::{Admin, Staff};
use crate::db::ids::UserId;
use crate::db::schema::users as users_table;
use crate::db::{DbConn, DbError};
use crate::error::{AppError, AppResult};
use crate::http::forms::{FieldErrors, FormFields};
use crate::http::response::{render, see_other};
use crate::staff::{AdminLayout, web_actor};
use crate::state::AppState;
use crate::users::password::Password;
use crate::users::{self, NewStaff, Role, User};

/// How a user is named in the moderation log. Moderators can read the log but not the user
/// list, so it carries the id rather than the email address.
fn log_name(user: &User) -> String {
    format!("{} (user #{})", user.display_name, user.id)
}

/// One row of the user table as printed.
pub struct UserRow {
    pub id: UserId,
    pub display_name: String,
    pub slug: String,
    pub email: String,
    pub role: &'static str,
    pub disabled: bool,
    pub created: String,
    /// The author lectern made for the welcome post: no one logs in as it.
    pub builtin: bool,
}

/// The "Add user" form as typed: kept on a 422, passwords never.
#[derive(Default)]
pub struct AddForm {
    pub email: String,
    pub display_name: String,
    pub role: String,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    layout: AdminLayout,
    me: UserId,
    rows: Vec<UserRow>,
    notice: Option<&'static str>,
    problem: Option<String>,
    add: AddForm,
    errors: FieldErrors,
}

fn list_users(conn: &mut DbConn) -> Result<Vec<User>, DbError> {
    Ok(users_table::table
        .select(User::as_select())
        .order((users_table::created_at, users_table::id))
        .load(conn)?)
}

/// What a page shows after a change succeeded; a fixed set, so no text from the URL is echoed.
fn notice_for(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "added" => Some("User added. They can log in now."),
        "role" => Some("Role changed."),
        "disabled" => Some("User disabled and logged out everywhere."),
        "enabled" => Some("User enabled. They can log in again."),
        "unchanged" => Some("Nothing needed to change."),
        _ => None,
    }
}

async fn users_page(
    state: &AppState,
    staff: &Staff,
    status: StatusCode,
    notice: Option<&'static str>,
    problem: Option<String>,
    add: AddForm,
    errors: FieldErrors,
) -> AppResult<HttpResponse> {
    let tz = state.config.timezone;
    let rows = state
        .db
        .read(list_users)
        .await?
        .into_iter()
        .map(|u| UserRow {
            builtin: u.email == crate::site::welcome::PLACEHOLDER_EMAIL,
            id: u.id,
            role: u.role().as_str(),
            created: crate::views::post_date(u.created_at, tz),
            display_name: u.display_name,
            slug: u.slug,
            email: u.email,
            disabled: u.disabled,
        })
        .collect();
    render(
        UsersPage {
            layout: AdminLayout::new(state, staff, "Users", "users").await?,
            me: staff.user.id,
            rows,
            notice,
            problem,
            add,
            errors,
        },
        status,
    )
}

#[derive(Deserialize)]
pub struct UsersQuery {
    done: Option<String>,
}

/// `GET /admin/users`
pub async fn list(
    state: web::Data<AppState>,
    Admin(staff): Admin,
    query: web::Query<UsersQuery>,
) -> AppResult<HttpResponse> {
    let notice = notice_for(query.done.as_deref());
    users_page(
        &state,
        &staff,
        StatusCode::OK,
        notice,
        None,
        AddForm::default(),
        FieldErrors::new(),
    )
    .await
}

/// Why a change inside the transaction did not happen; the transaction rolls back.
enum Refusal {
    Db(DbError),
    NotFound,
    EmailTaken,
    Conflict(String),
}

impl From<DbError> for Refusal {
    fn from(e: DbError) -> Self {
        Refusal::Db(e)
    }
}

impl From<diesel::result::Error> for Refusal {
    fn from(e: diesel::result::Error) -> Self {
        Refusal::Db(e.into())
    }
}

/// `POST /admin/users`: adds a user (email, display_name, role, password, password_confirm).
pub async fn add(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(staff): Admin,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let form = FormFields::parse(&body)?;
    let field = |name: &str| form.get(name).unwrap_or("").to_string();
    let typed = AddForm {
        email: field("email"),
        display_name: field("display_name"),
        role: field("role"),
    };
    let password_text = field("password");
    let mut errors = FieldErrors::new();
    let email = users::parse_staff_email(&typed.email)
        .map_err(|e| errors.push(("email", format!("Email: {e}."))))
        .ok();
    let name = users::parse_display_name(&typed.display_name)
        .map_err(|e| errors.push(("display_name", format!("Name: {e}."))))
        .ok();
    let role = Role::parse(&typed.role);
    if role.is_none() {
        errors.push(("role", "Choose a role: admin or moderator.".into()));
    }
    let password = Password::parse(&password_text)
        .map_err(|e| errors.push(("password", format!("Password: {e}."))))
        .ok();
    if password.is_some() && form.get("password_confirm") != Some(password_text.as_str()) {
        errors.push(("password_confirm", "The two passwords differ.".into()));
    }
    let (Some(email), Some(name), Some(role), Some(password), true) =
        (email, name, role, password, errors.is_empty())
    else {
        return users_page(
            &state,
            &staff,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            None,
            typed,
            errors,
        )
        .await;
    };
    let hash = hash_off_thread(&state, password).await?;
    let actor = web_actor(&state, &req, &staff);
    let now = state.clock.now();
    let added = state
        .db
        .write(move |conn| -> Result<(), Refusal> {
            let staff = NewStaff {
                email: &email,
                display_name: &name,
                role,
                password_hash: &hash,
            };
            let user = users::create(conn, &staff, now)?.ok_or(Refusal::EmailTaken)?;
            let detail = format!("{} as {}", log_name(&user), role.as_str());
            crate::audit::log(conn, None, "user-add", &detail, &actor, now)?;
            Ok(())
        })
        .await;
    match added {
        Ok(()) => Ok(see_other("/admin/users?done=added")),
        Err(Refusal::EmailTaken) => {
            users_page(
                &state,
                &staff,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                None,
                typed,
                FieldErrors::from(vec![(
                    "email",
                    "A user with this email already exists.".into(),
                )]),
            )
            .await
        }
        Err(other) => refusal_response(&state, &staff, other).await,
    }
}

async fn refusal_response(
    state: &AppState,
    staff: &Staff,
    refusal: Refusal,
) -> AppResult<HttpResponse> {
    match refusal {
        Refusal::Db(e) => Err(e.into()),
        Refusal::NotFound => Err(AppError::NotFound),
        Refusal::EmailTaken => Err(AppError::Unprocessable(
            "A user with this email already exists.".into(),
        )),
        Refusal::Conflict(message) => {
            users_page(
                state,
                staff,
                StatusCode::CONFLICT,
                None,
                Some(message),
                AddForm::default(),
                FieldErrors::new(),
            )
            .await
        }
    }
}

/// Makes concurrent role and enabled changes take turns. SQLite's write transactions already
/// do (`BEGIN IMMEDIATE`); PostgreSQL's read-committed transactions do not, and two admins
/// demoting each other at the same moment would each still count the other and both succeed.
/// SHARE ROW EXCLUSIVE conflicts with itself and with writes, not with reads, so logins and
/// page views go on.
fn lock_staff_changes(conn: &mut DbConn) -> Result<(), DbError> {
    if let DbConn::Postgresql(pg) = conn {
        diesel::sql_query("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE").execute(pg)?;
    }
    Ok(())
}

/// The target of a change, with the rule that keeps an enabled admin on the site: refuses when
/// `target` is the acting admin, or the last enabled admin.
fn guard_last_admin(
    conn: &mut DbConn,
    actor_id: UserId,
    target: &User,
    doing: &str,
) -> Result<(), Refusal> {
    if target.id == actor_id {
        return Err(Refusal::Conflict(format!(
            "You cannot {doing} yourself. Ask another administrator. Nothing was changed."
        )));
    }
    if target.role() == Role::Admin && !target.disabled && users::count_enabled_admins(conn)? <= 1 {
        return Err(Refusal::Conflict(format!(
            "{} is the last enabled administrator; the site cannot be left without one. \
             Nothing was changed.",
            target.display_name
        )));
    }
    Ok(())
}

/// Runs one change to an existing user in a write transaction; answers where to go next.
async fn change_user(
    state: &AppState,
    staff: &Staff,
    change: impl FnOnce(&mut DbConn, User) -> Result<&'static str, Refusal> + Send + 'static,
    user_id: UserId,
) -> AppResult<HttpResponse> {
    let outcome = state
        .db
        .write(move |conn| -> Result<&'static str, Refusal> {
            lock_staff_changes(conn)?;
            let target = users::find_by_id(conn, user_id)?.ok_or(Refusal::NotFound)?;
            change(conn, target)
        })
        .await;
    match outcome {
        Ok(done) => Ok(see_other(&format!("/admin/users?done={done}"))),
        Err(refusal) => refusal_response(state, staff, refusal).await,
    }
}

/// `POST /admin/users/{id}/role` with `role` = admin | moderator.
pub async fn change_role(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(staff): Admin,
    path: web::Path<UserId>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let user_id = path.into_inner();
    let form = FormFields::parse(&body)?;
    let role = form.get("role").and_then(Role::parse).ok_or_else(|| {
        AppError::Unprocessable("Choose a role: admin or moderator. Nothing was changed.".into())
    })?;
    let actor = web_actor(&state, &req, &staff);
    let actor_id = staff.user.id;
    let now = state.clock.now();
    change_user(
        &state,
        &staff,
        move |conn, target| {
            if target.role() == role {
                return Ok("unchanged");
            }
            if role == Role::Moderator {
                guard_last_admin(conn, actor_id, &target, "demote")?;
            }
            diesel::update(users_table::table.find(target.id))
                .set((users_table::role.eq(role), users_table::updated_at.eq(now)))
                .execute(conn)?;
            let detail = format!(
                "{}: {} → {}",
                log_name(&target),
                target.role().as_str(),
                role.as_str()
            );
            crate::audit::log(conn, None, "user-role", &detail, &actor, now)?;
            Ok("role")
        },
        user_id,
    )
    .await
}

/// `POST /admin/users/{id}/disable`: the user can no longer log in, and every session of theirs
/// ends at once.
pub async fn disable(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(staff): Admin,
    path: web::Path<UserId>,
) -> AppResult<HttpResponse> {
    let user_id = path.into_inner();
    let actor = web_actor(&state, &req, &staff);
    let actor_id = staff.user.id;
    let now = state.clock.now();
    change_user(
        &state,
        &staff,
        move |conn, target| {
            if target.disabled {
                return Ok("unchanged");
            }
            guard_last_admin(conn, actor_id, &target, "disable")?;
            diesel::update(users_table::table.find(target.id))
                .set((
                    users_table::disabled.eq(true),
                    users_table::updated_at.eq(now),
                ))
                .execute(conn)?;
            let ended = users::end_sessions(conn, target.id)?;
            let detail = format!("{} ({ended} sessions ended)", log_name(&target));
            crate::audit::log(conn, None, "user-disable", &detail, &actor, now)?;
            Ok("disabled")
        },
        user_id,
    )
    .await
}

/// `POST /admin/users/{id}/enable`
pub async fn enable(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(staff): Admin,
    path: web::Path<UserId>,
) -> AppResult<HttpResponse> {
    let user_id = path.into_inner();
    let actor = web_actor(&state, &req, &staff);
    let now = state.clock.now();
    change_user(
        &state,
        &staff,
        move |conn, target| {
            if !target.disabled {
                return Ok("unchanged");
            }
            diesel::update(users_table::table.find(target.id))
                .set((
                    users_table::disabled.eq(false),
                    users_table::updated_at.eq(now),
                ))
                .execute(conn)?;
            crate::audit::log(conn, None, "user-enable", &log_name(&target), &actor, now)?;
            Ok("enabled")
        },
        user_id,
    )
    .await
}
