//! Slows down password guessing: after a few failed logins for the same account from the same
//! address, further attempts are refused for a while that doubles with every failure.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed before attempts are refused.
const FREE_FAILURES: u32 = 5;
const FIRST_LOCKOUT: Duration = Duration::from_secs(2);
const LONGEST_LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// Entries not touched for this long are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);

#[derive(Default)]
pub struct LoginThrottle {
    attempts: Mutex<HashMap<(String, Option<IpAddr>), Failures>>,
}

struct Failures {
    count: u32,
    last: Instant,
}

impl Failures {
    fn locked_until(&self) -> Option<Instant> {
        let over = self.count.checked_sub(FREE_FAILURES)?;
        let lockout = FIRST_LOCKOUT
            .saturating_mul(1u32.checked_shl(over).unwrap_or(u32::MAX))
            .min(LONGEST_LOCKOUT);
        Some(self.last + lockout)
    }
}

impl LoginThrottle {
    /// `Err(wait)` when this login from this address must wait before trying again.
    pub fn check(&self, login: &str, ip: Option<IpAddr>) -> Result<(), Duration> {
        let attempts = self.attempts.lock().expect("login throttle lock");
        let Some(failures) = attempts.get(&(login.to_lowercase(), ip)) else {
            return Ok(());
        };
        match failures.locked_until() {
            Some(until) if until > Instant::now() => Err(until - Instant::now()),
            _ => Ok(()),
        }
    }

    pub fn failed(&self, login: &str, ip: Option<IpAddr>) {
        let mut attempts = self.attempts.lock().expect("login throttle lock");
        let now = Instant::now();
        attempts.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
        let entry = attempts
            .entry((login.to_lowercase(), ip))
            .or_insert(Failures {
                count: 0,
                last: now,
            });
        entry.count += 1;
        entry.last = now;
    }

    pub fn succeeded(&self, login: &str, ip: Option<IpAddr>) {
        self.attempts
            .lock()
            .expect("login throttle lock")
            .remove(&(login.to_lowercase(), ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_five_failures_and_forgets_on_success() {
        let t = LoginThrottle::default();
        for _ in 0..FREE_FAILURES {
            assert!(t.check("Admin", None).is_ok());
            t.failed("admin", None);
        }
        let wait = t.check("ADMIN", None).unwrap_err();
        assert!(wait <= FIRST_LOCKOUT && wait > Duration::ZERO);
        assert!(
            t.check("other", None).is_ok(),
            "other accounts are not affected"
        );
        t.succeeded("admin", None);
        assert!(t.check("admin", None).is_ok());
    }
}
