use super::*;

const DAY: i64 = 86_400_000;
const T0: i64 = 1_790_000_000_000;
const TOP32: u64 = 1 << 32;

fn f(value: u64, t: i64) -> Option<Filed> {
    Some(Filed {
        value,
        taken_at_ms: t,
    })
}

fn r(raw: u64, t: i64, bits: u32) -> Incoming {
    Incoming {
        raw,
        taken_at_ms: t,
        wraps_at_bits: bits,
    }
}

/// (what, filed before, filed after, incoming, expected)
type Case = (
    &'static str,
    Option<Filed>,
    Option<Filed>,
    Incoming,
    Decision,
);
/// (what, eMaintenance, filed before, filed after, incoming, expected)
type ManualCase = (
    &'static str,
    bool,
    Option<Filed>,
    Option<Filed>,
    Incoming,
    Result<Decision, ManualRefused>,
);

fn file(value: u64, latest: bool) -> Decision {
    Decision::File { value, latest }
}

#[test]
fn filing_rules_table() {
    let p = FilingPolicy::default();
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("first reading of a counter", None, None, r(1_000, T0, 32), file(1_000, true)),
        ("pages printed", f(1_000, T0), None, r(1_250, T0 + DAY, 32), file(1_250, true)),
        ("idle printer, same value", f(1_000, T0), None, r(1_000, T0 + DAY, 32), file(1_000, true)),
        ("duplicate: same time and value", f(1_000, T0), None, r(1_000, T0, 32), Decision::Duplicate),
        ("board swap: counter starts again", f(1_500_000, T0), None, r(120, T0 + DAY, 32),
            Decision::Anomaly(Anomaly::Regression { filed: 1_500_000, value: 120 })),
        ("half-failed read: lower by a little", f(1_500_000, T0), None, r(1_499_990, T0 + DAY, 0),
            Decision::Anomaly(Anomaly::Regression { filed: 1_500_000, value: 1_499_990 })),
        ("Counter32 wrap near the top", f(TOP32 - 3_000, T0), None, r(5_000, T0 + DAY, 32),
            file(TOP32 + 5_000, true)),
        ("after a wrap, history continues", f(TOP32 + 5_000, T0), None, r(9_000, T0 + DAY, 32),
            file(TOP32 + 9_000, true)),
        ("a drop near the top of a counter that does not wrap", f(TOP32 - 3_000, T0), None, r(5_000, T0 + DAY, 0),
            Decision::Anomaly(Anomaly::Regression { filed: TOP32 - 3_000, value: 5_000 })),
        ("a drop to the middle is not a wrap", f(TOP32 - 3_000, T0), None, r(2_000_000_000, T0 + DAY, 32),
            Decision::Anomaly(Anomaly::Regression { filed: TOP32 - 3_000, value: 2_000_000_000 })),
        ("implausible jump in a day", f(1_000, T0), None, r(1_000_000, T0 + DAY, 32),
            Decision::Anomaly(Anomaly::Jump { filed: 1_000, value: 1_000_000, pages_per_day: 999_000 })),
        ("a busy hour is judged over a whole day", f(1_000, T0), None, r(51_000, T0 + DAY / 24, 32),
            file(51_000, true)),
        ("a month of heavy printing", f(1_000, T0), None, r(2_001_000, T0 + 30 * DAY, 32),
            file(2_001_000, true)),
        ("late arrival between filed readings", f(1_000, T0), f(2_000, T0 + 2 * DAY), r(1_500, T0 + DAY, 32),
            file(1_500, false)),
        ("late arrival above the later reading", f(1_000, T0), f(2_000, T0 + 2 * DAY), r(2_500, T0 + DAY, 32),
            Decision::Anomaly(Anomaly::Regression { filed: 2_000, value: 2_500 })),
        ("late arrival before all history", None, f(2_000, T0), r(1_900, T0 - DAY, 32),
            file(1_900, false)),
    ];
    for (what, before, after, incoming, want) in cases {
        assert_eq!(decide(before, after, incoming, &p), want, "{what}");
    }
}

#[test]
fn the_jump_ceiling_is_configurable() {
    let p = FilingPolicy {
        max_pages_per_day: 500,
        ..FilingPolicy::default()
    };
    assert!(matches!(
        decide(f(0, T0), None, r(600, T0 + DAY, 32), &p),
        Decision::Anomaly(Anomaly::Jump {
            pages_per_day: 600,
            ..
        })
    ));
    assert_eq!(
        decide(f(0, T0), None, r(900, T0 + 2 * DAY, 32), &p),
        file(900, true)
    );
}

