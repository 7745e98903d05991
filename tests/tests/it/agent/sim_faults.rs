//! The engine against meterlink-sim: faults, v1, credential order, clones,
//! and discovery over a simulated network of 200 addresses.

use meterlink_agent::discovery;
use meterlink_agent::poll::{read_device, ReadError};
use meterlink_agent::profile::ProfileSet;
use meterlink_agent::snmp::engine::{
    Credential, CredentialSet, Engine, EngineConfig, Secret, SnmpError,
};
use meterlink_agent::snmp::usm::{AuthProtocol, PrivProtocol, UsmUser};
use meterlink_agent::snmp::Version;
use meterlink_sim::{serve, Fault, Fleet, Recording, SimConfig};
use meterlink_tests::peers::{community, fixtures_dir};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

fn recording(name: &str) -> Arc<Recording> {
    let text = std::fs::read_to_string(fixtures_dir().join(format!("{name}.snmprec"))).unwrap();
    let (r, errors) = Recording::parse(name, &text);
    assert!(errors.is_empty(), "{errors:?}");
    Arc::new(r)
}

/// Addresses 127.<net>.0.1 .. on a fixed port: each test its own /16.
fn addrs(net: u8, n: usize) -> Vec<SocketAddr> {
    (0..n)
        .map(|i| {
            let i = i + 1;
            format!("127.{net}.{}.{}:16161", i / 250, i % 250 + 1)
                .parse()
                .unwrap()
        })
        .collect()
}

async fn start(
    cfg: SimConfig,
    recs: Vec<Arc<Recording>>,
    a: Vec<SocketAddr>,
) -> (Arc<Fleet>, Vec<tokio::task::JoinHandle<()>>) {
    let fleet = Arc::new(Fleet::new(cfg, recs, a));
    let tasks = serve(fleet.clone()).await.unwrap();
    (fleet, tasks)
}

async fn engine(timeout_ms: u64, retries: u32) -> Arc<Engine> {
    Engine::new(EngineConfig {
        timeout: Duration::from_millis(timeout_ms),
        retries,
        ..EngineConfig::default()
    })
    .await
    .unwrap()
}

