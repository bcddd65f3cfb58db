//! Trusting the server: the pinned host key, the key a server offers, and
//! the russh handler that compares them during the key exchange.

use std::sync::{Arc, Mutex, PoisonError};

use russh::client::{DisconnectReason, Handler};
use russh::keys::{Algorithm, HashAlg, PublicKey, PublicKeyOrCertificate};

/// Parses a pin, an OpenSSH public key line (`ssh-ed25519 AAAA… comment`).
/// The comment is optional and ignored.
pub(crate) fn parse_pin(pin: &str) -> Option<PublicKey> {
    PublicKey::from_openssh(pin.trim()).ok()
}

/// Whether `offered` is the pinned key: same algorithm and key bytes,
/// whatever the comments say.
pub(crate) fn matches_pin(pin: &PublicKey, offered: &PublicKey) -> bool {
    pin.key_data() == offered.key_data()
}

/// `ssh-ed25519 AAAA…` without a comment, the form stored as a pin.
pub(crate) fn openssh_line(key: &PublicKey) -> String {
    let bare = PublicKey::new(key.key_data().clone(), "");
    match bare.to_openssh() {
        Ok(line) => line.trim_end().to_owned(),
        // Encoding a key that was just decoded cannot fail in practice;
        // the fingerprint still identifies it.
        Err(_) => describe(key),
    }
}

/// `ssh-ed25519 SHA256:…`, as `ssh-keygen -l` shows a key.
pub(crate) fn describe(key: &PublicKey) -> String {
    format!("{} {}", key.algorithm(), key.fingerprint(HashAlg::Sha256))
}

/// The host key algorithms to offer, the pin's family first, so that a
/// server with several host keys presents the pinned one.
pub(crate) fn preferred_for(
    pin: &PublicKey,
    defaults: &[Algorithm],
) -> Vec<Algorithm> {
    let pinned = pin.algorithm();
    let same = |a: &Algorithm| match (a, &pinned) {
        (Algorithm::Rsa { .. }, Algorithm::Rsa { .. }) => true,
        (a, p) => a == p,
    };
    let mut ordered: Vec<Algorithm> =
        defaults.iter().filter(|a| same(a)).cloned().collect();
    if ordered.is_empty() {
        ordered.push(pinned.clone());
    }
    ordered.extend(defaults.iter().filter(|a| !same(a)).cloned());
    ordered
}

/// What the connection learned, shared between the handler (which runs
/// in russh's session task) and [`Session`](super::Session).
#[derive(Debug, Default)]
pub(crate) struct Observed {
    /// The host key the server presented.
    pub(crate) offered: Mutex<Option<PublicKey>>,
    /// Why the connection ended, once it has.
    pub(crate) lost: Mutex<Option<String>>,
}

impl Observed {
    pub(crate) fn offered(&self) -> Option<PublicKey> {
        lock(&self.offered).clone()
    }

    pub(crate) fn lost(&self) -> Option<String> {
        lock(&self.lost).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The russh handler: accepts the pinned key only (or any key on first
/// use) and records what it saw.
pub(crate) struct Checker {
    pub(crate) pin: Option<PublicKey>,
    pub(crate) observed: Arc<Observed>,
}

impl Handler for Checker {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        offered: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // Certificates are never advertised (russh's default), so a
        // certificate here is unexpected; it is judged by its key.
        let key = match offered {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(cert) => {
                PublicKey::new(cert.public_key().clone(), "")
            }
        };
        let accepted = match &self.pin {
            Some(pin) => matches_pin(pin, &key),
            None => true,
        };
        tracing::debug!(key = %describe(&key), accepted, "ssh host key");
        *lock(&self.observed.offered) = Some(key);
        Ok(accepted)
    }

    async fn disconnected(
        &mut self,
        reason: DisconnectReason<Self::Error>,
    ) -> Result<(), Self::Error> {
        let text = match &reason {
            DisconnectReason::ReceivedDisconnect(info)
                if info.message.is_empty() =>
            {
                format!("the server disconnected ({:?})", info.reason_code)
            }
            DisconnectReason::ReceivedDisconnect(info) => {
                format!("the server disconnected: {}", info.message)
            }
            DisconnectReason::Error(e) => describe_loss(e),
        };
        tracing::debug!(reason = %text, "ssh connection ended");
        *lock(&self.observed.lost) = Some(text);

        // What russh does by default: an error ends the session task with
        // that error, a disconnect message ends it cleanly.
        match reason {
            DisconnectReason::ReceivedDisconnect(_) => Ok(()),
            DisconnectReason::Error(e) => Err(e),
        }
    }
}

/// Why a connection ended, as a phrase for the errors that say so.
fn describe_loss(e: &russh::Error) -> String {
    match e {
        russh::Error::IO(io) => match io.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                "the server closed the connection".to_owned()
            }
            std::io::ErrorKind::ConnectionReset => {
                "the connection was reset".to_owned()
            }
            _ => lowercase_first(&io.to_string()),
        },
        russh::Error::KeepaliveTimeout => {
            "no answer to keepalives: the server or network is down or \
             frozen"
                .to_owned()
        }
        other => lowercase_first(&other.to_string()),
    }
}

