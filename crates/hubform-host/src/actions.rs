//! What the host provider runs on a server: the probe, TLJH's install,
//! `tljh-config` writes and reloads, apt upgrades, package installs. Each
//! is one command over SSH with `sudo -n`, a timeout and streamed output.
//!
//! Every command that changes the server runs under one lock on the
//! server ([`LOCK`]). When an SSH connection is lost, the command it ran
//! may still be running; the provider connects again and repeats the
//! action, and the lock makes the repeat wait until the first run has
//! ended instead of racing it.

use std::path::Path;
use std::time::Duration;

use hubform_core::model::ResourceId;
use hubform_core::plan::{Action, Change};
use hubform_core::provider::{Failure, Progress};

use crate::probe::{Checks, Facts};
use crate::provider::HostSettings;
use crate::ssh::{RunOptions, Session};
use crate::tljh;

/// The lock file of changing commands, in the login user's home so that
/// no other user can hold it. `flock` ends with the process holding it,
/// so a reboot frees it.
pub(crate) const LOCK: &str = "\"$HOME/.hubform.lock\"";

/// True on the server when a TLJH install ran to its end: the installer
/// links `tljh-config` into /usr/bin as its last step.
const INSTALLED: &str =
    "[ -x /opt/tljh/hub/bin/python3 ] && [ -e /usr/bin/tljh-config ]";

/// `command` run while holding [`LOCK`].
pub(crate) fn locked(command: &str) -> String {
    format!("flock {LOCK} sh -c {}", tljh::quote(command))
}

/// Runs `command` holding the server's [`LOCK`], failing on a non-zero
/// exit with the command's own words and the end of its stderr.
pub(crate) async fn run_locked(
    session: &Session,
    what: &str,
    command: &str,
    options: RunOptions<'_>,
) -> Result<String, Failure> {
    let options = RunOptions {
        label: Some(options.label.unwrap_or(command)),
        ..options
    };
    run_shown(session, what, &locked(command), command, options).await
}

async fn run_shown(
    session: &Session,
    what: &str,
    command: &str,
    shown: &str,
    options: RunOptions<'_>,
) -> Result<String, Failure> {
    let out = session
        .run(command, options)
        .await
        .map_err(|e| Failure::new(format!("{what}: {e}")))?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    Err(failed(session, what, shown, &out))
}

/// Why `shown` exited non-zero: the end of its stderr, and what to do
/// when sudo wants a password.
fn failed(
    session: &Session,
    what: &str,
    shown: &str,
    out: &crate::ssh::Output,
) -> Failure {
    let tail: Vec<&str> = out.stderr.lines().rev().take(8).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    let sudo = out.stderr.contains("a password is required")
        || out.stderr.contains("sudo: a terminal is required");
    let hint = if sudo {
        format!(
            "; {} has no passwordless sudo for this user (hubform ran \
             `{shown}`): add a NOPASSWD rule as cloud-init does",
            session.host()
        )
    } else {
        String::new()
    };
    Failure::new(format!(
        "{what} on {} exited with {}: {}{hint}",
        session.host(),
        out.status,
        tail.join(" | ")
    ))
}

/// The exit code of the probe's `flock` when the server's lock stayed
/// taken for the whole wait.
const LOCK_BUSY: i32 = 75;