#[test]
fn manual_readings_table() {
    let p = FilingPolicy::default();
    #[rustfmt::skip]
    let cases: Vec<ManualCase> = vec![
        ("eMaintenance products report by themselves", true, f(1_000, T0), None, r(1_200, T0 + DAY, 0),
            Err(ManualRefused::Automatic)),
        ("a good manual reading", false, f(1_000, T0), None, r(1_200, T0 + DAY, 0), Ok(file(1_200, true))),
        ("lower than history", false, f(1_000, T0), None, r(900, T0 + DAY, 0),
            Err(ManualRefused::Lower { filed: 1_000, value: 900 })),
        ("higher than a later reading", false, f(1_000, T0), f(1_100, T0 + 2 * DAY), r(1_200, T0 + DAY, 0),
            Err(ManualRefused::HigherThanLater { filed: 1_100, value: 1_200 })),
        ("a typo with three zeros too many", false, f(1_000, T0), None, r(1_200_000, T0 + DAY, 0),
            Err(ManualRefused::Implausible { filed: 1_000, value: 1_200_000, pages_per_day: 1_199_000 })),
        ("entered twice", false, f(1_000, T0), None, r(1_000, T0, 0), Err(ManualRefused::Duplicate)),
    ];
    for (what, emaint, before, after, incoming, want) in cases {
        assert_eq!(
            decide_manual(emaint, before, after, incoming, &p),
            want,
            "{what}"
        );
    }
    // The refusal says what to do.
    let e = decide_manual(false, f(1_000, T0), None, r(900, T0 + DAY, 0), &p).unwrap_err();
    assert!(
        e.to_string().contains("lower than the filed reading 1000"),
        "{e}"
    );
}

fn utc(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .timestamp_millis()
}

#[test]
fn billing_cutoffs_table() {
    let rome = chrono_tz::Europe::Rome;
    #[rustfmt::skip]
    let cases: Vec<(i32, u32, u32, chrono_tz::Tz, &str)> = vec![
        (2027, 1, 15, chrono_tz::UTC, "2027-01-15T00:00:00Z"),
        (2027, 1, 15, rome, "2027-01-14T23:00:00Z"),
        // Day 31 in a short month: the month's last day.
        (2027, 2, 31, rome, "2027-02-27T23:00:00Z"),
        (2028, 2, 30, chrono_tz::UTC, "2028-02-29T00:00:00Z"),
        (2027, 12, 1, chrono_tz::UTC, "2027-12-01T00:00:00Z"),
        // Summer time.
        (2027, 7, 1, rome, "2027-06-30T22:00:00Z"),
        // A midnight that does not exist (DST at 00:00 in Santiago): the next instant.
        (2027, 9, 5, chrono_tz::America::Santiago, "2027-09-05T04:00:00Z"),
    ];
    for (y, m, d, tz, want) in cases {
        assert_eq!(
            billing_cutoff_ms(y, m, d, tz),
            Some(utc(want)),
            "{y}-{m} day {d} in {tz}"
        );
    }
    assert_eq!(billing_cutoff_ms(2027, 13, 1, chrono_tz::UTC), None);
}

#[test]
fn billing_read_is_the_first_good_reading_at_or_after_the_cutoff() {
    let cutoff = T0 + 10 * DAY;
    let history = [
        Filed {
            value: 100,
            taken_at_ms: T0,
        },
        Filed {
            value: 900,
            taken_at_ms: cutoff + 3 * DAY,
        },
        Filed {
            value: 700,
            taken_at_ms: cutoff,
        },
        Filed {
            value: 650,
            taken_at_ms: cutoff - 1,
        },
    ];
    assert_eq!(billing_read(&history, cutoff), Some(history[2]));
    assert_eq!(billing_read(&history, cutoff + 1), Some(history[1]));
    // Missing at cutoff: no reading after it yet (a meter-due request follows).
    assert_eq!(billing_read(&history, cutoff + 4 * DAY), None);
}

#[test]
fn unknown_serials_wait_for_an_operator_unless_the_account_wants_them_created() {
    assert_eq!(unknown_serial(None, true), UnknownSerial::Unassigned);
    assert_eq!(
        unknown_serial(Some("ACME"), false),
        UnknownSerial::Unassigned
    );
    assert_eq!(
        unknown_serial(Some("ACME"), true),
        UnknownSerial::Create {
            account: "ACME".into()
        }
    );
}
