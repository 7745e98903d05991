//! The Activity panel's requests over real HTTP, on SQLite and PostgreSQL:
//! a service request's life with the operator's status updates and
//! comments, and the customer's comments, all seen by the customer as
//! events with their authors; a move request's destination; an
//! information request without a product; the open/closed filter per
//! company; who may post what. Contract lines: a company's CSV imported
//! (all or nothing, the bad line named), read by each role as far as it
//! reaches, and the eMaintenance flag following the lines that run today.

use meterlink_collector::store::{scratch_postgres, Store};
use meterlink_proto::v1::observation::Body;
use meterlink_proto::v1::{CounterValue, MeterReading, Observation};
use meterlink_tests::http::{expect, user, Api, Reply};
use meterlink_tests::stack::start_collector;
use serde_json::{json, Value};

fn events(r: &Value) -> Vec<(String, String, String)> {
    r["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_string(),
                e["author"].as_str().unwrap_or("-").to_string(),
                e["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn activity(op: &Api, store: &Store) {
    for id in ["acme", "globex"] {
        let r = op
            .send(
                "PUT",
                &format!("/api/v1/accounts/{id}"),
                json!({"id": id, "name": id, "billing_code": "B", "service_code": "S", "auto_create_products": true}),
            )
            .await;
        expect(&r, 200);
    }
    store.agent_hello("agent-r", "0.1.0", 10).await.unwrap();
    expect(
        &op.send(
            "PATCH",
            "/api/v1/agents/agent-r",
            json!({"account": "acme"}),
        )
        .await,
        200,
    );
    let now = meterlink_collector::store::now_ms();
    let batch: Vec<Observation> = ["A-1", "A-2"]
        .iter()
        .enumerate()
        .map(|(i, s)| Observation {
            seq: i as u64 + 1,
            taken_at_ms: now - 60_000,
            device_address: "10.0.0.9:161".into(),
            serial: s.to_string(),
            body: Some(Body::Meter(MeterReading {
                counters: vec![CounterValue {
                    id: "canon.101".into(),
                    value: 10,
                    ..Default::default()
                }],
            })),
        })
        .collect();
    store.ingest("agent-r", &batch).await.unwrap();
    let mia = user(op, "mia", "account_manager", "acme").await;
    let pat = user(op, "pat", "product_administrator", "acme").await;
    let gus = user(op, "gus", "account_manager", "globex").await;
    expect(
        &op.send(
            "PATCH",
            "/api/v1/products/A-1",
            json!({"site_address": "Via Roma 1, Milano", "location": "Floor 2, copy room", "administrators": ["pat"]}),
        )
        .await,
        200,
    );

    // Mia opens a service request for A-1.
    let r = mia
        .send(
            "POST",
            "/api/v1/service-requests",
            json!({"account": "acme", "serial": "A-1", "kind": "incident", "title": "Paper jam in tray 2",
                   "description": "Jams on every A3 sheet since Monday", "contact_name": "Mia Rossi",
                   "contact_phone": "+39 02 555 0101"}),
        )
        .await;
    expect(&r, 201);
    let sr = r.json();
    let number = sr["number"].as_str().unwrap().to_string();
    assert_eq!(sr["status"], "new");
    assert_eq!(sr["location"], "Via Roma 1, Milano, Floor 2, copy room");
    assert_eq!(sr["description"], "Jams on every A3 sheet since Monday");
    assert_eq!(sr["contact_phone"], "+39 02 555 0101");
    let updates = format!("/api/v1/service-requests/{number}/updates");
    let comments = format!("/api/v1/service-requests/{number}/comments");
    // The operator assigns it; Mia answers; the technician is scheduled.
    let r = op
        .send(
            "POST",
            &updates,
            json!({"status": "assigned", "text": "Technician: Luca Bianchi"}),
        )
        .await;
    expect(&r, 200);
    assert_eq!(r.json()["status"], "assigned");
    expect(
        &mia.send(
            "POST",
            &comments,
            json!({"text": "We are on floor 2, ask at reception"}),
        )
        .await,
        200,
    );
    expect(
        &op.send(
            "POST",
            &updates,
            json!({"status": "technician_scheduled", "text": "Thursday 10:00"}),
        )
        .await,
        200,
    );
    expect(
        &op.send(
            "POST",
            &comments,
            json!({"text": "Please keep the jammed sheets"}),
        )
        .await,
        200,
    );
    expect(
        &pat.send("POST", &comments, json!({"text": "Will do"}))
            .await,
        200,
    );
    // Who may post what.
    let r = mia
        .send("POST", &updates, json!({"status": "solved"}))
        .await;
    expect(&r, 403);
    expect(
        &pat.send("POST", &updates, json!({"status": "solved"}))
            .await,
        403,
    );
    expect(
        &gus.send("POST", &comments, json!({"text": "x"})).await,
        404,
    );
    let bad = op.send("POST", &updates, json!({"status": "lost"})).await;
    assert_eq!(
        (bad.status, bad.code().as_str()),
        (422, "invalid_request_data")
    );
    let empty = mia.send("POST", &comments, json!({"text": "  "})).await;
    expect(&empty, 422);
    let sneaky = mia
        .send(
            "POST",
            &comments,
            json!({"text": "done", "status": "solved"}),
        )
        .await;
    expect(&sneaky, 422);
    // The customer sees the whole life, with who wrote what.
    let seen = mia.get(&format!("/api/v1/service-requests/{number}")).await;
    expect(&seen, 200);
    let seen = seen.json();
    assert_eq!(seen["status"], "technician_scheduled");
    assert_eq!(
        events(&seen),
        vec![
            ("opened".into(), "mia".into(), "Paper jam in tray 2".into()),
            (
                "updated".into(),
                "admin".into(),
                "status: assigned: Technician: Luca Bianchi".into()
            ),
            (
                "comment".into(),
                "mia".into(),
                "We are on floor 2, ask at reception".into()
            ),
            (
                "updated".into(),
                "admin".into(),
                "status: technician_scheduled: Thursday 10:00".into()
            ),
            (
                "updated".into(),
                "admin".into(),
                "Please keep the jammed sheets".into()
            ),
            ("comment".into(), "pat".into(), "Will do".into()),
        ]
    );
    assert_eq!(
        events(
            &pat.get(&format!("/api/v1/service-requests/{number}"))
                .await
                .json()
        )
        .len(),
        6
    );

    // A move request carries its destination.
    let mv = mia
        .send(
            "POST",
            "/api/v1/service-requests",
            json!({"account": "acme", "serial": "A-2", "kind": "move", "title": "Move to the new office",
                   "destination_address": "Corso Italia 8, Milano", "destination_location": "Floor 5, room 12"}),
        )
        .await;
    expect(&mv, 201);
    let mv = mv.json();
    assert_eq!(
        (
            mv["destination_address"].as_str(),
            mv["destination_location"].as_str()
        ),
        (Some("Corso Italia 8, Milano"), Some("Floor 5, room 12"))
    );
    for (body, why) in [
        (
            json!({"account": "acme", "serial": "A-2", "kind": "move", "title": "x"}),
            "no destination",
        ),
        (
            json!({"account": "acme", "kind": "incident", "title": "x"}),
            "an incident without a product",
        ),
        (
            json!({"account": "acme", "serial": "A-2", "kind": "incident", "title": "x", "destination_address": "y"}),
            "a destination on an incident",
        ),
    ] {
        let r = mia.send("POST", "/api/v1/service-requests", body).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (422, "invalid_request_data"),
            "{why}: {}",
            r.body
        );
    }
    // An information request has no product: a subject and a text.
    let info = mia
        .send(
            "POST",
            "/api/v1/service-requests",
            json!({"account": "acme", "kind": "information", "title": "Invoice 2026-11",
                   "description": "Why are there two lines for A-1?"}),
        )
        .await;
    expect(&info, 201);
    let info = info.json();
    assert!(info["serial"].is_null());
    let info_number = info["number"].as_str().unwrap().to_string();
    expect(
        &op.send(
            "POST",
            &format!("/api/v1/service-requests/{info_number}/close"),
            json!({"reason": "answered"}),
        )
        .await,
        200,
    );
    // The open/closed filter per company.
    let numbers = |r: Reply| -> Vec<String> {
        r.json()["service_requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["number"].as_str().unwrap().to_string())
            .collect()
    };
    let open = numbers(
        mia.get("/api/v1/service-requests?state=open&account=acme")
            .await,
    );
    assert!(
        open.contains(&number) && !open.contains(&info_number),
        "{open:?}"
    );
    let closed = numbers(
        mia.get("/api/v1/service-requests?state=closed&account=acme")
            .await,
    );
    assert_eq!(closed, vec![info_number.clone()]);
    expect(
        &mia.get("/api/v1/service-requests?state=open&account=globex")
            .await,
        404,
    );
    assert!(numbers(gus.get("/api/v1/service-requests").await).is_empty());
    // Newest first, a page at a time.
    let all = numbers(mia.get("/api/v1/service-requests?account=acme").await);
    assert!(all.len() >= 3, "{all:?}");
    let mut paged: Vec<String> = Vec::new();
    let mut path = "/api/v1/service-requests?account=acme&limit=2".to_string();
    loop {
        let page = numbers(mia.get(&path).await);
        let Some(last) = page.last().cloned() else {
            break;
        };
        paged.extend(page);
        path = format!("/api/v1/service-requests?account=acme&limit=2&before={last}");
    }
    assert_eq!(paged, all);
    // Every update and comment is in the audit log under its author.
    let log = op
        .get(&format!(
            "/api/v1/audit?object_kind=service_request&object_id={number}&limit=50"
        ))
        .await
        .json();
    let by: Vec<(String, String)> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"]["id"].as_str().unwrap().to_string(),
                e["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for want in [
        ("admin", "status_updated"),
        ("mia", "commented"),
        ("pat", "commented"),
        ("mia", "opened"),
    ] {
        assert!(
            by.contains(&(want.0.into(), want.1.into())),
            "{want:?} in {by:?}"
        );
    }
}

/// Due times from typed terms: inside and across coverage hours, overdue
/// flagged and listed.
async fn due_times(op: &Api, store: &Store) {
    use chrono::TimeZone;
    let terms = json!({"response_hours": 8, "service": "on_site",
        "coverage": {"days": [1, 2, 3, 4, 5], "from": "08:00", "to": "18:00", "time_zone": "Europe/Rome"}});
    let mia = Api::new(op.addr, &issue(op, "mia").await);
    let r = mia
        .send("PATCH", "/api/v1/products/A-2", json!({"terms": terms}))
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "forbidden"),
        "terms are the operator's"
    );
    let r = op
        .send("PATCH", "/api/v1/products/A-2", json!({"terms": terms}))
        .await;
    expect(&r, 200);
    assert_eq!(r.json()["terms"]["response_hours"], 8);
    let bad = op
        .send("PATCH", "/api/v1/products/A-2", json!({"terms": {"response_hours": 8, "service": "on_site",
            "coverage": {"days": [1], "from": "18:00", "to": "08:00", "time_zone": "Europe/Rome"}}}))
        .await;
    assert_eq!((bad.status, bad.code().as_str()), (422, "invalid_terms"));
    let rome = |d: u32, h: u32, m: u32| {
        chrono_tz::Europe::Rome
            .with_ymd_and_hms(2026, 11, d, h, m, 0)
            .single()
            .unwrap()
            .timestamp_millis()
    };
    // Opened on Friday 2026-11-27 at 19:30, after office hours: due on
    // Monday at 16:00 (8 hours of Monday), and that has passed.
    let friday = store
        .create_request(
            &serde_json::from_value(
                json!({"account": "acme", "serial": "A-2", "kind": "incident",
                "title": "Toner smears", "user": "mia"}),
            )
            .unwrap(),
            rome(27, 19, 30),
        )
        .await
        .unwrap();
    let got = mia
        .get(&format!("/api/v1/service-requests/{}", friday.number))
        .await
        .json();
    assert_eq!(got["due_at_ms"].as_i64(), Some(rome(30, 16, 0)));
    assert_eq!(got["overdue"], true);
    // Opened now: due as the terms say, not overdue yet.
    let now = mia
        .send(
            "POST",
            "/api/v1/service-requests",
            json!({"account": "acme", "serial": "A-2", "kind": "incident", "title": "Noisy fuser"}),
        )
        .await;
    expect(&now, 201);
    let now = now.json();
    let t: meterlink_collector::model::Entitlements =
        serde_json::from_value(terms.clone()).unwrap();
    assert_eq!(
        now["due_at_ms"].as_i64(),
        t.due_at_ms(now["opened_at_ms"].as_i64().unwrap())
    );
    assert_eq!(now["overdue"], false);
    // Without terms: no due time.
    let plain = mia
        .send(
            "POST",
            "/api/v1/service-requests",
            json!({"account": "acme", "serial": "A-1", "kind": "incident", "title": "Scanner"}),
        )
        .await;
    assert!(plain.json()["due_at_ms"].is_null());
    // The overdue list.
    let late = op.get("/api/v1/service-requests?overdue=true").await.json();
    let late: Vec<&str> = late["service_requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["number"].as_str().unwrap())
        .collect();
    assert_eq!(late, vec![friday.number.as_str()]);
    // Closed, it is no longer overdue.
    expect(
        &op.send(
            "POST",
            &format!("/api/v1/service-requests/{}/close", friday.number),
            json!({"reason": "fixed"}),
        )
        .await,
        200,
    );
    assert!(
        op.get("/api/v1/service-requests?overdue=true").await.json()["service_requests"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

async fn contracts(op: &Api) {
    let mia = Api::new(op.addr, &issue(op, "mia").await);
    let pat = Api::new(op.addr, &issue(op, "pat").await);
    let gus = Api::new(op.addr, &issue(op, "gus").await);
    let today = chrono::Utc::now().date_naive();
    let day = |d: i64| {
        (today + chrono::Duration::days(d))
            .format("%Y-%m-%d")
            .to_string()
    };
    let csv = format!(
        "contract_number,item,serial,service,kind,starts_on,ends_on\n\
         C-7,10,A-1,,emaintenance,{},\n\
         C-7,20,A-2,,maintenance,{},{}\n\
         C-7,30,,\"Helpdesk, weekdays 8-18\",service,{},\n\
         C-8,10,A-2,,emaintenance,{},{}\n",
        day(-30),
        day(-30),
        day(335),
        day(-30),
        day(-60),
        day(-1)
    );
    let bad = format!("{csv}C-9,10,A-2,,gift,{},\n", day(0));
    let r = op
        .request(
            "POST",
            "/api/v1/accounts/acme/contract-lines.csv",
            Some(&bad),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (422, "invalid_contract_line"),
        "{}",
        r.body
    );
    assert!(r.body.contains("line 6"), "{}", r.body);
    assert!(
        op.get("/api/v1/contract-lines").await.json()["contract_lines"]
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing taken"
    );
    let r = op
        .request(
            "POST",
            "/api/v1/accounts/acme/contract-lines.csv",
            Some(&csv),
        )
        .await;
    expect(&r, 200);
    assert_eq!(r.json()["imported"], 4);
    // Imported twice: the same lines, replaced, not doubled.
    let r = op
        .request(
            "POST",
            "/api/v1/accounts/acme/contract-lines.csv",
            Some(&csv),
        )
        .await;
    expect(&r, 200);
    let count = |r: Reply| r.json()["contract_lines"].as_array().unwrap().len();
    assert_eq!(count(mia.get("/api/v1/contract-lines").await), 4);
    // A product administrator: the lines of their product (A-1) only.
    let theirs = pat.get("/api/v1/contract-lines").await.json();
    let serials: Vec<&str> = theirs["contract_lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["serial"].as_str().unwrap())
        .collect();
    assert_eq!(serials, vec!["A-1"]);
    assert_eq!(count(gus.get("/api/v1/contract-lines").await), 0);
    expect(&gus.get("/api/v1/contract-lines?account=acme").await, 404);
    // eMaintenance follows the lines that run today: A-1's does, A-2's ended.
    let emaint = |serial: &'static str| {
        let op = op.clone();
        async move {
            op.get(&format!("/api/v1/products/{serial}")).await.json()["emaintenance"].as_bool()
        }
    };
    assert_eq!(emaint("A-1").await, Some(true));
    assert_eq!(emaint("A-2").await, Some(false));
    // Only operators write; deleting the line ends eMaintenance.
    let one = json!({"account": "acme", "contract_number": "C-9", "item": "1", "serial": "A-2",
                     "kind": "emaintenance", "starts_on": day(0)});
    expect(
        &mia.send("POST", "/api/v1/contract-lines", one.clone())
            .await,
        403,
    );
    let r = op.send("POST", "/api/v1/contract-lines", one).await;
    expect(&r, 201);
    let id = r.json()["id"].as_i64().unwrap();
    assert_eq!(emaint("A-2").await, Some(true));
    expect(
        &op.request("DELETE", &format!("/api/v1/contract-lines/{id}"), None)
            .await,
        204,
    );
    assert_eq!(emaint("A-2").await, Some(false));
    let wrong = json!({"account": "globex", "contract_number": "G-1", "item": "1", "serial": "A-1",
                       "kind": "maintenance", "starts_on": day(0)});
    let r = op.send("POST", "/api/v1/contract-lines", wrong).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (422, "product_of_another_account")
    );
}

/// A new token of an existing user.
async fn issue(op: &Api, id: &str) -> String {
    let t = op
        .send("POST", &format!("/api/v1/users/{id}/tokens"), json!({}))
        .await;
    expect(&t, 201);
    t.json()["token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn activity_panel_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let c = start_collector(dir.path(), "", "agent-r", &dir.path().join("certs")).await;
    activity(&c.operator(), &c.running.store).await;
    contracts(&c.operator()).await;
    due_times(&c.operator(), &c.running.store).await;
    c.running.stop().await;
}

#[tokio::test]
async fn activity_panel_on_postgres() {
    let Some(url) = scratch_postgres("activity_panel_on_postgres").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("[store]\npostgres = \"{url}\"\n");
    let c = start_collector(dir.path(), &extra, "agent-r", &dir.path().join("certs")).await;
    activity(&c.operator(), &c.running.store).await;
    contracts(&c.operator()).await;
    due_times(&c.operator(), &c.running.store).await;
    c.running.stop().await;
}