/// One round trip: the probe script, as root, under the server's lock (a
/// killed run's command may still be writing there, and its half-done
/// work must not be read as done). It waits up to `lock_wait` for a
/// command holding the lock to end.
pub(crate) async fn probe(
    session: &Session,
    checks: &Checks,
    lock_wait: Duration,
) -> Result<Facts, Failure> {
    let script = checks.script();
    let wait = lock_wait.as_secs().max(1);
    let command =
        format!("flock -w {wait} -E {LOCK_BUSY} {LOCK} sudo -n sh -s");
    let options = RunOptions {
        stdin: Some(script.as_bytes()),
        label: Some("sudo -n sh -s"),
        ..RunOptions::new(lock_wait + Duration::from_secs(120))
    };
    let out = session
        .run(&command, options)
        .await
        .map_err(|e| Failure::new(format!("the host probe: {e}")))?;
    if out.status == crate::ssh::Exit::Code(LOCK_BUSY) {
        return Err(Failure::new(format!(
            "{}: another hubform command has been running on the server for \
             over {wait} s (a run that was stopped midway leaves its \
             command to finish there); wait for it to end, or look at \
             `ps -ef` on the server, then run hubform again",
            session.host()
        )));
    }
    if !out.status.success() {
        return Err(failed(session, "the host probe", "sudo -n sh -s", &out));
    }
    Facts::parse(&out.stdout)
        .map_err(|e| Failure::new(format!("{}: {e}", session.host())))
}

pub(crate) fn lines_to<'a>(
    progress: &'a dyn Progress,
    id: &'a ResourceId,
) -> impl Fn(&str) + Sync + 'a {
    move |line: &str| {
        let line = line.trim();
        if !line.is_empty() {
            progress.report(id, line);
            hubform_core::pause::pause_point(&format!("during-{}", id.kind));
        }
    }
}

/// Runs TLJH's bootstrap. `again` says that an earlier attempt lost its
/// connection: a fresh install that has since reached its end (the
/// earlier run went on without hubform) is then not run a second time.
pub(crate) async fn install(
    session: &Session,
    change: &Change,
    base_dir: &Path,
    settings: &HostSettings,
    progress: &dyn Progress,
    again: bool,
) -> Result<String, Failure> {
    let wanted = change
        .desired
        .as_ref()
        .ok_or_else(|| Failure::new("internal: no desired tljh"))?;
    let mut args = String::new();
    if let Some(version) = wanted.text("version") {
        args = format!(" --version {}", tljh::quote(version));
    }
    // TLJH's --admin replaces users.admin: admins are tljh-config's job.
    let source = wanted
        .text("bootstrap")
        .unwrap_or("https://tljh.jupyter.org/bootstrap.py");
    let print = lines_to(progress, &change.id);
    let script;
    let (command, stdin) = if source.starts_with("https://")
        || source.starts_with("http://")
    {
        let command = format!(
            "curl -fsSL {} | sudo -n python3 -{args}",
            tljh::quote(source)
        );
        (command, None)
    } else {
        let path = hubform_core::spec::resolve_path(base_dir, source);
        script = std::fs::read(&path).map_err(|e| {
            Failure::new(format!("cannot read bootstrap file {source}: {e}"))
        })?;
        (format!("sudo -n python3 -{args}"), Some(&script[..]))
    };
    // An upgrade may always run again; a fresh install only until it is
    // complete.
    let guarded = if again && change.action == Action::Create {
        format!(
            "if {INSTALLED}; then echo 'TLJH is installed (by the run whose \
             connection was lost)'; else {command}; fi"
        )
    } else {
        command.clone()
    };
    let options = RunOptions {
        stdin,
        on_line: Some(&print),
        label: Some(&command),
        ..RunOptions::new(settings.install)
    };
    run_locked(session, "the TLJH bootstrap", &guarded, options).await?;
    hubform_core::pause::pause_point("after-tljh-install");
    Ok(wanted.text("version").unwrap_or("latest").to_owned())
}

/// `change` with each key's old value as `facts` found it: after a lost
/// connection some of the writes may have happened, and the lines that
/// write a list (`unset`, then `add-item` per item) depend on what is
/// there.
pub(crate) fn refreshed(change: &Change, facts: &Facts) -> Change {
    let mut change = change.clone();
    for diff in &mut change.diffs {
        diff.old = facts.config.get(&diff.name).cloned();
    }
    change
}

