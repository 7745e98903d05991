//! What the fuzz targets share: fixed SNMPv3 users, and a collector (store
//! and REST API) built once per fuzzing process.

pub mod collector;

use meterlink_agent::snmp::usm::{AuthProtocol, PrivProtocol, UsmUser};
use std::sync::OnceLock;

/// One user per security level and per family of protocols; localising a
/// passphrase costs a megabyte of hashing, so the users are made once.
pub fn usm_users() -> &'static [UsmUser] {
    static USERS: OnceLock<Vec<UsmUser>> = OnceLock::new();
    USERS.get_or_init(|| {
        let pass = "fuzzing-passphrase";
        let make = |a: Option<AuthProtocol>, p: Option<PrivProtocol>| {
            UsmUser::new("fuzz", a.map(|a| (a, pass)), p.map(|p| (p, pass)))
                .expect("fixed users are valid")
        };
        vec![
            make(None, None),
            make(Some(AuthProtocol::Md5), None),
            make(Some(AuthProtocol::Sha1), Some(PrivProtocol::Des)),
            make(Some(AuthProtocol::Sha1), Some(PrivProtocol::Aes128)),
            make(Some(AuthProtocol::Sha256), Some(PrivProtocol::Aes192)),
            make(Some(AuthProtocol::Sha512), Some(PrivProtocol::Aes256C)),
            make(Some(AuthProtocol::Md5), Some(PrivProtocol::Aes256)),
        ]
    })
}

/// The project's recordings (tests/fixtures), parsed once.
pub fn recordings() -> &'static [Vec<(meterlink_agent::snmp::Oid, meterlink_agent::snmp::Value)>] {
    static RECS: OnceLock<Vec<Vec<(meterlink_agent::snmp::Oid, meterlink_agent::snmp::Value)>>> =
        OnceLock::new();
    RECS.get_or_init(|| {
        FIXTURES
            .iter()
            .map(|(name, text)| {
                meterlink_agent::snmp::snmprec::parse(name, text).expect("the fixtures parse")
            })
            .collect()
    })
}

const FIXTURES: &[(&str, &str)] = &[
    (
        "canon_ir2630_service",
        include_str!("../../tests/fixtures/canon_ir2630_service.snmprec"),
    ),
    (
        "canon_iradv_c5560",
        include_str!("../../tests/fixtures/canon_iradv_c5560.snmprec"),
    ),
    (
        "canon_lbp_jam",
        include_str!("../../tests/fixtures/canon_lbp_jam.snmprec"),
    ),
    (
        "hp_laserjet_m404",
        include_str!("../../tests/fixtures/hp_laserjet_m404.snmprec"),
    ),
    (
        "ricoh_mpc3004",
        include_str!("../../tests/fixtures/ricoh_mpc3004.snmprec"),
    ),
    (
        "switch_procurve",
        include_str!("../../tests/fixtures/switch_procurve.snmprec"),
    ),
];

/// The observations the embedded profiles make of each recording, as an
/// agent would send them (sequence numbers from 1).
pub fn fixture_observations() -> &'static [meterlink_proto::v1::Observation] {
    static OBS: OnceLock<Vec<meterlink_proto::v1::Observation>> = OnceLock::new();
    OBS.get_or_init(|| {
        use meterlink_agent::profile::{observe, read_recording, ProfileSet};
        let set = ProfileSet::embedded();
        let mut out = Vec::new();
        for rec in recordings() {
            let read = read_recording(&set, rec);
            if let Some(p) = read.profile {
                let reading = observe(p, &read.snapshot, "192.0.2.1:161", "2c");
                out.extend(meterlink_agent::observation::to_observations(
                    &reading,
                    1_790_000_000_000,
                    true,
                ));
            }
        }
        for (i, o) in out.iter_mut().enumerate() {
            o.seq = i as u64 + 1;
        }
        out
    })
}

/// The device statuses among [`fixture_observations`].
pub fn statuses() -> &'static [meterlink_proto::v1::DeviceStatus] {
    static STATUSES: OnceLock<Vec<meterlink_proto::v1::DeviceStatus>> = OnceLock::new();
    STATUSES.get_or_init(|| {
        use meterlink_proto::v1::observation::Body;
        fixture_observations()
            .iter()
            .filter_map(|o| match &o.body {
                Some(Body::Status(s)) => Some(s.clone()),
                _ => None,
            })
            .collect()
    })
}

/// A CA that signs agent certificates, made once.
pub fn signer() -> &'static meterlink_collector::pki::sign::Signer {
    static SIGNER: OnceLock<meterlink_collector::pki::sign::Signer> = OnceLock::new();
    SIGNER.get_or_init(|| {
        let key = rcgen::KeyPair::generate().expect("a CA key");
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "meterlink fuzz CA");
        let cert = p.self_signed(&key).expect("a CA certificate");
        let pem = cert.pem();
        meterlink_collector::pki::sign::Signer::new(&pem, &key.serialize_pem(), &pem)
            .expect("a signer")
    })
}
