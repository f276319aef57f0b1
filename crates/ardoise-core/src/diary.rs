//! The homework diary's rules: the safe rich text teachers write, and when
//! homework is due relative to today.
//!
//! Teachers write in a plain text box with a few marks that need no
//! JavaScript: `**bold**`, `*italics*`, `- ` lists, blank lines between
//! paragraphs, and `[text](https://…)` links. Raw HTML, images (a
//! third-party request) and links other than http(s)/mailto are refused
//! with a clear error rather than silently dropped; the rendered HTML is then
//! cleaned once more with an allowlist, as a second line of defence.

use chrono::{Datelike, NaiveDate};
use pulldown_cmark::{Event, Options, Parser, Tag};
use std::collections::HashSet;

/// Longest text a lesson or homework may hold, in characters.
pub const MAX_TEXT_CHARS: usize = 20_000;

/// Why a text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RichTextError {
    /// Nothing but blanks.
    #[error("the text is empty")]
    Empty,
    /// Longer than [`MAX_TEXT_CHARS`].
    #[error("the text is too long")]
    TooLong,
    /// Contains HTML tags.
    #[error("HTML is not accepted")]
    Html,
    /// Contains an image.
    #[error("images are not accepted in the text")]
    Image,
    /// A link that is not http, https or mailto.
    #[error("only http, https and mailto links are accepted")]
    UnsafeLink,
}

/// Renders a teacher's text to safe HTML, or says why it is refused.
pub fn render_rich_text(input: &str) -> Result<String, RichTextError> {
    let text = input.trim();
    if text.is_empty() {
        return Err(RichTextError::Empty);
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(RichTextError::TooLong);
    }
    let parser = Parser::new_ext(text, Options::ENABLE_STRIKETHROUGH);
    let mut events = Vec::new();
    for event in parser {
        match &event {
            Event::Html(_) | Event::InlineHtml(_) => return Err(RichTextError::Html),
            Event::Start(Tag::Image { .. }) => return Err(RichTextError::Image),
            Event::Start(Tag::Link { dest_url, .. }) => {
                let url = dest_url.trim().to_ascii_lowercase();
                if !(url.starts_with("https://")
                    || url.starts_with("http://")
                    || url.starts_with("mailto:"))
                {
                    return Err(RichTextError::UnsafeLink);
                }
            }
            _ => {}
        }
        events.push(event);
    }
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events.into_iter());
    let tags: HashSet<&str> = [
        "p",
        "br",
        "ul",
        "ol",
        "li",
        "strong",
        "em",
        "del",
        "a",
        "code",
        "blockquote",
        "h3",
        "h4",
    ]
    .into();
    let clean = ammonia::Builder::default()
        .tags(tags)
        .url_schemes(["http", "https", "mailto"].into())
        .link_rel(Some("noopener noreferrer nofollow"))
        .clean(&html)
        .to_string();
    Ok(clean)
}

/// When homework is due, as the "À faire" page groups it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DueBucket {
    /// Due before today (shown only while not done).
    Late,
    /// Due today.
    Today,
    /// Due tomorrow.
    Tomorrow,
    /// Due later this week (up to Sunday).
    ThisWeek,
    /// Due after this week.
    Later,
}

impl DueBucket {
    /// The catalogue key of the bucket's heading.
    pub const fn key(self) -> &'static str {
        match self {
            DueBucket::Late => "todo-late",
            DueBucket::Today => "todo-today",
            DueBucket::Tomorrow => "todo-tomorrow",
            DueBucket::ThisWeek => "todo-this-week",
            DueBucket::Later => "todo-later",
        }
    }
}

/// The bucket of a due date seen from `today`.
pub fn due_bucket(due: NaiveDate, today: NaiveDate) -> DueBucket {
    let days = (due - today).num_days();
    let to_sunday = 6 - i64::from(today.weekday().num_days_from_monday());
    match days {
        d if d < 0 => DueBucket::Late,
        0 => DueBucket::Today,
        1 => DueBucket::Tomorrow,
        d if d <= to_sunday => DueBucket::ThisWeek,
        _ => DueBucket::Later,
    }
}

/// The Monday of the week of `day`.
pub fn week_start(day: NaiveDate) -> NaiveDate {
    day - chrono::Duration::days(i64::from(day.weekday().num_days_from_monday()))
}

/// An establishment's time zone.
pub use chrono_tz::Tz;

/// The zone of an establishment that names none (or an unknown one).
pub const DEFAULT_ZONE: Tz = chrono_tz::Europe::Paris;

/// Reads an IANA zone name such as `Europe/Paris`.
pub fn parse_zone(name: &str) -> Option<Tz> {
    name.trim().parse().ok()
}

/// The date at `now` (Unix seconds) in `zone`: what "today" means to a
/// school.
pub fn local_date(now: i64, zone: Tz) -> NaiveDate {
    chrono::DateTime::from_timestamp(now, 0)
        .map(|d| d.with_timezone(&zone).date_naive())
        .unwrap_or_default()
}

/// The Unix time of a wall-clock time in `zone`. A time that a change to
/// summer time skips does not exist (`None`); one that the change back
/// repeats is read as its first occurrence.
pub fn local_time(date: NaiveDate, time: chrono::NaiveTime, zone: Tz) -> Option<i64> {
    use chrono::TimeZone;
    zone.from_local_datetime(&date.and_time(time))
        .earliest()
        .map(|d| d.timestamp())
}

/// Parses a `YYYY-MM-DDTHH:MM` typed in a form (a `datetime-local` field)
/// as a wall-clock time in `zone`.
pub fn parse_local_datetime(s: &str, zone: Tz) -> Option<i64> {
    let d = chrono::NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M").ok()?;
    local_time(d.date(), d.time(), zone)
}

