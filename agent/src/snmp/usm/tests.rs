//! RFC 3414's key localisation vectors, and each protocol's round trip.

use super::*;
use crate::snmp::message::{
    decode_message, oid, Message, Pdu, PduType, UsmParams, FLAG_REPORTABLE,
};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// RFC 3414 A.3.1 and A.3.2: "maplesyrup" localised to engine 000...02.
#[test]
fn rfc3414_key_localisation_vectors() {
    let engine = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    let md5 = AuthProtocol::Md5.password_to_key(b"maplesyrup");
    assert_eq!(hex(&md5), "9faf3283884e92834ebc9847d8edd963");
    assert_eq!(
        hex(&AuthProtocol::Md5.localize(&md5, &engine)),
        "526f5eed9fcce26f8964c2930787d82b"
    );
    let sha = AuthProtocol::Sha1.password_to_key(b"maplesyrup");
    assert_eq!(hex(&sha), "9fb5cc0381497b3793528939ff788d5d79145211");
    assert_eq!(
        hex(&AuthProtocol::Sha1.localize(&sha, &engine)),
        "6695febc9288e36282235fc7151f128497b38f3f"
    );
}

/// The megabyte of repeated password is RFC 3414 A.2's whatever the
/// password's length: shorter than a hash block, not dividing it, a block
/// exactly, and longer than the megabyte itself.
#[test]
fn password_to_key_hashes_the_first_megabyte_of_the_repetition() {
    for len in [1, 8, 10, 63, 64, 65, 1000, 1_048_577] {
        let password: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let want: Vec<u8> = password.iter().copied().cycle().take(1_048_576).collect();
        let want = md5::Md5::digest(&want).to_vec();
        assert_eq!(AuthProtocol::Md5.password_to_key(&password), want, "{len}");
    }
}

fn sample(flags: u8) -> V3Message {
    V3Message {
        msg_id: 9,
        max_size: 65507,
        flags,
        usm: UsmParams {
            engine_id: b"\x80\x00\x1f\x88\x80engine".to_vec(),
            engine_boots: 3,
            engine_time: 1234,
            user_name: b"meter".to_vec(),
            auth_params: vec![],
            priv_params: vec![],
        },
        data: ScopedData::Plain(crate::snmp::message::ScopedPdu {
            context_engine_id: b"\x80\x00\x1f\x88\x80engine".to_vec(),
            context_name: vec![],
            pdu: Pdu::request(PduType::Get, 9, &[oid("1.3.6.1.2.1.1.1.0")]),
        }),
    }
}

#[test]
fn every_protocol_pair_seals_and_opens() {
    for a in AuthProtocol::ALL {
        for p in PrivProtocol::ALL {
            let u =
                UsmUser::new("meter", Some((a, "authpass123")), Some((p, "privpass123"))).unwrap();
            let keys = u.localize(b"\x80\x00\x1f\x88\x80engine");
            let msg = sample(FLAG_REPORTABLE);
            let bytes = keys.seal(msg.clone());
            let Message::V3(d) = decode_message(&bytes).unwrap() else {
                panic!()
            };
            let sp = keys.open(&bytes, d.auth_params_offset, &d.msg).unwrap();
            let ScopedData::Plain(orig) = &msg.data else {
                panic!()
            };
            assert_eq!(&sp, orig, "{a:?}/{p:?}");

            let wrong = UsmUser::new("meter", Some((a, "authpass124")), Some((p, "privpass123")))
                .unwrap()
                .localize(b"\x80\x00\x1f\x88\x80engine");
            assert_eq!(
                wrong.open(&bytes, d.auth_params_offset, &d.msg),
                Err(UsmError::WrongDigest)
            );
        }
    }
}

#[test]
fn key_extension_variants_differ() {
    let e = b"\x80\x00\x1f\x88\x80engine";
    let b = UsmUser::new(
        "u",
        Some((AuthProtocol::Sha1, "authpass123")),
        Some((PrivProtocol::Aes256, "privpass123")),
    )
    .unwrap()
    .localize(e);
    let r = UsmUser::new(
        "u",
        Some((AuthProtocol::Sha1, "authpass123")),
        Some((PrivProtocol::Aes256C, "privpass123")),
    )
    .unwrap()
    .localize(e);
    let (bk, rk) = (b.privacy.unwrap().1, r.privacy.unwrap().1);
    assert_eq!(bk.len(), 32);
    assert_eq!(bk[..20], rk[..20]);
    assert_ne!(bk[20..], rk[20..]);
}

#[test]
fn secrets_do_not_appear_in_debug() {
    let u = UsmUser::new("meter", Some((AuthProtocol::Sha256, "s3cretpass")), None).unwrap();
    let d = format!("{u:?} {:?}", u.localize(b"e"));
    assert!(!d.contains("s3cret"));
    assert!(d.contains("meter"));
}

#[test]
fn short_passphrase_refused() {
    assert_eq!(
        UsmUser::new("u", Some((AuthProtocol::Md5, "short")), None).unwrap_err(),
        UsmConfigError::ShortPassphrase("authentication")
    );
}
