//! The module graph that ARCHITECTURE.md states as invariants C1-C5 and
//! A1-A3: which top-level module of the collector and the agent may use
//! which, and that the pure core names no IO. Read from the sources, so a
//! new `use crate::...` that breaks a rule fails here with its file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir` (or `dir.rs` itself), recursively.
fn sources(src: &Path, module: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let file = src.join(format!("{module}.rs"));
    if file.is_file() {
        out.push(file);
    }
    let mut dirs = vec![src.join(module)];
    while let Some(d) = dirs.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The code lines of a file: comments dropped.
fn code_lines(path: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l.to_string()))
        .collect()
}

/// The top-level modules of `crate::` a module's files name, with where.
fn uses_of(src: &Path, module: &str) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for path in sources(src, module) {
        for (n, line) in code_lines(&path) {
            let mut rest = line.as_str();
            while let Some(i) = rest.find("crate::") {
                let after = &rest[i + "crate::".len()..];
                let name: String = after
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                // `meterlink_collector::...` is another crate, not this one.
                let own = i == 0 || !rest[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_');
                if own && !name.is_empty() && name != module {
                    found
                        .entry(name)
                        .or_insert_with(|| format!("{}:{n}", path.display()));
                }
                rest = after;
            }
        }
    }
    found
}

fn top_modules(src: &Path) -> Vec<String> {
    let mut m: Vec<String> = std::fs::read_dir(src)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter_map(|p| {
            let stem = p.file_stem()?.to_str()?.to_string();
            (p.is_dir() || p.extension().is_some_and(|x| x == "rs")).then_some(stem)
        })
        .filter(|m| m != "lib" && m != "main")
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    m.sort();
    m
}

/// The rules themselves allow no cycle (so code that keeps to them has
/// none): a module whose allowed uses are all placed is placed, until none
/// is left; what stays unplaced is on a cycle.
fn cycles(rules: &[(&str, &[&str])]) -> Vec<String> {
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    loop {
        let next: Vec<&str> = rules
            .iter()
            .filter(|(m, uses)| !placed.contains(m) && uses.iter().all(|u| placed.contains(u)))
            .map(|(m, _)| *m)
            .collect();
        if next.is_empty() {
            break;
        }
        placed.extend(next);
    }
    rules
        .iter()
        .filter(|(m, _)| !placed.contains(m))
        .map(|(m, uses)| format!("`{m}` (allowed {uses:?}) is on a cycle of the module graph"))
        .collect()
}

/// Checks `rules` (module, the modules it may use) and that every module
/// has a rule, so a new module states its place.
fn check(crate_dir: &str, rules: &[(&str, &[&str])]) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(crate_dir)
        .join("src");
    let mut errors = cycles(rules);
    let ruled: BTreeSet<&str> = rules.iter().map(|(m, _)| *m).collect();
    for m in top_modules(&src) {
        if !ruled.contains(m.as_str()) {
            errors.push(format!(
                "{crate_dir}: module `{m}` has no rule here (add it to ARCHITECTURE.md's module graph and this test)"
            ));
        }
    }
    for (module, allowed) in rules {
        for (used, at) in uses_of(&src, module) {
            if !allowed.contains(&used.as_str()) {
                errors.push(format!(
                    "{at}: `{module}` uses `crate::{used}`; the module graph allows only {allowed:?}"
                ));
            }
        }
    }
    errors
}

/// Pure modules name no IO: no sockets, files, processes, async runtime or database.
fn check_pure(crate_dir: &str, modules: &[&str]) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(crate_dir)
        .join("src");
    const IO: &[&str] = &[
        "tokio::",
        "std::fs",
        "std::net::UdpSocket",
        "std::net::TcpStream",
        "std::process",
        "sqlx::",
        "reqwest::",
    ];
    let mut errors = Vec::new();
    for m in modules {
        for path in sources(&src, m) {
            // A module's tests may make files and runtimes.
            if path.file_name().is_some_and(|f| f == "tests.rs") {
                continue;
            }
            for (n, line) in code_lines(&path) {
                if line.contains("#[cfg(test)]") {
                    break;
                }
                if let Some(io) = IO.iter().find(|io| line.contains(*io)) {
                    errors.push(format!(
                        "{}:{n}: pure module `{m}` names {io}",
                        path.display()
                    ));
                }
            }
        }
    }
    errors
}

