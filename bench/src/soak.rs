//! A day's soak, time-compressed: the collector and the agent run as their
//! own processes (the release binaries beside this one), the collector on a
//! fresh PostgreSQL schema, the agent reading a simulated fleet on meter and
//! status schedules every few seconds with a bounded buffer. Every minute:
//! each program's resident memory, open files, threads and async tasks (its
//! `/metrics`), the agent's buffer and the database's size; at the end each
//! series' slope over the run's second half, per hour.

use meterlink_collector::pki::Pki;
use meterlink_sim::{serve, Fleet, Recording, SimConfig};
use meterlink_tests::stack::AgentToml;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const AGENT: &str = "agent-soak";

fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("this program's path");
    let p = exe.with_file_name(name);
    assert!(
        p.is_file(),
        "{} missing: cargo build --release -p meterlink-collector -p meterlink-agent",
        p.display()
    );
    p
}

/// A program the soak started: stopped with it, also when the soak fails
/// half-way (an orphan would go on reading the next run's fleet).
struct Program(std::process::Child);

impl Program {
    fn id(&self) -> u32 {
        self.0.id()
    }

    fn exited(&mut self) -> bool {
        self.0.try_wait().ok().flatten().is_some()
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        // SIGTERM first, so that each program shuts down as it would under
        // systemd; SIGKILL if it has not within 10 s.
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.exited() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// (resident kB, open files, threads) of a process.
fn proc_figures(pid: u32) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    (field("VmRSS:"), fds, field("Threads:"))
}

fn dir_bytes(p: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// One gauge of a Prometheus text page.
async fn gauge(addr: SocketAddr, name: &str) -> Option<f64> {
    // Not listening yet (a program just started): no figure this minute.
    tokio::net::TcpStream::connect(addr).await.ok()?;
    let r = meterlink_tests::http::get(addr, "/metrics").await;
    r.body.lines().find_map(|l| {
        let (n, v) = l.split_once(' ')?;
        (n == name).then(|| v.trim().parse().ok())?
    })
}

/// Least-squares slope of `ys` against `xs`.
fn slope(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let cov: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let var: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    if var == 0.0 {
        0.0
    } else {
        cov / var
    }
}

struct Sample {
    minute: f64,
    values: Vec<f64>,
}

const COLUMNS: [&str; 11] = [
    "collector RSS MB",
    "collector open files",
    "collector threads",
    "collector tasks",
    "agent RSS MB",
    "agent open files",
    "agent threads",
    "agent tasks",
    "agent buffer bytes",
    "database MB",
    "counter values filed",
];

pub(crate) async fn soak_bench(
    minutes: u64,
    devices: usize,
    meter_every_s: u64,
    first: Ipv4Addr,
    postgres: String,
) {
    let work = tempfile::tempdir().expect("temp dir");
    let work = work.path();
    std::env::set_var(meterlink_collector::store::TEST_DATABASE_ENV, &postgres);
    let url = meterlink_collector::store::scratch_postgres("soak")
        .await
        .expect("a PostgreSQL schema");

    let text = std::fs::read_to_string(
        meterlink_tests::peers::fixtures_dir().join("canon_iradv_c5560.snmprec"),
    )
    .expect("fixture");
    let (rec, _) = Recording::parse("canon", &text);
    let addrs: Vec<SocketAddr> = (0..devices as u32)
        .map(|i| SocketAddr::new(Ipv4Addr::from(u32::from(first) + i).into(), 16161))
        .collect();
    let fleet = Arc::new(Fleet::new(
        SimConfig {
            pages_per_minute: 60.0,
            ..SimConfig::default()
        },
        vec![Arc::new(rec)],
        addrs,
    ));
    let sim = serve(fleet).await.expect("simulated fleet");

    let (grpc, http, admin) = (free_port(), free_port(), free_port());
    let cdir = work.join("collector");
    let pki = Pki::ensure(&cdir.join("pki"), "meterlink development CA").expect("pki");
    let cert = pki
        .issue(AGENT, false, &work.join("certs"), "agent", None)
        .expect("agent certificate");
    let ctoml = work.join("collector.toml");
    std::fs::write(
        &ctoml,
        format!(
            "{}[store]\npostgres = \"{url}\"\n[requests]\ntick_secs = 5\n",
            meterlink_tests::stack::collector_toml(&cdir, &grpc.to_string(), &http.to_string())
        ),
    )
    .expect("collector.toml");
    let adir = work.join("agent");
    let last = Ipv4Addr::from(u32::from(first) + devices as u32 - 1);
    let mut spec = AgentToml::new(
        AGENT,
        &adir,
        grpc,
        &pki.ca_cert(),
        &cert.cert,
        &cert.key,
        &[&format!("{first}-{last}")],
    );
    spec.meter = format!("*/{meter_every_s} * * * * *");
    spec.max_bytes = Some(64 << 20);
    spec.admin = Some(admin);
    let atoml = work.join("agent.toml");
    // Status and supplies in between the meter reads.
    let status_every = (meter_every_s / 2).max(1);
    std::fs::write(
        &atoml,
        format!("{}status = \"*/{status_every} * * * * *\"\n", spec.render()),
    )
    .expect("agent.toml");

    let log = |name: &str| std::fs::File::create(work.join(name)).expect("log file");
    let mut collector = Program(
        std::process::Command::new(binary("meterlink-collector"))
            .args(["serve", "--config"])
            .arg(&ctoml)
            .stdout(log("collector.out"))
            .stderr(log("collector.err"))
            .spawn()
            .expect("collector starts"),
    );
    let ready = Instant::now();
    while tokio::net::TcpStream::connect(http).await.is_err()
        || meterlink_tests::http::get(http, "/healthz").await.status != 200
    {
        assert!(
            ready.elapsed() < Duration::from_secs(60),
            "the collector did not answer /healthz; see its log"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut agent = Program(
        std::process::Command::new(binary("meterlink-agent"))
            .args(["run", "--config"])
            .arg(&atoml)
            .stdout(log("agent.out"))
            .stderr(log("agent.err"))
            .spawn()
            .expect("agent starts"),
    );
    println!(
        "# meterlink-bench soak: {minutes} min, {devices} devices, meter every {meter_every_s} s, status every {status_every} s, buffer bound 64 MiB, collector on PostgreSQL\n"
    );
    println!("| minute | {} |", COLUMNS.join(" | "));
    println!("|---|{}", "---|".repeat(COLUMNS.len()));
    let db = sqlx::PgPool::connect(&url).await.expect("postgres");
    let started = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    for m in 0..=minutes {
        tokio::time::sleep_until((started + Duration::from_secs(60 * m)).into()).await;
        let (crss, cfds, cthreads) = proc_figures(collector.id());
        let (arss, afds, athreads) = proc_figures(agent.id());
        let ctasks = gauge(http, "meterlink_runtime_tasks")
            .await
            .unwrap_or(f64::NAN);
        let atasks = gauge(admin, "meterlink_agent_runtime_tasks")
            .await
            .unwrap_or(f64::NAN);
        let buffer = gauge(admin, "meterlink_agent_buffer_bytes")
            .await
            .unwrap_or(f64::NAN);
        let db_bytes: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = current_schema() AND c.relkind = 'r'",
        )
        .fetch_one(&db)
        .await
        .expect("database size");
        let values = gauge(http, "meterlink_meter_values_filed_total")
            .await
            .unwrap_or(f64::NAN);
        let s = Sample {
            minute: m as f64,
            values: vec![
                crss as f64 / 1024.0,
                cfds as f64,
                cthreads as f64,
                ctasks,
                arss as f64 / 1024.0,
                afds as f64,
                athreads as f64,
                atasks,
                buffer,
                db_bytes as f64 / 1e6,
                values,
            ],
        };
        println!(
            "| {m} | {} |",
            s.values
                .iter()
                .map(|v| format!("{v:.1}"))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        samples.push(s);
        assert!(!collector.exited(), "the collector exited");
        assert!(!agent.exited(), "the agent exited");
    }

    // Slopes over the second half (after the warm-up), per hour.
    let half: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.minute >= minutes as f64 / 2.0)
        .collect();
    let xs: Vec<f64> = half.iter().map(|s| s.minute / 60.0).collect();
    println!("\n| series | first | last | mean (2nd half) | slope per hour (2nd half) | slope / mean |\n|---|---|---|---|---|---|");
    for (i, name) in COLUMNS.iter().enumerate() {
        let ys: Vec<f64> = half.iter().map(|s| s.values[i]).collect();
        let mean = ys.iter().sum::<f64>() / ys.len().max(1) as f64;
        let k = slope(&xs, &ys);
        println!(
            "| {name} | {:.1} | {:.1} | {mean:.1} | {k:+.2} | {:+.2} % |",
            samples.first().map(|s| s.values[i]).unwrap_or(0.0),
            samples.last().map(|s| s.values[i]).unwrap_or(0.0),
            100.0 * k / mean.abs().max(1e-9)
        );
    }
    if let (Some(a), Some(b)) = (samples.first(), samples.last()) {
        let (dv, ddb) = (b.values[10] - a.values[10], b.values[9] - a.values[9]);
        println!(
            "\ndatabase growth per counter value filed: {:.0} bytes ({dv:.0} values, {ddb:.1} MB)",
            ddb * 1e6 / dv.max(1.0)
        );
    }
    println!(
        "agent buffer on disk at the end: {} bytes",
        dir_bytes(&adir.join("buffer"))
    );

    drop(agent);
    drop(collector);
    for t in sim {
        t.abort();
    }
    db.close().await;
    meterlink_collector::store::drop_scratch_postgres(&url).await;
}
