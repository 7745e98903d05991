//! Data-driven tests of the device profiles and the codec's value handling:
//! each fixture recording in, the expected observation out. The read plan is
//! executed against the recording exactly as the engine executes it against a
//! device. Set UPDATE_EXPECT=1 to rewrite the expected files after a
//! deliberate change, then review the diff.

use meterlink_agent::profile::{observe, read_recording, ProfileSet};
use meterlink_agent::snmp::snmprec;
use meterlink_tests::peers::fixtures_dir;
use serde_json::{json, Value};

fn observe_fixture(name: &str) -> Value {
    let path = fixtures_dir().join(format!("{name}.snmprec"));
    let text = std::fs::read_to_string(&path).unwrap();
    let rec = snmprec::parse(name, &text).unwrap();
    let set = ProfileSet::embedded();
    let planned = read_recording(&set, &rec);
    match planned.profile {
        Some(p) => serde_json::to_value(observe(p, &planned.snapshot, "fixture", "v2c")).unwrap(),
        None => json!({"not_a_printer": true}),
    }
}

#[test]
fn every_fixture_matches_its_expected_observation() {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let p = e.path();
            (p.extension()? == "snmprec")
                .then(|| p.file_stem().unwrap().to_string_lossy().to_string())
        })
        .collect();
    names.sort();
    assert!(names.len() >= 5, "fixtures missing: {names:?}");
    let update = std::env::var("UPDATE_EXPECT").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    for name in &names {
        let got = observe_fixture(name);
        let path = fixtures_dir().join("expected").join(format!("{name}.json"));
        if update {
            std::fs::write(&path, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
            continue;
        }
        let want: Value = match std::fs::read_to_string(&path) {
            Ok(t) => serde_json::from_str(&t).unwrap(),
            Err(_) => {
                failures.push(format!("{name}: no expected file {}", path.display()));
                continue;
            }
        };
        if got != want {
            failures.push(format!(
                "{name}: observation differs from {}\n got: {}",
                path.display(),
                serde_json::to_string_pretty(&got).unwrap()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn colour_iradv_counters_supplies_and_toner_alert() {
    let r = observe_fixture("canon_iradv_c5560");
    assert_eq!(r["profile"], "canon");
    assert_eq!(r["identity"]["serial"], "2KM01234");
    assert_eq!(r["identity"]["model"], "iR-ADV C5560");
    assert_eq!(r["identity"]["firmware"], "78.07");
    assert_eq!(r["identity"]["mac"], "00:00:85:1a:2b:3c");
    let c = |id: &str| {
        r["counters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
    };
    assert_eq!(c("canon.101").unwrap()["value"], 184527);
    assert_eq!(
        c("canon.101").unwrap()["oid"],
        "1.3.6.1.4.1.1602.1.11.1.3.1.4.101"
    );
    // The Printer-MIB count is kept beside the Canon counter, not instead of it.
    assert_eq!(c("prt.life").unwrap()["value"], 184233);
    assert_eq!(c("prt.life").unwrap()["unit"], "impressions");
    let d = |id: &str| {
        r["derived"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()["value"]
            .clone()
    };
    assert_eq!(d("total"), 184527);
    assert_eq!(d("black"), 61204);
    assert_eq!(d("colour"), 3800 + 119523);
    let magenta = &r["supplies"][2];
    assert_eq!(magenta["percent"], 8);
    assert_eq!(magenta["state"], "low");
    assert_eq!(r["supplies"][4]["state"], "some_remaining");
    assert_eq!(r["supplies"][4]["percent"], Value::Null);
    assert_eq!(r["status"]["errors"], json!(["lowToner"]));
    let a = &r["status"]["alerts"][0];
    assert_eq!(a["code"], 1104);
    assert_eq!(a["code_name"], "markerTonerAlmostEmpty");
    assert_eq!(a["group"], "markerSupplies");
    assert_eq!(a["severity"], "warning");
}

#[test]
fn lbp_named_table_and_jam() {
    let r = observe_fixture("canon_lbp_jam");
    // Serial falls through the Canon OIDs to prtGeneralSerialNumber.
    assert_eq!(r["identity"]["serial"], "XQS04567");
    let ids: Vec<&str> = r["counters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![
            "canon.101",
            "canon.102",
            "canon.108",
            "canon.301",
            "prt.life",
            "prt.poweron"
        ]
    );
    assert_eq!(r["counters"][0]["name"], "Total 1");
    assert_eq!(r["status"]["errors"], json!(["jammed"]));
    assert_eq!(r["status"]["device"], "down");
    assert_eq!(r["status"]["alerts"][0]["code_name"], "jam");
    assert_eq!(r["status"]["alerts"][0]["group"], "mediaPath");
    assert_eq!(r["supplies"][0]["description"], "Canon 057H Basic T");
}

#[test]
fn service_call_two_byte_errors_and_service_table_serial() {
    let r = observe_fixture("canon_ir2630_service");
    assert_eq!(r["identity"]["serial"], "XPA07788");
    assert_eq!(
        r["status"]["errors"],
        json!(["serviceRequested", "overduePreventMaint"])
    );
    let a = &r["status"]["alerts"][0];
    assert_eq!(a["training_level"], "fieldService");
    assert!(a["description"].as_str().unwrap().contains("E602-0001"));
    assert_eq!(r["status"]["console"][1], "E602-0001");
}

#[test]
fn non_canon_and_non_printer() {
    let hp = observe_fixture("hp_laserjet_m404");
    assert_eq!(hp["profile"], "printer-mib");
    assert_eq!(hp["identity"]["vendor"], "HP");
    assert_eq!(hp["identity"]["serial"], "PHBLL12345");
    assert_eq!(hp["identity"]["model"], "HP LaserJet Pro M404dn");
    assert_eq!(hp["supplies"][0]["percent"], 42);
    assert!(hp["counters"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| !c["id"].as_str().unwrap().starts_with("canon")));
    assert_eq!(
        observe_fixture("switch_procurve"),
        json!({"not_a_printer": true})
    );
}

/// snmpsim answers from the file by bisection, so a recording must be in OID
/// order to be served correctly by real peers.
#[test]
fn fixtures_are_in_oid_order() {
    for e in std::fs::read_dir(fixtures_dir()).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "snmprec") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let oids: Vec<meterlink_agent::snmp::Oid> = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| l.split('|').next().unwrap().parse().unwrap())
            .collect();
        assert!(
            oids.windows(2).all(|w| w[0] < w[1]),
            "{} is not sorted by OID",
            p.display()
        );
    }
}
