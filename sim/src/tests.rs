//! The responder, data in and data out.

use crate::*;

use meterlink_agent::snmp::message::{decode_message, CommunityMessage, Message, Pdu, PduType};
use meterlink_agent::snmp::{Value, Version};
use std::sync::Arc;

fn fleet(n: usize) -> Fleet {
    let (r, _) = Recording::parse(
        "t",
        "1.3.6.1.2.1.1.1.0|4|Canon LBP\n1.3.6.1.2.1.43.10.2.1.4.1.1|65|100\n",
    );
    let addrs = (0..n)
        .map(|i| format!("127.0.0.1:{}", 20000 + i).parse().unwrap())
        .collect();
    Fleet::new(SimConfig::default(), vec![Arc::new(r)], addrs)
}

fn get(f: &Fleet, d: usize, oid: &str) -> Option<Pdu> {
    let m = CommunityMessage {
        version: Version::V2c,
        community: b"public".to_vec(),
        pdu: Pdu::request(PduType::Get, 7, &[oid.parse().unwrap()]),
    };
    let out = f.handle(&f.devices[d], &m.encode())?;
    match decode_message(&out).ok()? {
        Message::Community(c) => Some(c.pdu),
        _ => None,
    }
}

#[test]
fn control_switches_faults_on_and_off() {
    let f = fleet(3);
    assert!(get(&f, 1, "1.3.6.1.2.1.1.1.0").is_some());
    assert_eq!(
        control(&f, "fault no-reply on 1"),
        "ok: no-reply on on 1 devices"
    );
    assert!(get(&f, 1, "1.3.6.1.2.1.1.1.0").is_none());
    assert!(get(&f, 0, "1.3.6.1.2.1.1.1.0").is_some());
    assert_eq!(
        control(&f, "fault no-reply off all"),
        "ok: no-reply off on 3 devices"
    );
    assert!(get(&f, 1, "1.3.6.1.2.1.1.1.0").is_some());
    assert!(control(&f, "fault melt on").starts_with("error: unknown fault"));
    assert!(control(&f, "fault no-reply on 9").starts_with("error"));
    assert!(control(&f, "stats").starts_with("devices 3 requests"));
}

#[test]
fn counters_offset_per_clone_and_regress_on_demand() {
    let f = fleet(2);
    let value = |d| {
        get(&f, d, "1.3.6.1.2.1.43.10.2.1.4.1.1").unwrap().varbinds[0]
            .value
            .clone()
    };
    assert_eq!(value(0), Value::Counter32(100));
    assert_eq!(value(1), Value::Counter32(1100));
    control(&f, "fault counter-regression on 1");
    assert_eq!(value(1), Value::Counter32(550));
}

#[test]
fn a_loaded_recording_is_served_as_the_same_clone() {
    let f = fleet(2);
    let (r, _) = Recording::parse(
        "t2",
        "1.3.6.1.2.1.1.1.0|4|Canon LBP jammed\n1.3.6.1.2.1.43.10.2.1.4.1.1|65|200\n",
    );
    f.devices[1].load(Arc::new(r));
    let pdu = get(&f, 1, "1.3.6.1.2.1.1.1.0").unwrap();
    assert_eq!(
        pdu.varbinds[0].value,
        Value::OctetString(b"Canon LBP jammed".to_vec())
    );
    // Clone 1 keeps its counter offset in the new recording.
    let pdu = get(&f, 1, "1.3.6.1.2.1.43.10.2.1.4.1.1").unwrap();
    assert_eq!(pdu.varbinds[0].value, Value::Counter32(1200));
    assert_eq!(f.devices[1].recording().name, "t2");
    // The other device still serves the first recording.
    let pdu = get(&f, 0, "1.3.6.1.2.1.1.1.0").unwrap();
    assert_eq!(
        pdu.varbinds[0].value,
        Value::OctetString(b"Canon LBP".to_vec())
    );
}

#[test]
fn wrong_community_gets_no_answer_and_garbage_is_ignored() {
    let f = fleet(1);
    let m = CommunityMessage {
        version: Version::V2c,
        community: b"nope".to_vec(),
        pdu: Pdu::request(PduType::Get, 7, &["1.3.6.1.2.1.1.1.0".parse().unwrap()]),
    };
    assert!(f.handle(&f.devices[0], &m.encode()).is_none());
    assert!(f.handle(&f.devices[0], &[0x30, 0x80, 0xff]).is_none());
}
