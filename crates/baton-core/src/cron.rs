//! Cron expressions (five fields, in UTC): minute, hour, day of the month,
//! month, day of the week, each `*`, a number, a range `a-b`, a list `a,b`,
//! and a step `*/n` or `a-b/n`; months and days of the week also by their
//! English names (`JAN`, `MON`). As in Vixie cron, when both the day of the
//! month and the day of the week are restricted, a day matching either is a
//! match. Also `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`.

use time::{Duration, OffsetDateTime, Time};

use crate::time::Timestamp;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    any_day: bool,
    any_weekday: bool,
}

/// Why an expression does not parse, with where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cron expression {expr:?}: {field} (field {position}, {given:?}): {why}")]
pub struct CronError {
    /// The expression.
    pub expr: String,
    /// The field's name.
    pub field: &'static str,
    /// Its position, from 1.
    pub position: usize,
    /// What it said.
    pub given: String,
    /// What is wrong.
    pub why: String,
}

const FIELDS: [(&str, u32, u32); 5] =
    [("minute", 0, 59), ("hour", 0, 23), ("day of the month", 1, 31), ("month", 1, 12), ("day of the week", 0, 7)];

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn value(s: &str, field: usize) -> Option<u32> {
    if let Ok(n) = s.parse() {
        return Some(n);
    }
    let up = s.to_ascii_uppercase();
    match field {
        3 => MONTHS.iter().position(|m| *m == up).map(|i| i as u32 + 1),
        4 => DAYS.iter().position(|d| *d == up).map(|i| i as u32),
        _ => None,
    }
}

fn field_bits(text: &str, field: usize) -> Result<u64, String> {
    let (_, lo, hi) = FIELDS[field];
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().map_err(|_| format!("step {s:?} is not a number"))?),
            None => (part, 1),
        };
        if step == 0 {
            return Err("a step of 0".into());
        }
        let (a, b) = match range {
            "*" => (lo, hi),
            r => match r.split_once('-') {
                Some((a, b)) => (
                    value(a, field).ok_or_else(|| format!("{a:?} is not a value"))?,
                    value(b, field).ok_or_else(|| format!("{b:?} is not a value"))?,
                ),
                None => {
                    let v = value(r, field).ok_or_else(|| format!("{r:?} is not a value"))?;
                    (v, if part.contains('/') { hi } else { v })
                }
            },
        };
        if a < lo || b > hi || a > b {
            return Err(format!("{a}-{b} is outside {lo}-{hi}"));
        }
        let mut v = a;
        while v <= b {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

impl Cron {
    /// Parses an expression.
    pub fn parse(expr: &str) -> Result<Cron, CronError> {
        let expanded = match expr.trim() {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            other => other,
        };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        let err = |position: usize, given: &str, why: String| CronError {
            expr: expr.to_owned(),
            field: FIELDS.get(position.saturating_sub(1)).map_or("expression", |f| f.0),
            position,
            given: given.to_owned(),
            why,
        };
        if parts.len() != 5 {
            return Err(err(parts.len().min(5) + 1, expr, format!("five fields are needed, {} given", parts.len())));
        }
        let mut bits = [0u64; 5];
        for (i, p) in parts.iter().enumerate() {
            bits[i] = field_bits(p, i).map_err(|why| err(i + 1, p, why))?;
        }
        // Sunday is 0 or 7.
        if bits[4] & (1 << 7) != 0 {
            bits[4] |= 1;
        }
        Ok(Cron {
            minutes: bits[0],
            hours: bits[1],
            days: bits[2],
            months: bits[3],
            weekdays: bits[4],
            any_day: parts[2] == "*",
            any_weekday: parts[4] == "*",
        })
    }

    fn day_matches(&self, t: OffsetDateTime) -> bool {
        let dom = self.days & (1 << t.day()) != 0;
        let dow = self.weekdays & (1 << t.weekday().number_days_from_sunday()) != 0;
        match (self.any_day, self.any_weekday) {
            (true, true) => true,
            (false, true) => dom,
            (true, false) => dow,
            (false, false) => dom || dow,
        }
    }

    /// The first time after `after` (strictly) that matches, within five years.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let start = OffsetDateTime::from_unix_timestamp_nanos(i128::from(after.as_millis()) * 1_000_000).ok()?;
        let mut t = start.replace_second(0).ok()?.replace_nanosecond(0).ok()? + Duration::minutes(1);
        let limit = start + Duration::days(5 * 366);
        while t <= limit {
            if self.months & (1 << u8::from(t.month())) == 0 {
                let (y, m) =
                    if u8::from(t.month()) == 12 { (t.year() + 1, 1) } else { (t.year(), u8::from(t.month()) + 1) };
                t = t
                    .replace_day(1)
                    .ok()?
                    .replace_time(Time::MIDNIGHT)
                    .replace_year(y)
                    .ok()?
                    .replace_month(m.try_into().ok()?)
                    .ok()?;
                continue;
            }
            if !self.day_matches(t) {
                t = t.replace_time(Time::MIDNIGHT) + Duration::days(1);
                continue;
            }
            if self.hours & (1 << t.hour()) == 0 {
                t = t.replace_minute(0).ok()? + Duration::hours(1);
                continue;
            }
            if self.minutes & (1 << t.minute()) == 0 {
                t += Duration::minutes(1);
                continue;
            }
            return Some(Timestamp::from_millis((t.unix_timestamp_nanos() / 1_000_000) as i64));
        }
        None
    }
}

