//! The knowledge centre over real HTTP, on SQLite and PostgreSQL: a corpus
//! written by the test (several languages, error codes, words that overlap)
//! imported in bulk (all or nothing); the exact error code first, codes that
//! start with it next, text ranked (titles above bodies, stemmed), the
//! languages honoured (English by default); each customer finds only the
//! articles for their products' models (and those for every model); a
//! product's three categories with the download centre's address; a
//! request's detail links the articles for its code; operators edit.

use meterlink_collector::store::{scratch_postgres, Store};
use meterlink_proto::v1::observation::Body;
use meterlink_proto::v1::{DeviceStatus, Identity, Observation};
use meterlink_tests::http::{expect, user, Api, Reply};
use meterlink_tests::stack::start_collector;
use serde_json::{json, Value};

const C5560: &str = "iR-ADV C5560";
const C3530: &str = "iR-ADV C3530";
const LBP: &str = "LBP6670";

fn corpus() -> Value {
    json!({"articles": [
        {"id": "e1", "kind": "error_code", "code": "E602-0001", "models": [C5560],
         "title": "E602-0001: hard disk error",
         "body": "The hard disk cannot be read. Turn the main power off, wait ten seconds and turn it on."},
        {"id": "e2", "kind": "error_code", "code": "e602-0002", "models": [C5560],
         "title": "E602-0002: hard disk full",
         "body": "Delete stored jobs from the mailbox."},
        {"id": "e3", "kind": "troubleshooter",
         "title": "Restarting after a hard disk error",
         "body": "If E602-0001 comes back after a restart, call service."},
        {"id": "f1", "kind": "faq",
         "title": "Paper jam in the duplex unit",
         "body": "Open the right cover and remove the jammed paper from the duplex unit."},
        {"id": "f2", "kind": "faq", "models": [C3530],
         "title": "Loading paper in the cassette",
         "body": "Fan the paper before loading it, or it may jam."},
        {"id": "f3", "kind": "faq", "language": "it",
         "title": "Inceppamento della carta nell'unità fronte-retro",
         "body": "Aprire il coperchio destro e rimuovere la carta inceppata (paper jam)."},
        {"id": "f4", "kind": "faq", "models": [C5560],
         "title": "Scanning to e-mail",
         "body": "Set the SMTP server in the device settings."},
        {"id": "t1", "kind": "troubleshooter", "models": [LBP],
         "title": "Paper jam troubleshooter",
         "body": "A paper jam at the fuser: open the back cover. Paper jam at the tray: pull the tray."},
    ]})
}

