//! A product's entitlements as typed terms: how fast a request is answered,
//! in which hours, on site or remotely; and a request's due time from them.
//! Pure: the opening instant and the terms in, the due instant out.

use chrono::{Datelike, Duration, NaiveTime, TimeZone};
use serde::{Deserialize, Serialize};

/// When the service provider works on requests: days of the week (1 =
/// Monday .. 7 = Sunday), from and to (HH:MM, local), in a time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Coverage {
    pub days: Vec<u8>,
    pub from: String,
    pub to: String,
    /// IANA name, for example Europe/Rome.
    pub time_zone: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entitlements {
    /// Hours of coverage within which a request is answered.
    pub response_hours: u32,
    pub coverage: Coverage,
    /// `on_site` or `remote`.
    pub service: String,
}

fn time(field: &str, v: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(v.trim(), "%H:%M")
        .map_err(|_| format!("coverage.{field} {v:?}: give a time as HH:MM"))
}

impl Entitlements {
    /// The terms, or what is wrong with them.
    pub fn check(&self) -> Result<(), String> {
        if self.response_hours == 0 || self.response_hours > 24 * 90 {
            return Err("response_hours: from 1 to 2160".into());
        }
        if !["on_site", "remote"].contains(&self.service.as_str()) {
            return Err(format!("service {:?}: on_site or remote", self.service));
        }
        let c = &self.coverage;
        if c.days.is_empty() || c.days.iter().any(|d| !(1..=7).contains(d)) {
            return Err("coverage.days: 1 (Monday) to 7 (Sunday), at least one".into());
        }
        if time("from", &c.from)? >= time("to", &c.to)? {
            return Err(format!(
                "coverage: from {} is not before to {}",
                c.from, c.to
            ));
        }
        c.time_zone.parse::<chrono_tz::Tz>().map_err(|_| {
            format!(
                "coverage.time_zone {:?}: an IANA zone such as Europe/Rome",
                c.time_zone
            )
        })?;
        Ok(())
    }

    /// When a request opened at `opened_ms` is due: `response_hours` of
    /// coverage counted from then (time outside coverage does not count).
    /// None when the terms do not check.
    pub fn due_at_ms(&self, opened_ms: i64) -> Option<i64> {
        self.check().ok()?;
        let c = &self.coverage;
        let tz: chrono_tz::Tz = c.time_zone.parse().ok()?;
        let (from, to) = (time("from", &c.from).ok()?, time("to", &c.to).ok()?);
        let mut left = Duration::hours(i64::from(self.response_hours));
        let opened = tz.timestamp_millis_opt(opened_ms).single()?;
        let mut day = opened.date_naive();
        // Nothing before the opening counts; on later days the window's start.
        let mut floor = Some(opened);
        // At most a year of days: the terms check, so each covered week
        // gives at least one window.
        for _ in 0..400 {
            let covered = c.days.contains(&(day.weekday().number_from_monday() as u8));
            // A local time that a clock change skips: the next that exists.
            let local = |t: NaiveTime| {
                let mut at = day.and_time(t);
                (0..4).find_map(|_| {
                    let r = tz.from_local_datetime(&at).earliest();
                    at += Duration::minutes(30);
                    r
                })
            };
            if covered {
                let (start, end) = (local(from)?, local(to)?);
                let begin = floor.map_or(start, |f| f.max(start));
                if begin < end {
                    let window = end - begin;
                    if window >= left {
                        return Some((begin + left).timestamp_millis());
                    }
                    left -= window;
                }
            }
            floor = None;
            day = day.succ_opt()?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn office(hours: u32) -> Entitlements {
        Entitlements {
            response_hours: hours,
            coverage: Coverage {
                days: vec![1, 2, 3, 4, 5],
                from: "08:00".into(),
                to: "18:00".into(),
                time_zone: "Europe/Rome".into(),
            },
            service: "on_site".into(),
        }
    }

    fn rome(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
        chrono_tz::Europe::Rome
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .single()
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn due_inside_and_across_coverage_hours() {
        // Tuesday 2026-12-01 09:00 + 4 h: 13:00 the same day.
        assert_eq!(
            office(4).due_at_ms(rome(2026, 12, 1, 9, 0)),
            Some(rome(2026, 12, 1, 13, 0))
        );
        // Tuesday 16:00 + 4 h: 2 h today, 2 h tomorrow from 08:00.
        assert_eq!(
            office(4).due_at_ms(rome(2026, 12, 1, 16, 0)),
            Some(rome(2026, 12, 2, 10, 0))
        );
        // Friday evening (after 18:00) + 8 h: Monday 16:00.
        assert_eq!(
            office(8).due_at_ms(rome(2026, 12, 4, 19, 30)),
            Some(rome(2026, 12, 7, 16, 0))
        );
        // Saturday + 8 h: Monday 16:00 too.
        assert_eq!(
            office(8).due_at_ms(rome(2026, 12, 5, 11, 0)),
            Some(rome(2026, 12, 7, 16, 0))
        );
        // Before opening hours: counted from 08:00.
        assert_eq!(
            office(1).due_at_ms(rome(2026, 12, 1, 6, 0)),
            Some(rome(2026, 12, 1, 9, 0))
        );
        // Exactly at closing: the next morning.
        assert_eq!(
            office(2).due_at_ms(rome(2026, 12, 1, 18, 0)),
            Some(rome(2026, 12, 2, 10, 0))
        );
        // 24 h of office time: two and a half working days.
        assert_eq!(
            office(24).due_at_ms(rome(2026, 12, 1, 8, 0)),
            Some(rome(2026, 12, 3, 12, 0))
        );
    }

    #[test]
    fn due_across_a_daylight_saving_change() {
        // Friday 2026-03-27 17:00 + 2 h: 1 h on Friday, then Monday 09:00
        // (the clocks went forward on Sunday; office hours are local).
        assert_eq!(
            office(2).due_at_ms(rome(2026, 3, 27, 17, 0)),
            Some(rome(2026, 3, 30, 9, 0))
        );
    }

    #[test]
    fn round_the_clock_and_bad_terms() {
        let mut all = office(6);
        all.coverage = Coverage {
            days: vec![1, 2, 3, 4, 5, 6, 7],
            from: "00:00".into(),
            to: "23:59".into(),
            time_zone: "UTC".into(),
        };
        let t = chrono::Utc
            .with_ymd_and_hms(2026, 12, 5, 20, 0, 0)
            .unwrap()
            .timestamp_millis();
        // 20:00 + 6 h with a minute's gap at midnight: 02:01.
        let want = chrono::Utc
            .with_ymd_and_hms(2026, 12, 6, 2, 1, 0)
            .unwrap()
            .timestamp_millis();
        assert_eq!(all.due_at_ms(t), Some(want));
        let bad = |f: fn(&mut Entitlements)| {
            let mut e = office(4);
            f(&mut e);
            e.check().unwrap_err()
        };
        assert!(bad(|e| e.response_hours = 0).contains("response_hours"));
        assert!(bad(|e| e.service = "psychic".into()).contains("service"));
        assert!(bad(|e| e.coverage.days = vec![8]).contains("days"));
        assert!(bad(|e| e.coverage.from = "19:00".into()).contains("not before"));
        assert!(bad(|e| e.coverage.to = "6pm".into()).contains("HH:MM"));
        assert!(bad(|e| e.coverage.time_zone = "Mars/Olympus".into()).contains("IANA"));
        assert_eq!(office(0).due_at_ms(0), None);
    }
}
