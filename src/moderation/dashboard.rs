//! The dashboard's pictures: comments per day for 30 days stacked by status, why comments were
//! held, the outbox, and the posts with the most comments this month. The numbers come from the
//! tables the triggers of migration 000014 keep (a few hundred rows, however many comments);
//! the charts are inline SVG drawn by the template from the shapes computed here, each with a
//! `<title>` and a data table beside it.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone};
use diesel::prelude::*;

use crate::comments::CommentStatus;
use crate::db::schema::{comment_hours, held_reason_days, outbox, post_comment_months, posts};
use crate::db::{DbConn, DbError};

pub const DAYS: usize = 30;
/// The drawing area of the day chart, in SVG units (it scales to its box).
const CHART_W: f64 = 720.0;
const CHART_H: f64 = 180.0;
const LEFT: f64 = 36.0;
const TOP: f64 = 8.0;

/// The statuses stacked in the day chart, bottom to top.
pub const STACK: [CommentStatus; 4] = [
    CommentStatus::Approved,
    CommentStatus::Pending,
    CommentStatus::Spam,
    CommentStatus::Trash,
];

/// What the dashboard reads, in one read transaction.
pub struct Numbers {
    pub hours: Vec<(NaiveDateTime, String, i32)>,
    pub reasons: Vec<(String, i32)>,
    pub top_posts: Vec<(String, String, i32)>,
    pub outbox: OutboxNumbers,
}

pub struct OutboxNumbers {
    pub sent: i64,
    pub queued: i64,
    pub failed: i64,
    /// When the oldest unsent message was written (its age is taken at each view).
    pub oldest_queued_at: Option<NaiveDateTime>,
}

impl OutboxNumbers {
    pub fn oldest_queued_secs(&self, now: NaiveDateTime) -> i64 {
        self.oldest_queued_at
            .map_or(0, |at| (now - at).num_seconds().max(0))
    }
}

/// Reads the maintained counts for the 30 days before `now` (in `tz`), this month's top posts
/// and the outbox.
pub fn load(conn: &mut DbConn, now: NaiveDateTime, tz: chrono_tz::Tz) -> Result<Numbers, DbError> {
    // A day longer than needed: the hours are UTC and are put into local days afterwards.
    let since = now - Duration::days(DAYS as i64 + 1);
    let hours: Vec<(NaiveDateTime, String, i32)> = comment_hours::table
        .filter(comment_hours::hour.ge(since))
        .filter(comment_hours::total.gt(0))
        .select((
            comment_hours::hour,
            comment_hours::status,
            comment_hours::total,
        ))
        .load(conn)?;
    let day_rows: Vec<(String, i32)> = held_reason_days::table
        .filter(held_reason_days::day.ge(now - Duration::days(DAYS as i64)))
        .select((held_reason_days::reason, held_reason_days::total))
        .load(conn)?;
    let mut reasons: BTreeMap<String, i32> = BTreeMap::new();
    for (reason, n) in day_rows {
        *reasons.entry(reason).or_default() += n;
    }
    let mut reasons: Vec<(String, i32)> = reasons.into_iter().filter(|(_, n)| *n > 0).collect();
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let local = tz.from_utc_datetime(&now);
    let month_start = NaiveDate::from_ymd_opt(local.year(), local.month(), 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or(now);
    let top_posts: Vec<(String, String, i32)> = post_comment_months::table
        .inner_join(posts::table)
        .filter(post_comment_months::month.eq(month_start))
        .filter(post_comment_months::total.gt(0))
        .order(post_comment_months::total.desc())
        .limit(5)
        .select((posts::title, posts::slug, post_comment_months::total))
        .load(conn)?;
    let summary = crate::notify::outbox::queue_summary(conn)?;
    let sent: i64 = outbox::table
        .filter(outbox::status.eq("sent"))
        .count()
        .get_result(conn)?;
    Ok(Numbers {
        hours,
        reasons,
        top_posts,
        outbox: OutboxNumbers {
            sent,
            queued: summary.queued,
            failed: summary.failed,
            oldest_queued_at: summary.oldest_queued_at,
        },
    })
}

/// One piece of a stacked bar.
pub struct Segment {
    pub class: &'static str,
    pub y: String,
    pub height: String,
}

/// One day of the chart.
pub struct DayBar {
    pub label: String,
    pub short: String,
    pub x: String,
    pub width: String,
    /// approved, pending, spam, trash
    pub counts: [i64; 4],
    pub total: i64,
    pub segments: Vec<Segment>,
    /// A date label under the bar (every fifth day).
    pub tick: bool,
    pub tick_x: String,
}

/// A horizontal gridline with its value.
pub struct Gridline {
    pub y: String,
    pub label: String,
}

pub struct DayChart {
    pub bars: Vec<DayBar>,
    pub grid: Vec<Gridline>,
    pub total: i64,
    pub summary: String,
}

/// A round scale top at or above `max`.
fn nice_top(max: i64) -> i64 {
    if max <= 4 {
        return 4;
    }
    let magnitude = 10_i64.pow((max as f64).log10().floor() as u32);
    for step in [1, 2, 4, 5, 10] {
        let top = step * magnitude;
        if top >= max {
            return top;
        }
    }
    10 * magnitude
}

fn num(x: f64) -> String {
    format!("{x:.1}")
}

/// The 30 local days ending today, from the UTC hours.
pub fn day_chart(
    hours: &[(NaiveDateTime, String, i32)],
    now: NaiveDateTime,
    tz: chrono_tz::Tz,
) -> DayChart {
    let today = tz.from_utc_datetime(&now).date_naive();
    let first = today - Duration::days(DAYS as i64 - 1);
    let mut counts = vec![[0_i64; 4]; DAYS];
    for (hour, status, n) in hours {
        let day = tz.from_utc_datetime(hour).date_naive();
        let Ok(index) = usize::try_from((day - first).num_days()) else {
            continue;
        };
        let Some(slot) = STACK.iter().position(|s| s.as_str() == status) else {
            continue;
        };
        if let Some(row) = counts.get_mut(index) {
            row[slot] += i64::from(*n);
        }
    }
    let max = counts
        .iter()
        .map(|c| c.iter().sum::<i64>())
        .max()
        .unwrap_or(0);
    let top = nice_top(max);
    let slot_w = (CHART_W - LEFT) / DAYS as f64;
    let scale = CHART_H / top as f64;
    let bars = counts
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let day = first + Duration::days(i as i64);
            let x = LEFT + slot_w * i as f64 + 1.0;
            let mut base = TOP + CHART_H;
            let mut segments = Vec::new();
            for (slot, n) in c.iter().enumerate() {
                if *n == 0 {
                    continue;
                }
                let h = *n as f64 * scale;
                base -= h;
                segments.push(Segment {
                    class: STACK[slot].as_str(),
                    y: num(base),
                    height: num(h),
                });
            }
            DayBar {
                label: day.format("%B %-d").to_string(),
                short: day.format("%b %-d").to_string(),
                x: num(x),
                width: num(slot_w - 2.0),
                counts: *c,
                total: c.iter().sum(),
                segments,
                tick: i % 5 == 4 || i == 0,
                tick_x: num(x + (slot_w - 2.0) / 2.0),
            }
        })
        .collect::<Vec<_>>();
    let grid = [0, top / 2, top]
        .into_iter()
        .map(|v| Gridline {
            y: num(TOP + CHART_H - v as f64 * scale),
            label: v.to_string(),
        })
        .collect();
    let total: i64 = bars.iter().map(|b| b.total).sum();
    let busiest = bars.iter().max_by_key(|b| b.total);
    let summary = match busiest {
        Some(b) if total > 0 => format!(
            "{total} comments in the last 30 days; the busiest day was {} with {}.",
            b.label, b.total
        ),
        _ => "No comments in the last 30 days.".to_string(),
    };
    DayChart {
        bars,
        grid,
        total,
        summary,
    }
}

