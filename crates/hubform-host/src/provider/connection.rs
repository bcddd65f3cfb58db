//! How the host provider reaches a server: the address to SSH to (the
//! `--ssh-endpoint` override, the spec's `ssh_endpoint`, or the server's
//! Elastic IP), one session per server kept for the run, the host key
//! pinned at first contact, reconnects when a connection is lost while an
//! action runs, and which servers did not answer at all.

use std::future::Future;
use std::sync::Arc;

use hubform_aws::Aws;
use hubform_core::graph::Desired;
use hubform_core::model::{Kind, ResourceId};
use hubform_core::provider::{Failure, Progress};

use super::Host;
use crate::ssh::{HostKeyPolicy, Session, SshError, Target};

impl Host {
    /// Notes whether server `key`'s last connection found nothing
    /// answering (refused, or no answer in time).
    fn note_answer(&self, key: &str, error: Option<&SshError>) {
        let unanswered = matches!(
            error,
            Some(SshError::Refused { .. } | SshError::ConnectTimeout { .. })
        );
        let mut set = self.unanswered.lock().unwrap_or_else(|p| p.into_inner());
        if unanswered {
            set.insert(key.to_owned());
        } else {
            set.remove(key);
        }
    }

    pub(super) fn unanswered(&self, key: &str) -> bool {
        self.unanswered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(key)
    }

