//! Opening a session: the loopback guard, retries while the server
//! boots, the host key check and the login.

use std::borrow::Cow;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use russh::client::{self, Handle};
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout, Instant};

use super::host_key::{self, Checker, Observed};
use super::{HostKeyPolicy, Session, SshError, SshSettings, Target};

/// The first pause between connection attempts; it doubles up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Why one connection attempt failed.
enum Attempt {
    /// Worth another try while the server may still be booting.
    Retry(io::Error),
    /// No answer within the attempt's timeout.
    NoAnswer,
    /// Retrying cannot help.
    Fatal(SshError),
}

impl Session {
    /// Connects to `target`, checks its host key and logs in.
    ///
    /// With `settings.loopback_only`, a target that is not loopback is
    /// refused before any packet is sent, name resolution included.
    pub async fn connect(
        target: &Target,
        policy: HostKeyPolicy,
        settings: &SshSettings,
    ) -> Result<Session, SshError> {
        let host = target.address();
        if settings.loopback_only && !is_loopback_name(&target.host) {
            return Err(SshError::NotLoopback { host });
        }
        let pin = match policy {
            HostKeyPolicy::Pin(text) => match host_key::parse_pin(&text) {
                Some(pin) => Some(pin),
                None => return Err(SshError::BadPin { host, pin: text }),
            },
            HostKeyPolicy::TrustOnFirstUse => None,
        };
        let key = load_key(&target.key_file)?;
        let config = Arc::new(client_config(settings, pin.as_ref()));

        let started = Instant::now();
        let (mut handle, observed, attempts) =
            connect_with_retries(target, &config, pin, settings).await?;
        let connected_ms = started.elapsed().as_millis() as u64;

        let login = timeout(
            settings.connect_timeout,
            authenticate(&mut handle, &target.user, key),
        )
        .await;
        match login {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                return Err(SshError::Auth {
                    host,
                    user: target.user.clone(),
                    key_file: target.key_file.clone(),
                })
            }
            Ok(Err(source)) => return Err(SshError::Protocol { host, source }),
            Err(_) => {
                return Err(SshError::ConnectTimeout {
                    host,
                    attempts,
                    after: started.elapsed(),
                })
            }
        }

        let host_key = match observed.offered() {
            Some(key) => host_key::openssh_line(&key),
            // russh checks the key before the handshake completes, so a
            // connected session has always seen one.
            None => String::new(),
        };
        tracing::debug!(
            host = %host,
            user = %target.user,
            attempts,
            connected_ms,
            logged_in_ms = started.elapsed().as_millis() as u64,
            "ssh session open"
        );
        Ok(Session {
            handle,
            host,
            host_key,
            observed,
        })
    }
}

