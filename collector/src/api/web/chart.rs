//! A counter's history as an SVG chart (plotters, on the server) and its
//! pages per month. Pure: readings in, SVG text and rows out.

use plotters::prelude::*;

/// One filed reading: when, the value, entered by hand, the period's
/// billing read.
pub struct Point {
    pub at_ms: i64,
    pub value: u64,
    pub manual: bool,
    pub billing: bool,
}

/// The chart's width for a phone and the default; asked widths are kept
/// between them and the widest.
pub const PHONE_WIDTH: u32 = 360;
pub const WIDTH: u32 = 720;
const WIDEST: u32 = 1200;
const HEIGHT: u32 = 300;

/// Marks each month's billing read among `points` (in time order): the
/// first reading at or after the month's cutoff (the billing day, midnight
/// in the company's time zone) and before the next month's, as billing
/// takes it.
pub fn mark_billing(points: &mut [Point], billing_day: u32, tz: chrono_tz::Tz) {
    use chrono::Datelike;
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return;
    };
    let (start, end) = (day(first.at_ms), day(last.at_ms));
    // From the month before the first reading (its cutoff may precede it).
    let (mut y, mut m) = if start.month() == 1 {
        (start.year() - 1, 12)
    } else {
        (start.year(), start.month() - 1)
    };
    while (y, m) <= (end.year(), end.month()) {
        let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        let cutoff = crate::filing::billing_cutoff_ms(y, m, billing_day, tz);
        let next = crate::filing::billing_cutoff_ms(ny, nm, billing_day, tz);
        if let Some(cutoff) = cutoff {
            let read = points
                .iter_mut()
                .find(|p| p.at_ms >= cutoff && next.is_none_or(|n| p.at_ms < n));
            if let Some(p) = read {
                p.billing = true;
            }
        }
        (y, m) = (ny, nm);
    }
}

const BRAND: RGBColor = RGBColor(0x0b, 0x53, 0x94);
const MANUAL: RGBColor = RGBColor(0xb4, 0x5f, 0x06);
const BILLING: RGBColor = RGBColor(0x1e, 0x7b, 0x34);
const GRID: RGBColor = RGBColor(0xd5, 0xdb, 0xe3);

fn day(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The chart of `points` (in time order), `width` x 300, with dated axes;
/// manual readings as orange dots, billing reads as green triangles. None
/// when there is nothing to draw.
pub fn svg(points: &[Point], counter: &str, width: u32) -> Option<String> {
    let width = width.clamp(PHONE_WIDTH, WIDEST);
    let narrow = width < 500;
    let (first, last) = (points.first()?, points.last()?);
    let (lo, hi) = points.iter().fold((u64::MAX, 0), |(lo, hi), p| {
        (lo.min(p.value), hi.max(p.value))
    });
    // Some room above and below, and a range even for one reading.
    let pad = ((hi - lo) / 10).max(10);
    let (y0, y1) = (lo.saturating_sub(pad), hi + pad);
    let (x0, x1) = (
        day(first.at_ms),
        day(last.at_ms.max(first.at_ms + 86_400_000)),
    );
    // Dates for a long history, hours too for a short one.
    let short = last.at_ms - first.at_ms < 4 * 86_400_000;
    let fmt = if short { "%m-%d %H:%M" } else { "%Y-%m-%d" };
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (width, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).ok()?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .margin_right(if narrow { 36 } else { 48 })
            .x_label_area_size(30)
            .y_label_area_size(if narrow { 62 } else { 70 })
            .caption(counter, ("sans-serif", 16))
            .build_cartesian_2d(x0..x1, y0..y1)
            .ok()?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(GRID)
            .x_labels(if narrow { 3 } else { 5 })
            .y_labels(6)
            .x_label_formatter(&|d| d.format(fmt).to_string())
            .label_style(("sans-serif", 12))
            .draw()
            .ok()?;
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (day(p.at_ms), p.value)),
                BRAND.stroke_width(2),
            ))
            .ok()?;
        chart
            .draw_series(
                points
                    .iter()
                    .filter(|p| p.manual)
                    .map(|p| Circle::new((day(p.at_ms), p.value), 5, MANUAL.filled())),
            )
            .ok()?;
        chart
            .draw_series(
                points
                    .iter()
                    .filter(|p| p.billing)
                    .map(|p| TriangleMarker::new((day(p.at_ms), p.value), 7, BILLING.filled())),
            )
            .ok()?;
        root.present().ok()?;
    }
    Some(out)
}

