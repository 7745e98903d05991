//! The REST API over real HTTP against a running collector, on SQLite and
//! on PostgreSQL (METERLINK_TEST_DATABASE_URL); its OpenAPI document checked
//! by openapi-spec-validator and, against the live collector, by schemathesis.

use meterlink_collector::store::{scratch_postgres, Store};
use meterlink_proto::v1::observation::Body;
use meterlink_proto::v1::{Alert, CounterValue, DeviceStatus, MeterReading, Observation};
use meterlink_tests::http::{get, request, Reply};
use meterlink_tests::stack::start_collector;
use serde_json::json;
use std::net::SocketAddr;

const DAY: i64 = 86_400_000;
const T0: i64 = 1_790_000_000_000;

fn meter(seq: u64, serial: &str, taken: i64, value: u64) -> Observation {
    Observation {
        seq,
        taken_at_ms: taken,
        device_address: "10.1.2.3:161".into(),
        serial: serial.into(),
        body: Some(Body::Meter(MeterReading {
            counters: vec![CounterValue {
                id: "canon.101".into(),
                value,
                ..Default::default()
            }],
        })),
    }
}

fn service_call(seq: u64, serial: &str, taken: i64) -> Observation {
    Observation {
        seq,
        taken_at_ms: taken,
        device_address: "10.1.2.3:161".into(),
        serial: serial.into(),
        body: Some(Body::Status(DeviceStatus {
            alerts: vec![Alert {
                severity: "critical".into(),
                training_level: "fieldService".into(),
                description: "E602-0001 Call service representative".into(),
                ..Default::default()
            }],
            ..Default::default()
        })),
    }
}

async fn send(addr: SocketAddr, method: &str, path: &str, body: serde_json::Value) -> Reply {
    request(addr, method, path, Some(&body.to_string())).await
}

fn expect(r: &Reply, status: u16) {
    assert_eq!(r.status, status, "{}\n{}", r.headers, r.body);
}