#[test]
fn collector_module_graph() {
    let mut errors = check(
        "collector",
        &[
            // C1: leaves.
            ("model", &[]),
            ("token", &[]),
            ("filing", &[]),
            ("requests", &[]),
            // Agent ids are the model's: the CSR check names them.
            ("pki", &["model"]),
            ("metrics", &[]),
            // C2: the access policy is over the model only.
            ("auth", &["model"]),
            // C3: the store knows the model and the pure rules it applies.
            ("store", &["model", "token", "filing", "requests", "notify"]),
            // What people are told, and the SMTP sender.
            ("notify", &["model"]),
            ("mailer", &["model", "store"]),
            // C4: the API sits on the store and the policy.
            (
                "api",
                &["store", "auth", "model", "token", "filing", "metrics"],
            ),
            ("ingest", &["store", "pki", "model", "metrics", "token"]),
            ("portal", &["store", "model"]),
            (
                "config",
                &["auth", "filing", "mailer", "requests", "portal", "store"],
            ),
            ("users", &["auth", "config", "store", "model", "token"]),
            ("agents", &["config", "store", "model", "pki", "users"]),
            ("exit", &["server", "store", "users", "agents"]),
            // C5: only the server assembles the whole.
            (
                "server",
                &[
                    "api", "config", "ingest", "mailer", "metrics", "model", "pki", "portal",
                    "store",
                ],
            ),
        ],
    );
    errors.extend(check_pure(
        "collector",
        &["model", "token", "filing", "requests", "auth", "notify"],
    ));
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn agent_module_graph() {
    let mut errors = check(
        "agent",
        &[
            // A2: leaves.
            ("snmp", &[]),
            ("observation", &[]),
            ("range", &[]),
            ("schedule", &[]),
            ("buffer", &[]),
            ("known", &[]),
            ("metrics", &[]),
            // A3: profiles are pure over the codec's values.
            ("profile", &["snmp", "observation"]),
            ("poll", &["snmp", "profile", "observation"]),
            ("discovery", &["snmp", "profile", "poll"]),
            ("config", &["snmp", "range", "schedule"]),
            ("connect", &[]),
            ("identity", &["config", "connect"]),
            ("uplink", &["buffer", "connect", "identity"]),
            (
                "daemon",
                &[
                    "buffer",
                    "config",
                    "discovery",
                    "identity",
                    "known",
                    "metrics",
                    "observation",
                    "poll",
                    "profile",
                    "range",
                    "schedule",
                    "snmp",
                    "uplink",
                ],
            ),
            // A1: the command line is on top; nothing below imports it.
            (
                "cli",
                &[
                    "config",
                    "daemon",
                    "discovery",
                    "identity",
                    "observation",
                    "poll",
                    "profile",
                    "range",
                    "snmp",
                ],
            ),
        ],
    );
    errors.extend(check_pure(
        "agent",
        &[
            "profile",
            "range",
            "schedule",
            "observation",
            "known",
            "snmp/ber",
            "snmp/message",
            "snmp/usm",
            "snmp/snmprec",
        ],
    ));
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn the_checker_sees_a_cycle() {
    let errors = cycles(&[("a", &["b"]), ("b", &["a"]), ("c", &[])]);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(cycles(&[("a", &["b"]), ("b", &[])]).is_empty());
}

#[test]
fn the_checker_sees_a_forbidden_use() {
    // The rules above only mean something if a use is found: `store` uses
    // `model`, so a rule that forbids it must report it.
    let errors = check("collector", &[("store", &["token", "filing", "requests"])]);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("`store` uses `crate::model`")),
        "{errors:?}"
    );
}
