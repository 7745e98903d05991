//! The README's first command: the demo starts, prints the web portal's
//! address and its people's passwords; the account manager logs in with the
//! printed password and finds products with months of readings behind them.

use meterlink_tests::http::{request_with, Reply};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

fn cookie(r: &Reply) -> String {
    r.header("set-cookie")
        .and_then(|c| c.split(';').next().map(str::to_string))
        .unwrap_or_default()
}

#[tokio::test]
async fn the_demo_prints_passwords_that_open_the_portal() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_meterlink-demo"))
        .args(["--data-dir", dir.path().to_str().unwrap()])
        .args(["--grpc", "127.0.31.1:50051", "--http", "127.0.31.1:18080"])
        .args(["--devices", "5"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut printed = Vec::new();
    while !printed
        .iter()
        .any(|l: &String| l.starts_with("Readings arriving"))
    {
        let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
            .await
            .expect("the demo printed its summary within a minute")
            .unwrap()
            .expect("the demo kept running");
        printed.push(line);
    }
    let text = printed.join("\n");
    assert!(
        text.contains("web portal      http://127.0.31.1:18080/"),
        "{text}"
    );
    let password = printed
        .iter()
        .find(|l| l.contains("mia@demo.example"))
        .and_then(|l| l.split("password ").nth(1))
        .unwrap_or_else(|| panic!("no password for the account manager in:\n{text}"))
        .trim()
        .to_string();
    let addr = "127.0.31.1:18080".parse().unwrap();
    let body = format!("email=mia%40demo.example&password={password}");
    let r = request_with(
        addr,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(&body),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let c = cookie(&r);
    let home = request_with(addr, "GET", "/", &[("Cookie", &c)], None).await;
    assert_eq!(home.status, 200, "{}", home.body);
    assert!(home.body.contains("Mia Rossi"), "{}", home.body);
    // Her company's products: every simulated device once the agent has
    // read it, the Canon ones with four months of daily readings.
    let list = || async {
        let r = request_with(addr, "GET", "/api/v1/products", &[("Cookie", &c)], None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["items"].as_array().cloned().unwrap_or_default()
    };
    meterlink_tests::peers::until(
        Duration::from_secs(60),
        "the agent's first read",
        || async {
            list()
                .await
                .iter()
                .filter(|p| !p["model"].is_null())
                .count()
                == 5
        },
    )
    .await;
    let serial = list().await[0]["serial"].as_str().unwrap().to_string();
    let readings = request_with(
        addr,
        "GET",
        &format!("/api/v1/products/{serial}/readings?counter=canon.101&limit=1000"),
        &[("Cookie", &c)],
        None,
    )
    .await;
    assert_eq!(readings.status, 200, "{}", readings.body);
    let n = readings.json()["readings"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    assert!(n >= 120, "{serial}: {n} readings of canon.101");
    child.kill().await.unwrap();
}