async fn exercise(addr: SocketAddr, store: &Store) {
    // Accounts.
    let r = send(
        addr,
        "PUT",
        "/api/v1/accounts/acme",
        json!({"id": "acme", "name": "Acme Ltd", "billing_code": "B-100", "service_code": "S-100",
               "auto_create_products": true, "time_zone": "Europe/Amsterdam"}),
    )
    .await;
    expect(&r, 200);
    let r = send(addr, "PUT", "/api/v1/accounts/bad", json!({"id": "bad", "name": "x", "billing_code": "", "service_code": "", "time_zone": "Mars/Olympus"})).await;
    expect(&r, 422);
    assert_eq!(r.code(), "invalid_time_zone");
    assert_eq!(
        get(addr, "/api/v1/accounts").await.json()["accounts"][0]["billing_code"],
        "B-100"
    );

    // An agent reports; assigned to the account, its devices become products.
    store.agent_hello("agent-api", "0.1.0", 40).await.unwrap();
    let r = send(
        addr,
        "PATCH",
        "/api/v1/agents/agent-api",
        json!({"account": "acme"}),
    )
    .await;
    expect(&r, 200);
    assert_eq!(r.json()["account"], "acme");
    store
        .put_article(&meterlink_collector::store::Article {
            id: "kb-e602".into(),
            kind: "error_code".into(),
            code: Some("E602-0001".into()),
            title: "E602".into(),
            body: String::new(),
        })
        .await
        .unwrap();
    let batch = vec![
        meter(1, "API-1", T0, 1_000),
        meter(2, "API-2", T0, 2_000),
        meter(3, "API-3", T0, 3_000),
        meter(4, "API-1", T0 + DAY, 1_500),
        service_call(5, "API-2", T0 + DAY),
    ];
    store.ingest("agent-api", &batch).await.unwrap();
    let agents = get(addr, "/api/v1/agents").await.json();
    assert_eq!(agents["agents"][0]["backlog"], 35);
    assert_eq!(agents["agents"][0]["version"], "0.1.0");

    // Products: paged, searched, updated.
    let p1 = get(addr, "/api/v1/products?account=acme&limit=2").await;
    expect(&p1, 200);
    let p1 = p1.json();
    assert_eq!(p1["items"].as_array().unwrap().len(), 2);
    let next = p1["next"].as_str().unwrap();
    let p2 = get(
        addr,
        &format!("/api/v1/products?account=acme&limit=2&after={next}"),
    )
    .await
    .json();
    assert_eq!(p2["items"][0]["serial"], "API-3");
    assert!(p2["next"].is_null());
    let r = send(
        addr,
        "PATCH",
        "/api/v1/products/API-1",
        json!({"alt_name": "Reception MFP", "location": "Floor 2, room 201", "administrator": "jan",
               "emaintenance": false, "billing_day": 1, "entitlements": {"response_time": "4h"}}),
    )
    .await;
    expect(&r, 200);
    assert_eq!(r.json()["alt_name"], "Reception MFP");
    let found = get(addr, "/api/v1/products?q=reception").await.json();
    assert_eq!(found["items"][0]["serial"], "API-1");
    let one = get(addr, "/api/v1/products/API-1").await.json();
    assert_eq!(
        (
            one["counters"]["canon.101"].as_u64(),
            one["entitlements"]["response_time"].as_str()
        ),
        (Some(1_500), Some("4h"))
    );
    expect(
        &send(
            addr,
            "PATCH",
            "/api/v1/products/API-1",
            json!({"billing_day": 40}),
        )
        .await,
        422,
    );
    let r = send(
        addr,
        "PATCH",
        "/api/v1/products/API-1",
        json!({"colour": "red"}),
    )
    .await;
    expect(&r, 400);
    assert_eq!(r.code(), "invalid_body");

    // Readings: history, manual entry and its refusals.
    let r = send(
        addr,
        "POST",
        "/api/v1/products/API-1/readings",
        json!({"counter": "canon.101", "value": 1_700, "user": "jan"}),
    )
    .await;
    expect(&r, 201);
    assert_eq!(r.json()["source"], "manual");
    let r = send(
        addr,
        "POST",
        "/api/v1/products/API-1/readings",
        json!({"counter": "canon.101", "value": 10}),
    )
    .await;
    expect(&r, 422);
    assert_eq!(r.code(), "implausible_reading");
    let r = send(
        addr,
        "POST",
        "/api/v1/products/API-2/readings",
        json!({"counter": "canon.101", "value": 5_000}),
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (422, "emaintenance_product"));
    let h = get(addr, "/api/v1/products/API-1/readings?counter=canon.101")
        .await
        .json();
    let values: Vec<u64> = h["readings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_u64().unwrap())
        .collect();
    assert_eq!(values, vec![1_700, 1_500, 1_000]);
    assert_eq!(h["latest"]["canon.101"], 1_700);

    // Groups.
    let g = send(
        addr,
        "POST",
        "/api/v1/groups",
        json!({"account": "acme", "name": "Floor 2"}),
    )
    .await;
    expect(&g, 201);
    let id = g.json()["id"].as_i64().unwrap();
    let dup = send(
        addr,
        "POST",
        "/api/v1/groups",
        json!({"account": "acme", "name": "Floor 2"}),
    )
    .await;
    assert_eq!((dup.status, dup.code().as_str()), (409, "group_exists"));
    expect(
        &request(
            addr,
            "PUT",
            &format!("/api/v1/groups/{id}/products/API-1"),
            None,
        )
        .await,
        200,
    );
    expect(
        &request(
            addr,
            "PUT",
            &format!("/api/v1/groups/{id}/products/API-3"),
            None,
        )
        .await,
        200,
    );
    let r = send(
        addr,
        "PATCH",
        &format!("/api/v1/groups/{id}"),
        json!({"name": "Second floor"}),
    )
    .await;
    assert_eq!(r.json()["products"], json!(["API-1", "API-3"]));
    let in_group = get(addr, "/api/v1/products?group=Second%20floor")
        .await
        .json();
    assert_eq!(in_group["items"].as_array().unwrap().len(), 2);
    expect(
        &request(
            addr,
            "DELETE",
            &format!("/api/v1/groups/{id}/products/API-3"),
            None,
        )
        .await,
        200,
    );
    assert_eq!(
        get(addr, "/api/v1/groups?account=acme").await.json()["groups"][0]["products"],
        json!(["API-1"])
    );
    expect(
        &request(addr, "DELETE", &format!("/api/v1/groups/{id}"), None).await,
        204,
    );
    let gone = request(addr, "DELETE", &format!("/api/v1/groups/{id}"), None).await;
    assert_eq!((gone.status, gone.code().as_str()), (404, "not_found"));

    // Service requests: the automatic one, one by hand, closing.
    let open = get(addr, "/api/v1/service-requests?state=open&account=acme")
        .await
        .json();
    let open = open["service_requests"].as_array().unwrap().clone();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(
        (open[0]["kind"].as_str(), open[0]["kb_article"].as_str()),
        (Some("incident"), Some("kb-e602"))
    );
    let number = open[0]["number"].as_str().unwrap().to_string();
    let detail = get(addr, &format!("/api/v1/service-requests/{number}"))
        .await
        .json();
    assert_eq!(detail["events"][0]["event"], "opened");
    let mv = send(addr, "POST", "/api/v1/service-requests", json!({"account": "acme", "serial": "API-3", "kind": "move", "title": "Move to building B", "user": "jan"})).await;
    expect(&mv, 201);
    assert_eq!(mv.json()["opened_by"], "jan");
    let bad = send(
        addr,
        "POST",
        "/api/v1/service-requests",
        json!({"account": "acme", "kind": "meter_due", "title": "x", "user": "jan"}),
    )
    .await;
    assert_eq!((bad.status, bad.code().as_str()), (422, "invalid_kind"));
    let closed = send(
        addr,
        "POST",
        &format!("/api/v1/service-requests/{number}/close"),
        json!({"reason": "fixed on site"}),
    )
    .await;
    expect(&closed, 200);
    assert_eq!(closed.json()["close_reason"], "fixed on site");
    let again = send(
        addr,
        "POST",
        &format!("/api/v1/service-requests/{number}/close"),
        json!({"reason": "x"}),
    )
    .await;
    assert_eq!(
        (again.status, again.code().as_str()),
        (409, "request_closed")
    );
    let closed_list = get(addr, "/api/v1/service-requests?state=closed")
        .await
        .json();
    assert_eq!(closed_list["service_requests"].as_array().unwrap().len(), 1);
    assert_eq!(
        get(addr, "/api/v1/service-requests?state=maybe")
            .await
            .code(),
        "invalid_state"
    );

    // Unassigned devices: an agent without an account.
    store.agent_hello("agent-stray", "0.1.0", 0).await.unwrap();
    store
        .ingest("agent-stray", &[meter(1, "STRAY-1", T0, 5)])
        .await
        .unwrap();
    let u = get(addr, "/api/v1/unassigned-devices").await.json();
    assert_eq!(u["devices"][0]["serial"], "STRAY-1");

    // Billing export (CSV).
    let csv = get(addr, "/api/v1/accounts/acme/billing.csv?period=2026-09").await;
    expect(&csv, 200);
    assert!(
        csv.headers
            .to_ascii_lowercase()
            .contains("content-type: text/csv"),
        "{}",
        csv.headers
    );
    let lines: Vec<&str> = csv.body.lines().collect();
    assert!(
        lines[0].starts_with("billing_customer_code,serial,"),
        "{}",
        csv.body
    );
    assert!(
        lines.iter().any(|l| l.starts_with("B-100,API-1,")),
        "{}",
        csv.body
    );
    assert_eq!(
        get(addr, "/api/v1/accounts/acme/billing.csv?period=2026-13")
            .await
            .code(),
        "invalid_period"
    );

    // Errors are JSON with a stable code.
    for (path, status, code) in [
        ("/api/v1/nothing", 404, "not_found"),
        ("/api/v1/products/NOPE", 404, "not_found"),
        ("/api/v1/products?limit=many", 400, "invalid_query"),
        ("/api/v1/service-requests/SR-999999", 404, "not_found"),
    ] {
        let r = get(addr, path).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (status, code),
            "{path}: {}",
            r.body
        );
    }
    let r = request(addr, "POST", "/api/v1/groups", Some("{not json")).await;
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_body"));
    let r = request(addr, "DELETE", "/api/v1/products", None).await;
    assert_eq!((r.status, r.code().as_str()), (405, "method_not_allowed"));
}

