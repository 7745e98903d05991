//! A share of the machine's CPUs for a bench process, by a Linux cgroup
//! (v1 `cpu` controller or v2 `cpu.max`): processes that would run on hosts
//! of their own get a fixed share each, whatever else runs beside them.

use std::fs;
use std::path::{Path, PathBuf};

/// The scheduler's accounting period; the quota is a share of it.
const PERIOD_US: u64 = 100_000;

/// A cgroup limited to `cpus` CPUs, removed when dropped (once its
/// processes have exited).
pub(crate) struct CpuShare {
    dir: PathBuf,
}

impl CpuShare {
    pub(crate) fn new(name: &str, cpus: f64) -> Result<CpuShare, String> {
        let quota = (cpus * PERIOD_US as f64).round() as u64;
        if quota < 1_000 {
            return Err(format!(
                "a CPU share of {cpus} is too small (at least 0.01)"
            ));
        }
        let v1 = Path::new("/sys/fs/cgroup/cpu");
        let v2 = Path::new("/sys/fs/cgroup");
        let (dir, files) = if v1.join("cpu.cfs_quota_us").exists() {
            let dir = v1.join(name);
            let files = vec![
                ("cpu.cfs_period_us", PERIOD_US.to_string()),
                ("cpu.cfs_quota_us", quota.to_string()),
            ];
            (dir, files)
        } else if v2.join("cgroup.controllers").exists() {
            (
                v2.join(name),
                vec![("cpu.max", format!("{quota} {PERIOD_US}"))],
            )
        } else {
            return Err("no cgroup cpu controller under /sys/fs/cgroup".into());
        };
        let fail = |what: &str, e: std::io::Error| {
            format!(
                "cannot {what} {}: {e} (a CPU share needs root and a writable cgroup cpu controller)",
                dir.display()
            )
        };
        fs::create_dir_all(&dir).map_err(|e| fail("make", e))?;
        let share = CpuShare { dir: dir.clone() };
        for (file, value) in files {
            fs::write(dir.join(file), value).map_err(|e| fail("set", e))?;
        }
        Ok(share)
    }

    /// Moves process `pid`, all its threads, into the share.
    pub(crate) fn add(&self, pid: u32) -> Result<(), String> {
        fs::write(self.dir.join("cgroup.procs"), pid.to_string())
            .map_err(|e| format!("cannot move process {pid} into {}: {e}", self.dir.display()))
    }

    /// The share of scheduler periods in which the group was throttled
    /// (used up its quota): near 1, the share was what limited it.
    pub(crate) fn throttled(&self) -> Option<f64> {
        let stat = fs::read_to_string(self.dir.join("cpu.stat")).ok()?;
        let field = |name: &str| {
            stat.lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
        };
        Some(field("nr_throttled ")? / field("nr_periods ")?.max(1.0))
    }
}

impl Drop for CpuShare {
    fn drop(&mut self) {
        // A cgroup is removed with rmdir once it is empty.
        let _ = fs::remove_dir(&self.dir);
    }
}
