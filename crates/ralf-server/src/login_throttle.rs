//! Slows down password guessing: after a few failed logins for the same account from the same
//! client address, further attempts are refused for a while that doubles with every failure.
//!
//! An account is counted once whatever name it was given by (username or e-mail, any case):
//! the key is the user's id when the login names a user. The memory is bounded: login names
//! are capped before they get here ([`MAX_LOGIN_BYTES`]), and at most [`MAX_ENTRIES`] are kept,
//! the least recently failed forgotten first. [`PasswordChecks`] bounds how many password
//! checks run at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest login name looked at; longer ones are refused before the throttle and the log.
pub const MAX_LOGIN_BYTES: usize = 256;
/// Failures allowed before attempts are refused.
const FREE_FAILURES: u32 = 5;
const FIRST_LOCKOUT: Duration = Duration::from_secs(2);
const LONGEST_LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// Entries not touched for this long are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
/// The most (account, address) pairs remembered: a few MB at most.
pub const MAX_ENTRIES: usize = 10_000;

/// Whom failed logins are counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Account {
    /// A user, however the login named them.
    User(i64),
    /// A login that names nobody, lower-cased (at most [`MAX_LOGIN_BYTES`]).
    Unknown(String),
}

impl Account {
    pub fn unknown(login: &str) -> Account {
        Account::Unknown(login.to_lowercase())
    }
}

#[derive(Default)]
pub struct LoginThrottle {
    attempts: Mutex<HashMap<(Account, IpAddr), Failures>>,
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
    /// `Err(wait)` when this account must wait before trying again from this address.
    pub fn check(&self, account: &Account, client: IpAddr) -> Result<(), Duration> {
        let attempts = self.attempts.lock().expect("login throttle lock");
        let Some(failures) = attempts.get(&(account.clone(), client)) else {
            return Ok(());
        };
        match failures.locked_until() {
            Some(until) if until > Instant::now() => Err(until - Instant::now()),
            _ => Ok(()),
        }
    }

    pub fn failed(&self, account: Account, client: IpAddr) {
        let mut attempts = self.attempts.lock().expect("login throttle lock");
        let now = Instant::now();
        let key = (account, client);
        if !attempts.contains_key(&key) && attempts.len() >= MAX_ENTRIES {
            attempts.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
            if attempts.len() >= MAX_ENTRIES {
                let oldest = attempts
                    .iter()
                    .min_by_key(|(_, f)| f.last)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    attempts.remove(&oldest);
                }
            }
        }
        let entry = attempts.entry(key).or_insert(Failures {
            count: 0,
            last: now,
        });
        entry.count += 1;
        entry.last = now;
    }

    pub fn succeeded(&self, account: Account, client: IpAddr) {
        self.attempts
            .lock()
            .expect("login throttle lock")
            .remove(&(account, client));
    }

    /// How many (account, address) pairs are remembered.
    pub fn len(&self) -> usize {
        self.attempts.lock().expect("login throttle lock").len()
    }
}

/// Runs password checks on a few threads of their own, one per core. Each argon2 check holds
/// about 19 MiB while it runs, and anonymous clients can ask for checks (unknown logins are
/// checked against a dummy hash): a burst of logins waits its turn instead of costing a burst
/// of memory, and since the memory allocator keeps what a thread freed for that thread, only
/// these few threads ever hold such memory. The threads end when the server's state is dropped.
pub struct PasswordChecks {
    jobs: Mutex<std::sync::mpsc::Sender<Job>>,
}

type Job = Box<dyn FnOnce() + Send>;

impl Default for PasswordChecks {
    fn default() -> Self {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = std::sync::Arc::new(Mutex::new(queue));
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        for _ in 0..threads {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name("password-check".into())
                .spawn(move || {
                    loop {
                        let job = queue.lock().expect("password check queue").recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => break,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password check thread");
            }
        }
        PasswordChecks {
            jobs: Mutex::new(jobs),
        }
    }
}

impl PasswordChecks {
    /// Runs the check `f` on a password check thread and waits for its answer.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = answer.send(f());
        });
        self.jobs
            .lock()
            .expect("password check queue")
            .send(job)
            .map_err(|_| anyhow::anyhow!("no password check thread is running"))?;
        Ok(answered.await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const THERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7));

    #[test]
    fn locks_after_five_failures_and_forgets_on_success() {
        let t = LoginThrottle::default();
        for _ in 0..FREE_FAILURES {
            assert!(t.check(&Account::User(1), HERE).is_ok());
            t.failed(Account::User(1), HERE);
        }
        let wait = t.check(&Account::User(1), HERE).unwrap_err();
        assert!(wait <= FIRST_LOCKOUT && wait > Duration::ZERO);
        assert!(
            t.check(&Account::User(2), HERE).is_ok(),
            "other accounts are not affected"
        );
        assert!(
            t.check(&Account::User(1), THERE).is_ok(),
            "nor the same account from another client"
        );
        t.succeeded(Account::User(1), HERE);
        assert!(t.check(&Account::User(1), HERE).is_ok());
    }

    #[test]
    fn unknown_logins_count_once_whatever_their_case() {
        let t = LoginThrottle::default();
        for login in ["Ghost", "GHOST", "ghost", "gHoSt", "ghosT"] {
            t.failed(Account::unknown(login), HERE);
        }
        assert!(t.check(&Account::unknown("ghost"), HERE).is_err());
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn remembers_at_most_max_entries_forgetting_the_oldest() {
        let t = LoginThrottle::default();
        for n in 0..MAX_ENTRIES + 500 {
            t.failed(Account::unknown(&format!("user{n}")), HERE);
        }
        assert_eq!(t.len(), MAX_ENTRIES);
        for _ in 0..FREE_FAILURES {
            t.failed(Account::User(7), HERE);
        }
        assert!(
            t.check(&Account::User(7), HERE).is_err(),
            "the newest entry is kept"
        );
        assert_eq!(t.len(), MAX_ENTRIES);
    }
}
