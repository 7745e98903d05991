use super::*;
use meterlink_proto::v1::{Alert, Supply};

const MIN: i64 = 60_000;
const T0: i64 = 1_790_000_000_000;

fn alert(severity: &str, training: &str, group: &str, code: i64, description: &str) -> Alert {
    Alert {
        index: 1,
        severity: severity.into(),
        training_level: training.into(),
        group: group.into(),
        code,
        code_name: String::new(),
        description: description.into(),
    }
}

fn status(alerts: Vec<Alert>, errors: &[&str], console: &[&str]) -> DeviceStatus {
    DeviceStatus {
        device: "running".into(),
        printer: "idle".into(),
        errors: errors.iter().map(|s| s.to_string()).collect(),
        alerts,
        console: console.iter().map(|s| s.to_string()).collect(),
    }
}

fn clear() -> DeviceStatus {
    status(vec![], &[], &[])
}

fn jam() -> DeviceStatus {
    status(
        vec![alert("warning", "untrained", "mediaPath", 8, "Paper jam")],
        &["jammed"],
        &[],
    )
}

fn service_call() -> DeviceStatus {
    status(
        vec![alert(
            "critical",
            "fieldService",
            "generalPrinter",
            1,
            "E602-0001 Call service representative",
        )],
        &["serviceRequested"],
        &["Error. Contact your service representative.", "E602-0001"],
    )
}

fn opened(c: &[Change]) -> Vec<&str> {
    c.iter()
        .filter_map(|c| match c {
            Change::Open { fingerprint, .. } => Some(fingerprint.as_str()),
            _ => None,
        })
        .collect()
}