#[tokio::test]
async fn api_over_http_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let c = start_collector(dir.path(), "", "agent-api", &dir.path().join("certs")).await;
    exercise(c.running.http_addr, &c.running.store).await;
    c.running.stop().await;
}

#[tokio::test]
async fn api_over_http_on_postgres() {
    let Some(url) = scratch_postgres("api_over_http_on_postgres").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("[store]\npostgres = \"{url}\"\n");
    let c = start_collector(dir.path(), &extra, "agent-api", &dir.path().join("certs")).await;
    assert_eq!(c.running.store.backend(), "postgres");
    exercise(c.running.http_addr, &c.running.store).await;
    c.running.stop().await;
}

/// The document is valid OpenAPI 3.1, and a live collector answers what it
/// says (schemathesis: no server errors, documented status codes, content
/// types and response bodies).
#[tokio::test]
async fn openapi_document_is_valid_and_the_collector_keeps_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let c = start_collector(dir.path(), "", "agent-api", &dir.path().join("certs")).await;
    let addr = c.running.http_addr;
    let doc = get(addr, "/api/openapi.json").await;
    expect(&doc, 200);
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, &doc.body).unwrap();
    let has = |module: &str| {
        std::process::Command::new("python3")
            .args(["-c", &format!("import {module}")])
            .status()
            .is_ok_and(|s| s.success())
    };
    if has("openapi_spec_validator") {
        let out = std::process::Command::new("python3")
            .args(["-m", "openapi_spec_validator"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        meterlink_tests::peers::skip(
            "openapi_spec_validator",
            "pip install openapi-spec-validator (.ci/run installs it)",
        );
    }
    // Every documented path is served (not the 404 fallback).
    let v: serde_json::Value = serde_json::from_str(&doc.body).unwrap();
    for path in v["paths"].as_object().unwrap().keys() {
        let concrete = path
            .replace("{id}", "1")
            .replace("{serial}", "X")
            .replace("{number}", "SR-000001");
        let r = get(addr, &concrete).await;
        assert!(
            r.status != 404 || r.code() != "not_found" || path.contains('{'),
            "{path} not served: {}",
            r.body
        );
        assert!(r.status < 500 || r.status == 503, "{path}: {}", r.body);
    }
    if has("schemathesis") {
        let out = tokio::process::Command::new("schemathesis")
            .args(["run", &format!("http://{addr}/api/openapi.json")])
            .args(["--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"])
            .args(["--max-examples", "25", "--seed", "1"])
            .env("NO_COLOR", "1")
            // Its cache of found cases goes with the temporary directory.
            .current_dir(dir.path())
            .output()
            .await
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            "{}",
            text.lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(out.status.success(), "schemathesis found problems:\n{text}");
    } else {
        meterlink_tests::peers::skip(
            "schemathesis run against the live collector",
            "pip install schemathesis (.ci/run installs it)",
        );
    }
    c.running.stop().await;
}
