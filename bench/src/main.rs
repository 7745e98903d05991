//! meterlink-bench: reads a simulated fleet of Canon devices with the
//! meterlink agent, Prometheus snmp_exporter and net-snmp's command-line
//! tools, side by side in one run, and prints the figures and their ratios.
//!
//! The simulator and the exporter's load driver run in this process; the
//! agent runs as a child process (this binary in `agent-child` mode, using the
//! agent library's read path) so that its CPU time and peak memory are its
//! own; the exporter and the net-snmp tools are their own processes too.

use clap::{Parser, Subcommand};

// Reads of thousands of devices allocate many small buffers; mimalloc keeps
// that cheap (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod apiload;
mod content;
mod cpu_share;
mod fullread;
mod hostile;
mod ingest;
mod latency;
mod login;
mod portal;
mod replicas;
mod setup;
mod soak;
mod store;
mod web;

use meterlink_sim::Recording;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fullread::{agent_child, exporter_config, scenario};
use latency::latency_bench;
use portal::portal_bench;

#[derive(Parser)]
#[command(
    name = "meterlink-bench",
    about = "Full-read benchmark: meterlink agent vs snmp_exporter vs net-snmp"
)]
struct Args {
    #[command(subcommand)]
    mode: Option<Mode>,
    /// Simulated Canon devices.
    #[arg(long, default_value_t = 10_000)]
    devices: usize,
    /// Devices read at once, by every reader.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Latency of the latency-bound scenario, in milliseconds.
    #[arg(long, default_value_t = 20.0)]
    latency_ms: f64,
    /// Devices read with the net-snmp tools (one process per request is slow).
    #[arg(long, default_value_t = 1000)]
    netsnmp_devices: usize,
    #[arg(long)]
    skip_exporter: bool,
    #[arg(long)]
    skip_netsnmp: bool,
    /// Recording to clone (default: the project's Canon iR-ADV fixture).
    #[arg(long)]
    recording: Option<PathBuf>,
    /// First device address; devices get consecutive addresses on one port.
    #[arg(long, default_value = "127.80.0.1:16161")]
    first: SocketAddr,
}

