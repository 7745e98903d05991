//! A counter's history as an SVG chart (plotters, on the server) and its
//! pages per month. Pure: readings in, SVG text and rows out.

use plotters::prelude::*;

const BRAND: RGBColor = RGBColor(0x0b, 0x53, 0x94);
const MANUAL: RGBColor = RGBColor(0xb4, 0x5f, 0x06);
const BILLING: RGBColor = RGBColor(0x1e, 0x7b, 0x34);
const GRID: RGBColor = RGBColor(0xd5, 0xdb, 0xe3);

fn day(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// One point to draw: when, the value, entered by hand.
pub struct Point {
    pub at_ms: i64,
    pub value: u64,
    pub manual: bool,
}

/// The chart's width for a phone and the default; asked widths are kept
/// between them and the widest.
pub const PHONE_WIDTH: u32 = 360;
pub const WIDTH: u32 = 720;
pub const WIDEST: u32 = 1200;
const HEIGHT: u32 = 300;
/// Up to this many points, each is drawn as a dot too.
const FEW: usize = 60;

/// Buckets of time a chart of `width` pixels is drawn from: two per pixel
/// column would not show more.
pub fn buckets(width: u32) -> u32 {
    width.clamp(PHONE_WIDTH, WIDEST) / 2
}

/// The billing periods whose reads a history from `first_ms` to `last_ms`
/// can hold: each period's cutoff (the billing day, midnight in the
/// company's time zone) and the next one; its read is the first reading
/// at or after the cutoff and before the next, as billing takes it.
pub fn billing_periods(
    first_ms: i64,
    last_ms: i64,
    billing_day: u32,
    tz: chrono_tz::Tz,
) -> Vec<(i64, Option<i64>)> {
    use chrono::Datelike;
    let (start, end) = (day(first_ms), day(last_ms));
    // From the month before the first reading (its cutoff may precede it).
    let (mut y, mut m) = if start.month() == 1 {
        (start.year() - 1, 12)
    } else {
        (start.year(), start.month() - 1)
    };
    let mut out = Vec::new();
    while (y, m) <= (end.year(), end.month()) {
        let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        if let Some(cutoff) = crate::filing::billing_cutoff_ms(y, m, billing_day, tz) {
            out.push((
                cutoff,
                crate::filing::billing_cutoff_ms(ny, nm, billing_day, tz),
            ));
        }
        (y, m) = (ny, nm);
    }
    out
}

/// The billing reads among the first readings at or after each period's
/// cutoff (`firsts`, as the store found them): those before the next cutoff.
pub fn billing_reads(
    periods: &[(i64, Option<i64>)],
    firsts: &[Option<(i64, u64)>],
) -> Vec<(i64, u64)> {
    periods
        .iter()
        .zip(firsts)
        .filter_map(|((_, next), first)| first.filter(|(t, _)| next.is_none_or(|n| *t < n)))
        .collect()
}

/// The starts of the last `months` calendar months (UTC), oldest first,
/// and the start of the month after the current one: the bounds the
/// pages-per-month table reads the counter at.
pub fn month_bounds(now_ms: i64, months: usize) -> Vec<i64> {
    use chrono::Datelike;
    let now = day(now_ms);
    let (mut y, mut m) = (now.year(), now.month());
    // The month after this one, then back.
    (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let mut out = Vec::with_capacity(months + 1);
    for _ in 0..=months {
        let start = chrono::NaiveDate::from_ymd_opt(y, m, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc().timestamp_millis())
            .unwrap_or_default();
        out.push(start);
        (y, m) = if m == 1 { (y - 1, 12) } else { (y, m - 1) };
    }
    out.reverse();
    out
}

/// Pages per calendar month, newest first: for each month between two of
/// `bounds`, its last reading (`before[i + 1]`, the last before the next
/// month) less the last before it (`before[i]`), or less its own first
/// reading (`from[i]`) for the month the history starts in. Months
/// without a reading are left out.
pub fn per_month(
    bounds: &[i64],
    before: &[Option<(i64, u64)>],
    from: &[Option<(i64, u64)>],
) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for (i, month) in bounds.windows(2).enumerate() {
        let Some(Some((t_end, v_end))) = before.get(i + 1) else {
            continue;
        };
        if *t_end < month[0] {
            continue;
        }
        let start = match before.get(i) {
            Some(Some((_, v))) => *v,
            _ => match from.get(i) {
                Some(Some((_, v))) => *v,
                _ => *v_end,
            },
        };
        out.push((
            day(bounds[i]).format("%Y-%m").to_string(),
            v_end.saturating_sub(start),
        ));
    }
    out.reverse();
    out
}

/// The chart of `points` (in time order), `width` x 300, with dated axes;
/// manual readings as orange dots, the `billing` reads as green triangles.
/// None when there is nothing to draw.
pub fn svg(points: &[Point], billing: &[(i64, u64)], counter: &str, width: u32) -> Option<String> {
    let width = width.clamp(PHONE_WIDTH, WIDEST);
    let narrow = width < 500;
    let (first, last) = (points.first()?, points.last()?);
    let (lo, hi) = points.iter().fold((u64::MAX, 0), |(lo, hi), p| {
        (lo.min(p.value), hi.max(p.value))
    });
    // Some room above and below, and a range even for one reading.
    let pad = ((hi - lo) / 10).max(10);
    let (y0, y1) = (lo.saturating_sub(pad), hi + pad);
    // At least a day across, a shorter history in its middle: one reading
    // alone is a dot in the middle, not on the axis.
    let span = last.at_ms.saturating_sub(first.at_ms);
    let widen = (86_400_000 - span.min(86_400_000)) / 2;
    let (x0, x1) = (
        day(first.at_ms.saturating_sub(widen)),
        day(last.at_ms.saturating_add(widen)),
    );
    // Dates for a long history, hours too for a short one.
    let short = span < 4 * 86_400_000;
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
        // Few readings: each one a dot (one reading alone draws no line).
        if points.len() <= FEW {
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|p| Circle::new((day(p.at_ms), p.value), 3, BRAND.filled())),
                )
                .ok()?;
        }
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
                billing
                    .iter()
                    .map(|(t, v)| TriangleMarker::new((day(*t), *v), 7, BILLING.filled())),
            )
            .ok()?;
        root.present().ok()?;
    }
    Some(out)
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
        }
    }

    #[test]
    fn pages_per_month_from_the_last_reading_of_each() {
        // Bounds: Jan 1, Feb 1, Mar 1; readings 1000 (Jan 1), 1500 (Jan 21),
        // 1600 (Feb 1), 2600 (Feb 28).
        let feb = JAN + 31 * DAY;
        let mar = JAN + 59 * DAY;
        let bounds = [JAN, feb, mar];
        let before = [
            None,
            Some((JAN + 20 * DAY, 1500)),
            Some((JAN + 58 * DAY, 2600)),
        ];
        let from = [Some((JAN, 1000)), Some((feb, 1600)), None];
        assert_eq!(
            per_month(&bounds, &before, &from),
            vec![("2026-02".to_string(), 1100), ("2026-01".to_string(), 500)]
        );
        // A month without a reading is left out.
        let quiet = [None, Some((JAN - DAY, 900)), Some((JAN - DAY, 900))];
        assert!(per_month(&bounds, &quiet, &[None, None, None]).is_empty());
        assert!(per_month(&[], &[], &[]).is_empty());
    }

    #[test]
    fn month_bounds_run_to_the_next_month() {
        let mid_march = JAN + 70 * DAY;
        let b = month_bounds(mid_march, 2);
        let d = |ms: i64| day(ms).format("%Y-%m-%d").to_string();
        assert_eq!(
            b.iter().map(|m| d(*m)).collect::<Vec<_>>(),
            ["2026-02-01", "2026-03-01", "2026-04-01"]
        );
        let dec = month_bounds(JAN - 10 * DAY, 1);
        assert_eq!(
            dec.iter().map(|m| d(*m)).collect::<Vec<_>>(),
            ["2025-12-01", "2026-01-01"]
        );
    }

    #[test]
    fn the_chart_has_the_line_the_dates_and_the_manual_reading() {
        let pts = [p(0, 1000, false), p(20, 1500, false), p(58, 2600, true)];
        let s = svg(&pts, &[], "canon.101", WIDTH).unwrap();
        assert!(s.starts_with("<svg") && s.contains("<polyline"), "{s}");
        assert!(s.contains("2026-01-"), "dated x axis");
        assert!(
            s.to_uppercase().contains("#B45F06"),
            "the manual reading is marked orange"
        );
        assert!(s.contains("canon.101"));
        assert!(!s.contains("style="), "no inline style (the pages' CSP)");
        assert!(svg(&[], &[], "x", WIDTH).is_none());
        // One reading still draws: a dot, in the middle, not on the axis.
        let one = svg(&pts[..1], &[], "x", WIDTH).unwrap();
        let cx: f64 = one
            .split("<circle cx=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .and_then(|x| x.parse().ok())
            .unwrap_or_else(|| panic!("a dot: {one}"));
        let middle = f64::from(WIDTH) / 2.0;
        assert!(
            (cx - middle).abs() < f64::from(WIDTH) / 10.0,
            "cx {cx} in {one}"
        );
        // A phone's chart is as wide as asked, within bounds.
        let phone = svg(&pts, &[], "canon.101", PHONE_WIDTH).unwrap();
        assert!(phone.contains("width=\"360\""), "{}", &phone[..120]);
        assert!(svg(&pts, &[], "x", 10).unwrap().contains("width=\"360\""));
    }

    #[test]
    fn billing_reads_are_the_first_at_or_after_each_cutoff() {
        // Billing day 15 in UTC over readings from Jan 4 to Feb 20: the
        // periods of Dec 15, Jan 15 and Feb 15.
        let periods = billing_periods(JAN + 3 * DAY, JAN + 50 * DAY, 15, chrono_tz::UTC);
        let d = |ms: i64| day(ms).format("%Y-%m-%d").to_string();
        assert_eq!(
            periods.iter().map(|(c, _)| d(*c)).collect::<Vec<_>>(),
            ["2025-12-15", "2026-01-15", "2026-02-15"]
        );
        assert_eq!(periods[0].1, Some(periods[1].0));
        // December's read is Jan 4 (late); January's Jan 16; a "first
        // after Feb 15" that is past the next cutoff is no read.
        let firsts = [
            Some((JAN + 3 * DAY, 100)),
            Some((JAN + 15 * DAY, 200)),
            Some((JAN + 80 * DAY, 900)),
        ];
        assert_eq!(
            billing_reads(&periods, &firsts),
            vec![(JAN + 3 * DAY, 100), (JAN + 15 * DAY, 200)]
        );
        // In Rome, January's cutoff is 23:00 UTC on the 14th.
        let rome = billing_periods(JAN + 20 * DAY, JAN + 20 * DAY, 15, chrono_tz::Europe::Rome);
        assert_eq!(rome[1].0, JAN + 13 * DAY + 23 * 3_600_000);
        let pts = [p(0, 1000, false), p(20, 1500, false)];
        let s = svg(&pts, &[(JAN + 20 * DAY, 1500)], "canon.101", WIDTH).unwrap();
        assert!(s.contains("<polygon"), "billing reads drawn as triangles");
    }
}
