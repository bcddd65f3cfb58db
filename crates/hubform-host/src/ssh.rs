//! SSH connections to the server: connect, trust, log in, run commands.
//!
//! One [`Session`] is one TCP connection, opened by [`Session::connect`].
//! Connecting retries refused and reset connections for a while, because
//! a server that is still booting refuses them; it then checks the host
//! key against [`HostKeyPolicy`] and logs in with the private key file.
//! [`Session::run`] runs one command per SSH channel, so commands can run
//! concurrently on one session. A connection lost mid-command is
//! [`SshError::Dropped`]: the caller reconnects and runs its idempotent
//! command again.

mod connect;
mod error;
mod host_key;
mod lines;
mod run;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use russh::client::Handle;
use russh::Disconnect;
use tokio::time::timeout;

pub use error::SshError;
use host_key::{Checker, Observed};

/// How long [`Session::close`] waits for the server to hang up.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Where to log in, and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// An IP address or host name, without brackets or port.
    pub host: String,
    /// The SSH port, usually 22.
    pub port: u16,
    /// The login user, such as `ubuntu`.
    pub user: String,
    /// The private key file (OpenSSH or PEM, unencrypted).
    pub key_file: PathBuf,
}

impl Target {
    /// `host:port`, with brackets around an IPv6 address, as messages
    /// name the target.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Which host key to accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// Only this key, an OpenSSH public key line (`ssh-ed25519 AAAA…`;
    /// a comment is ignored). Any other key is
    /// [`SshError::HostKeyChanged`].
    Pin(String),
    /// Any key, on first contact; read it from [`Session::host_key`] and
    /// pin it for every later connection.
    TrustOnFirstUse,
}

/// Timeouts, retries and the loopback guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSettings {
    /// The longest one connection attempt (TCP, key exchange) or the login
    /// may take.
    pub connect_timeout: Duration,
    /// How long to keep retrying refused, reset or unanswered connections,
    /// as while a server boots. Zero tries once.
    pub connect_retries_for: Duration,
    /// Send a keepalive after this long without hearing from the server;
    /// zero turns keepalives off.
    pub keepalive_interval: Duration,
    /// Declare the connection lost after this many unanswered keepalives.
    pub keepalive_max: usize,
    /// Refuse targets that are not 127.0.0.0/8, `::1` or `localhost`,
    /// before sending anything (`HUBFORM_LOOPBACK_ONLY=1`).
    pub loopback_only: bool,
}

impl Default for SshSettings {
    /// 10 s per attempt, retries for 2 minutes, keepalive every 15 s and
    /// lost after 3 unanswered (so a frozen server is noticed within a
    /// minute), any target.
    fn default() -> Self {
        SshSettings {
            connect_timeout: Duration::from_secs(10),
            connect_retries_for: Duration::from_secs(120),
            keepalive_interval: Duration::from_secs(15),
            keepalive_max: 3,
            loopback_only: false,
        }
    }
}

/// How to run one command.
#[derive(Clone, Copy)]
pub struct RunOptions<'a> {
    /// Bytes for the command's stdin, such as a file for
    /// `sudo -n tee PATH`. They are never logged or put in an error.
    pub stdin: Option<&'a [u8]>,
    /// The longest the whole command may take.
    pub timeout: Duration,
    /// Called with each line of stdout and stderr as it arrives, without
    /// its line ending, for progress.
    pub on_line: Option<&'a (dyn Fn(&str) + Sync)>,
    /// How messages and logs name the command, when not by its own first
    /// words (a command wrapped in a lock is named by what it wraps).
    pub label: Option<&'a str>,
}

impl RunOptions<'_> {
    /// No stdin, no progress callback, and `timeout`.
    pub fn new(timeout: Duration) -> Self {
        RunOptions {
            stdin: None,
            timeout,
            on_line: None,
            label: None,
        }
    }
}

impl fmt::Debug for RunOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunOptions")
            .field("stdin_bytes", &self.stdin.map(<[u8]>::len))
            .field("timeout", &self.timeout)
            .field("on_line", &self.on_line.is_some())
            .field("label", &self.label)
            .finish()
    }
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it (`TERM`, `KILL`, …); there is no exit code.
    Signal(String),
}

impl Exit {
    /// Whether the command exited with code 0.
    pub fn success(&self) -> bool {
        *self == Exit::Code(0)
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "exit code {code}"),
            Exit::Signal(name) => write!(f, "signal {name}"),
        }
    }
}

/// What a finished command returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Its exit code or signal.
    pub status: Exit,
    /// Its stdout; invalid UTF-8 is replaced.
    pub stdout: String,
    /// Its stderr, kept apart from stdout; invalid UTF-8 is replaced.
    pub stderr: String,
}

/// An open, authenticated SSH connection.
pub struct Session {
    handle: Handle<Checker>,
    /// `address:port`, for messages.
    host: String,
    /// The server's key, `ssh-ed25519 AAAA…`.
    host_key: String,
    observed: Arc<Observed>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("host", &self.host)
            .field("host_key", &self.host_key)
            .field("closed", &self.handle.is_closed())
            .finish()
    }
}

impl Session {
    /// The host key the server presented, as an OpenSSH public key line
    /// without a comment (`ssh-ed25519 AAAA…`): the value to pin.
    pub fn host_key(&self) -> &str {
        &self.host_key
    }

    /// `address:port` of the server.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether the connection has ended (lost, or closed by the server).
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// Says goodbye to the server and waits briefly for the connection to
    /// end.
    pub async fn close(self) {
        let said = self
            .handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await;
        if said.is_ok() {
            let _ = timeout(CLOSE_GRACE, self.handle).await;
        }
        tracing::debug!(host = %self.host, "ssh session closed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_brackets_ipv6() {
        let mut target = Target {
            host: "::1".into(),
            port: 2201,
            user: "ubuntu".into(),
            key_file: "k".into(),
        };
        assert_eq!(target.address(), "[::1]:2201");
        target.host = "127.0.0.1".into();
        assert_eq!(target.address(), "127.0.0.1:2201");
    }

    #[test]
    fn debug_of_run_options_hides_stdin() {
        let options = RunOptions {
            stdin: Some(b"secret-token-123"),
            ..RunOptions::new(Duration::from_secs(5))
        };
        let text = format!("{options:?}");
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("16"), "{text}");
    }

    #[test]
    fn exit_reads_as_code_or_signal() {
        assert!(Exit::Code(0).success());
        assert!(!Exit::Code(1).success());
        assert!(!Exit::Signal("TERM".into()).success());
        assert_eq!(Exit::Code(7).to_string(), "exit code 7");
        assert_eq!(Exit::Signal("TERM".into()).to_string(), "signal TERM");
    }

    #[test]
    fn session_is_shareable_across_tasks() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Session>();
    }
}