#[derive(Subcommand)]
enum Mode {
    /// Store and forward: collector ingest with durable acks against a plain
    /// SQLite insert loop, buffer append/ack, poll-to-ack latency.
    Store {
        /// Meter observations to file.
        #[arg(long, default_value_t = 20_000)]
        observations: usize,
        /// Counters per observation.
        #[arg(long, default_value_t = 20)]
        counters: usize,
        /// Poll cycles for the latency measurement.
        #[arg(long, default_value_t = 30)]
        cycles: usize,
        /// Skip the plain SQLite baseline (to profile ingest alone).
        #[arg(long)]
        no_baseline: bool,
    },
    /// Outage: the collector down while the agent daemon polls the fleet
    /// until the buffer has taken `observations`; then the backlog drains.
    Outage {
        #[arg(long, default_value_t = 10_000)]
        devices: usize,
        #[arg(long, default_value_t = 1_000_000)]
        observations: u64,
        /// The buffer's bound in MiB (the agent's default is 512).
        #[arg(long, default_value_t = 512)]
        bound_mib: u64,
        /// PostgreSQL database (a fresh schema is made in it); default SQLite.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// Poll-to-ack latency: the agent daemon polls the fleet on a schedule
    /// with the collector up; from each device read's start to the Ack.
    Latency {
        #[arg(long, default_value_t = 1_000)]
        devices: usize,
        /// Simulated response time of each device, in milliseconds.
        #[arg(long, default_value_t = 20.0)]
        latency_ms: f64,
        /// Poll cycles, one every 5 seconds.
        #[arg(long, default_value_t = 6)]
        cycles: u64,
    },
    /// Portal backend: filing throughput, then the REST API's paged product
    /// list and one product's reading history over HTTP (p50/p99), against
    /// /healthz over the same connection path as the baseline.
    Portal {
        #[arg(long, default_value_t = 100_000)]
        products: usize,
        /// Filed readings per product (spread over 4 counters).
        #[arg(long, default_value_t = 100)]
        readings: usize,
        /// PostgreSQL database (a fresh schema is made in it); default SQLite.
        #[arg(long)]
        postgres: Option<String>,
        /// HTTP requests per measurement.
        #[arg(long, default_value_t = 2_000)]
        requests: usize,
    },
    /// Ingest on both stores in one run: the same batches filed into SQLite
    /// and into PostgreSQL through `Store::ingest`, and the ratio.
    Ingest {
        #[arg(long, default_value_t = 20_000)]
        products: usize,
        /// Filed readings per product (spread over 4 counters).
        #[arg(long, default_value_t = 40)]
        readings: usize,
        /// Observations per batch (the agent sends 500).
        #[arg(long, default_value_t = 500)]
        batch: usize,
        /// Agents filing at once (each its share of the products), one run
        /// per figure given.
        #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
        agents: Vec<usize>,
        /// Then PostgreSQL alone with this many collector replicas (stores
        /// with their own connection pools on one schema), each with as
        /// many agents as `--agents-per-replica`, against one replica.
        #[arg(long, default_value_t = 0)]
        replicas: usize,
        #[arg(long, default_value_t = 2)]
        agents_per_replica: usize,
        /// Run each replica as a process of its own limited to this many
        /// CPUs (a cgroup; Linux, as root), as replicas on hosts of their
        /// own, while PostgreSQL keeps the rest of the machine.
        #[arg(long)]
        replica_cpus: Option<f64>,
        /// PostgreSQL database (a fresh schema is made in it).
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
        postgres: String,
    },
    /// People logging in: login throughput and p99 (argon2id) against a
    /// request that only checks a session, and /healthz, in one run.
    Login {
        #[arg(long, default_value_t = 400)]
        logins: usize,
        /// Session checks (and /healthz requests) measured.
        #[arg(long, default_value_t = 2_000)]
        checks: usize,
        /// Logins at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
    },
    /// The portal's content: knowledge search over many articles and the
    /// service-request list over many requests, over HTTP, against
    /// /healthz; either store.
    Content {
        #[arg(long, default_value_t = 100_000)]
        articles: usize,
        #[arg(long, default_value_t = 1_000_000)]
        requests: usize,
        /// PostgreSQL database (a fresh schema is made in it); default SQLite.
        #[arg(long)]
        postgres: Option<String>,
        /// HTTP requests per measurement.
        #[arg(long, default_value_t = 2_000)]
        queries: usize,
    },
    /// The web portal's pages under load (wrk, logged in): the product
    /// list and the page of a product with a long history, against
    /// /healthz; either store.
    Web {
        #[arg(long, default_value_t = 2_000)]
        products: usize,
        /// Readings of the busy product (every 15 minutes up to now).
        #[arg(long, default_value_t = 10_000)]
        readings: usize,
        /// PostgreSQL database (a fresh schema is made in it); default SQLite.
        #[arg(long)]
        postgres: Option<String>,
        /// Concurrent clients (wrk connections).
        #[arg(long, default_value_t = 32)]
        clients: usize,
        /// Seconds of load per page.
        #[arg(long, default_value_t = 10)]
        secs: u64,
    },
    /// The REST API under load (wrk, an operator's token) while ingest runs
    /// at full rate: the product list, a product's readings and the
    /// service-request list at 32 and 128 clients; either store.
    ApiLoad {
        #[arg(long, default_value_t = 100_000)]
        products: usize,
        /// Counter values filed before the load (4 counters a reading).
        #[arg(long, default_value_t = 10_000_000)]
        readings: usize,
        #[arg(long, default_value_t = 20_000)]
        requests: usize,
        /// Concurrent clients (wrk connections), one run each.
        #[arg(long, value_delimiter = ',', default_value = "32,128")]
        clients: Vec<usize>,
        /// Seconds of load per address and client count.
        #[arg(long, default_value_t = 10)]
        secs: u64,
        /// PostgreSQL database (a fresh schema is made in it); default SQLite.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// Hostile devices at scale: a share of the fleet (--devices, --first,
    /// --concurrency, --latency-ms) with faults; the healthy devices'
    /// read times against a clean run, alternating.
    Hostile {
        /// Share of the fleet with faults, in percent.
        #[arg(long, default_value_t = 1.0)]
        percent: f64,
        /// Clean and hostile runs each.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// A day's soak, time-compressed: the collector (on PostgreSQL) and the
    /// agent as their own processes, the fleet read every few seconds;
    /// memory, files, threads, tasks and sizes every minute, and their
    /// slopes. Needs the release binaries of both programs.
    Soak {
        #[arg(long, default_value_t = 60)]
        minutes: u64,
        #[arg(long, default_value_t = 1_000)]
        fleet: usize,
        /// Seconds between meter reads (status reads in between).
        #[arg(long, default_value_t = 10)]
        meter_every: u64,
        #[arg(long, default_value = "127.96.0.1")]
        fleet_first: Ipv4Addr,
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
        postgres: String,
    },
    /// Internal: a collector replica filing its agents' readings (see
    /// `ingest --replica-cpus`).
    ReplicaChild {
        #[arg(long)]
        url: String,
        #[arg(long)]
        first_agent: usize,
        #[arg(long)]
        agents: usize,
        #[arg(long)]
        total_agents: usize,
        #[arg(long)]
        products: usize,
        #[arg(long)]
        readings: usize,
        #[arg(long)]
        batch: usize,
    },
    /// Internal: read `devices` devices with the agent library and print figures.
    AgentChild {
        #[arg(long)]
        first: SocketAddr,
        #[arg(long)]
        devices: usize,
        #[arg(long)]
        concurrency: usize,
    },
}

/// The first address of the next /16.
fn next_block(first: SocketAddr) -> SocketAddr {
    let IpAddr::V4(ip) = first.ip() else {
        return first;
    };
    let o = ip.octets();
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(o[0], o[1].wrapping_add(1), o[2], o[3])),
        first.port(),
    )
}

fn main() {
    let a = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match a.mode {
        Some(Mode::AgentChild {
            first,
            devices,
            concurrency,
        }) => {
            rt.block_on(agent_child(first, devices, concurrency));
            return;
        }
        Some(Mode::ReplicaChild {
            url,
            first_agent,
            agents,
            total_agents,
            products,
            readings,
            batch,
        }) => {
            let shape = ingest::Shape {
                products,
                readings,
                batch,
            };
            rt.block_on(replicas::replica_child(
                &url,
                first_agent,
                agents,
                total_agents,
                &shape,
            ));
            return;
        }
        Some(Mode::Store {
            observations,
            counters,
            cycles,
            no_baseline,
        }) => {
            rt.block_on(store::run(observations, counters, cycles, !no_baseline));
            return;
        }
        Some(Mode::Content {
            articles,
            requests,
            postgres,
            queries,
        }) => {
            rt.block_on(content::content_bench(
                articles, requests, postgres, queries,
            ));
            return;
        }
        Some(Mode::Web {
            products,
            readings,
            postgres,
            clients,
            secs,
        }) => {
            rt.block_on(web::web_bench(products, readings, postgres, clients, secs));
            return;
        }
        Some(Mode::Soak {
            minutes,
            fleet,
            meter_every,
            fleet_first,
            postgres,
        }) => {
            rt.block_on(soak::soak_bench(
                minutes,
                fleet,
                meter_every.max(1),
                fleet_first,
                postgres,
            ));
            return;
        }
        Some(Mode::Hostile { percent, rounds }) => {
            rt.block_on(hostile::hostile_bench(
                a.first,
                a.devices,
                percent,
                a.concurrency,
                a.latency_ms,
                rounds,
            ));
            return;
        }
        Some(Mode::ApiLoad {
            products,
            readings,
            requests,
            clients,
            secs,
            postgres,
        }) => {
            rt.block_on(apiload::api_load_bench(
                products, readings, requests, &clients, secs, postgres,
            ));
            return;
        }
        Some(Mode::Ingest {
            products,
            readings,
            batch,
            agents,
            replicas,
            agents_per_replica,
            replica_cpus,
            postgres,
        }) => {
            let shape = ingest::Shape {
                products,
                readings,
                batch,
            };
            rt.block_on(ingest::ingest_bench(&shape, &agents, &postgres));
            if replicas > 0 {
                rt.block_on(replicas::replicas_bench(
                    &shape,
                    replicas,
                    agents_per_replica.max(1),
                    &postgres,
                    replica_cpus,
                ));
            }
            return;
        }
        Some(Mode::Login {
            logins,
            checks,
            concurrency,
        }) => {
            rt.block_on(login::login_bench(logins, checks, concurrency.max(1)));
            return;
        }
        Some(Mode::Portal {
            products,
            readings,
            postgres,
            requests,
        }) => {
            rt.block_on(portal_bench(products, readings, postgres, requests));
            return;
        }
        Some(Mode::Latency {
            devices,
            latency_ms,
            cycles,
        }) => {
            rt.block_on(latency_bench(devices, latency_ms, cycles));
            return;
        }
        Some(Mode::Outage {
            devices,
            observations,
            bound_mib,
            postgres,
        }) => {
            let postgres = match postgres {
                Some(base) => {
                    std::env::set_var(meterlink_collector::store::TEST_DATABASE_ENV, base);
                    rt.block_on(meterlink_collector::store::scratch_postgres("outage"))
                }
                None => None,
            };
            let p = meterlink_tests::outage::OutageParams {
                devices,
                min_observations: observations,
                bound_bytes: bound_mib << 20,
                first: "127.92.0.1".parse().expect("address"),
                limit: Duration::from_secs(3600),
                postgres,
            };
            let dir = tempfile::tempdir().expect("temp dir");
            let store = if p.postgres.is_some() {
                "PostgreSQL"
            } else {
                "SQLite"
            };
            println!("# meterlink-bench outage: {devices} devices, at least {observations} observations, bound {bound_mib} MiB, collector on {store}\n");
            let r = rt.block_on(meterlink_tests::outage::run(&p, dir.path()));
            if let Some(url) = &p.postgres {
                rt.block_on(meterlink_collector::store::drop_scratch_postgres(url));
            }
            r.print();
            // A day of 15-minute meter reads of this fleet (4 observations
            // per device and poll), and how long it takes to send.
            let day = (devices * 4 * 96) as f64;
            println!(
                "\na day's backlog of 15-minute polls ({day:.0} observations) drains in {:.1} min; polling made {:.0} observations/s back to back",
                day / r.drain_rate() / 60.0,
                r.appended as f64 / r.polling_secs
            );
            assert_eq!(r.filed, r.backlog_count, "every buffered observation filed");
            assert_eq!(r.out_of_order, 0, "filed in sequence order");
            assert_eq!(r.wrong_values, 0, "latest counters filed");
            return;
        }
        None => {}
    }
    let path = a.recording.clone().unwrap_or_else(|| {
        meterlink_tests::peers::fixtures_dir().join("canon_iradv_c5560.snmprec")
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (rec, _) = Recording::parse("canon", &text);
    let rec = Arc::new(rec);
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("snmp.yml");
    exporter_config(&rec, &config);
    println!(
        "# meterlink-bench: full read (identity, counters, supplies, status, alerts) of {}",
        path.display()
    );
    rt.block_on(async {
        scenario(&a, &rec, a.latency_ms, &config).await;
        // A fresh address block: the first fleet's sockets may linger a moment.
        let mut b = Args::parse();
        b.first = next_block(a.first);
        scenario(&b, &rec, 0.0, &config).await;
    });
}
