//! Store tests, each run against SQLite and, when METERLINK_TEST_DATABASE_URL
//! names a PostgreSQL database, against PostgreSQL (a fresh schema per test).

use super::*;
use meterlink_proto::v1::observation::Body;
use meterlink_proto::v1::{
    Alert, CounterValue, DeviceStatus, Identity, MeterReading, Observation, Supplies, Supply,
};

const MIN: i64 = 60_000;
const DAY: i64 = 86_400_000;
/// 2026-09-21T...: a fixed "now" keeps the tests independent of the date.
const T0: i64 = 1_790_000_000_000;
/// The collector of these tests has been listening since the day before T0:
/// absences are judged at every tick from T0 on.
const LISTENING: i64 = T0 - DAY;

/// Generates `<name>::sqlite` and `<name>::postgres`, each calling
/// `<name>(store)` with a fresh store opened with `settings`.
macro_rules! on_both {
    ($name:ident) => {
        on_both!($name, Settings::default());
    };
    ($name:ident, $settings:expr) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("t.db");
                let s = Store::open(path.to_str().unwrap(), $settings)
                    .await
                    .unwrap();
                super::$name(s).await;
            }
            #[tokio::test]
            async fn postgres() {
                let Some(url) = scratch_postgres(concat!("store::", stringify!($name))).await
                else {
                    return;
                };
                let s = Store::open(&url, $settings).await.unwrap();
                super::$name(s).await;
            }
        }
    };
}

fn counter(id: &str, value: u64, bits: u32) -> CounterValue {
    CounterValue {
        id: id.into(),
        value,
        wraps_at_bits: bits,
        ..Default::default()
    }
}

fn meter_of(seq: u64, serial: &str, taken: i64, counters: Vec<CounterValue>) -> Observation {
    Observation {
        seq,
        taken_at_ms: taken,
        device_address: "10.0.0.5:161".into(),
        serial: serial.into(),
        body: Some(Body::Meter(MeterReading { counters })),
    }
}

fn meter(seq: u64, serial: &str, taken: i64, value: u64) -> Observation {
    meter_of(seq, serial, taken, vec![counter("canon.101", value, 0)])
}

fn status_of(seq: u64, serial: &str, taken: i64, s: DeviceStatus) -> Observation {
    Observation {
        seq,
        taken_at_ms: taken,
        device_address: "10.0.0.5:161".into(),
        serial: serial.into(),
        body: Some(Body::Status(s)),
    }
}

fn jam() -> DeviceStatus {
    DeviceStatus {
        errors: vec!["jammed".into()],
        alerts: vec![Alert {
            index: 1,
            severity: "warning".into(),
            training_level: "untrained".into(),
            group: "mediaPath".into(),
            code: 8,
            description: "Paper jam".into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn service_call() -> DeviceStatus {
    DeviceStatus {
        errors: vec!["serviceRequested".into()],
        alerts: vec![Alert {
            index: 1,
            severity: "critical".into(),
            training_level: "fieldService".into(),
            group: "generalPrinter".into(),
            code: 1,
            description: "E602-0001 Call service representative".into(),
            ..Default::default()
        }],
        console: vec!["E602-0001".into()],
        ..Default::default()
    }
}

fn toner(seq: u64, serial: &str, taken: i64, percent: u32) -> Observation {
    Observation {
        seq,
        taken_at_ms: taken,
        device_address: "10.0.0.5:161".into(),
        serial: serial.into(),
        body: Some(Body::Supplies(Supplies {
            supplies: vec![Supply {
                index: 1,
                description: "Black Toner".into(),
                kind: "toner".into(),
                percent: Some(percent),
                state: "ok".into(),
                ..Default::default()
            }],
        })),
    }
}

async fn account(s: &Store, id: &str, auto: bool) {
    s.put_account(&Account {
        id: id.into(),
        name: format!("{id} Ltd"),
        billing_code: format!("B-{id}"),
        service_code: format!("S-{id}"),
        auto_create_products: auto,
        time_zone: "Europe/Amsterdam".into(),
        organisation: None,
    })
    .await
    .unwrap();
}

/// An account with the agent `agent` in it, as most store tests begin.
async fn account_with_agent(s: &Store, id: &str, auto: bool, agent: &str) {
    account(s, id, auto).await;
    s.agent_hello(agent, "1", 0).await.unwrap();
    s.set_agent_account(agent, Some(id)).await.unwrap();
}

async fn open_requests(s: &Store, serial: &str) -> Vec<ServiceRequest> {
    s.requests(&RequestQuery {
        state: Some("open".into()),
        serial: Some(serial.into()),
        ..Default::default()
    })
    .await
    .unwrap()
}

mod accounts;
mod ingest;
mod pages;
mod requests;
mod users;