fn closed(c: &[Change]) -> Vec<&str> {
    c.iter()
        .filter_map(|c| match c {
            Change::Close { fingerprint, .. } => Some(fingerprint.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_embedded_rules_parse_and_bad_rules_are_named() {
    let r = Rules::defaults();
    assert!(r.rules.len() > 5);
    let e = Rules::parse("rules.toml", "hold_down_secs = 1\nsilent_after_secs = 1\nmeter_due_grace_secs = 1\n[supplies]\nthreshold_percent = 10\nreplaced_above_percent = 50\n[[rules]]\nname = \"x\"\nkind = \"incident\"\n").unwrap_err().to_string();
    assert!(e.contains("\"x\"") && e.contains("matches nothing"), "{e}");
    let e = Rules::parse("rules.toml", "hold_down_secs = 1\nsilent_after_secs = 1\nmeter_due_grace_secs = 1\n[supplies]\nthreshold_percent = 10\nreplaced_above_percent = 50\n[[rules]]\nname = \"x\"\nconsole_pattern = \"E(\"\n").unwrap_err().to_string();
    assert!(e.contains("rules.toml") && e.contains("regex"), "{e}");
    // A pattern that compiles too large is refused, not compiled for a
    // good part of a second (the rules fuzz target timed out on it).
    let e = Rules::parse("rules.toml", "hold_down_secs = 1\nsilent_after_secs = 1\nmeter_due_grace_secs = 1\n[supplies]\nthreshold_percent = 10\nreplaced_above_percent = 50\n[[rules]]\nname = \"x\"\nconsole_pattern = 'E\\d{3}-\\d{411}'\n").unwrap_err().to_string();
    assert!(
        e.contains("rules.toml") && e.contains("too large a regex"),
        "{e}"
    );
}

#[test]
fn conditions_table() {
    let r = Rules::defaults();
    #[rustfmt::skip]
    let cases: Vec<(&str, DeviceStatus, Vec<&str>)> = vec![
        ("a clear device", clear(), vec![]),
        ("service call: alert, console and bit are one request",
            service_call(), vec!["incident:E602-0001"]),
        ("the code on the console alone", status(vec![], &[], &["E000-0007"]), vec!["incident:E000-0007"]),
        ("the service bit alone", status(vec![], &["serviceRequested"], &[]), vec!["incident:service requested"]),
        ("a jam (alert and bit)", jam(), vec!["incident:jam"]),
        ("door open", status(vec![alert("warning", "untrained", "cover", 3, "Cover open")], &["doorOpen"], &[]),
            vec!["incident:door open"]),
        ("low toner and low paper open nothing",
            status(vec![alert("warning", "untrained", "markerSupplies", 1104, "Toner low")], &["lowToner", "lowPaper"], &[]),
            vec![]),
        ("waste toner full", status(vec![alert("warning", "trained", "markerSupplies", 1109, "Waste toner full")], &[], &[]),
            vec!["consumables:waste toner full"]),
        ("an unknown critical alert", status(vec![alert("critical", "trained", "marker", 501, "Fuser")], &[], &[]),
            vec!["incident:other critical alert"]),
        ("an unknown warning opens nothing", status(vec![alert("warning", "trained", "marker", 501, "Fuser")], &[], &[]),
            vec![]),
        ("two conditions at once", {
            let mut s = service_call();
            s.errors.push("overduePreventMaint".into());
            s
        }, vec!["incident:E602-0001", "incident:preventive maintenance due"]),
    ];
    for (what, s, want) in cases {
        let got: Vec<String> = conditions(&r, &s)
            .into_iter()
            .map(|c| c.fingerprint)
            .collect();
        assert_eq!(got, want, "{what}");
    }
}

/// Runs status observations (minutes after T0) through a tracker and
/// returns the fingerprints opened and closed along the way.
fn run(steps: &[(i64, DeviceStatus)]) -> (Vec<String>, Vec<String>, Track) {
    let r = Rules::defaults();
    let mut t = Track::default();
    let (mut o, mut c) = (Vec::new(), Vec::new());
    for (m, s) in steps {
        let ch = t.observe_status(&r, s, T0 + m * MIN, &Articles::new());
        o.extend(opened(&ch).into_iter().map(String::from));
        c.extend(closed(&ch).into_iter().map(String::from));
    }
    (o, c, t)
}

/// (what, status observations by minute, opened, closed)
type Lifecycle = (
    &'static str,
    Vec<(i64, DeviceStatus)>,
    Vec<&'static str>,
    Vec<&'static str>,
);

#[test]
fn request_lifecycle_table() {
    #[rustfmt::skip]
    let cases: Vec<Lifecycle> = vec![
        ("a jam cleared within its persist time opens nothing",
            vec![(0, jam()), (10, jam()), (20, clear())], vec![], vec![]),
        ("a jam that persists opens once",
            vec![(0, jam()), (15, jam()), (30, jam()), (45, jam())], vec!["incident:jam"], vec![]),
        ("then cleared: closed after the hold-down",
            vec![(0, jam()), (30, jam()), (40, clear()), (60, clear()), (70, clear())],
            vec!["incident:jam"], vec!["incident:jam"]),
        ("a service call opens at once and closes after the hold-down",
            vec![(0, service_call()), (5, clear()), (34, clear()), (35, clear())],
            vec!["incident:E602-0001"], vec!["incident:E602-0001"]),
        ("flapping: back before the hold-down ends, no close, no reopen",
            vec![(0, service_call()), (5, clear()), (15, service_call()), (25, clear()), (35, service_call()), (45, clear())],
            vec!["incident:E602-0001"], vec![]),
        ("clear and reopen: after a close the condition opens a new request",
            vec![(0, service_call()), (5, clear()), (40, clear()), (50, service_call())],
            vec!["incident:E602-0001", "incident:E602-0001"], vec!["incident:E602-0001"]),
        ("a late (older) status changes nothing",
            vec![(10, clear()), (5, service_call())], vec![], vec![]),
    ];
    for (what, steps, want_open, want_closed) in cases {
        let (o, c, _) = run(&steps);
        assert_eq!(o, want_open, "{what}: opened");
        assert_eq!(c, want_closed, "{what}: closed");
    }
}

#[test]
fn repeats_add_occurrences_to_the_open_request() {
    let (_, _, t) = run(&[
        (0, service_call()),
        (5, clear()),
        (15, service_call()),
        (25, clear()),
        (35, service_call()),
    ]);
    let o = &t.open["incident:E602-0001"];
    assert_eq!(o.occurrences, 3);
    assert_eq!((o.first_seen_ms, o.last_seen_ms), (T0, T0 + 35 * MIN));
}

#[test]
fn a_request_links_the_article_for_its_code() {
    let r = Rules::defaults();
    let mut t = Track::default();
    let articles: Articles = [("E602-0001".to_string(), "kb-e602".to_string())].into();
    let ch = t.observe_status(&r, &service_call(), T0, &articles);
    match &ch[..] {
        [Change::Open {
            article,
            code,
            priority,
            title,
            ..
        }] => {
            assert_eq!(article.as_deref(), Some("kb-e602"));
            assert_eq!(code.as_deref(), Some("E602-0001"));
            assert_eq!(*priority, Priority::High);
            assert!(title.contains("E602-0001"), "{title}");
        }
        other => panic!("{other:?}"),
    }
}

fn supplies(percent: Option<u32>, state: &str) -> Supplies {
    Supplies {
        supplies: vec![Supply {
            index: 1,
            description: "Canon C-EXV60 Black Toner".into(),
            kind: "tonerCartridge".into(),
            level: percent.map(i64::from),
            max: Some(100),
            percent,
            state: state.into(),
        }],
    }
}

#[test]
fn toner_threshold_once_per_cartridge() {
    let r = Rules::defaults();
    let mut t = Track::default();
    let mut o = Vec::new();
    let mut c = Vec::new();
    // Falls to 10 %, hovers around it, runs out, is replaced, falls again.
    for (i, (p, state)) in [
        (Some(40), "ok"),
        (Some(10), "low"),
        (Some(11), "ok"),
        (Some(9), "low"),
        (Some(0), "empty"),
        (Some(100), "ok"),
        (Some(60), "ok"),
        (Some(8), "low"),
    ]
    .into_iter()
    .enumerate()
    {
        let ch = t.observe_supplies(
            &r,
            &supplies(p, state),
            T0 + i as i64 * MIN,
            &Articles::new(),
        );
        o.extend(opened(&ch).into_iter().map(String::from));
        c.extend(closed(&ch).into_iter().map(String::from));
    }
    let fp = "consumables:supply:1:Canon C-EXV60 Black Toner";
    assert_eq!(o, vec![fp, fp], "once per cartridge");
    assert_eq!(c, vec![fp], "closed by the new cartridge");
    // Devices without a percentage: the state says low.
    let mut t = Track::default();
    let ch = t.observe_supplies(&r, &supplies(None, "low"), T0, &Articles::new());
    assert_eq!(opened(&ch), vec![fp]);
    let ch = t.observe_supplies(
        &r,
        &supplies(None, "some_remaining"),
        T0 + MIN,
        &Articles::new(),
    );
    assert!(ch.is_empty(), "{ch:?}");
}

#[test]
fn absence_is_judged_only_after_the_catch_up_time() {
    let r = Rules::defaults();
    assert_eq!(r.catch_up_secs, 600);
    let since = T0;
    #[rustfmt::skip]
    let cases: Vec<(&str, i64, bool)> = vec![
        ("at start", since, false),
        ("a minute short of catch-up", since + 9 * MIN, false),
        ("catch-up over", since + 10 * MIN, true),
        ("a clock before the start", since - MIN, false),
        ("listening since the beginning of time", i64::MAX, true),
    ];
    for (what, now, want) in cases {
        let listening = if now == i64::MAX { i64::MIN } else { since };
        assert_eq!(r.judges_absence(now, listening), want, "{what}");
    }
    // A rules file of an older collector, without the setting, gets the default.
    let old = "hold_down_secs = 1\nsilent_after_secs = 1\nmeter_due_grace_secs = 1\n[supplies]\nthreshold_percent = 10\nreplaced_above_percent = 50\n[[rules]]\nname = \"x\"\nconsole_pattern = \"E000\"\n";
    assert_eq!(Rules::parse("rules.toml", old).unwrap().catch_up_secs, 600);
}

#[test]
fn silent_device_table() {
    let r = Rules::defaults();
    let day = 1440 * MIN;
    #[rustfmt::skip]
    let cases: Vec<(&str, bool, i64, bool)> = vec![
        ("eMaintenance, silent a day", true, day, true),
        ("eMaintenance, silent an hour", true, 60 * MIN, false),
        ("without eMaintenance nobody expects reports", false, 2 * day, false),
    ];
    for (what, emaint, after, want) in cases {
        let mut t = Track::default();
        t.heard_from(T0);
        let ch = t.tick(&r, emaint, T0 + after);
        assert_eq!(opened(&ch) == vec!["device_silent:"], want, "{what}");
        // Once open, it is not opened again; a report closes it.
        if want {
            assert!(t.tick(&r, emaint, T0 + after + MIN).is_empty());
            let ch = t.heard_from(T0 + after + 2 * MIN);
            assert_eq!(closed(&ch), vec!["device_silent:"], "{what}");
        }
    }
    // A product never heard from is not "silent" (it has no baseline yet).
    assert!(Track::default().tick(&r, true, T0).is_empty());
    // The report that ends the silence closes it, whatever it carries.
    let a = Articles::new();
    for report in ["status", "supplies"] {
        let mut t = Track::default();
        t.heard_from(T0);
        assert_eq!(opened(&t.tick(&r, true, T0 + day)), vec!["device_silent:"]);
        let at = T0 + day + MIN;
        let ch = match report {
            "status" => t.observe_status(&r, &clear(), at, &a),
            _ => t.observe_supplies(&r, &supplies(Some(80), "ok"), at, &a),
        };
        assert_eq!(closed(&ch), vec!["device_silent:"], "{report}");
    }
}

#[test]
fn missing_billing_read_table() {
    let r = Rules::defaults();
    let day = 1440 * MIN;
    let mut t = Track::default();
    // Before cutoff + grace: nothing; after: one request; the read closes it.
    assert!(t
        .meter_due(&r, "2027-03", T0, false, T0 + 2 * day)
        .is_empty());
    let ch = t.meter_due(&r, "2027-03", T0, false, T0 + 3 * day);
    assert_eq!(opened(&ch), vec!["meter_due:2027-03"]);
    assert!(t
        .meter_due(&r, "2027-03", T0, false, T0 + 4 * day)
        .is_empty());
    let ch = t.meter_due(&r, "2027-03", T0, true, T0 + 5 * day);
    assert_eq!(closed(&ch), vec!["meter_due:2027-03"]);
    // A read in time: never a request.
    let mut t = Track::default();
    assert!(t
        .meter_due(&r, "2027-04", T0, true, T0 + 9 * day)
        .is_empty());
}

#[test]
fn meter_anomalies_one_request_per_product() {
    let a = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(c, w)| (c.to_string(), w.to_string()))
            .collect()
    };
    let mut t = Track::default();
    assert!(t.meter_anomaly(&[], T0).is_empty());
    // A reset touches every counter: one request, naming the first.
    let ch = t.meter_anomaly(
        &a(&[
            ("canon.101", "120 is lower than 1500000"),
            ("canon.102", "80 is lower than 900000"),
            ("canon.103", "3 is lower than 4000"),
        ]),
        T0,
    );
    assert_eq!(opened(&ch), vec!["meter_anomaly:"]);
    match &ch[..] {
        [Change::Open { title, .. }] => assert_eq!(
            title,
            "meter anomaly: canon.101: 120 is lower than 1500000 (and 2 more counters)"
        ),
        other => panic!("{other:?}"),
    }
    // The next observation with anomalies, on any counter: one occurrence.
    let ch = t.meter_anomaly(&a(&[("canon.102", "jump"), ("canon.101", "low")]), T0 + MIN);
    assert!(
        matches!(&ch[..], [Change::Occurrence { occurrences: 2, .. }]),
        "{ch:?}"
    );
    // Status observations and the clock never close meter anomalies.
    let r = Rules::defaults();
    let ch = t.observe_status(&r, &clear(), T0 + 100 * MIN, &Articles::new());
    assert!(closed(&ch).is_empty());
    assert!(t.tick(&r, false, T0 + 1000 * MIN).is_empty());
}

#[test]
fn close_reasons_say_the_hold_down_in_human_units() {
    for (secs, text) in [
        (45, "45 s"),
        (60, "1 min"),
        (1800, "30 min"),
        (5400, "90 min"),
        (14400, "4 h"),
    ] {
        assert_eq!(super::span(secs), text);
    }
}
