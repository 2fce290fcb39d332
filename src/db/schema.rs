// Hand-kept: one schema in the types both backends share (see STACK-NOTES.md).

diesel::table! {
    users (id) {
        id -> Integer,
        email -> Text,
        display_name -> Text,
        slug -> Text,
        bio -> Text,
        role -> Text,
        password_hash -> Text,
        disabled -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        // Migration 000017: the author avatar's seed, kept so it survives a restore without
        // the secret (filled in at start-up).
        avatar_seed -> Nullable<Integer>,
    }
}

diesel::table! {
    posts (id) {
        id -> Integer,
        slug -> Text,
        title -> Text,
        body_markdown -> Text,
        body_html -> Text,
        excerpt -> Text,
        author_id -> Integer,
        kind -> Text,
        status -> Text,
        status_before_trash -> Nullable<Text>,
        published_at -> Timestamp,
        comments_open -> Bool,
        approved_comment_count -> Integer,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        thread_version -> BigInt,
    }
}

diesel::table! {
    tags (id) {
        id -> Integer,
        name -> Text,
        slug -> Text,
    }
}

diesel::table! {
    post_tags (post_id, tag_id) {
        post_id -> Integer,
        tag_id -> Integer,
    }
}

diesel::table! {
    comments (id) {
        id -> Integer,
        post_id -> Integer,
        parent_id -> Nullable<Integer>,
        user_id -> Nullable<Integer>,
        author_name -> Text,
        author_email -> Text,
        author_url -> Nullable<Text>,
        body -> Text,
        body_html -> Text,
        status -> Text,
        status_before -> Nullable<Text>,
        held_reason -> Nullable<Text>,
        ip -> Nullable<Text>,
        ip_network -> Nullable<Text>,
        user_agent -> Text,
        avatar_seed -> Integer,
        notify -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
        published_notified_at -> Nullable<Timestamp>,
        format -> Text,
        edited_at -> Nullable<Timestamp>,
        previous_body -> Nullable<Text>,
    }
}

diesel::table! {
    post_search (post_id) {
        post_id -> Integer,
        title -> Text,
        body -> Text,
        tags -> Text,
    }
}

diesel::table! {
    moderation_log (id) {
        id -> Integer,
        comment_id -> Nullable<Integer>,
        user_id -> Nullable<Integer>,
        action -> Text,
        via -> Text,
        detail -> Text,
        ip -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    login_failures (id) {
        id -> Integer,
        email -> Text,
        ip_network -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    comment_counts (status) {
        status -> Text,
        total -> Integer,
    }
}

diesel::table! {
    sessions (id_hash) {
        id_hash -> Text,
        user_id -> Integer,
        csrf_token -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        ip -> Nullable<Text>,
        user_agent -> Text,
    }
}

diesel::table! {
    outbox (id) {
        id -> Integer,
        message_id -> Text,
        kind -> Text,
        to_name -> Text,
        to_address -> Text,
        subject -> Text,
        body_text -> Text,
        body_html -> Text,
        list_unsubscribe -> Nullable<Text>,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
        first_deferred_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
        lease_token -> Nullable<Text>,
    }
}

diesel::table! {
    notify_addresses (email) {
        email -> Text,
        confirmation_sent_at -> Nullable<Timestamp>,
        confirmed_at -> Nullable<Timestamp>,
        unsubscribed_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    used_tokens (token_hash) {
        token_hash -> Text,
        used_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    settings (name) {
        name -> Text,
        value -> Text,
    }
}

diesel::table! {
    blocks (id) {
        id -> Integer,
        kind -> Text,
        value -> Text,
        expires_at -> Nullable<Timestamp>,
        created_by -> Nullable<Integer>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    post_slugs (old_slug) {
        old_slug -> Text,
        post_id -> Integer,
    }
}

diesel::table! {
    password_reset_requests (id) {
        id -> Integer,
        user_id -> Integer,
        created_at -> Timestamp,
    }
}

diesel::table! {
    my_comments_requests (id) {
        id -> Integer,
        address_key -> Text,
        ip_network -> Text,
        created_at -> Timestamp,
    }
}

// The moderator's desk (migration 000014): flash notices and the dashboard's counts.
diesel::table! {
    admin_notices (id) {
        id -> Integer,
        user_id -> Integer,
        session_hash -> Nullable<Text>,
        message -> Text,
        undo -> Text,
        view_href -> Nullable<Text>,
        created_at -> Timestamp,
        shown_at -> Nullable<Timestamp>,
        undone_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    comment_hours (hour, status) {
        hour -> Timestamp,
        status -> Text,
        total -> Integer,
    }
}

diesel::table! {
    held_reason_days (day, reason) {
        day -> Timestamp,
        reason -> Text,
        total -> Integer,
    }
}

diesel::table! {
    post_comment_months (month, post_id) {
        month -> Timestamp,
        post_id -> Integer,
        total -> Integer,
    }
}

diesel::joinable!(post_comment_months -> posts (post_id));
diesel::joinable!(media_variants -> media (media_id));
diesel::joinable!(media_chunks -> media_variants (variant_id));

diesel::allow_tables_to_appear_in_same_query!(post_comment_months, posts);

diesel::table! {
    import_items (source, kind, source_id) {
        source -> Text,
        kind -> Text,
        source_id -> Text,
        target_id -> Integer,
    }
}

diesel::table! {
    old_addresses (address) {
        address -> Text,
        post_id -> Nullable<Integer>,
        target -> Text,
    }
}

diesel::table! {
    import_runs (id) {
        id -> Integer,
        state -> Text,
        file_name -> Text,
        file_path -> Text,
        progress -> Text,
        report -> Text,
        created_by -> Nullable<Integer>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    media (id) {
        id -> Integer,
        sha256 -> Text,
        upload_sha256 -> Text,
        format -> Text,
        file_name -> Text,
        alt -> Text,
        width -> Integer,
        height -> Integer,
        byte_size -> BigInt,
        uploaded_by -> Nullable<Integer>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    media_variants (id) {
        id -> Integer,
        media_id -> Integer,
        width -> Integer,
        height -> Integer,
        format -> Text,
        byte_size -> BigInt,
    }
}

diesel::table! {
    media_chunks (variant_id, seq) {
        variant_id -> Integer,
        seq -> Integer,
        data -> Binary,
    }
}

diesel::joinable!(posts -> users (author_id));
diesel::joinable!(post_tags -> posts (post_id));
diesel::joinable!(post_tags -> tags (tag_id));
diesel::joinable!(post_slugs -> posts (post_id));
diesel::joinable!(post_search -> posts (post_id));
diesel::joinable!(old_addresses -> posts (post_id));
diesel::joinable!(comments -> posts (post_id));
diesel::joinable!(sessions -> users (user_id));

diesel::joinable!(moderation_log -> users (user_id));
diesel::joinable!(blocks -> users (created_by));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    posts,
    tags,
    post_tags,
    post_slugs,
    comments,
    sessions,
    settings,
    moderation_log,
    login_failures,
    comment_counts,
    outbox,
    notify_addresses,
    used_tokens,
    blocks,
    password_reset_requests,
    my_comments_requests,
    post_search,
    import_items,
    old_addresses,
    import_runs,
    media,
    media_variants,
    media_chunks
);