/// russh capitalises its messages ("Keepalive timeout"); ours are
/// lowercase phrases.
fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "ssh-ed25519 \
        AAAAC3NzaC1lZDI1NTE5AAAAIHbkxCMgQ30G7iKZCizK/438NtlJMxMWcma0E3EZw9TE";
    const KEY_B: &str = "ssh-ed25519 \
        AAAAC3NzaC1lZDI1NTE5AAAAIBpp0KC0JdIPh++Blshkkdfz0wMAohwKJb/PObh9MoNq";

    #[test]
    fn pin_ignores_the_comment() {
        let pin = parse_pin(KEY_A).unwrap();
        let offered = parse_pin(&format!("{KEY_A} root@server")).unwrap();
        assert!(matches_pin(&pin, &offered));
    }

    #[test]
    fn pin_rejects_another_key() {
        let pin = parse_pin(KEY_A).unwrap();
        let offered = parse_pin(KEY_B).unwrap();
        assert!(!matches_pin(&pin, &offered));
    }

    #[test]
    fn pin_must_be_a_public_key_line() {
        assert!(parse_pin("").is_none());
        assert!(parse_pin("AAAAC3NzaC1lZDI1NTE5").is_none());
        assert!(parse_pin("ssh-ed25519 not-base64!").is_none());
        assert!(parse_pin(&format!("  {KEY_A}\n")).is_some());
    }

    #[test]
    fn openssh_line_drops_the_comment() {
        let key = parse_pin(&format!("{KEY_A} root@server")).unwrap();
        assert_eq!(openssh_line(&key), KEY_A);
    }

    #[test]
    fn description_is_algorithm_and_sha256_fingerprint() {
        let key = parse_pin(KEY_A).unwrap();
        let text = describe(&key);
        assert!(text.starts_with("ssh-ed25519 SHA256:"), "{text}");
    }

    #[test]
    fn pinned_family_is_offered_first() {
        let key = parse_pin(KEY_A).unwrap();
        let defaults = [
            Algorithm::Ecdsa {
                curve: russh::keys::EcdsaCurve::NistP256,
            },
            Algorithm::Ed25519,
            Algorithm::Rsa { hash: None },
        ];
        let ordered = preferred_for(&key, &defaults);
        assert_eq!(ordered[0], Algorithm::Ed25519);
        assert_eq!(ordered.len(), 3);
    }

    #[test]
    fn connection_losses_read_as_phrases() {
        let eof =
            std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "early eof");
        assert_eq!(
            describe_loss(&russh::Error::IO(eof)),
            "the server closed the connection"
        );
        let text = describe_loss(&russh::Error::KeepaliveTimeout);
        assert!(text.starts_with("no answer to keepalives"), "{text}");
        assert_eq!(
            describe_loss(&russh::Error::HUP),
            "connection closed by the remote side"
        );
    }

    #[test]
    fn russh_messages_become_lowercase() {
        assert_eq!(lowercase_first("Keepalive timeout"), "keepalive timeout");
        assert_eq!(lowercase_first(""), "");
    }
}
