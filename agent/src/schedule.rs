//! Cron schedules with a time zone (5 or 6 fields). Pure: a time in, the
//! next firing time out.

use chrono::{DateTime, Utc};
use croner::parser::{CronParser, Seconds};
use croner::Cron;

#[derive(Debug, Clone)]
pub struct Schedule {
    pub expr: String,
    cron: Cron,
    tz: chrono_tz::Tz,
}

/// A schedule that cannot be used, with what to give instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("unknown time zone {0:?} (use an IANA name such as Europe/Rome or UTC)")]
    UnknownTimeZone(String),
    #[error("bad cron expression {expr:?}: {reason}")]
    BadCron { expr: String, reason: String },
}

impl Schedule {
    pub fn parse(expr: &str, tz: &str) -> Result<Schedule, ScheduleError> {
        let tz: chrono_tz::Tz = tz
            .parse()
            .map_err(|_| ScheduleError::UnknownTimeZone(tz.to_string()))?;
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(expr)
            .map_err(|e| ScheduleError::BadCron {
                expr: expr.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Schedule {
            expr: expr.to_string(),
            cron,
            tz,
        })
    }

    /// The first firing strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&after.with_timezone(&self.tz), false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn five_and_six_fields_with_time_zone() {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 29, 0, 30, 0).unwrap();
        // 5 fields: at 02:30 Rome time every day. On 29 March 2026 Rome
        // springs forward from 02:00 to 03:00: the job runs once, at 03:00
        // (as cron does), and at 02:30 again the next day.
        let s = Schedule::parse("30 2 * * *", "Europe/Rome").unwrap();
        let rome = |t: DateTime<Utc>| {
            t.with_timezone(&chrono_tz::Europe::Rome)
                .format("%d %H:%M")
                .to_string()
        };
        let n = s.next_after(t0).unwrap();
        assert_eq!(rome(n), "29 03:00");
        assert_eq!(rome(s.next_after(n).unwrap()), "30 02:30");
        // 6 fields: every 15 seconds.
        let s = Schedule::parse("*/15 * * * * *", "UTC").unwrap();
        assert_eq!(
            s.next_after(t0).unwrap(),
            t0 + chrono::Duration::seconds(15)
        );
        assert!(Schedule::parse("61 * * * *", "UTC").is_err());
        assert!(Schedule::parse("* * * * *", "Mars/Olympus")
            .unwrap_err()
            .to_string()
            .contains("time zone"));
    }
}
