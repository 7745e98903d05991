//! A product's configuration over real HTTP, on SQLite and PostgreSQL: the
//! trays, bins and media paths an identity observation carries are kept
//! per product with the time they were read; a tray removed and one added
//! are product events; an older read or one without parts changes nothing;
//! only those who see the product read it.

use meterlink_collector::store::{scratch_postgres, Store};
use meterlink_proto::v1::observation::Body;
use meterlink_proto::v1::{Component, Identity, Observation};
use meterlink_tests::http::{expect, user, Api};
use meterlink_tests::stack::start_collector;
use serde_json::json;

fn tray(index: u32, name: &str, level: i64, media: &str) -> Component {
    Component {
        kind: "input".into(),
        index,
        name: name.into(),
        r#type: "sheetFeedAutoRemovableTray".into(),
        capacity: Some(550),
        level: Some(level),
        media: media.into(),
        ..Default::default()
    }
}

fn identity(seq: u64, at: i64, components: Vec<Component>) -> Observation {
    Observation {
        seq,
        taken_at_ms: at,
        device_address: "10.0.0.9:161".into(),
        serial: "C-1".into(),
        body: Some(Body::Identity(Identity {
            vendor: "Canon".into(),
            model: "iR-ADV C5560".into(),
            serial: "C-1".into(),
            components,
            ..Default::default()
        })),
    }
}

async fn configuration(op: &Api, store: &Store) {
    let r = op
        .send(
            "PUT",
            "/api/v1/accounts/acme",
            json!({"id": "acme", "name": "Acme", "billing_code": "B", "service_code": "S", "auto_create_products": true}),
        )
        .await;
    expect(&r, 200);
    store.agent_hello("agent-c", "0.1.0", 10).await.unwrap();
    expect(
        &op.send(
            "PATCH",
            "/api/v1/agents/agent-c",
            json!({"account": "acme"}),
        )
        .await,
        200,
    );
    let t0 = meterlink_collector::store::now_ms() - 3_600_000;
    let duplex = Component {
        kind: "media_path".into(),
        index: 1,
        description: "Duplex unit".into(),
        r#type: "longEdgeBindingDuplex".into(),
        ..Default::default()
    };
    let finisher = Component {
        kind: "output".into(),
        index: 2,
        name: "Finisher Tray A".into(),
        r#type: "removableBin".into(),
        capacity: Some(3000),
        level: Some(2400),
        ..Default::default()
    };
    let first = vec![
        tray(1, "Drawer 1", 550, "A4"),
        tray(2, "Drawer 2", 300, "A3"),
        finisher.clone(),
        duplex.clone(),
    ];
    store
        .ingest("agent-c", &[identity(1, t0, first)])
        .await
        .unwrap();
    let cfg = op.get("/api/v1/products/C-1/configuration").await;
    expect(&cfg, 200);
    let cfg = cfg.json();
    assert_eq!(cfg["seen_at_ms"], t0);
    assert_eq!(cfg["changed_at_ms"], t0);
    assert_eq!(cfg["duplex"], true);
    assert_eq!(cfg["components"].as_array().unwrap().len(), 4);
    assert_eq!(cfg["components"][1]["name"], "Drawer 2");
    assert_eq!(cfg["components"][1]["media"], "A3");
    assert_eq!(cfg["components"][2]["capacity"], 3000);

    // Drawer 2 taken out, a paper deck fitted, Drawer 1's level down: two
    // events, the level is no event.
    let t1 = t0 + 600_000;
    let second = vec![
        tray(1, "Drawer 1", 100, "A4"),
        tray(3, "Paper Deck", 2700, "A4"),
        finisher,
        duplex,
    ];
    store
        .ingest("agent-c", &[identity(2, t1, second.clone())])
        .await
        .unwrap();
    // An older read arriving late, and a read without parts: no change.
    store
        .ingest(
            "agent-c",
            &[
                identity(3, t0 + 1, vec![tray(9, "Old", 1, "A5")]),
                identity(4, t1 + 1, vec![]),
            ],
        )
        .await
        .unwrap();
    let cfg = op.get("/api/v1/products/C-1/configuration").await.json();
    assert_eq!(cfg["seen_at_ms"], t1);
    assert_eq!(cfg["changed_at_ms"], t1);
    let names: Vec<&str> = cfg["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Drawer 1", "Paper Deck", "Finisher Tray A", ""]);
    assert_eq!(cfg["components"][0]["level"], 100);
    let ev = op.get("/api/v1/products/C-1/events").await.json();
    let ev: Vec<(i64, String, String)> = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["at_ms"].as_i64().unwrap(),
                e["event"].as_str().unwrap().to_string(),
                e["text"].as_str().unwrap().to_string(),
            )
        })
        .filter(|e| e.1.starts_with("component"))
        .collect();
    assert_eq!(
        ev,
        vec![
            (
                t1,
                "component_removed".into(),
                "paper tray 2: Drawer 2".into()
            ),
            (
                t1,
                "component_added".into(),
                "paper tray 3: Paper Deck".into()
            ),
        ]
    );
    // The same read again: seen later, nothing changed.
    store
        .ingest("agent-c", &[identity(5, t1 + 60_000, second)])
        .await
        .unwrap();
    let cfg = op.get("/api/v1/products/C-1/configuration").await.json();
    assert_eq!(cfg["seen_at_ms"], t1 + 60_000);
    assert_eq!(cfg["changed_at_ms"], t1);

    // Who reads it: the company's account manager; not another company's,
    // not a product administrator of other products.
    expect(
        &op.send(
            "PUT",
            "/api/v1/accounts/globex",
            json!({"id": "globex", "name": "Globex", "billing_code": "B", "service_code": "S"}),
        )
        .await,
        200,
    );
    let mia = user(op, "mia", "account_manager", "acme").await;
    let pat = user(op, "pat", "product_administrator", "acme").await;
    let gus = user(op, "gus", "account_manager", "globex").await;
    expect(&mia.get("/api/v1/products/C-1/configuration").await, 200);
    expect(&pat.get("/api/v1/products/C-1/configuration").await, 404);
    expect(&gus.get("/api/v1/products/C-1/configuration").await, 404);
    expect(&op.get("/api/v1/products/NOPE/configuration").await, 404);
}

#[tokio::test]
async fn configuration_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let c = start_collector(dir.path(), "", "agent-c", &dir.path().join("certs")).await;
    configuration(&c.operator(), &c.running.store).await;
    c.running.stop().await;
}

#[tokio::test]
async fn configuration_on_postgres() {
    let Some(url) = scratch_postgres("configuration_on_postgres").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("[store]\npostgres = \"{url}\"\n");
    let c = start_collector(dir.path(), &extra, "agent-c", &dir.path().join("certs")).await;
    configuration(&c.operator(), &c.running.store).await;
    c.running.stop().await;
}
