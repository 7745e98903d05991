//! Known-errors suite for the on-disk buffer: truncated and corrupted files,
//! a missing directory, a full disk. The agent must neither panic nor lose a
//! meter reading that is still readable, and must keep working.

use meterlink_agent::buffer::sled_buffer::OpenOutcome;
use meterlink_agent::buffer::{Buffer, SledBuffer};
use meterlink_proto::v1::{observation::Body, CounterValue, MeterReading, Observation};
use std::path::Path;

fn meter(i: u64) -> Observation {
    Observation {
        seq: 0,
        taken_at_ms: 1_700_000_000_000 + i as i64,
        device_address: "127.0.0.1:161".into(),
        serial: format!("SER{i:05}"),
        body: Some(Body::Meter(MeterReading {
            counters: vec![CounterValue {
                id: "canon.101".into(),
                value: 1000 + i,
                ..Default::default()
            }],
        })),
    }
}

fn fill(path: &Path, n: u64) -> Vec<u64> {
    let (b, _) = SledBuffer::open(path, u64::MAX).unwrap();
    let mut seqs = Vec::new();
    for i in 0..n {
        seqs.extend(b.append(vec![meter(i)]).unwrap());
    }
    seqs
}

fn value(o: &Observation) -> u64 {
    match &o.body {
        Some(Body::Meter(m)) => m.counters[0].value,
        _ => panic!("not a meter reading"),
    }
}

/// After damage: the buffer opens (perhaps fresh, the damaged one moved
/// aside), every record it returns is intact, and it accepts new data.
fn check_usable(path: &Path) -> (OpenOutcome, Vec<Observation>) {
    let (b, outcome) =
        SledBuffer::open(path, u64::MAX).expect("a damaged buffer is replaced, not fatal");
    let got = b
        .read(0, usize::MAX, usize::MAX)
        .expect("read after damage");
    for o in &got {
        let i = value(o) - 1000;
        assert_eq!(
            o.serial,
            format!("SER{i:05}"),
            "a returned record is intact"
        );
    }
    let s = b.append(vec![meter(999_999)]).unwrap();
    assert!(
        got.iter().all(|o| o.seq < s[0]),
        "new data continues above the old sequence numbers"
    );
    (outcome, got)
}

fn biggest_file(dir: &Path) -> std::path::PathBuf {
    let mut best = (0, dir.to_path_buf());
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let m = e.metadata().unwrap();
        if m.is_file() && m.len() > best.0 {
            best = (m.len(), e.path());
        }
    }
    best.1
}

#[test]
fn truncated_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buf");
    fill(&path, 200);
    let f = biggest_file(&path);
    let len = std::fs::metadata(&f).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let (outcome, got) = check_usable(&path);
    eprintln!(
        "truncated {}: {outcome:?}, {} of 200 readings readable",
        f.display(),
        got.len()
    );
    if let OpenOutcome::MovedAside(p) = outcome {
        assert!(p.exists(), "the damaged buffer is kept for recovery");
    }
}

#[test]
fn corrupted_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buf");
    fill(&path, 200);
    let f = biggest_file(&path);
    let mut bytes = std::fs::read(&f).unwrap();
    let n = bytes.len();
    for i in (n / 3..n / 3 + 64).step_by(7) {
        bytes[i] ^= 0x5a;
    }
    std::fs::write(&f, bytes).unwrap();
    let (outcome, got) = check_usable(&path);
    eprintln!(
        "corrupted {}: {outcome:?}, {} of 200 readings readable",
        f.display(),
        got.len()
    );
}

#[test]
fn garbage_instead_of_a_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buf");
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(path.join("conf"), b"this is not a sled config").unwrap();
    std::fs::write(path.join("db"), vec![0xffu8; 4096]).unwrap();
    let (outcome, got) = check_usable(&path);
    assert!(got.is_empty());
    match outcome {
        OpenOutcome::MovedAside(p) => assert!(p.join("conf").exists()),
        OpenOutcome::Opened => {}
    }
}

#[test]
fn missing_directory_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not/yet/there/buf");
    let (b, outcome) = SledBuffer::open(&path, u64::MAX).unwrap();
    assert_eq!(outcome, OpenOutcome::Opened);
    b.append(vec![meter(1)]).unwrap();
    assert_eq!(b.stats().count, 1);
}

#[test]
fn full_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
        .arg(&mnt)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !mounted {
        let need = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(
            !need,
            "full_disk: cannot mount a tmpfs (CI runs as root and must)"
        );
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED full_disk: cannot mount a tmpfs here (needs root)"
        );
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.clone());
    let path = mnt.join("buf");
    let mut stored = Vec::new();
    let mut error = None;
    {
        let (b, _) = SledBuffer::open(&path, u64::MAX).unwrap();
        for i in 0..200_000u64 {
            let batch: Vec<Observation> = (0..50).map(|k| meter(i * 50 + k)).collect();
            match b.append(batch) {
                Ok(s) => stored.extend(s),
                Err(e) => {
                    error = Some(e.to_string());
                    break;
                }
            }
        }
        let e = error.clone().expect("a 3 MB disk fills up");
        assert!(e.contains("disk space"), "the error says what to do: {e}");
        eprintln!("full disk after {} readings: {e}", stored.len());
        // sled refuses every call after a failed write; the agent reopens
        // the buffer after such an error. Nothing here may panic.
        let _ = b.read(0, 10, usize::MAX);
        let _ = b.append(vec![meter(1)]);
    }
    // Reopening on the still-full disk fails with a clear error and does not
    // move the buffer aside (that would hide its data).
    match SledBuffer::open(&path, u64::MAX) {
        Ok((_, outcome)) => assert_eq!(outcome, OpenOutcome::Opened),
        Err(e) => assert!(e.to_string().contains("disk space"), "{e}"),
    }
    // The operator makes room; after a restart every stored reading is there.
    let grown = std::process::Command::new("mount")
        .args(["-o", "remount,size=16m"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(grown.success());
    let (b, outcome) = SledBuffer::open(&path, u64::MAX).unwrap();
    assert_eq!(outcome, OpenOutcome::Opened);
    let got = b.read(0, usize::MAX, usize::MAX).unwrap();
    let have: std::collections::HashSet<u64> = got.iter().map(|o| o.seq).collect();
    let missing = stored.iter().filter(|s| !have.contains(s)).count();
    assert_eq!(missing, 0, "readings lost after a full disk");
    b.append(vec![meter(7)]).unwrap();
}