    /// Runs `action` on server `key`'s session. When the connection is
    /// lost while it runs (the session is closed afterwards), connects
    /// again and repeats it, up to `settings.attempts` times in all,
    /// pausing longer each time; `action` gets the attempt's number
    /// (from 1). Every action on a host is safe to repeat (see
    /// actions.rs); a timeout or a failing command is not repeated.
    #[allow(clippy::too_many_arguments)] // one call per kind of action
    pub(super) async fn with_reconnects<T, F, Fut>(
        &self,
        aws: &Aws,
        desired: &Desired,
        key: &str,
        pin: bool,
        what: &str,
        report: Option<(&dyn Progress, &ResourceId)>,
        mut action: F,
    ) -> Result<T, Failure>
    where
        F: FnMut(Arc<Session>, u32) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let attempts = self.settings.attempts.max(1);
        let mut pause = self.settings.retry_pause;
        let mut attempt = 1;
        loop {
            let session = match self.session(aws, desired, key, pin).await {
                Ok(session) => session,
                Err(e) if attempt > 1 => {
                    return Err(Failure::new(format!(
                        "server {key}: {}, after the ssh connection was lost \
                         during {what}; once the server answers, run \
                         hubform again: {what} is safe to repeat",
                        e.message
                    )))
                }
                Err(e) => {
                    return Err(Failure::new(format!(
                        "server {key}: {}",
                        e.message
                    )))
                }
            };
            let failure = match action(Arc::clone(&session), attempt).await {
                Ok(done) => return Ok(done),
                Err(failure) if !session.is_closed() => return Err(failure),
                Err(failure) => failure,
            };
            if attempt >= attempts {
                return Err(Failure::new(format!(
                    "server {key}: {}; gave up after {attempt} attempt(s). \
                     Check that the server is up (hubform status), then run \
                     hubform again: {what} is safe to repeat",
                    failure.message
                )));
            }
            let line = format!(
                "{}; connecting again in {:.1} s to repeat {what} (attempt \
                 {} of {attempts})",
                failure.message,
                pause.as_secs_f64(),
                attempt + 1
            );
            match report {
                Some((progress, id)) => progress.report(id, &line),
                None => tracing::warn!(server = %key, "{line}"),
            }
            tokio::time::sleep(pause).await;
            pause *= 2;
            attempt += 1;
        }
    }

    /// The open session to server `key`, connecting on first use. On
    /// first contact the host key is trusted and, when `pin` is set,
    /// pinned on the instance.
    pub(crate) async fn session(
        &self,
        aws: &Aws,
        desired: &Desired,
        key: &str,
        pin: bool,
    ) -> Result<Arc<Session>, Failure> {
        let mut sessions = self.sessions.lock().await;
        if let Some((open, unpinned)) = sessions.get_mut(key) {
            if !open.is_closed() {
                // Trusted during a plan: pin it now that apply acts.
                if *unpinned && pin {
                    aws.pin_host_key(key, open.host_key()).await?;
                    *unpinned = false;
                }
                return Ok(Arc::clone(open));
            }
        }

        let target = self.target(aws, desired, key).await?;
        let known = self.pins.lock().await.get(key).cloned();
        let pinned = match known {
            Some(pin) => Some(pin).filter(|p| !p.is_empty()),
            None => aws.pinned_host_key(key).await?,
        };
        let policy = match pinned {
            Some(pinned) => HostKeyPolicy::Pin(pinned),
            None => HostKeyPolicy::TrustOnFirstUse,
        };
        let first_contact = matches!(policy, HostKeyPolicy::TrustOnFirstUse);
        let connected =
            Session::connect(&target, policy, &self.settings.ssh).await;
        self.note_answer(key, connected.as_ref().err());
        let session = connected.map_err(|e| Failure::new(e.to_string()))?;
        if first_contact && pin {
            aws.pin_host_key(key, session.host_key()).await?;
        }
        let session = Arc::new(session);
        let unpinned = first_contact && !pin;
        sessions.insert(key.to_owned(), (Arc::clone(&session), unpinned));
        Ok(session)
    }

    async fn target(
        &self,
        aws: &Aws,
        desired: &Desired,
        key: &str,
    ) -> Result<Target, Failure> {
        let install = desired
            .get(&ResourceId::new(Kind::Tljh, key))
            .ok_or_else(|| Failure::new(format!("server {key} has no tljh")))?;
        let instance = desired
            .get(&ResourceId::new(Kind::Instance, key))
            .ok_or_else(|| Failure::new(format!("no instance.{key}")))?;
        let key_pair = instance.text("key_pair").unwrap_or_default();
        let key_file = desired
            .get(&ResourceId::new(Kind::KeyPair, key_pair))
            .and_then(|k| k.text("private_key_file"))
            .ok_or_else(|| {
                Failure::new(format!("key pair {key_pair} has no key file"))
            })?;

        let endpoint = match self
            .endpoint_override
            .clone()
            .or_else(|| install.text("ssh_endpoint").map(str::to_owned))
        {
            Some(e) => e,
            None => aws.server_address(key).await?,
        };
        let (host, port) = split_endpoint(&endpoint)?;
        Ok(Target {
            host,
            port,
            user: install.text("ssh_user").unwrap_or("ubuntu").to_owned(),
            key_file: hubform_core::spec::resolve_path(
                &self.base_dir,
                key_file,
            ),
        })
    }
}

/// `HOST`, `HOST:PORT` or `[V6]:PORT` into host and port (22 by default).
fn split_endpoint(endpoint: &str) -> Result<(String, u16), Failure> {
    let bad = || {
        Failure::new(format!(
            "ssh endpoint {endpoint:?} is not HOST or HOST:PORT"
        ))
    };
    if let Some(rest) = endpoint.strip_prefix('[') {
        let (host, port) = rest.split_once("]:").ok_or_else(bad)?;
        return Ok((host.to_owned(), port.parse().map_err(|_| bad())?));
    }
    match endpoint.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            Ok((host.to_owned(), port.parse().map_err(|_| bad())?))
        }
        _ if !endpoint.is_empty() => Ok((endpoint.to_owned(), 22)),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_split_into_host_and_port() {
        assert_eq!(
            split_endpoint("127.0.0.1:2222").expect("ok"),
            ("127.0.0.1".to_owned(), 2222)
        );
        assert_eq!(
            split_endpoint("example.org").expect("ok"),
            ("example.org".to_owned(), 22)
        );
        assert_eq!(
            split_endpoint("[::1]:2200").expect("ok"),
            ("::1".to_owned(), 2200)
        );
        assert!(split_endpoint("host:port").is_err());
        assert!(split_endpoint("").is_err());
    }
}
