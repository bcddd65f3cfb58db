//! The workshop lock that lets only one apply or destroy act at a time.
//!
//! `hold` takes the lock (`hubform_aws::lock`) before anything is planned
//! and keeps it alive in a background task that moves its expiry forward
//! every third of its lifetime, so that a long step (a TLJH install) never
//! lets it expire. `Held::release` gives it back at the end, also after a
//! failed apply; Ctrl-C and SIGTERM give it back before the process ends.
//! A lock whose run was killed expires by itself after its lifetime, and
//! is taken over at once by a run on the same machine that sees the
//! holding process gone (`process`).
//!
//! Settings: `HUBFORM_LOCK_TTL_SECS` (the lifetime, 300 by default) and
//! `HUBFORM_LOCK_WAIT_SECS` (how long to wait for another run's lock
//! before giving up; 0, the default, refuses at once).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod process;

use hubform_aws::lock::{self, Attempt, Claim, Holder, Lease, Lock, Refresh};
use hubform_core::pause::pause_point;
use tokio::task::JoinHandle;

use crate::commands::CliError;
use crate::session::Session;

/// The lock's lifetime unless refreshed: a killed run blocks the next one
/// at most this long.
const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// How often a waiting run looks at the lock again.
const WAIT_POLL: Duration = Duration::from_secs(2);

/// A held lock; released by `release`.
pub struct Held {
    lock: Lock,
    lease: Lease,
    ttl: Duration,
    keeper: JoinHandle<()>,
    signals: JoinHandle<()>,
    /// What the keeper found when the lock stopped being ours.
    lost: Arc<Mutex<Option<String>>>,
}

/// The lock's lifetime and how long to wait for another run's lock.
struct Settings {
    ttl: Duration,
    wait: Duration,
}

/// Takes the workshop's lock for `verb`, waiting for another run's lock
/// up to `HUBFORM_LOCK_WAIT_SECS`; refuses with who holds it and until
/// when otherwise.
pub async fn hold(session: &Session, verb: &str) -> Result<Held, CliError> {
    let settings = settings()?;
    let lock = session.stack.aws.lock();
    let holder = holder(verb);
    let process = process::this();
    let claim = Claim {
        holder: &holder,
        process: &process,
    };

    let lease = take(&lock, &claim, &settings, session).await?;
    tracing::debug!(lock = lock.name(), id = %lease.key_pair_id, "lock taken");

    let lost = Arc::new(Mutex::new(None));
    let keeper = tokio::spawn(keep(
        lock.clone(),
        lease.clone(),
        settings.ttl,
        lost.clone(),
    ));
    let signals = tokio::spawn(release_on_signal(lock.clone(), lease.clone()));
    // Off the async workers, so that the keeper and the signal handler
    // still run while a test holds the process here.
    tokio::task::block_in_place(|| pause_point("lock-taken"));
    Ok(Held {
        lock,
        lease,
        ttl: settings.ttl,
        keeper,
        signals,
        lost,
    })
}

impl Held {
    /// Gives the lock back. A lock lost during the run (expired and taken
    /// over, or deleted by hand) is reported, and another run's lock is
    /// left alone.
    pub async fn release(self) {
        self.keeper.abort();
        let _ = self.keeper.await;
        self.signals.abort();

        let lost = self.lost.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(what) = lost {
            tracing::warn!(
                "the workshop lock was lost during this run ({what}); \
                 another run may have acted at the same time: run \
                 `hubform plan` to see where things stand"
            );
        }
        // By id: a lost lock's name may be another run's lock now.
        if let Err(e) = self.lock.release(&self.lease).await {
            tracing::warn!(
                "cannot give the workshop lock back ({e}); it expires by \
                 itself within {}",
                span(self.ttl.as_secs())
            );
        }
    }
}

/// Tries to take the lock until it is ours or the wait is over. The lock
/// of a run that ended on this machine without giving it back is taken
/// over at once.
async fn take(
    lock: &Lock,
    claim: &Claim<'_>,
    settings: &Settings,
    session: &Session,
) -> Result<Lease, CliError> {
    let deadline = Instant::now() + settings.wait;
    let mut told = false;
    loop {
        let mut attempt = lock.take(claim, settings.ttl).await?;
        if let Attempt::Held(other) = &attempt {
            if process::ended(&other.process) {
                eprintln!(
                    "hubform: the workshop lock's holder ({}) ended on this \
                     machine without giving it back; taking the lock over",
                    other.holder
                );
                attempt = lock.take_over(other, claim, settings.ttl).await?;
            }
        }
        let other = match attempt {
            Attempt::Taken(lease) => return Ok(lease),
            Attempt::Held(other) => other,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(CliError::Other(refusal(lock, &other, session)));
        }
        if !told {
            eprintln!(
                "hubform: waiting up to {}s for the workshop lock held by \
                 {}",
                left.as_secs(),
                other.holder
            );
            told = true;
        }
        tokio::time::sleep(left.min(WAIT_POLL)).await;
    }
}

