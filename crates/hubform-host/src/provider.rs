//! The host provider: observes each server's host with one probe over
//! SSH and carries out `tljh`, `tljh_config` and `packages` changes.
//!
//! It reaches a server through the AWS provider: the address (Elastic IP,
//! or `ssh_endpoint`), the host key pinned on the instance's tag on first
//! contact, and the private key file of the server's key pair
//! (`connection`: sessions, reconnects, servers that do not answer).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hubform_aws::Aws;
use hubform_core::graph::Desired;
use hubform_core::model::{Kind, Live, Note, Observed, ResourceId, Value};
use hubform_core::plan::{Action, Change};
use hubform_core::provider::{Failure, Progress};
use tokio::sync::Mutex;

use crate::actions::{configure, install, packages, probe, upgrade};
use crate::actions::{lines_to, refreshed, run_locked};
use crate::probe::{normalise, Facts};
use crate::ssh::{RunOptions, Session, SshSettings};
use crate::verify::{checks, verified, verify};

mod connection;

/// Timeouts of host commands.
#[derive(Debug, Clone)]
pub struct HostSettings {
    /// SSH connection settings.
    pub ssh: SshSettings,
    /// The probe and short commands.
    pub command: Duration,
    /// A TLJH install or upgrade (a real one takes 5–10 minutes).
    pub install: Duration,
    /// Package installs.
    pub packages: Duration,
    /// `tljh-config reload`, which can hang forever on its own.
    pub reload: Duration,
    /// How many times an action is tried in all when its SSH connection
    /// is lost (1: never again).
    pub attempts: u32,
    /// The pause before trying again after a lost connection; it doubles
    /// with each attempt.
    pub retry_pause: Duration,
}

impl Default for HostSettings {
    fn default() -> Self {
        HostSettings {
            ssh: SshSettings::default(),
            command: Duration::from_secs(120),
            install: Duration::from_secs(30 * 60),
            packages: Duration::from_secs(30 * 60),
            reload: Duration::from_secs(180),
            attempts: 3,
            retry_pause: Duration::from_secs(1),
        }
    }
}

impl HostSettings {
    /// The defaults, with from the environment
    /// `HUBFORM_RELOAD_TIMEOUT_SECS`, `HUBFORM_SSH_RETRY_SECS` (how long
    /// to keep connecting), `HUBFORM_SSH_TIMEOUT_SECS` (one connection
    /// attempt or login) and `HUBFORM_SSH_KEEPALIVE_SECS` (the keepalive
    /// interval; three unanswered ones end the connection).
    pub fn from_env(loopback_only: bool) -> HostSettings {
        let mut s = HostSettings::default();
        let secs = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs)
        };
        if let Some(d) = secs("HUBFORM_RELOAD_TIMEOUT_SECS") {
            s.reload = d;
        }
        if let Some(d) = secs("HUBFORM_SSH_RETRY_SECS") {
            s.ssh.connect_retries_for = d;
        }
        if let Some(d) = secs("HUBFORM_SSH_TIMEOUT_SECS") {
            s.ssh.connect_timeout = d.max(Duration::from_secs(1));
        }
        if let Some(d) = secs("HUBFORM_SSH_KEEPALIVE_SECS") {
            s.ssh.keepalive_interval = d;
        }
        s.ssh.loopback_only = loopback_only;
        s
    }
}

/// The host provider of one workshop.
pub struct Host {
    base_dir: PathBuf,
    endpoint_override: Option<String>,
    settings: HostSettings,
    /// Open sessions by server, and whether the key they trusted on first
    /// contact still waits to be pinned.
    sessions: Mutex<BTreeMap<String, (Arc<Session>, bool)>>,
    /// Pins read during observation (empty: none), saving a lookup.
    pins: Mutex<BTreeMap<String, String>>,
    /// Whether a host that does not answer SSH is noted in the plan
    /// (plan, apply) instead of failing the run (drift: an error there).
    tolerate_unreachable: AtomicBool,
    /// Servers whose last connection found nothing answering.
    unanswered: std::sync::Mutex<BTreeSet<String>>,
    /// Servers whose host layer was left out of the plan, unanswered.
    left_out: std::sync::Mutex<BTreeSet<String>>,
}

