//! The welcome post's placeholder author, handed over to the first real admin. (The welcome
//! post itself is written by `crate::welcome`, which knows posts and comments.)

use diesel::prelude::*;

use crate::db::ids::UserId;
use crate::db::schema::users;
use crate::db::{DbConn, DbError};

/// The disabled account that signs the welcome post until an admin exists.
/// The welcome post's address on a new site.
pub const WELCOME_SLUG: &str = "welcome-to-lectern";

pub const PLACEHOLDER_EMAIL: &str = "welcome@lectern.invalid";

/// The first real admin takes over the welcome post from the placeholder author, if it is still
/// there, so the post's author box names a person who can be reached.
pub fn adopt_welcome_post(conn: &mut DbConn, admin_id: UserId) -> Result<(), DbError> {
    use crate::db::schema::posts;
    let placeholder: Option<UserId> = users::table
        .filter(users::email.eq(PLACEHOLDER_EMAIL))
        .select(users::id)
        .first(conn)
        .optional()?;
    if let Some(placeholder) = placeholder {
        diesel::update(posts::table.filter(posts::author_id.eq(placeholder)))
            .set(posts::author_id.eq(admin_id))
            .execute(conn)?;
    }
    Ok(())
}
