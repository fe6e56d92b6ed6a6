//! Waiting for a condition instead of sleeping a fixed time: tests go on as soon as what they
//! wait for has happened, and fail saying what they saw when it does not happen in time.

use std::fmt::Display;
use std::time::Duration;

/// How often a condition is looked at again.
const POLL: Duration = Duration::from_millis(20);

/// Checks `check` until it answers `Ok`, and returns that; an `Err` says what it sees instead.
/// Panics with the last `Err` when `timeout` has passed.
///
/// ```text
/// let task = wait_until(WAIT, async || {
///     let task = api.get(&path).await.body;
///     if task["status"] == "running" { Ok(task) } else { Err(format!("task is {}", task["status"])) }
/// })
/// .await;
/// ```
pub async fn wait_until<T, E: Display>(
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Result<T, E>,
) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(seen) if tokio::time::Instant::now() >= deadline => {
                panic!("waited {timeout:?} in vain: {seen}")
            }
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}