/// A duration like `90s`, `5m`, `2h`, `1d` (or a number of seconds), in
/// milliseconds; at least one second.
pub fn parse_every(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len()));
    let n: f64 = num.parse().map_err(|_| format!("{text:?} is not a duration (like 30s, 5m, 2h, 1d)"))?;
    let ms = n * match unit {
        "" | "s" => 1000.0,
        "ms" => 1.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        other => return Err(format!("{other:?} is not a unit (s, m, h, d)")),
    };
    if ms < 1000.0 {
        return Err(format!("an interval of {text} is under one second"));
    }
    Ok(ms as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn next_times_follow_the_fields() {
        let c = Cron::parse("0 3 * * *").unwrap();
        assert_eq!(c.next_after(at("2026-12-07T02:59:30Z")), Some(at("2026-12-07T03:00:00Z")));
        assert_eq!(c.next_after(at("2026-12-07T03:00:00Z")), Some(at("2026-12-08T03:00:00Z")));
        let c = Cron::parse("*/15 9-17 * * MON-FRI").unwrap();
        assert_eq!(c.next_after(at("2026-12-05T10:00:00Z")), Some(at("2026-12-07T09:00:00Z")), "Saturday → Monday");
        let c = Cron::parse("0 0 29 2 *").unwrap();
        assert_eq!(c.next_after(at("2026-03-01T00:00:00Z")), Some(at("2028-02-29T00:00:00Z")));
        assert_eq!(
            Cron::parse("@hourly").unwrap().next_after(at("2026-01-01T00:30:00Z")),
            Some(at("2026-01-01T01:00:00Z"))
        );
    }

    #[test]
    fn errors_name_the_field_and_its_position() {
        let e = Cron::parse("0 25 * * *").unwrap_err();
        assert_eq!((e.position, e.field), (2, "hour"));
        let e = Cron::parse("0 0 * FOO *").unwrap_err();
        assert_eq!((e.position, e.field), (4, "month"));
        assert_eq!(Cron::parse("* * *").unwrap_err().why, "five fields are needed, 3 given");
        assert!(Cron::parse("*/0 * * * *").is_err());
    }

    #[test]
    fn intervals_are_at_least_a_second() {
        assert_eq!(parse_every("2s"), Ok(2000));
        assert_eq!(parse_every("5m"), Ok(300_000));
        assert!(parse_every("500ms").is_err());
        assert!(parse_every("2x").is_err());
    }
}