/// Parses an ISO date typed in a form or a URL.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn teachers_marks_become_safe_html() {
        let html = render_rich_text("Lire le **chapitre 3**.\n\n- exercice 1\n- exercice 2\n\nVoir [le manuel](https://example.org/m).").ok();
        let html = html.unwrap_or_default();
        assert!(html.contains("<strong>chapitre 3</strong>"), "{html}");
        assert!(html.contains("<li>exercice 1</li>"));
        assert!(html.contains("href=\"https://example.org/m\""));
        assert!(html.contains("rel=\"noopener noreferrer nofollow\""));
    }

    #[test]
    fn unsafe_or_empty_text_is_refused_not_silently_changed() {
        let table: &[(&str, RichTextError)] = &[
            ("   ", RichTextError::Empty),
            ("<script>alert(1)</script>", RichTextError::Html),
            ("bonjour <b onclick=x>toi</b>", RichTextError::Html),
            (
                "![chat](https://cdn.example/chat.png)",
                RichTextError::Image,
            ),
            ("[clic](javascript:alert(1))", RichTextError::UnsafeLink),
            ("[clic](data:text/html,x)", RichTextError::UnsafeLink),
        ];
        for (input, err) in table {
            assert_eq!(render_rich_text(input).as_ref(), Err(err), "{input}");
        }
        assert_eq!(
            render_rich_text(&"a".repeat(MAX_TEXT_CHARS + 1)),
            Err(RichTextError::TooLong)
        );
    }

    #[test]
    fn plain_text_is_escaped() {
        let html = render_rich_text("3 < 4 & 5 > 2").unwrap_or_default();
        assert!(html.contains("3 &lt; 4 &amp; 5 &gt; 2"), "{html}");
    }

    #[test]
    fn due_dates_fall_in_the_right_bucket() {
        // Wednesday 25 November 2026.
        let wed = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap_or_default();
        let d = |day| NaiveDate::from_ymd_opt(2026, 11, day).unwrap_or_default();
        let table = [
            (d(24), DueBucket::Late),
            (d(25), DueBucket::Today),
            (d(26), DueBucket::Tomorrow),
            (d(27), DueBucket::ThisWeek),
            (d(29), DueBucket::ThisWeek),
            (d(30), DueBucket::Later),
        ];
        for (due, bucket) in table {
            assert_eq!(due_bucket(due, wed), bucket, "{due}");
        }
        // On a Sunday, tomorrow is Monday and nothing is "this week".
        let sun = d(29);
        assert_eq!(due_bucket(d(30), sun), DueBucket::Tomorrow);
        assert_eq!(
            due_bucket(
                NaiveDate::from_ymd_opt(2026, 12, 1).unwrap_or_default(),
                sun
            ),
            DueBucket::Later
        );
        assert_eq!(week_start(wed), d(23));
        assert_eq!(parse_date(" 2026-11-25 "), Some(wed));
        assert_eq!(parse_date("25/11/2026"), None);
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
        NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(h, min, 0))
            .map(|d| d.and_utc().timestamp())
            .unwrap_or_default()
    }

    #[test]
    fn today_is_the_schools_day_not_greenwichs() {
        let paris = DEFAULT_ZONE;
        let d = |day| NaiveDate::from_ymd_opt(2026, 11, day).unwrap_or_default();
        // 23:30 UTC on Tuesday 24 is 00:30 on Wednesday 25 in Paris.
        let late = utc(2026, 11, 24, 23, 30);
        assert_eq!(local_date(late, chrono_tz::UTC), d(24));
        assert_eq!(local_date(late, paris), d(25));
        // So homework due on the 25th is due today in Paris, not tomorrow.
        assert_eq!(due_bucket(d(25), local_date(late, paris)), DueBucket::Today);
        assert_eq!(
            due_bucket(d(25), local_date(late, chrono_tz::UTC)),
            DueBucket::Tomorrow
        );
        // And a Sunday night in UTC is already next week in Paris.
        let sunday_night = utc(2026, 11, 29, 23, 30);
        assert_eq!(week_start(local_date(sunday_night, paris)), d(30));
        assert_eq!(week_start(local_date(sunday_night, chrono_tz::UTC)), d(23));
        // Elsewhere the other way round: 02:00 UTC is still yesterday in Martinique.
        let martinique = parse_zone("America/Martinique").unwrap_or(DEFAULT_ZONE);
        assert_eq!(local_date(utc(2026, 11, 25, 2, 0), martinique), d(24));
    }

    #[test]
    fn a_deadline_typed_as_18_00_is_18_00_at_school_across_summer_time() {
        let paris = DEFAULT_ZONE;
        // Winter (UTC+1), summer (UTC+2), either side of 28 March 2027.
        assert_eq!(
            parse_local_datetime("2027-03-27T18:00", paris),
            Some(utc(2027, 3, 27, 17, 0))
        );
        assert_eq!(
            parse_local_datetime("2027-03-29T18:00", paris),
            Some(utc(2027, 3, 29, 16, 0))
        );
        // 02:30 does not exist on the night clocks go forward.
        assert_eq!(parse_local_datetime("2027-03-28T02:30", paris), None);
        // 02:30 happens twice when they go back: the first one.
        assert_eq!(
            parse_local_datetime("2026-10-25T02:30", paris),
            Some(utc(2026, 10, 25, 0, 30))
        );
        assert_eq!(parse_local_datetime("2027-03-27 18:00", paris), None);
        assert_eq!(parse_zone("Europe/Nowhere"), None);
    }
}