pub(crate) async fn configure(
    session: &Session,
    change: &Change,
    settings: &HostSettings,
    progress: &dyn Progress,
) -> Result<String, Failure> {
    let script = tljh::config_script(change);
    if !script.is_empty() {
        let options = RunOptions {
            stdin: Some(script.as_bytes()),
            ..RunOptions::new(settings.command)
        };
        run_locked(session, "tljh-config", "sudo -n sh -s", options).await?;
    }
    hubform_core::pause::pause_point("after-tljh-config-set");

    let reloads = tljh::reloads(change.diffs.iter().map(|d| d.name.as_str()));
    let secs = settings.reload.as_secs().max(1);
    let print = lines_to(progress, &change.id);
    let mut done = Vec::new();
    for (needed, what) in [(reloads.proxy, "proxy"), (reloads.hub, "hub")] {
        if !needed {
            continue;
        }
        // `reload hub` has no timeout of its own and can hang forever.
        let command = format!(
            "sudo -n timeout {secs} {} reload {what}",
            tljh::TLJH_CONFIG
        );
        let options = RunOptions {
            on_line: Some(&print),
            label: Some(&command),
            ..RunOptions::new(settings.reload + Duration::from_secs(10))
        };
        let out = session
            .run(&locked(&command), options)
            .await
            .map_err(|e| Failure::new(format!("reload {what}: {e}")))?;
        if out.status != crate::ssh::Exit::Code(0) {
            let timed_out = out.status == crate::ssh::Exit::Code(124);
            let why = if timed_out {
                format!(
                    "did not finish in {secs}s (TLJH's reload waits for the \
                     hub forever); look at `journalctl -u jupyterhub` on \
                     the server, or raise HUBFORM_RELOAD_TIMEOUT_SECS"
                )
            } else {
                let tail: Vec<&str> =
                    out.stderr.lines().rev().take(3).collect();
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            };
            return Err(Failure::new(format!(
                "tljh-config reload {what} on {}: {why}",
                session.host()
            )));
        }
        done.push(format!("reloaded {what}"));
    }
    if !script.is_empty() {
        // Everything written is loaded now.
        let command = format!("sudo -n rm -f {}", tljh::UNLOADED);
        let options = RunOptions::new(settings.command);
        run_locked(session, "tljh-config", &command, options).await?;
    }
    Ok(done.join(", "))
}

/// `apt-get update` and `upgrade`, non-interactive, keeping changed
/// configuration files.
pub(crate) async fn upgrade(
    session: &Session,
    change: &Change,
    settings: &HostSettings,
    progress: &dyn Progress,
) -> Result<String, Failure> {
    let print = lines_to(progress, &change.id);
    let command = "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get -q \
                   update && sudo -n env DEBIAN_FRONTEND=noninteractive \
                   apt-get -y -q -o Dpkg::Options::=--force-confold upgrade";
    let options = RunOptions {
        on_line: Some(&print),
        ..RunOptions::new(settings.install)
    };
    run_locked(session, "apt-get upgrade", command, options).await?;
    Ok("packages upgraded".to_owned())
}

pub(crate) async fn packages(
    session: &Session,
    change: &Change,
    settings: &HostSettings,
    progress: &dyn Progress,
) -> Result<String, Failure> {
    let print = lines_to(progress, &change.id);
    let mut done = Vec::new();
    for manager in ["pip", "conda"] {
        let items = tljh::missing(change, manager);
        if items.is_empty() {
            continue;
        }
        let command = if manager == "pip" {
            tljh::pip_install(&items)
        } else {
            tljh::conda_install(&items)
        };
        let options = RunOptions {
            on_line: Some(&print),
            ..RunOptions::new(settings.packages)
        };
        let what = format!("{manager} install");
        run_locked(session, &what, &command, options).await?;
        done.push(format!("{manager}: {}", items.join(" ")));
        hubform_core::pause::pause_point(&format!("after-{manager}-install"));
    }
    Ok(done.join("; "))
}
