use super::*;
use crate::snmp::snmprec;

fn snap(text: &str) -> Snapshot {
    snmprec::parse("test", text).unwrap().into_iter().collect()
}

#[test]
fn embedded_profiles_load_and_extend() {
    let set = ProfileSet::embedded();
    let canon = set.get("canon").unwrap();
    // Own identity OIDs come first, then the inherited generic ones.
    assert_eq!(canon.identity.serial[0], oid("1.3.6.1.4.1.1602.1.2.1.4.0"));
    assert_eq!(
        canon.identity.serial.last().unwrap(),
        &oid("1.3.6.1.2.1.43.5.1.1.17.1")
    );
    assert!(canon.counters.iter().any(|c| c.id == "prt.life"));
    assert_eq!(canon.tables.len(), 3);
    // canon overrides the generic "total".
    assert_eq!(canon.derived.iter().filter(|d| d.id == "total").count(), 1);
    assert_eq!(canon.derived[0].alternatives[0], vec!["canon.101"]);
}

#[test]
fn recognition_by_oid_then_descr_then_printer_mib() {
    let set = ProfileSet::embedded();
    let by_oid = snap("1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.1602.4.7\n");
    assert_eq!(set.recognise(&by_oid).unwrap().name, "canon");
    let by_descr = snap("1.3.6.1.2.1.1.1.0|4|Canon MF\n");
    assert_eq!(set.recognise(&by_descr).unwrap().name, "canon");
    let generic =
        snap("1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.11.2.3.9.1\n1.3.6.1.2.1.43.5.1.1.17.1|4|VNC123\n");
    assert_eq!(set.recognise(&generic).unwrap().name, "printer-mib");
    let switch = snap("1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.9.1.1\n1.3.6.1.2.1.1.1.0|4|Cisco IOS\n");
    assert!(set.recognise(&switch).is_none());
}

#[test]
fn glob() {
    assert!(glob_match("Canon *", "canon iR-ADV C5535"));
    assert!(!glob_match("Canon *", "Xerox Canon"));
    assert!(glob_match("*LBP*", "Canon LBP6670"));
    assert!(glob_match("a*b*c", "aXXbYYc"));
    assert!(!glob_match("a*b*c", "aXXbYY"));
}

#[test]
fn named_table_with_hex_names() {
    let set = ProfileSet::embedded();
    let s = snap(
        "1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.1602.4.2
1.3.6.1.4.1.1602.1.11.2.1.1.2.1|4x|546f74616c2031
1.3.6.1.4.1.1602.1.11.2.1.1.2.2|4|546F74616C202842572F536D616C6C29
1.3.6.1.4.1.1602.1.11.2.1.1.2.3|4|Mystery Count
1.3.6.1.4.1.1602.1.11.2.1.1.3.1|65|1200
1.3.6.1.4.1.1602.1.11.2.1.1.3.2|65|800
1.3.6.1.4.1.1602.1.11.2.1.1.3.3|2|5
",
    );
    let p = set.recognise(&s).unwrap();
    let r = observe(p, &s, "a", "v2c");
    let ids: Vec<_> = r
        .counters
        .iter()
        .map(|c| (c.id.as_str(), c.name.as_str(), c.value))
        .collect();
    assert_eq!(
        ids,
        vec![
            ("canon.101", "Total 1", 1200),
            ("canon.mystery-count", "Mystery Count", 5),
            ("canon.total-bw-small", "Total (BW/Small)", 800),
        ]
    );
    assert_eq!(
        r.derived.iter().find(|d| d.id == "total").unwrap().value,
        1200
    );
}

#[test]
fn bad_profile_names_file_and_line() {
    let e = ProfileSet::from_sources([(
        "mine.toml".to_string(),
        "name = \"x\"\n[detect]\nsys_object_id_prefixes = [\"1.3.x\"]\n".to_string(),
    )])
    .unwrap_err();
    assert_eq!(e.file, "mine.toml");
    assert!(e.what.contains("line 3"), "{e}");
    let e = ProfileSet::from_sources([(
        "a.toml".to_string(),
        "name = \"a\"\nextends = \"nope\"\n".to_string(),
    )])
    .unwrap_err();
    assert!(e.what.contains("unknown profile 'nope'"), "{e}");
}

#[test]
fn supply_special_levels() {
    let set = ProfileSet::embedded();
    let s = snap(
        "1.3.6.1.2.1.43.11.1.1.5.1.1|2|3
1.3.6.1.2.1.43.11.1.1.6.1.1|4|Black Toner
1.3.6.1.2.1.43.11.1.1.8.1.1|2|100
1.3.6.1.2.1.43.11.1.1.9.1.1|2|-3
1.3.6.1.2.1.43.11.1.1.6.1.2|4|Cyan Toner
1.3.6.1.2.1.43.11.1.1.8.1.2|2|1000
1.3.6.1.2.1.43.11.1.1.9.1.2|2|1200
1.3.6.1.2.1.43.11.1.1.6.1.3|4|Drum
1.3.6.1.2.1.43.11.1.1.8.1.3|2|-2
1.3.6.1.2.1.43.11.1.1.9.1.3|2|-2
1.3.6.1.2.1.43.11.1.1.6.1.4|4|Waste
1.3.6.1.2.1.43.11.1.1.8.1.4|2|100
1.3.6.1.2.1.43.11.1.1.9.1.4|2|5
",
    );
    let r = observe(set.get("printer-mib").unwrap(), &s, "a", "v2c");
    let st: Vec<_> = r
        .supplies
        .iter()
        .map(|s| (s.state.as_str(), s.percent))
        .collect();
    assert_eq!(
        st,
        vec![
            ("some_remaining", None),
            ("ok", Some(100)),
            ("unknown", None),
            ("low", Some(5))
        ]
    );
    assert_eq!(r.supplies[0].kind, "toner");
}
