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