/// What to tell a run that finds the lock held.
fn refusal(lock: &Lock, other: &Holder, session: &Session) -> String {
    let now = lock::now();
    let since = other
        .since
        .map(|s| format!(", since {}", lock::utc(s)))
        .unwrap_or_default();
    format!(
        "workshop {workshop} is locked by another run: {holder}{since}. \
         Nothing was changed.\n\
         The lock expires at {expires} (in {left}) unless that run keeps \
         it alive: wait for that run to finish and run this command again, \
         or set HUBFORM_LOCK_WAIT_SECS=<seconds> to wait for it. A killed \
         run's lock expires by itself (a run on the machine it ran on takes \
         it over at once); if you are sure that run is dead and cannot \
         wait, delete its lock, the key pair {name}: aws ec2 \
         delete-key-pair --key-pair-id {id} --region {region}",
        workshop = session.desired.workshop,
        holder = other.holder,
        expires = lock::utc(other.expires),
        left = span(other.expires.saturating_sub(now)),
        name = lock.name(),
        id = other.key_pair_id,
        region = session.desired.region,
    )
}

/// A number of seconds as `4m 10s`.
fn span(secs: u64) -> String {
    match (secs / 60, secs % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m {s}s"),
    }
}

/// Moves the lock's expiry forward every third of its lifetime until the
/// task is aborted or the lock is lost. A lost lock is only reported: the
/// steps in flight are not stopped halfway.
async fn keep(
    lock: Lock,
    lease: Lease,
    ttl: Duration,
    lost: Arc<Mutex<Option<String>>>,
) {
    let every = (ttl / 3).max(Duration::from_millis(200));
    loop {
        tokio::time::sleep(every).await;
        let what = match lock.refresh(&lease, ttl).await {
            Ok(Refresh::Kept(expires)) => {
                tracing::debug!(until = %lock::utc(expires), "lock refreshed");
                continue;
            }
            Ok(Refresh::Lost(None)) => {
                "its key pair was deleted by someone else".to_owned()
            }
            Ok(Refresh::Lost(Some(other))) => {
                format!("it expired and {} took it over", other.holder)
            }
            Err(e) => {
                tracing::warn!(
                    "cannot refresh the workshop lock ({e}); trying again"
                );
                continue;
            }
        };
        tracing::warn!("the workshop lock was lost: {what}");
        *lost.lock().unwrap_or_else(|p| p.into_inner()) = Some(what);
        return;
    }
}

/// On Ctrl-C or SIGTERM, gives the lock back and ends the process: an
/// interrupted apply resumes on the next run like a killed one, but the
/// next run need not wait for the lock to expire.
async fn release_on_signal(lock: Lock, lease: Lease) {
    let signal = interrupted().await;
    eprintln!("hubform: {signal}; giving the workshop lock back");
    if let Err(e) = lock.release(&lease).await {
        eprintln!("hubform: cannot give the workshop lock back: {e}");
    }
    std::process::exit(1);
}

/// Waits for Ctrl-C (or SIGTERM on Unix) and names it.
async fn interrupted() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                _ = tokio::signal::ctrl_c() => "interrupted",
                _ = term.recv() => "terminated",
            };
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    "interrupted"
}

/// `user@host, pid N, verb`: who holds the lock, for the next run to read.
fn holder(verb: &str) -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "someone".to_owned());
    format!("{user}@{}, pid {}, {verb}", hostname(), std::process::id())
}

fn hostname() -> String {
    let from_proc = std::fs::read_to_string("/proc/sys/kernel/hostname");
    let from_command = || {
        std::process::Command::new("hostname")
            .output()
            .ok()
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    from_proc
        .ok()
        .or_else(from_command)
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

/// Reads `HUBFORM_LOCK_TTL_SECS` and `HUBFORM_LOCK_WAIT_SECS`.
fn settings() -> Result<Settings, CliError> {
    let ttl = seconds("HUBFORM_LOCK_TTL_SECS")?.unwrap_or(DEFAULT_TTL);
    if ttl.is_zero() {
        return Err(CliError::Other(
            "HUBFORM_LOCK_TTL_SECS=0: the lock needs a lifetime of at least \
             1 second"
                .to_owned(),
        ));
    }
    let wait = seconds("HUBFORM_LOCK_WAIT_SECS")?.unwrap_or_default();
    Ok(Settings { ttl, wait })
}

/// A whole number of seconds from the environment; unset or empty is
/// `None`, anything else but a number is an error.
fn seconds(name: &str) -> Result<Option<Duration>, CliError> {
    parse_seconds(name, std::env::var(name).ok().as_deref())
}

fn parse_seconds(
    name: &str,
    value: Option<&str>,
) -> Result<Option<Duration>, CliError> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    value
        .parse::<u64>()
        .map(|secs| Some(Duration::from_secs(secs)))
        .map_err(|_| {
            CliError::Other(format!(
                "{name}={value:?} is not a whole number of seconds"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_minutes_and_seconds() {
        assert_eq!(span(0), "0s");
        assert_eq!(span(59), "59s");
        assert_eq!(span(120), "2m");
        assert_eq!(span(250), "4m 10s");
    }

    #[test]
    fn lock_settings_are_whole_seconds() {
        let parse = |v| parse_seconds("HUBFORM_LOCK_TTL_SECS", v);
        assert_eq!(parse(None).ok(), Some(None));
        assert_eq!(parse(Some(" ")).ok(), Some(None));
        assert_eq!(parse(Some("30")).ok(), Some(Some(Duration::from_secs(30))));
        let err = parse(Some("5m")).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "HUBFORM_LOCK_TTL_SECS=\"5m\" is not a whole number of seconds"
            )
        );
    }
}