/// Tries to connect until it works, fails for good, or
/// `connect_retries_for` has passed.
async fn connect_with_retries(
    target: &Target,
    config: &Arc<client::Config>,
    pin: Option<PublicKey>,
    settings: &SshSettings,
) -> Result<(Handle<Checker>, Arc<Observed>, u32), SshError> {
    let host = target.address();
    let started = Instant::now();
    let give_up = started + settings.connect_retries_for;
    let mut backoff = FIRST_BACKOFF;
    let mut attempts = 0;

    loop {
        attempts += 1;
        let observed = Arc::new(Observed::default());
        let checker = Checker {
            pin: pin.clone(),
            observed: Arc::clone(&observed),
        };
        let opened = timeout(
            settings.connect_timeout,
            open(target, config, checker, settings.loopback_only),
        )
        .await;
        if let Ok(Ok(handle)) = opened {
            return Ok((handle, observed, attempts));
        }
        if let (Some(pin), Some(offered)) = (&pin, observed.offered()) {
            // russh reports a refused key only as "unknown server key".
            if !host_key::matches_pin(pin, &offered) {
                return Err(SshError::HostKeyChanged {
                    host,
                    expected: host_key::describe(pin),
                    offered: host_key::describe(&offered),
                });
            }
        }
        let failure = match opened {
            Ok(Ok(_)) => None,
            Ok(Err(Attempt::Fatal(e))) => return Err(e),
            Ok(Err(Attempt::Retry(e))) => Some(e),
            Ok(Err(Attempt::NoAnswer)) | Err(_) => None,
        };

        let now = Instant::now();
        tracing::debug!(
            host = %host,
            attempts,
            error = ?failure,
            "ssh connection attempt failed"
        );
        if now >= give_up {
            let after = now - started;
            return Err(match failure {
                Some(source) => SshError::Refused {
                    host,
                    attempts,
                    after,
                    source,
                },
                None => SshError::ConnectTimeout {
                    host,
                    attempts,
                    after,
                },
            });
        }
        sleep(backoff.min(give_up - now)).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One attempt: resolve, TCP connect, key exchange and host key check.
async fn open(
    target: &Target,
    config: &Arc<client::Config>,
    checker: Checker,
    loopback_only: bool,
) -> Result<Handle<Checker>, Attempt> {
    let host = target.address();
    let addresses: Vec<SocketAddr> =
        tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|source| {
                Attempt::Fatal(SshError::Io {
                    host: host.clone(),
                    source,
                })
            })?
            .collect();
    if loopback_only && !addresses.iter().all(|a| is_loopback_ip(a.ip())) {
        return Err(Attempt::Fatal(SshError::NotLoopback { host }));
    }

    let stream = match TcpStream::connect(&addresses[..]).await {
        Ok(stream) => stream,
        Err(e) if is_transient(&e) => return Err(Attempt::Retry(e)),
        Err(e) if e.kind() == io::ErrorKind::TimedOut => {
            return Err(Attempt::NoAnswer)
        }
        Err(source) => {
            return Err(Attempt::Fatal(SshError::Io { host, source }))
        }
    };
    // Without it Nagle's algorithm and delayed ACKs add about 45 ms to
    // every round trip.
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }

    client::connect_stream(Arc::clone(config), stream, checker)
        .await
        .map_err(|e| match e {
            russh::Error::IO(e) if is_transient(&e) => Attempt::Retry(e),
            // A server that is starting or restarting sshd may hang up
            // during the handshake.
            russh::Error::Disconnect | russh::Error::HUP => {
                Attempt::Retry(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "the server hung up during the ssh handshake",
                ))
            }
            source => Attempt::Fatal(SshError::Protocol { host, source }),
        })
}

/// Logs in with the key; `Ok(false)` when the server refuses it.
async fn authenticate(
    handle: &mut Handle<Checker>,
    user: &str,
    key: PrivateKey,
) -> Result<bool, russh::Error> {
    let hash = if key.algorithm().is_rsa() {
        // `None` from the server means it did not say; SHA-256 is what
        // every OpenSSH since 7.2 accepts.
        handle
            .best_supported_rsa_hash()
            .await?
            .unwrap_or(Some(HashAlg::Sha256))
    } else {
        None
    };
    let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
    let result = handle.authenticate_publickey(user, key).await?;
    Ok(result.success())
}

fn load_key(path: &Path) -> Result<PrivateKey, SshError> {
    russh::keys::load_secret_key(path, None).map_err(|source| {
        SshError::KeyFile {
            path: path.to_owned(),
            source,
        }
    })
}

fn client_config(
    settings: &SshSettings,
    pin: Option<&PublicKey>,
) -> client::Config {
    let mut config = client::Config {
        nodelay: true,
        keepalive_interval: Some(settings.keepalive_interval)
            .filter(|d| !d.is_zero()),
        keepalive_max: settings.keepalive_max,
        ..client::Config::default()
    };
    if let Some(pin) = pin {
        let ordered = host_key::preferred_for(pin, &config.preferred.key);
        config.preferred.key = Cow::Owned(ordered);
    }
    config
}

/// Refused or reset: nothing listens yet, or sshd is restarting.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::BrokenPipe
    )
}