/// Pages per calendar month (UTC), newest first, at most `months`: the
/// month's last reading less the month before's last (or its own first
/// for the earliest month).
pub fn per_month(points: &[Point], months: usize) -> Vec<(String, u64)> {
    let mut last: Vec<(String, u64, u64)> = Vec::new(); // month, first, last
    for p in points {
        let m = day(p.at_ms).format("%Y-%m").to_string();
        match last.last_mut() {
            Some((mm, _, l)) if *mm == m => *l = p.value,
            _ => last.push((m, p.value, p.value)),
        }
    }
    let mut out: Vec<(String, u64)> = Vec::new();
    for (i, (m, first, end)) in last.iter().enumerate() {
        let start = if i == 0 { *first } else { last[i - 1].2 };
        out.push((m.clone(), end.saturating_sub(start)));
    }
    out.reverse();
    out.truncate(months);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;
    /// 2026-01-01T00:00:00Z
    const JAN: i64 = 1_767_225_600_000;

    fn p(days: i64, value: u64, manual: bool) -> Point {
        Point {
            at_ms: JAN + days * DAY,
            value,
            manual,
            billing: false,
        }
    }

    #[test]
    fn pages_per_month_from_the_last_reading_of_each() {
        let pts = [
            p(0, 1000, false),
            p(20, 1500, false),
            p(31, 1600, false),
            p(58, 2600, true),
        ];
        assert_eq!(
            per_month(&pts, 12),
            vec![("2026-02".to_string(), 1100), ("2026-01".to_string(), 500)]
        );
        assert_eq!(per_month(&pts, 1).len(), 1);
        assert!(per_month(&[], 12).is_empty());
    }

    #[test]
    fn the_chart_has_the_line_the_dates_and_the_manual_reading() {
        let pts = [p(0, 1000, false), p(20, 1500, false), p(58, 2600, true)];
        let s = svg(&pts, "canon.101", WIDTH).unwrap();
        assert!(s.starts_with("<svg") && s.contains("<polyline"), "{s}");
        assert!(s.contains("2026-01-"), "dated x axis");
        assert!(s.contains("<circle"), "the manual reading is marked");
        assert!(s.contains("canon.101"));
        assert!(!s.contains("style="), "no inline style (the pages' CSP)");
        assert!(svg(&[], "x", WIDTH).is_none());
        // One reading still draws.
        assert!(svg(&pts[..1], "x", WIDTH).is_some());
        // A phone's chart is as wide as asked, within bounds.
        let phone = svg(&pts, "canon.101", PHONE_WIDTH).unwrap();
        assert!(phone.contains("width=\"360\""), "{}", &phone[..120]);
        assert!(svg(&pts, "x", 10).unwrap().contains("width=\"360\""));
    }

    #[test]
    fn billing_reads_are_the_first_at_or_after_each_cutoff() {
        // Billing day 15 in UTC: December's read is Jan 4 (the first after
        // Dec 15, late), January's Jan 16 (none on the 15th), February's
        // Feb 15; Jan 21 and Feb 20 are no billing reads.
        let mut pts = [
            p(3, 100, false),
            p(15, 200, false),
            p(20, 300, false),
            p(45, 400, false),
            p(50, 500, false),
        ];
        mark_billing(&mut pts, 15, chrono_tz::UTC);
        let marked: Vec<u64> = pts.iter().filter(|p| p.billing).map(|p| p.value).collect();
        assert_eq!(marked, vec![100, 200, 400]);
        // In Rome, January's cutoff is 23:00 UTC on the 14th.
        let mut rome = [p(14, 1, false), p(15, 2, false)];
        rome[0].at_ms += 23 * 3_600_000 + 60_000;
        mark_billing(&mut rome, 15, chrono_tz::Europe::Rome);
        assert!(rome[0].billing && !rome[1].billing);
        let s = svg(&pts, "canon.101", WIDTH).unwrap();
        assert!(s.contains("<polygon"), "billing reads drawn as triangles");
        mark_billing(&mut [], 1, chrono_tz::UTC);
    }
}