fn ids(r: &Reply) -> Vec<String> {
    r.json()["articles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect()
}

fn matched(r: &Reply) -> Vec<(String, String)> {
    r.json()["articles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_string(),
                a["matched"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pos(v: &[String], id: &str) -> usize {
    v.iter()
        .position(|x| x == id)
        .unwrap_or_else(|| panic!("{id} not in {v:?}"))
}

async fn get(api: &Api, path: &str) -> Reply {
    let r = api.get(path).await;
    expect(&r, 200);
    r
}

async fn setup(op: &Api, store: &Store) {
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
    for (agent, account) in [("agent-k", "acme"), ("agent-g", "globex")] {
        store.agent_hello(agent, "0.1.0", 10).await.unwrap();
        expect(
            &op.send(
                "PATCH",
                &format!("/api/v1/agents/{agent}"),
                json!({"account": account}),
            )
            .await,
            200,
        );
    }
    let now = meterlink_collector::store::now_ms();
    let identity = |seq: u64, serial: &str, model: &str| Observation {
        seq,
        taken_at_ms: now - 60_000,
        device_address: "10.0.0.9:161".into(),
        serial: serial.into(),
        body: Some(Body::Identity(Identity {
            vendor: "Canon".into(),
            model: model.into(),
            serial: serial.into(),
            ..Default::default()
        })),
    };
    store
        .ingest(
            "agent-k",
            &[identity(1, "A-1", C5560), identity(2, "A-2", C3530)],
        )
        .await
        .unwrap();
    store
        .ingest("agent-g", &[identity(1, "G-1", LBP)])
        .await
        .unwrap();
}

async fn knowledge(op: &Api, store: &Store) {
    setup(op, store).await;
    let mia = user(op, "mia", "account_manager", "acme").await;
    let pat = user(op, "pat", "product_administrator", "acme").await;
    let gus = user(op, "gus", "account_manager", "globex").await;
    expect(
        &op.send(
            "PATCH",
            "/api/v1/products/A-1",
            json!({"administrators": ["pat"]}),
        )
        .await,
        200,
    );

    // A bulk import with one bad article writes nothing and names it.
    let mut bad = corpus();
    bad["articles"][3]["kind"] = json!("howto");
    let r = op.send("POST", "/api/v1/kb-articles/import", bad).await;
    expect(&r, 422);
    assert!(
        r.body.contains("article 4") && r.body.contains("\\\"f1\\\""),
        "{}",
        r.body
    );
    assert!(ids(&get(op, "/api/v1/kb-articles").await).is_empty());
    // Customers may not write.
    expect(
        &mia.send("POST", "/api/v1/kb-articles/import", corpus())
            .await,
        403,
    );
    let r = op
        .send("POST", "/api/v1/kb-articles/import", corpus())
        .await;
    expect(&r, 200);
    assert_eq!(r.json()["written"], 8);

    // The exact code first, whatever the case it is typed in; then text.
    let r = get(op, "/api/v1/kb-articles?code=e602-0001&q=hard%20disk").await;
    let m = matched(&r);
    assert_eq!(m[0], ("e1".to_string(), "code".to_string()), "{m:?}");
    let v = ids(&r);
    assert!(pos(&v, "e3") > 0 && pos(&v, "e2") > 0, "{v:?}");
    assert_eq!(m[pos(&v, "e3")].1, "text");
    // A code's start finds the family.
    let m = matched(&get(op, "/api/v1/kb-articles?code=E602").await);
    assert_eq!(
        m,
        vec![
            ("e1".to_string(), "code_prefix".to_string()),
            ("e2".to_string(), "code_prefix".to_string())
        ]
    );
    // Text: titles above bodies; English only unless asked.
    let v = ids(&get(op, "/api/v1/kb-articles?q=paper%20jam").await);
    assert!(!v.contains(&"f3".to_string()), "{v:?}");
    assert!(pos(&v, "f1") < pos(&v, "f2"), "{v:?}");
    assert!(pos(&v, "t1") < pos(&v, "f2"), "{v:?}");
    let v = ids(&get(op, "/api/v1/kb-articles?q=paper%20jam&lang=en,it").await);
    assert!(v.contains(&"f3".to_string()), "{v:?}");
    let v = ids(&get(op, "/api/v1/kb-articles?q=carta%20inceppata&lang=it").await);
    assert_eq!(v, vec!["f3"]);
    // Stemmed: "jams" finds "jam" and "jammed".
    let v = ids(&get(op, "/api/v1/kb-articles?q=jams").await);
    for id in ["f1", "f2", "t1"] {
        assert!(v.contains(&id.to_string()), "{v:?}");
    }
    // Query syntax in the text is only words.
    let v = ids(&get(op, "/api/v1/kb-articles?q=%22paper%22%20OR%20NEAR(jam*").await);
    assert!(v.contains(&"f1".to_string()), "{v:?}");
    // One word, a short page: the articles with it in their titles first.
    let r = get(op, "/api/v1/kb-articles?q=paper&limit=2").await;
    assert_eq!(r.json()["next_offset"], 2);
    for a in r.json()["articles"].as_array().unwrap() {
        assert!(
            a["title"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("paper"),
            "{a}"
        );
    }
    let v = ids(&get(op, "/api/v1/kb-articles?q=paper&kind=troubleshooter").await);
    assert_eq!(v, vec!["t1"]);
    expect(&op.get("/api/v1/kb-articles?kind=howto").await, 400);
    // Paging.
    let r = get(op, "/api/v1/kb-articles?limit=3").await;
    assert_eq!(ids(&r).len(), 3);
    assert_eq!(r.json()["next_offset"], 3);
    let r = get(op, "/api/v1/kb-articles?limit=3&offset=6").await;
    assert_eq!(ids(&r), vec!["f4"], "seven English articles by title");
    assert!(r.json()["next_offset"].is_null());

    // Each customer finds the articles of their products' models.
    let v = ids(&get(&pat, "/api/v1/kb-articles?q=paper%20jam%20cassette").await);
    assert!(v.contains(&"f1".to_string()), "{v:?}");
    assert!(
        !v.contains(&"t1".to_string()) && !v.contains(&"f2".to_string()),
        "{v:?}"
    );
    assert_eq!(
        ids(&get(&pat, "/api/v1/kb-articles?code=E602-0001").await),
        vec!["e1"]
    );
    expect(&pat.get("/api/v1/kb-articles/t1").await, 404);
    expect(&pat.get("/api/v1/kb-articles/f2").await, 404);
    expect(&pat.get("/api/v1/kb-articles/e1").await, 200);
    let v = ids(&get(&mia, "/api/v1/kb-articles?q=paper%20jam%20cassette").await);
    assert!(
        v.contains(&"f2".to_string()) && !v.contains(&"t1".to_string()),
        "{v:?}"
    );
    let v = ids(&get(&gus, "/api/v1/kb-articles?q=paper%20jam%20hard%20disk").await);
    assert!(v.contains(&"t1".to_string()), "{v:?}");
    assert!(
        !v.contains(&"e1".to_string()) && !v.contains(&"e2".to_string()),
        "{v:?}"
    );
    expect(&gus.get("/api/v1/products/A-1/knowledge").await, 404);

    // A product's knowledge centre: three categories for its model.
    let k = get(&pat, "/api/v1/products/A-1/knowledge").await.json();
    assert_eq!(k["model"], C5560);
    assert_eq!(
        k["download_url"],
        "https://downloads.example.com/support?model=iR-ADV%20C5560"
    );
    let cat = |kind: &str| {
        k["categories"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["kind"] == kind)
            .unwrap()
            .clone()
    };
    assert_eq!(cat("error_code")["total"], 2);
    assert_eq!(cat("faq")["total"], 2, "{k}");
    assert_eq!(cat("troubleshooter")["total"], 1);
    let faq = cat("faq");
    let faq: Vec<&str> = faq["articles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(faq, vec!["f1", "f4"]);
    let k = get(&pat, "/api/v1/products/A-1/knowledge?lang=en,it")
        .await
        .json();
    assert_eq!(k["categories"][0]["kind"], "faq");
    assert_eq!(
        k["categories"][0]["total"], 3,
        "the Italian FAQ for every model: {k}"
    );

    // A request opened for E602-0001 links its article.
    let now = meterlink_collector::store::now_ms();
    store
        .ingest(
            "agent-k",
            &[Observation {
                seq: 10,
                taken_at_ms: now,
                device_address: "10.0.0.9:161".into(),
                serial: "A-1".into(),
                body: Some(Body::Status(DeviceStatus {
                    device: "down".into(),
                    console: vec!["Call service E602-0001".into()],
                    ..Default::default()
                })),
            }],
        )
        .await
        .unwrap();
    let list = get(&pat, "/api/v1/service-requests?state=open")
        .await
        .json();
    let sr = list["service_requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["code"] == "E602-0001")
        .unwrap_or_else(|| panic!("no request for E602-0001: {list}"))
        .clone();
    let detail = get(
        &pat,
        &format!(
            "/api/v1/service-requests/{}",
            sr["number"].as_str().unwrap()
        ),
    )
    .await
    .json();
    let linked: Vec<&str> = detail["articles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(linked, vec!["e1"]);

    // Operators edit and delete; the search follows.
    let r = op
        .send(
            "PUT",
            "/api/v1/kb-articles/f4",
            json!({"id": "f4", "kind": "faq", "models": [C5560], "title": "Scan to e-mail and folders",
                   "body": "Set the SMTP server and the SMB folder."}),
        )
        .await;
    expect(&r, 200);
    assert_eq!(
        ids(&get(op, "/api/v1/kb-articles?q=folders").await),
        vec!["f4"]
    );
    expect(
        &mia.send("DELETE", "/api/v1/kb-articles/f4", json!({}))
            .await,
        403,
    );
    expect(
        &op.send("DELETE", "/api/v1/kb-articles/f4", json!({})).await,
        204,
    );
    expect(&op.get("/api/v1/kb-articles/f4").await, 404);
    assert!(ids(&get(op, "/api/v1/kb-articles?q=folders").await).is_empty());
    expect(
        &op.send("DELETE", "/api/v1/kb-articles/f4", json!({})).await,
        404,
    );
}

const KNOWLEDGE: &str =
    "[knowledge]\ndownload_url = \"https://downloads.example.com/support?model={model}\"\n";

#[tokio::test]
async fn knowledge_centre_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let c = start_collector(dir.path(), KNOWLEDGE, "agent-k", &dir.path().join("certs")).await;
    knowledge(&c.operator(), &c.running.store).await;
    c.running.stop().await;
}

#[tokio::test]
async fn knowledge_centre_on_postgres() {
    let Some(url) = scratch_postgres("knowledge_centre_on_postgres").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("[store]\npostgres = \"{url}\"\n{KNOWLEDGE}");
    let c = start_collector(dir.path(), &extra, "agent-k", &dir.path().join("certs")).await;
    knowledge(&c.operator(), &c.running.store).await;
    c.running.stop().await;
}
