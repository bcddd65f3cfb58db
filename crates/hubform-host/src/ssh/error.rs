//! What can go wrong on an SSH connection.

use std::path::PathBuf;
use std::time::Duration;

/// A failure to reach, trust, log in to or run a command on a host.
///
/// `host` is always `address:port`. Commands appear only as their first
/// words (the first line, at most four words); their stdin never appears,
/// and neither does any private key.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// `HUBFORM_LOOPBACK_ONLY` is set and the target is not loopback.
    #[error(
        "refusing ssh to {host}: HUBFORM_LOOPBACK_ONLY=1 allows only \
         127.0.0.0/8, ::1 and localhost"
    )]
    NotLoopback {
        /// The refused target.
        host: String,
    },

    /// The pinned host key is not an OpenSSH public key line.
    #[error(
        "the pinned ssh host key of {host} is not an OpenSSH public key \
         (\"ssh-ed25519 AAAA…\"): {pin:?}"
    )]
    BadPin {
        /// The target.
        host: String,
        /// The pin as given (a public key, not a secret).
        pin: String,
    },

    /// The private key file cannot be read or parsed.
    #[error("cannot load the ssh private key {}: {source}", path.display())]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// Why it failed; it never contains key material.
        #[source]
        source: russh::keys::Error,
    },

    /// Nothing accepted a connection, even after retrying.
    #[error(
        "cannot connect to sshd on {host} ({attempts} attempts in {}); \
         check that the server is up and sshd listens on that port",
        secs(*.after)
    )]
    Refused {
        /// The target.
        host: String,
        /// Connection attempts made.
        attempts: u32,
        /// Time spent trying.
        after: Duration,
        /// The last attempt's failure.
        #[source]
        source: std::io::Error,
    },

    /// Connections neither succeeded nor failed in time.
    #[error(
        "no ssh answer from {host} within {} ({attempts} attempts); check \
         the address and that the security group allows ssh from here",
        secs(*.after)
    )]
    ConnectTimeout {
        /// The target.
        host: String,
        /// Connection attempts made.
        attempts: u32,
        /// Time spent trying.
        after: Duration,
    },

    /// The server presented a host key other than the pinned one.
    #[error(
        "the ssh host key of {host} changed: pinned {expected}, offered \
         {offered}; refusing to connect. If the server was replaced on \
         purpose, remove the pinned key (the instance tag hubform:host-key) \
         and run again"
    )]
    HostKeyChanged {
        /// The target.
        host: String,
        /// The pinned key's algorithm and SHA256 fingerprint.
        expected: String,
        /// The offered key's algorithm and SHA256 fingerprint.
        offered: String,
    },

    /// The server did not accept the private key for the user.
    #[error(
        "{host} refused the key {} for user {user}; check that the \
         instance was launched with this key pair and that the user exists",
        key_file.display()
    )]
    Auth {
        /// The target.
        host: String,
        /// The login user.
        user: String,
        /// The private key that was refused.
        key_file: PathBuf,
    },

    /// The connection was already closed before the command was sent, so
    /// the command did not run.
    #[error(
        "the ssh connection to {host} is closed ({reason}); `{command}` was \
         not sent; connect again"
    )]
    Closed {
        /// The target.
        host: String,
        /// The command's first words.
        command: String,
        /// Why the connection ended, as far as known.
        reason: String,
    },

    /// The server refused to start the command.
    #[error("{host} refused to run `{command}`")]
    Rejected {
        /// The target.
        host: String,
        /// The command's first words.
        command: String,
    },

    /// The command did not finish in time. It was sent TERM and its
    /// channel closed; the connection stays usable.
    #[error(
        "`{command}` on {host} did not finish within {}; it was told to \
         stop (TERM) and its channel closed",
        secs(*.after)
    )]
    Timeout {
        /// The target.
        host: String,
        /// The command's first words.
        command: String,
        /// The timeout.
        after: Duration,
    },

    /// The connection was lost while the command ran; whether it finished
    /// is unknown. Idempotent commands can be run again on a new
    /// connection.
    #[error(
        "the ssh connection to {host} was lost while `{command}` ran \
         ({reason}); it may or may not have finished"
    )]
    Dropped {
        /// The target.
        host: String,
        /// The command's first words.
        command: String,
        /// Why the connection ended, as far as known.
        reason: String,
    },

    /// A local I/O failure, such as resolving the host name.
    #[error("ssh to {host}: i/o failed")]
    Io {
        /// The target.
        host: String,
        /// The failure.
        #[source]
        source: std::io::Error,
    },

    /// The SSH protocol failed (key exchange, algorithms, framing).
    #[error("ssh protocol failure with {host}")]
    Protocol {
        /// The target.
        host: String,
        /// The failure.
        #[source]
        source: russh::Error,
    },
}

/// Seconds with at most one decimal: `1 s`, `2.5 s`.
fn secs(d: Duration) -> String {
    let tenths = (d.as_millis() + 50) / 100;
    if tenths.is_multiple_of(10) {
        format!("{} s", tenths / 10)
    } else {
        format!("{}.{} s", tenths / 10, tenths % 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_seconds() {
        assert_eq!(secs(Duration::from_secs(1)), "1 s");
        assert_eq!(secs(Duration::from_millis(2460)), "2.5 s");
        assert_eq!(secs(Duration::from_millis(30)), "0 s");
        assert_eq!(secs(Duration::from_millis(90)), "0.1 s");
    }

    #[test]
    fn changed_key_message_names_both_keys_and_the_way_out() {
        let e = SshError::HostKeyChanged {
            host: "203.0.113.10:22".into(),
            expected: "ssh-ed25519 SHA256:old".into(),
            offered: "ssh-ed25519 SHA256:new".into(),
        };
        let text = e.to_string();
        assert!(text.starts_with("the ssh host key of 203.0.113.10:22"));
        assert!(text.contains("SHA256:old"), "{text}");
        assert!(text.contains("SHA256:new"), "{text}");
        assert!(text.contains("hubform:host-key"), "{text}");
    }

    #[test]
    fn timeout_message_names_host_command_and_limit() {
        let e = SshError::Timeout {
            host: "127.0.0.1:2201".into(),
            command: "sleep 30".into(),
            after: Duration::from_secs(1),
        };
        assert_eq!(
            e.to_string(),
            "`sleep 30` on 127.0.0.1:2201 did not finish within 1 s; it was \
             told to stop (TERM) and its channel closed"
        );
    }

    #[test]
    fn auth_message_names_user_and_key_file() {
        let e = SshError::Auth {
            host: "127.0.0.1:2201".into(),
            user: "ubuntu".into(),
            key_file: "/keys/workshop.pem".into(),
        };
        let text = e.to_string();
        assert!(text.contains("/keys/workshop.pem"), "{text}");
        assert!(text.contains("user ubuntu"), "{text}");
    }
}
