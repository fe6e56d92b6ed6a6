//! Benchmark drivers and baselines. `bench/*.sh` runs them; each prints its figures next to a
//! baseline measured in the same run, and BENCHMARKS.md records them.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The baselines' task: writes `echo.sh` (`echo ok`, as the benchmarks' tasks run) into `dir`.
pub fn write_echo_script(dir: &Path) {
    std::fs::write(dir.join("echo.sh"), "echo ok\n").unwrap();
}

/// Runs `bash echo.sh` in `dir`, forked and waited for directly (the baseline of a task).
pub fn run_echo_script(dir: &Path) {
    let out = Command::new("bash")
        .arg("echo.sh")
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success());
}

/// The median of some durations (they are sorted in place).
pub fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// The `q` quantile (0..=1) of some durations (they are sorted in place).
pub fn quantile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
    samples[i]
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// CPU time used so far: by one process's own threads and by the children it waited for
/// (`/proc/<pid>/stat`), and by the whole machine (`/proc/stat`: user, nice, system, irq and
/// softirq, every core), which also counts what the kernel's threads did.
#[derive(Clone, Copy, Debug)]
pub struct CpuTime {
    pub process: Duration,
    pub children: Duration,
    pub machine: Duration,
}

impl CpuTime {
    /// `None` where there is no `/proc` (or the process is gone).
    pub fn of(pid: u32) -> Option<CpuTime> {
        let ticks = clock_ticks();
        let time = |t: u64| Duration::from_secs_f64(t as f64 / ticks);
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The fields after the command name (which is in parentheses and may hold spaces):
        // utime, stime, cutime and cstime are the 12th to 15th of them.
        let (_, rest) = stat.rsplit_once(')')?;
        let own: Vec<u64> = rest
            .split_whitespace()
            .skip(11)
            .take(4)
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        let machine = std::fs::read_to_string("/proc/stat").ok()?;
        let cpu: Vec<u64> = machine
            .lines()
            .next()?
            .strip_prefix("cpu ")?
            .split_whitespace()
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        // user nice system idle iowait irq softirq: all but idle and iowait.
        let busy = cpu.get(..7)?;
        Some(CpuTime {
            process: time(own[0] + own[1]),
            children: time(own[2] + own[3]),
            machine: time(busy[0] + busy[1] + busy[2] + busy[5] + busy[6]),
        })
    }

    /// What was used between `earlier` and this.
    pub fn since(self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            process: self.process.saturating_sub(earlier.process),
            children: self.children.saturating_sub(earlier.children),
            machine: self.machine.saturating_sub(earlier.machine),
        }
    }
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`, asked once: a program started for
/// each reading would add its own CPU to what is measured; 100 on Linux when it cannot be asked).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::LazyLock<f64> = std::sync::LazyLock::new(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok()?.trim().parse().ok())
            .unwrap_or(100.0)
    });
    *TICKS
}