impl Host {
    /// A host provider; `endpoint_override` (`--ssh-endpoint`) wins over
    /// the spec's `ssh_endpoint` and the server's address.
    pub fn new(
        base_dir: PathBuf,
        endpoint_override: Option<String>,
        settings: HostSettings,
    ) -> Host {
        Host {
            base_dir,
            endpoint_override,
            settings,
            sessions: Mutex::new(BTreeMap::new()),
            pins: Mutex::new(BTreeMap::new()),
            tolerate_unreachable: AtomicBool::new(false),
            unanswered: std::sync::Mutex::new(BTreeSet::new()),
            left_out: std::sync::Mutex::new(BTreeSet::new()),
        }
    }

    /// From now on, a host that does not answer SSH while it is observed
    /// leaves its host layer out of the plan, with a note, instead of
    /// failing: plan and apply can still show and make the AWS changes
    /// (opening port 22 among them).
    pub fn tolerate_unreachable(&self) {
        self.tolerate_unreachable.store(true, Ordering::Relaxed);
    }

    /// How long a probe waits for a command that holds the server's lock
    /// (a killed run's reload or package install still running there).
    fn probe_lock_wait(&self) -> Duration {
        self.settings.reload + self.settings.command
    }

    /// Probes the host of every server with a `tljh` section whose
    /// instance exists, and adds what it found to `observed`.
    pub async fn observe(
        &self,
        aws: &Aws,
        desired: &Desired,
        observed: &mut Observed,
    ) -> Result<(), Failure> {
        for install in desired.of_kind(Kind::Tljh) {
            let key = &install.id.key;
            let instance = ResourceId::new(Kind::Instance, key);
            let Some(live) = observed.live.get(&instance) else {
                continue;
            };
            if live.get_extra("state") != Some("running") {
                continue;
            }
            let pin = live.get_extra("host_key").unwrap_or_default();
            self.pins.lock().await.insert(key.clone(), pin.to_owned());
            let checks = checks(desired, key);
            let lock_wait = self.probe_lock_wait();
            let what = "the host probe";
            let probed = self
                .with_reconnects(
                    aws,
                    desired,
                    key,
                    false,
                    what,
                    None,
                    |s, _| {
                        let checks = &checks;
                        async move { probe(&s, checks, lock_wait).await }
                    },
                )
                .await;
            let facts = match probed {
                Ok(facts) => facts,
                Err(e)
                    if self.tolerate_unreachable.load(Ordering::Relaxed)
                        && self.unanswered(key) =>
                {
                    observed.unreachable.insert(key.clone(), e.message);
                    self.left_out
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(key.clone());
                    continue;
                }
                Err(e) => return Err(e),
            };
            add_lives(desired, key, &facts, observed);
            for problem in verify(desired, key, &facts) {
                observed.notes.push(Note {
                    id: install.id.clone(),
                    text: problem,
                });
            }
            if let Some((fs, disk)) = facts.root.filter(|(f, d)| f * 10 < d * 9)
            {
                observed.notes.push(Note {
                    id: ResourceId::new(Kind::Volume, key),
                    text: format!(
                        "the root file system uses {} of the disk's {} GiB; \
                         the next volume change grows it, or run growpart \
                         and resize2fs on the server",
                        gib(fs),
                        gib(disk)
                    ),
                });
            }
            if facts.reboot_required {
                // TODO-correctness: the opt-in `system` resource (apt
                // upgrade, reboot) is not built yet; say what the OS asks.
                observed.notes.push(Note {
                    id: instance,
                    text: "the server's OS asks for a reboot \
                           (/var/run/reboot-required) after its updates"
                        .to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Grows server `key`'s root partition and file system to fill its
    /// disk, after the volume grew: waits until the OS sees the new size,
    /// then `growpart` and `resize2fs` (or `xfs_growfs`).
    pub async fn grow_root(
        &self,
        aws: &Aws,
        desired: &Desired,
        key: &str,
        size_gb: i64,
        progress: &dyn Progress,
    ) -> Result<String, Failure> {
        let want = u64::try_from(size_gb).unwrap_or(0) << 30;
        let script = format!(
            "set -e
src=$(findmnt -no SOURCE /)
disk=/dev/$(lsblk -no PKNAME \"$src\")
part=$(cat /sys/class/block/$(basename \"$src\")/partition 2>/dev/null || lsblk -no PARTN \"$src\")
i=0
while [ \"$(lsblk -bdno SIZE \"$disk\")\" -lt {want} ]; do
  i=$((i + 1)); [ $i -le 120 ] || {{ echo \"$disk is still smaller than {size_gb} GiB\" >&2; exit 1; }}
  sleep 5
done
growpart \"$disk\" \"$part\" || [ $? -eq 1 ]
case \"$(findmnt -no FSTYPE /)\" in
  xfs) xfs_growfs / ;;
  *) resize2fs \"$src\" ;;
esac
findmnt -bno SIZE /
"
        );
        let id = ResourceId::new(Kind::Volume, key);
        let print = lines_to(progress, &id);
        let options = RunOptions {
            stdin: Some(script.as_bytes()),
            on_line: Some(&print),
            ..RunOptions::new(self.settings.install)
        };
        let what = "growing the root file system";
        let report = Some((progress, &id));
        let out = self
            .with_reconnects(
                aws,
                desired,
                key,
                true,
                what,
                report,
                |s, _| async move {
                    run_locked(&s, what, "sudo -n sh -s", options).await
                },
            )
            .await?;
        let size = out.lines().last().and_then(|l| l.trim().parse().ok());
        Ok(format!(
            "root file system grown to {} GiB",
            size.map_or("?".to_owned(), gib)
        ))
    }

    /// Checks every running server's host after an apply (a server the
    /// spec stops is left out): the hub answers and, with HTTPS on, the
    /// certificate of each name is trusted. Returns what was checked, or
    /// what is wrong, per server.
    pub async fn verify_all(
        &self,
        aws: &Aws,
        desired: &Desired,
    ) -> Vec<(ResourceId, Result<String, String>)> {
        hubform_core::pause::pause_point("before-verify");
        let mut results = Vec::new();
        for install in desired.of_kind(Kind::Tljh) {
            let key = &install.id.key;
            let stopped = desired
                .get(&ResourceId::new(Kind::Instance, key))
                .and_then(|i| i.text("state"))
                == Some("stopped");
            if stopped {
                // As status, drift and doctor do: nothing answers there.
                continue;
            }
            let left_out = self
                .left_out
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(key);
            if left_out {
                // Its host changes were not planned: nothing to verify yet.
                results.push((
                    install.id.clone(),
                    Err(format!(
                        "server {key} did not answer SSH before the \
                         changes, so its host layer was not checked: \
                         apply again once it answers"
                    )),
                ));
                continue;
            }
            let mut checks = checks(desired, key);
            let lock_wait = self.probe_lock_wait();
            checks.imports = desired
                .get(&ResourceId::new(Kind::Packages, key))
                .map(|p| p.items("pip"))
                .unwrap_or_default()
                .iter()
                .map(|item| item.split("==").next().unwrap_or(item).to_owned())
                .collect();
            let what = "the verification";
            let facts = self
                .with_reconnects(aws, desired, key, true, what, None, |s, _| {
                    let checks = &checks;
                    async move { probe(&s, checks, lock_wait).await }
                })
                .await;
            let result = match facts {
                Err(e) => Err(e.message),
                Ok(facts) => {
                    let problems = verify(desired, key, &facts);
                    if problems.is_empty() {
                        Ok(verified(desired, key, &facts))
                    } else {
                        Err(problems.join("; "))
                    }
                }
            };
            results.push((install.id.clone(), result));
        }
        results
    }

    /// Carries out one host change.
    pub async fn execute(
        &self,
        aws: &Aws,
        desired: &Desired,
        change: &Change,
        progress: &dyn Progress,
    ) -> Result<String, Failure> {
        if change.action == Action::Delete {
            // The host goes with its server; nothing is uninstalled.
            return Ok("left on the server".to_owned());
        }
        let what = match change.id.kind {
            Kind::Tljh => "the TLJH install",
            Kind::TljhConfig => "the tljh-config change",
            Kind::System => "the system upgrade",
            Kind::Packages => "the package install",
            _ => {
                return Err(Failure::new(format!(
                    "{} is not a host resource",
                    change.id
                )))
            }
        };
        let key = &change.id.key;
        let report = Some((progress, &change.id));
        self.with_reconnects(aws, desired, key, true, what, report, |s, n| {
            async move { self.act(&s, desired, change, progress, n).await }
        })
        .await
    }

    /// Attempt `attempt` (from 1) of one host change.
    async fn act(
        &self,
        session: &Session,
        desired: &Desired,
        change: &Change,
        progress: &dyn Progress,
        attempt: u32,
    ) -> Result<String, Failure> {
        let again = attempt > 1;
        let settings = &self.settings;
        match change.id.kind {
            Kind::Tljh => {
                let base = &self.base_dir;
                install(session, change, base, settings, progress, again).await
            }
            Kind::TljhConfig if again => {
                // Some writes may have happened: start from what is there.
                let key = &change.id.key;
                let facts = probe(
                    session,
                    &checks(desired, key),
                    self.probe_lock_wait(),
                )
                .await?;
                let change = refreshed(change, &facts);
                // The lost run's reload may still spin on the server
                // until its own timeout (TLJH polls `systemctl is-active`,
                // whose output now goes to a dead pipe); the repeat waits
                // for it on the lock.
                let settings = HostSettings {
                    command: settings.command + settings.reload,
                    ..settings.clone()
                };
                configure(session, &change, &settings, progress).await
            }
            Kind::TljhConfig => {
                configure(session, change, settings, progress).await
            }
            Kind::System => upgrade(session, change, settings, progress).await,
            _ => packages(session, change, settings, progress).await,
        }
    }
}

/// Bytes as GiB with one decimal.
fn gib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / f64::from(1u32 << 30))
}

/// The host layer's live objects from the probe's facts, in the terms of
/// the desired resources (only the keys and packages the spec names).
fn add_lives(
    desired: &Desired,
    key: &str,
    facts: &Facts,
    observed: &mut Observed,
) {
    // The OS is there whether TLJH is or not.
    let system = ResourceId::new(Kind::System, key);
    if desired.get(&system).is_some() {
        if let Some(pending) = facts.upgradable {
            observed.live.insert(
                system,
                Live::new(format!("{pending} upgrade(s) pending"))
                    .attr("upgraded", Value::Bool(pending == 0)),
            );
        }
    }

    let Some(version) = &facts.tljh_version else {
        return;
    };
    let install = ResourceId::new(Kind::Tljh, key);
    let mut live = Live::new(format!("tljh {version}"));
    if desired
        .get(&install)
        .is_some_and(|r| r.attrs.contains_key("version"))
    {
        live = live.attr("version", Value::str(version));
    }
    observed.live.insert(install, live);

    let config = ResourceId::new(Kind::TljhConfig, key);
    if let Some(wanted) = desired.get(&config) {
        let mut live = Live::new("config.yaml");
        for name in wanted.attrs.keys() {
            let found = facts.config.get(name).cloned().unwrap_or(Value::None);
            live = live
                .attr(name, not_loaded(found, facts.unloaded.contains(name)));
        }
        observed.live.insert(config, live);
    }

    let packages = ResourceId::new(Kind::Packages, key);
    if let Some(wanted) = desired.get(&packages) {
        let pip = satisfied(&wanted.items("pip"), &facts.pip);
        let conda = satisfied(&wanted.items("conda"), &facts.conda);
        observed.live.insert(
            packages,
            Live::new("/opt/tljh/user")
                .attr("pip", Value::set(pip))
                .attr("conda", Value::set(conda)),
        );
    }
}

/// The wanted package items the installed packages satisfy: a bare name
/// by any version, `name==version` by that version only.
fn satisfied(
    wanted: &[String],
    installed: &BTreeMap<String, String>,
) -> Vec<String> {
    wanted
        .iter()
        .filter(|item| match item.split_once("==") {
            Some((name, version)) => {
                installed.get(&normalise(name)).map(String::as_str)
                    == Some(version.trim())
            }
            None => installed.contains_key(&normalise(item)),
        })
        .cloned()
        .collect()
}

/// A value written to `config.yaml` that the hub never loaded (its run
/// was stopped before the reload) is not the value in force: shown as
/// such, the plan sets it again and reloads.
fn not_loaded(found: Value, unloaded: bool) -> Value {
    if unloaded && found != Value::None {
        Value::str(format!("{found} (written, not loaded)"))
    } else {
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_satisfied_only_by_their_version() {
        let installed: BTreeMap<String, String> =
            [("hubform-tiny-a".to_owned(), "1.0".to_owned())].into();
        let wanted = vec![
            "hubform_tiny_a".to_owned(),
            "hubform-tiny-a==1.1".to_owned(),
            "absent".to_owned(),
        ];
        assert_eq!(satisfied(&wanted, &installed), ["hubform_tiny_a"]);
    }
}