/// Whether a target, as written, is loopback: 127.0.0.0/8, `::1` (also
/// as `::ffff:127.x.y.z`) or `localhost`. Other names are refused without
/// resolving them.
fn is_loopback_name(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(ip) => is_loopback_ip(ip),
        Err(_) => bare.eq_ignore_ascii_case("localhost"),
    }
}

fn is_loopback_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_targets() {
        for host in ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"] {
            assert!(is_loopback_name(host), "{host}");
        }
        assert!(is_loopback_name("LocalHost"));
        assert!(is_loopback_name("::ffff:127.0.0.1"));
    }

    #[test]
    fn non_loopback_targets() {
        for host in [
            "203.0.113.10",
            "10.0.0.1",
            "0.0.0.0",
            "::",
            "2001:db8::1",
            "example.com",
            "localhost.example.com",
            "127.0.0.1.nip.io",
            "",
        ] {
            assert!(!is_loopback_name(host), "{host}");
        }
    }

    #[test]
    fn config_has_nodelay_and_keepalive() {
        let config = client_config(&SshSettings::default(), None);
        assert!(config.nodelay);
        assert_eq!(config.keepalive_interval, Some(Duration::from_secs(15)));
        assert_eq!(config.keepalive_max, 3);
        assert_eq!(config.inactivity_timeout, None);
    }

    fn local(key_file: &Path) -> Target {
        Target {
            host: "127.0.0.1".into(),
            port: 1,
            user: "ubuntu".into(),
            key_file: key_file.to_owned(),
        }
    }

    #[tokio::test]
    async fn a_malformed_pin_fails_before_connecting() {
        let policy = HostKeyPolicy::Pin("AAAAC3NzaC1lZDI1NTE5".into());
        let target = local(Path::new("/nonexistent/key"));
        let err = Session::connect(&target, policy, &SshSettings::default())
            .await
            .unwrap_err();
        assert!(matches!(err, SshError::BadPin { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn an_unreadable_key_file_fails_without_showing_its_content() {
        let path = std::env::temp_dir()
            .join(format!("hubform-host-bad-key-{}", std::process::id()));
        // Not a key: the markers are built here so that no file in the
        // repository looks like it holds one.
        let marker =
            |edge: &str| format!("-----{edge} OPENSSH PRIVATE KEY-----");
        let fake = format!(
            "{}\nc2VjcmV0LXNlY3JldC1zZWNyZXQ=\n{}\n",
            marker("BEGIN"),
            marker("END")
        );
        std::fs::write(&path, fake).unwrap();
        let policy = HostKeyPolicy::TrustOnFirstUse;
        let result =
            Session::connect(&local(&path), policy, &SshSettings::default())
                .await;
        std::fs::remove_file(&path).unwrap();

        let err = result.unwrap_err();
        assert!(
            matches!(&err, SshError::KeyFile { path: p, .. } if *p == path),
            "{err:?}"
        );
        let shown =
            format!("{err} {err:?} {:?}", std::error::Error::source(&err));
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
    }

    #[tokio::test]
    async fn a_missing_key_file_is_named_with_why() {
        let path = std::env::temp_dir()
            .join(format!("hubform-no-such-key-{}.pem", std::process::id()));
        let policy = HostKeyPolicy::TrustOnFirstUse;
        let err =
            Session::connect(&local(&path), policy, &SshSettings::default())
                .await
                .unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.contains(&path.display().to_string())
                && shown.contains("No such file"),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn non_loopback_target_is_refused_before_reading_the_key() {
        let target = Target {
            host: "203.0.113.10".into(),
            port: 22,
            user: "ubuntu".into(),
            key_file: "/nonexistent/key".into(),
        };
        let settings = SshSettings {
            loopback_only: true,
            ..SshSettings::default()
        };
        let err = Session::connect(
            &target,
            HostKeyPolicy::TrustOnFirstUse,
            &settings,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, SshError::NotLoopback { ref host }
                if host == "203.0.113.10:22"),
            "{err:?}"
        );
    }
}
