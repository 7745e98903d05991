//! The billing export: per product, counter and period, the billing read
//! (the first good reading at or after the cutoff), the previous period's
//! and the pages between them. Pure: filed history in, rows and CSV out.

use super::{billing_cutoff_ms, billing_read, Filed};
use std::collections::BTreeMap;

/// What billing needs to know about a product.
#[derive(Debug, Clone)]
pub struct BillingProduct {
    pub account_billing_code: String,
    pub serial: String,
    pub model: String,
    /// Day of the month the period ends on (1-31).
    pub billing_day: u32,
    pub tz: chrono_tz::Tz,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingRow {
    pub account_billing_code: String,
    pub serial: String,
    pub model: String,
    pub counter: String,
    /// "YYYY-MM"
    pub period: String,
    pub cutoff_ms: i64,
    pub read: Option<Filed>,
    pub previous: Option<Filed>,
    /// read - previous, when both are there.
    pub pages: Option<u64>,
}

fn previous_month(year: i32, month: u32) -> (i32, u32) {
    if month == 1 {
        (year - 1, 12)
    } else {
        (year, month - 1)
    }
}

/// One row per counter of `product` for the period `year`/`month`.
/// `history` holds the good (filed) readings per counter.
pub fn billing_rows(
    product: &BillingProduct,
    history: &BTreeMap<String, Vec<Filed>>,
    year: i32,
    month: u32,
) -> Vec<BillingRow> {
    let Some(cutoff) = billing_cutoff_ms(year, month, product.billing_day, product.tz) else {
        return Vec::new();
    };
    let (py, pm) = previous_month(year, month);
    let prev_cutoff = billing_cutoff_ms(py, pm, product.billing_day, product.tz);
    history
        .iter()
        .map(|(counter, filed)| {
            // A read belongs to the period it was taken for: before the next cutoff.
            let (ny, nm) = if month == 12 {
                (year + 1, 1)
            } else {
                (year, month + 1)
            };
            let next_cutoff = billing_cutoff_ms(ny, nm, product.billing_day, product.tz);
            let in_period = |r: Option<Filed>, until: Option<i64>| {
                r.filter(|r| until.is_none_or(|u| r.taken_at_ms < u))
            };
            let read = in_period(billing_read(filed, cutoff), next_cutoff);
            let previous =
                prev_cutoff.and_then(|c| in_period(billing_read(filed, c), Some(cutoff)));
            BillingRow {
                account_billing_code: product.account_billing_code.clone(),
                serial: product.serial.clone(),
                model: product.model.clone(),
                counter: counter.clone(),
                period: format!("{year:04}-{month:02}"),
                cutoff_ms: cutoff,
                pages: match (read, previous) {
                    (Some(r), Some(p)) => r.value.checked_sub(p.value),
                    _ => None,
                },
                read,
                previous,
            }
        })
        .collect()
}

/// A CSV cell: quoted when needed (RFC 4180), and kept from being read as
/// a formula by spreadsheets (device-reported text is untrusted).
fn cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn ms_to_rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

pub const CSV_HEADER: &str = "billing_customer_code,serial,model,counter,period,cutoff,read_value,read_taken_at,previous_value,previous_taken_at,pages\r\n";

pub fn to_csv(rows: &[BillingRow]) -> String {
    let mut out = String::from(CSV_HEADER);
    let opt = |f: Option<Filed>| {
        f.map(|f| (f.value.to_string(), ms_to_rfc3339(f.taken_at_ms)))
            .unwrap_or_default()
    };
    for r in rows {
        let (rv, rt) = opt(r.read);
        let (pv, pt) = opt(r.previous);
        let fields = [
            cell(&r.account_billing_code),
            cell(&r.serial),
            cell(&r.model),
            cell(&r.counter),
            r.period.clone(),
            ms_to_rfc3339(r.cutoff_ms),
            rv,
            rt,
            pv,
            pt,
            r.pages.map(|p| p.to_string()).unwrap_or_default(),
        ];
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_millis()
    }

    fn filed(value: u64, at: &str) -> Filed {
        Filed {
            value,
            taken_at_ms: utc(at),
        }
    }

    fn product(model: &str) -> BillingProduct {
        BillingProduct {
            account_billing_code: "B-1001".into(),
            serial: "XPA07788".into(),
            model: model.into(),
            billing_day: 31,
            tz: chrono_tz::UTC,
        }
    }

    #[test]
    fn rows_take_the_first_good_read_at_or_after_each_cutoff() {
        let history: BTreeMap<String, Vec<Filed>> = [
            (
                "canon.101".to_string(),
                vec![
                    filed(1_000, "2027-01-30T10:00:00Z"),
                    filed(1_200, "2027-01-31T06:00:00Z"), // January's read
                    filed(1_300, "2027-01-31T18:00:00Z"),
                    filed(2_000, "2027-02-28T00:00:00Z"), // February's read (day 31 -> 28)
                    filed(2_100, "2027-03-01T08:00:00Z"),
                ],
            ),
            // A counter whose February read is missing (meter due).
            (
                "canon.301".to_string(),
                vec![filed(500, "2027-01-31T06:00:00Z")],
            ),
        ]
        .into();
        let rows = billing_rows(&product("iR2630"), &history, 2027, 2);
        assert_eq!(rows.len(), 2);
        let total = &rows[0];
        assert_eq!(
            (total.counter.as_str(), total.period.as_str()),
            ("canon.101", "2027-02")
        );
        assert_eq!(total.read, Some(filed(2_000, "2027-02-28T00:00:00Z")));
        assert_eq!(total.previous, Some(filed(1_200, "2027-01-31T06:00:00Z")));
        assert_eq!(total.pages, Some(800));
        let print = &rows[1];
        assert_eq!((print.read, print.pages), (None, None));
        assert_eq!(print.previous, Some(filed(500, "2027-01-31T06:00:00Z")));
        // A reading taken after the next cutoff does not stand in for a missing one.
        let late: BTreeMap<String, Vec<Filed>> = [(
            "canon.101".to_string(),
            vec![filed(9_000, "2027-03-31T01:00:00Z")],
        )]
        .into();
        assert_eq!(billing_rows(&product("x"), &late, 2027, 2)[0].read, None);
    }

    #[test]
    fn csv_quotes_and_defuses_device_text() {
        let history: BTreeMap<String, Vec<Filed>> = [(
            "canon.101".to_string(),
            vec![filed(7, "2027-02-28T00:00:00Z")],
        )]
        .into();
        let rows = billing_rows(&product("=HYPERLINK(\"x\"),1"), &history, 2027, 2);
        let csv = to_csv(&rows);
        let mut lines = csv.split("\r\n");
        assert_eq!(lines.next().unwrap(), CSV_HEADER.trim_end());
        assert_eq!(
            lines.next().unwrap(),
            "B-1001,XPA07788,\"'=HYPERLINK(\"\"x\"\"),1\",canon.101,2027-02,2027-02-28T00:00:00Z,7,2027-02-28T00:00:00Z,,,"
        );
    }
}