/// A labelled horizontal bar (held reasons, top posts).
pub struct HBar {
    /// Cut to fit the drawing; `full` goes in the table.
    pub label: String,
    pub full: String,
    pub href: Option<String>,
    pub count: i64,
    pub y: String,
    pub text_y: String,
    pub width: String,
    pub value_x: String,
}

pub struct HChart {
    pub bars: Vec<HBar>,
    pub height: String,
}

/// Bars scaled to the largest, one row each, in a 480-wide drawing.
pub fn hbars(rows: Vec<(String, Option<String>, i64)>) -> HChart {
    const ROW: f64 = 26.0;
    const BAR_LEFT: f64 = 170.0;
    const BAR_MAX: f64 = 260.0;
    let max = rows.iter().map(|r| r.2).max().unwrap_or(1).max(1);
    let bars: Vec<HBar> = rows
        .into_iter()
        .enumerate()
        .map(|(i, (label, href, count))| {
            let w = (count as f64 / max as f64 * BAR_MAX).max(2.0);
            let y = i as f64 * ROW + 4.0;
            HBar {
                label: shorten(&label, 26),
                full: label,
                href,
                count,
                y: num(y),
                text_y: num(y + 13.0),
                width: num(w),
                value_x: num(BAR_LEFT + w + 6.0),
            }
        })
        .collect();
    HChart {
        height: num(bars.len() as f64 * ROW + 8.0),
        bars,
    }
}

/// At most `max` characters, with an ellipsis when cut (SVG text does not wrap).
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}

/// "3 min", "2 h 5 min": how long the oldest queued message has waited.
pub fn waited(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        s => format!("{} days", s / 86_400),
    }
}

/// The held reasons as moderators read them.
pub fn reason_label(key: &str) -> String {
    match key {
        "links" => "too many links".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_end_on_round_numbers() {
        assert_eq!(nice_top(0), 4);
        assert_eq!(nice_top(7), 10);
        assert_eq!(nice_top(11), 20);
        assert_eq!(nice_top(35), 40);
        assert_eq!(nice_top(41), 50);
        assert_eq!(nice_top(33_333), 40_000);
    }

    #[test]
    fn hours_fall_into_local_days() {
        let now = NaiveDate::from_ymd_opt(2026, 12, 2)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap();
        let late = NaiveDate::from_ymd_opt(2026, 12, 1)
            .unwrap()
            .and_hms_opt(23, 0, 0)
            .unwrap();
        let hours = vec![
            (late, "approved".to_string(), 3),
            (now, "spam".to_string(), 2),
        ];
        let utc = day_chart(&hours, now, chrono_tz::UTC);
        assert_eq!(utc.bars[28].counts, [3, 0, 0, 0]);
        assert_eq!(utc.bars[29].counts, [0, 0, 2, 0]);
        // In Berlin 23:00 UTC is already the next day.
        let berlin = day_chart(&hours, now, chrono_tz::Europe::Berlin);
        assert_eq!(berlin.bars[29].counts, [3, 0, 2, 0]);
        assert_eq!(berlin.total, 5);
    }
}