fn counter(r: &meterlink_agent::observation::DeviceReading, id: &str) -> Option<u64> {
    r.counters.iter().find(|c| c.id == id).map(|c| c.value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_ends_in_a_clean_result() {
    let faults = [
        None,
        Some(Fault::NoReply),
        Some(Fault::WrongRequestId),
        Some(Fault::Truncated),
        Some(Fault::NonIncreasing),
        Some(Fault::TooBigEmpty),
        Some(Fault::BrokenBulk),
        Some(Fault::CounterRegression),
    ];
    let (fleet, _t) = start(
        SimConfig::default(),
        vec![recording("canon_iradv_c5560")],
        addrs(41, faults.len()),
    )
    .await;
    for (d, f) in fleet.devices.iter().zip(faults) {
        if let Some(f) = f {
            d.set_fault(f, true);
        }
    }
    let e = engine(150, 1).await;
    let set = ProfileSet::embedded();
    let cred = [community("public")];
    let read = |i: usize| {
        let (e, set, cred, a) = (e.clone(), set.clone(), cred.clone(), fleet.devices[i].addr);
        async move {
            tokio::time::timeout(Duration::from_secs(30), read_device(&e, &set, a, &cred))
                .await
                .expect("a read never hangs")
        }
    };
    let ok = read(0).await.unwrap();
    assert_eq!(counter(&ok.reading, "canon.101"), Some(184527));
    assert_eq!(ok.reading.counters.len(), 20);
    assert!(ok.pdus <= 4, "full read took {} PDUs", ok.pdus);

    for i in 1..=3 {
        let err = read(i).await.unwrap_err();
        assert!(
            matches!(err, ReadError::Snmp(SnmpError::Timeout { .. })),
            "{faults:?}[{i}]: {err}"
        );
    }
    assert!(
        e.stats().stray.load(Ordering::Relaxed) > 0,
        "wrong request ids were not dropped"
    );
    assert!(
        e.stats().malformed.load(Ordering::Relaxed) > 0,
        "truncated packets were not counted"
    );

    // Non-increasing OIDs: the walk stops instead of looping; identity is intact.
    let r = read(4).await.unwrap();
    assert_eq!(r.reading.identity.serial.as_deref(), Some("2KM01234-4"));
    assert!(r.pdus < 40, "{} PDUs", r.pdus);

    // tooBig with an empty list, and GETBULK never answered: GETNEXT fallback,
    // complete data, and remembered for the next read.
    for i in [5, 6] {
        let r = read(i).await.unwrap();
        assert_eq!(r.reading.counters.len(), 20, "{:?}", faults[i]);
        assert_eq!(
            counter(&r.reading, "canon.101"),
            Some(184527 + i as u64 * 1000)
        );
        assert!(e.device(fleet.devices[i].addr).lock().await.bulk_broken);
        let again = read(i).await.unwrap();
        assert_eq!(again.reading.counters, r.reading.counters);
        let before = fleet.devices[i].requests();
        let _ = read(i).await.unwrap();
        let used = fleet.devices[i].requests() - before;
        assert_eq!(
            used, again.pdus,
            "no GETBULK retried on a device known to break it"
        );
    }

    let r = read(7).await.unwrap();
    assert_eq!(counter(&r.reading, "canon.101"), Some((184527 + 7000) / 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_reads_the_same_as_v2c() {
    let (fleet, _t) = start(
        SimConfig::default(),
        vec![recording("canon_iradv_c5560"), recording("canon_lbp_jam")],
        addrs(42, 2),
    )
    .await;
    let e = engine(300, 1).await;
    let set = ProfileSet::embedded();
    let v1 = CredentialSet {
        name: "v1 public".into(),
        credential: Credential::Community {
            version: Version::V1,
            community: Secret("public".into()),
        },
    };
    for d in &fleet.devices {
        let a = read_device(&e, &set, d.addr, &[community("public")])
            .await
            .unwrap();
        let b = read_device(&e, &set, d.addr, std::slice::from_ref(&v1))
            .await
            .unwrap();
        assert_eq!(b.reading.snmp_version, "v1");
        assert_eq!(a.reading.counters, b.reading.counters);
        assert_eq!(a.reading.supplies, b.reading.supplies);
        assert_eq!(a.reading.status, b.reading.status);
        assert_eq!(a.reading.identity, b.reading.identity);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_order_remembered_and_v3_never_falls_back() {
    let user = Arc::new(
        UsmUser::new(
            "meter",
            Some((AuthProtocol::Sha256, "authpass1")),
            Some((PrivProtocol::Aes128, "privpass1")),
        )
        .unwrap(),
    );
    let cfg = SimConfig {
        v3_users: vec![user.clone()],
        ..SimConfig::default()
    };
    let (fleet, _t) = start(cfg, vec![recording("hp_laserjet_m404")], addrs(43, 1)).await;
    let a = fleet.devices[0].addr;
    let e = engine(150, 0).await;
    let set = ProfileSet::embedded();
    let creds = [community("wrong"), community("public")];
    let r = read_device(&e, &set, a, &creds).await.unwrap();
    assert_eq!(r.credential, "community public");
    assert_eq!(e.device(a).lock().await.credential, Some(1));
    // Next read goes straight to the one that worked.
    let before = fleet.devices[0].requests();
    let r2 = read_device(&e, &set, a, &creds).await.unwrap();
    assert_eq!(fleet.devices[0].requests() - before, r2.pdus);

    // A v3 set the device refuses stops there, even with a community after it.
    let bad_v3 = CredentialSet {
        name: "v3 meter".into(),
        credential: Credential::V3 {
            user: Arc::new(
                UsmUser::new(
                    "meter",
                    Some((AuthProtocol::Sha256, "not-the-pass")),
                    Some((PrivProtocol::Aes128, "privpass1")),
                )
                .unwrap(),
            ),
            context: String::new(),
        },
    };
    let e2 = engine(150, 0).await;
    let err = read_device(&e2, &set, a, &[bad_v3, community("public")])
        .await
        .unwrap_err();
    assert!(
        matches!(err, ReadError::Snmp(SnmpError::Auth { .. })),
        "{err}"
    );
    let good_v3 = CredentialSet {
        name: "v3 meter".into(),
        credential: Credential::V3 {
            user,
            context: String::new(),
        },
    };
    let r = read_device(&e2, &set, a, &[good_v3]).await.unwrap();
    assert_eq!(r.reading.identity.serial.as_deref(), Some("PHBLL12345"));
    assert_eq!(r.reading.snmp_version, "v3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_have_distinct_identity_and_counters() {
    let (fleet, _t) = start(
        SimConfig::default(),
        vec![recording("canon_iradv_c5560")],
        addrs(44, 3),
    )
    .await;
    let e = engine(300, 1).await;
    let set = ProfileSet::embedded();
    let mut serials = Vec::new();
    let mut macs = Vec::new();
    for (i, d) in fleet.devices.iter().enumerate() {
        let r = read_device(&e, &set, d.addr, &[community("public")])
            .await
            .unwrap();
        serials.push(r.reading.identity.serial.clone().unwrap());
        macs.push(r.reading.identity.mac.clone().unwrap());
        let oid = "1.3.6.1.4.1.1602.1.11.1.3.1.4.101".parse().unwrap();
        assert_eq!(
            counter(&r.reading, "canon.101"),
            d.counter_value(&fleet, &oid)
        );
        assert_eq!(
            counter(&r.reading, "canon.101"),
            Some(184527 + 1000 * i as u64)
        );
    }
    assert_eq!(serials, vec!["2KM01234", "2KM01234-1", "2KM01234-2"]);
    macs.dedup();
    assert_eq!(macs.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_of_200_addresses_finds_exactly_the_printers() {
    let names = [
        "canon_iradv_c5560",
        "canon_lbp_jam",
        "canon_ir2630_service",
        "hp_laserjet_m404",
        "ricoh_mpc3004",
        "switch_procurve",
    ];
    let recs: Vec<_> = names.iter().map(|n| recording(n)).collect();
    let a = addrs(45, 200);
    let (fleet, _t) = start(SimConfig::default(), recs, a.clone()).await;
    // Every seventh address is silent (nothing answers there).
    let mut expected = Vec::new();
    for d in &fleet.devices {
        if d.index % 7 == 3 {
            d.set_fault(Fault::NoReply, true);
        } else if d.recording().name != "switch_procurve" {
            expected.push((d.addr.to_string(), d.recording().name.clone()));
        }
    }
    let e = Engine::new(EngineConfig {
        timeout: Duration::from_millis(300),
        retries: 1,
        concurrency: 64,
        max_pps: Some(2000),
        ..EngineConfig::default()
    })
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let found = tokio::time::timeout(
        Duration::from_secs(60),
        discovery::scan(
            e,
            Arc::new(ProfileSet::embedded()),
            a,
            community("public"),
            |_, _, _| {},
        ),
    )
    .await
    .expect("discovery finishes");
    eprintln!("discovery of 200 addresses took {:?}", started.elapsed());
    let printers: Vec<(String, String)> = found
        .iter()
        .filter(|f| f.kind == discovery::FoundKind::Printer)
        .map(|f| (f.address.clone(), f.vendor.clone().unwrap_or_default()))
        .collect();
    assert_eq!(printers.len(), expected.len());
    for ((addr, vendor), (want_addr, rec)) in printers.iter().zip(&expected) {
        assert_eq!(addr, want_addr);
        let want_vendor = if rec.starts_with("canon") {
            "Canon"
        } else if rec.starts_with("hp") {
            "HP"
        } else {
            "Ricoh"
        };
        assert_eq!(vendor, want_vendor, "{addr}");
    }
    let others = found
        .iter()
        .filter(|f| f.kind == discovery::FoundKind::Other)
        .count();
    let silent = found
        .iter()
        .filter(|f| f.kind == discovery::FoundKind::Silent)
        .count();
    assert_eq!(
        silent,
        fleet.devices.iter().filter(|d| d.index % 7 == 3).count()
    );
    assert_eq!(others + silent + printers.len(), 200);
    assert!(found
        .iter()
        .filter(|f| f.kind == discovery::FoundKind::Other)
        .all(|f| f.sys_descr.as_deref().unwrap_or("").contains("ProCurve")));
}
