//! Typed row ids: a comment's id cannot be passed where a post's is expected.
//!
//! Each is an `i32` stored in an `Integer` column; serde sees the bare number, so
//! `web::Path<CommentId>` and JSON read and write it as before.

macro_rules! integer_id {
    // A list of ids (`eq_any`) is bound through each real backend's own `ToSql`.
    (@backend $ty:ident, $backend:ty) => {
        impl diesel::serialize::ToSql<diesel::sql_types::Integer, $backend> for $ty {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, $backend>,
            ) -> diesel::serialize::Result {
                <i32 as diesel::serialize::ToSql<diesel::sql_types::Integer, $backend>>::to_sql(
                    &self.0, out,
                )
            }
        }
    };
    ($(#[$doc:meta])* $ty:ident) => {
        $(#[$doc])*
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            Hash,
            PartialOrd,
            Ord,
            diesel::AsExpression,
            diesel::FromSqlRow,
            serde::Serialize,
            serde::Deserialize,
        )]
        #[diesel(sql_type = diesel::sql_types::Integer)]
        #[serde(transparent)]
        pub struct $ty(pub i32);

        integer_id!(@backend $ty, diesel::pg::Pg);
        integer_id!(@backend $ty, diesel::sqlite::Sqlite);

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl diesel::serialize::ToSql<diesel::sql_types::Integer, super::MultiBackend> for $ty {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, super::MultiBackend>,
            ) -> diesel::serialize::Result {
                out.set_value((diesel::sql_types::Integer, &self.0));
                Ok(diesel::serialize::IsNull::No)
            }
        }

        impl diesel::deserialize::FromSql<diesel::sql_types::Integer, super::MultiBackend>
            for $ty
        {
            fn from_sql(
                bytes: <super::MultiBackend as diesel::backend::Backend>::RawValue<'_>,
            ) -> diesel::deserialize::Result<Self> {
                <i32 as diesel::deserialize::FromSql<
                    diesel::sql_types::Integer,
                    super::MultiBackend,
                >>::from_sql(bytes)
                .map($ty)
            }
        }
    };
}

integer_id!(
    /// `comments.id` (and the `parent_id`, `comment_id` columns that point at it).
    CommentId
);
integer_id!(
    /// `posts.id` (and every `post_id` column).
    PostId
);
integer_id!(
    /// `users.id` (and every `user_id`/`author_id` column).
    UserId
);

// Stored in `comments.format`; the renderers live in `render`, a leaf below this module.
crate::db::text_column_enum!(crate::render::CommentFormat);
