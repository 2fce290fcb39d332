//! Staff accounts: admins and moderators.

pub mod password;

use diesel::prelude::*;

use crate::db::ids::UserId;
use crate::db::schema::users;
use crate::db::{DbConn, DbError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum Role {
    Admin,
    Moderator,
}

crate::db::text_column_enum!(Role);

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Moderator => "moderator",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "moderator" => Some(Role::Moderator),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub display_name: String,
    pub slug: String,
    pub bio: String,
    pub role: Role,
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: chrono::NaiveDateTime,
    pub updated_at: chrono::NaiveDateTime,
    /// The author avatar's stored seed; `None` until start-up fills it in.
    pub avatar_seed: Option<i32>,
}

impl User {
    pub fn role(&self) -> Role {
        self.role
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub email: &'a str,
    pub display_name: &'a str,
    pub slug: &'a str,
    pub bio: &'a str,
    pub role: Role,
    pub password_hash: &'a str,
    pub disabled: bool,
    pub created_at: chrono::NaiveDateTime,
    pub updated_at: chrono::NaiveDateTime,
}

/// A staff email address: trimmed, one `@`, no spaces or control characters; compared
/// case-insensitively, so stored lower-case.
pub fn parse_staff_email(text: &str) -> Result<String, String> {
    let email = text.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split('@').count() == 2
        && !email.starts_with('@')
        && !email.ends_with('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(email)
    } else {
        Err(format!("{:?} is not an email address", text.trim()))
    }
}

pub fn parse_display_name(text: &str) -> Result<String, String> {
    let name = text.trim();
    if name.is_empty() {
        return Err("the name must not be empty".into());
    }
    if name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err("the name must be at most 100 characters, with no control characters".into());
    }
    Ok(name.to_string())
}

pub fn find_by_email(conn: &mut DbConn, email: &str) -> Result<Option<User>, DbError> {
    Ok(users::table
        .filter(users::email.eq(email))
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_by_id(conn: &mut DbConn, id: UserId) -> Result<Option<User>, DbError> {
    Ok(users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_by_slug(conn: &mut DbConn, slug: &str) -> Result<Option<User>, DbError> {
    Ok(users::table
        .filter(users::slug.eq(slug))
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

pub fn count_enabled_admins(conn: &mut DbConn) -> Result<i64, DbError> {
    Ok(users::table
        .filter(users::role.eq(Role::Admin))
        .filter(users::disabled.eq(false))
        .count()
        .get_result(conn)?)
}

/// A slug for a new author page that no other user has: the name's slug, then `-2`, `-3`, ….
pub fn unused_slug(conn: &mut DbConn, display_name: &str) -> Result<String, DbError> {
    let base = match crate::text::slugify(display_name) {
        s if s.is_empty() => "author".to_string(),
        s => s,
    };
    let mut candidate = base.clone();
    let mut n = 2;
    while find_by_slug(conn, &candidate)?.is_some() {
        candidate = format!("{base}-{n}");
        n += 1;
    }
    Ok(candidate)
}

/// A staff account as the setup page, the users page and the command line give it; `create`
/// chooses its author slug.
pub struct NewStaff<'a> {
    pub email: &'a str,
    pub display_name: &'a str,
    pub role: Role,
    pub password_hash: &'a str,
}

/// Creates a staff account with a free author slug, or `None` when the email already has one.
///
/// On PostgreSQL another transaction may take the same slug or email between the checks and the
/// insert (SQLite's writers queue, so there it cannot happen). The insert runs in a savepoint;
/// after a unique violation the checks run again, see the other row, and tell the two apart.
pub fn create(
    conn: &mut DbConn,
    staff: &NewStaff<'_>,
    now: chrono::NaiveDateTime,
) -> Result<Option<User>, DbError> {
    const TRIES: u32 = 5;
    let mut tries = 1;
    loop {
        if find_by_email(conn, staff.email)?.is_some() {
            return Ok(None);
        }
        let slug = unused_slug(conn, staff.display_name)?;
        let new_user = NewUser {
            email: staff.email,
            display_name: staff.display_name,
            slug: &slug,
            bio: "",
            role: staff.role,
            password_hash: staff.password_hash,
            disabled: false,
            created_at: now,
            updated_at: now,
        };
        match conn.transaction(|conn| insert(conn, &new_user)) {
            Err(e) if e.is_unique_violation() && tries < TRIES => tries += 1,
            outcome => return outcome.map(Some),
        }
    }
}

pub fn insert(conn: &mut DbConn, new_user: &NewUser<'_>) -> Result<User, DbError> {
    Ok(diesel::insert_into(users::table)
        .values(new_user)
        .returning(users::all_columns)
        .get_result(conn)?)
}

/// Password reset emails an account may be sent in an hour.
pub const RESETS_PER_HOUR: i64 = 3;

/// Records a password reset request for `user_id` and says whether an email may go out: no more
/// than `RESETS_PER_HOUR`, so a stranger who knows a staff address cannot fill its inbox.
pub fn note_reset_request(
    conn: &mut DbConn,
    user_id: UserId,
    now: chrono::NaiveDateTime,
) -> Result<bool, DbError> {
    use crate::db::schema::password_reset_requests as requests;
    let recent: i64 = requests::table
        .filter(requests::user_id.eq(user_id))
        .filter(requests::created_at.gt(now - chrono::Duration::hours(1)))
        .count()
        .get_result(conn)?;
    if recent >= RESETS_PER_HOUR {
        return Ok(false);
    }
    diesel::insert_into(requests::table)
        .values((requests::user_id.eq(user_id), requests::created_at.eq(now)))
        .execute(conn)?;
    // Older rows serve no purpose; trimming here keeps the table small without a job.
    diesel::delete(
        requests::table.filter(requests::created_at.lt(now - chrono::Duration::days(1))),
    )
    .execute(conn)?;
    Ok(true)
}

pub fn set_password_hash(conn: &mut DbConn, user_id: UserId, hash: &str) -> Result<(), DbError> {
    diesel::update(users::table.find(user_id))
        .set((
            users::password_hash.eq(hash),
            users::updated_at.eq(crate::db::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Ends every session of a user (password change, disabling).
pub fn end_sessions(conn: &mut DbConn, user_id: UserId) -> Result<usize, DbError> {
    use crate::db::schema::sessions;
    Ok(diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(conn)?)
}

/// The seed of an author's avatar: the stored one, else drawn from the secret and the slug (as
/// every author's was before migration 000017 stored them).
pub fn author_avatar_seed(signer: &crate::crypto::Signer, slug: &str, stored: Option<i32>) -> u32 {
    match stored {
        Some(seed) => seed as u32,
        None => signer.keyed_u32("author-avatar", slug),
    }
}

/// Stores the avatar seed of every user who has none yet, as drawn from the secret, so that
/// their avatar no longer depends on it (a restore without the secret keeps it). Returns how
/// many were filled in.
pub fn fill_avatar_seeds(
    conn: &mut DbConn,
    signer: &crate::crypto::Signer,
) -> Result<usize, DbError> {
    let missing: Vec<(UserId, String)> = users::table
        .filter(users::avatar_seed.is_null())
        .select((users::id, users::slug))
        .load(conn)?;
    for (id, slug) in &missing {
        let seed = author_avatar_seed(signer, slug, None) as i32;
        diesel::update(users::table.find(id))
            .set(users::avatar_seed.eq(Some(seed)))
            .execute(conn)?;
    }
    Ok(missing.len())
}
