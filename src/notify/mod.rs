//! Email: the outbox, its worker and transports, signed links and the addresses that asked for
//! (or stopped) notifications. Features decide what to send and call `enqueue` inside their own
//! write transaction; each call writes a row to the outbox, which the worker delivers. Only this
//! module knows lettre, and it knows no feature.

pub mod emails;
pub mod links;
pub mod outbox;
pub mod tokens;
pub mod transport;
pub mod worker;

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use self::emails::{Email, Site};
use self::tokens::Link;
use crate::db::schema::notify_addresses;
use crate::db::{DbConn, DbError};
use crate::state::MailContext;

impl MailContext {
    pub fn site(&self) -> Site {
        Site {
            title: self.site_title.clone(),
            url: self.url("/"),
        }
    }

    /// A signed link to `route`, valid until `expires`.
    pub fn link(&self, link: &Link, expires: NaiveDateTime, route: &str) -> String {
        self.url(&format!(
            "{route}{}",
            tokens::issue(&self.signer, link, expires)
        ))
    }

    /// The page where a commenter asks for a link to their own comments.
    pub fn my_comments_url(&self) -> String {
        self.url("/my-comments")
    }

    /// Unsubscribe links do not expire: an old email must still be able to stop the next one.
    pub fn unsubscribe_url(&self, email: &str, now: NaiveDateTime) -> String {
        self.link(
            &Link::Unsubscribe {
                email: email.to_string(),
            },
            now + Duration::days(365 * 20),
            "/unsubscribe/",
        )
    }
}

/// Puts one email in the outbox.
pub fn enqueue(
    conn: &mut DbConn,
    ctx: &MailContext,
    email: &dyn Email,
    to_name: &str,
    to_address: &str,
    list_unsubscribe: Option<&str>,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    let rendered = email
        .render()
        .map_err(|e| DbError::Task(format!("rendering the {} email failed: {e}", email.kind())))?;
    let message_id = format!("<{}@{}>", crate::crypto::random_token(18), ctx.domain);
    outbox::insert(
        conn,
        &outbox::NewOutboxRow {
            message_id: &message_id,
            kind: email.kind(),
            to_name,
            to_address,
            subject: &rendered.subject,
            body_text: &rendered.text,
            body_html: &rendered.html,
            list_unsubscribe,
            status: "queued",
            next_attempt_at: now,
            created_at: now,
        },
    )?;
    Ok(())
}

/// Sends `email` at once through `transport`, bypassing the outbox: for `lectern check
/// --send-test-email`, whose operator waits for the answer. Returns the Message-ID.
pub async fn send_now(
    transport: &transport::Transport,
    from: &lettre::message::Mailbox,
    domain: &str,
    email: &dyn Email,
    to_address: &str,
) -> Result<String, String> {
    let rendered = email
        .render()
        .map_err(|e| format!("rendering the {} email failed: {e}", email.kind()))?;
    let now = crate::db::now();
    let row = outbox::OutboxRow {
        id: 0,
        message_id: format!("<{}@{}>", crate::crypto::random_token(18), domain),
        kind: email.kind().to_string(),
        to_name: String::new(),
        to_address: to_address.to_string(),
        subject: rendered.subject,
        body_text: rendered.text,
        body_html: rendered.html,
        list_unsubscribe: None,
        status: "sending".into(),
        attempts: 0,
        next_attempt_at: now,
        locked_until: None,
        first_deferred_at: None,
        last_error: None,
        created_at: now,
        sent_at: None,
        lease_token: None,
    };
    let message = worker::build_message(&row, from)?;
    // Nobody else can take this message: the hand-over is always allowed.
    let handover = transport::Handover::new(
        std::time::Instant::now() + std::time::Duration::from_secs(3600),
        std::time::Duration::ZERO,
    );
    transport
        .send(message, &handover)
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.message_id)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressState {
    /// Never asked, or asked and not yet confirmed.
    Unconfirmed {
        confirmation_sent: bool,
    },
    Confirmed,
    Unsubscribed,
}

/// Where an address stands: whether it may be sent notifications, or asked to confirm.
pub fn address_state(conn: &mut DbConn, email: &str) -> Result<AddressState, DbError> {
    let row: Option<(
        Option<NaiveDateTime>,
        Option<NaiveDateTime>,
        Option<NaiveDateTime>,
    )> = notify_addresses::table
        .find(email)
        .select((
            notify_addresses::confirmation_sent_at,
            notify_addresses::confirmed_at,
            notify_addresses::unsubscribed_at,
        ))
        .first(conn)
        .optional()?;
    Ok(match row {
        None => AddressState::Unconfirmed {
            confirmation_sent: false,
        },
        Some((_, _, Some(_))) => AddressState::Unsubscribed,
        Some((_, Some(_), None)) => AddressState::Confirmed,
        Some((sent, None, None)) => AddressState::Unconfirmed {
            confirmation_sent: sent.is_some(),
        },
    })
}

/// What happened to an address that asked for notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressEvent {
    /// The double opt-in message was put in the outbox.
    ConfirmationSent,
    /// Its owner followed the confirmation link (this also undoes an unsubscription).
    Confirmed,
    /// Its owner followed an unsubscribe link: no notification goes there any more.
    Unsubscribed,
}

/// Keeps `email` as an address that asked for notifications elsewhere (an import) but has not
/// confirmed with this site: nothing is sent to it, and no confirmation is asked for, until
/// its owner asks again here. An address already known is left as it is.
pub fn remember_unconfirmed(
    conn: &mut DbConn,
    email: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let known: i64 = notify_addresses::table
        .filter(notify_addresses::email.eq(email))
        .count()
        .get_result(conn)?;
    if known > 0 {
        return Ok(false);
    }
    diesel::insert_into(notify_addresses::table)
        .values((
            notify_addresses::email.eq(email),
            notify_addresses::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(true)
}

/// Records `event` for `email` at `now`, creating the address's row on first use
/// (idempotent).
pub fn record_address(
    conn: &mut DbConn,
    email: &str,
    event: AddressEvent,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    let known: i64 = notify_addresses::table
        .filter(notify_addresses::email.eq(email))
        .count()
        .get_result(conn)?;
    if known == 0 {
        diesel::insert_into(notify_addresses::table)
            .values((
                notify_addresses::email.eq(email),
                notify_addresses::created_at.eq(now),
            ))
            .execute(conn)?;
    }
    let row = notify_addresses::table.find(email);
    match event {
        AddressEvent::ConfirmationSent => diesel::update(row)
            .set(notify_addresses::confirmation_sent_at.eq(Some(now)))
            .execute(conn)?,
        AddressEvent::Confirmed => diesel::update(row)
            .set((
                notify_addresses::confirmed_at.eq(Some(now)),
                notify_addresses::unsubscribed_at.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)?,
        AddressEvent::Unsubscribed => diesel::update(row)
            .set(notify_addresses::unsubscribed_at.eq(Some(now)))
            .execute(conn)?,
    };
    Ok(())
}
