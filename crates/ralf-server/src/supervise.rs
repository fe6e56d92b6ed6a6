//! Background work that must not end silently. The long-running loops (the dispatcher, the
//! scheduler, the heartbeat with its sweep, the cluster's notices) run under
//! [`spawn_restarting`]: a panic, or an end a loop must not have, is logged as an error and the
//! loop starts again. A dispatched task's work runs under [`catch_panic`], so that the
//! dispatcher can end the task `error` and free its slot instead of leaving it `running`.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use tokio::task::JoinHandle;

/// How long a loop that panicked or ended waits before it starts again, so one that fails at
/// once does not spin.
pub const RESTART_PAUSE: Duration = Duration::from_secs(1);

/// Spawns the loop `start()` makes, and makes and starts it again whenever it panics or
/// returns. Aborting the handle ends it.
pub fn spawn_restarting<F, Fut>(name: &'static str, start: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    spawn_restarting_after(RESTART_PAUSE, name, start)
}

fn spawn_restarting_after<F, Fut>(
    pause: Duration,
    name: &'static str,
    mut start: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            match catch_panic(start()).await {
                Ok(()) => tracing::error!(work = name, "ended, which it must not; restarting it"),
                Err(panic) => tracing::error!(work = name, %panic, "panicked; restarting it"),
            }
            tokio::time::sleep(pause).await;
        }
    })
}

/// Runs `future` to its end; a panic in it is caught and answered with its message.
pub async fn catch_panic<F: Future>(future: F) -> Result<F::Output, String> {
    AssertUnwindSafe(future)
        .catch_unwind()
        .await
        .map_err(|payload| panic_message(payload.as_ref()))
}

/// The message `panic!` was given, when it was a string.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".into()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_panic_is_caught_with_its_message() {
        assert_eq!(catch_panic(async { 7 }).await, Ok(7));
        let caught = catch_panic(async {
            tokio::task::yield_now().await;
            panic!("broke after {} steps", 3);
        })
        .await;
        assert_eq!(caught, Err::<(), _>("broke after 3 steps".to_string()));
    }

    #[tokio::test]
    async fn a_loop_that_panics_or_ends_is_started_again() {
        let starts = Arc::new(AtomicU32::new(0));
        let counted = starts.clone();
        let pause = Duration::from_millis(10);
        let handle = spawn_restarting_after(pause, "test loop", move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if n.is_multiple_of(2) {
                    panic!("start {n} panics");
                }
                // Odd starts end, which a loop must not either.
            }
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while starts.load(Ordering::SeqCst) < 5 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(pause).await;
        }
        assert!(
            starts.load(Ordering::SeqCst) >= 5,
            "started again after each end"
        );
        handle.abort();
    }
}
