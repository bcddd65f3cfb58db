//! What the host provider runs on a server: the probe, TLJH's install,
//! `tljh-config` writes and reloads, apt upgrades, package installs. Each
//! is one command over SSH with `sudo -n`, a timeout and streamed output.

use std::path::Path;
use std::time::Duration;

use hubform_core::model::ResourceId;
use hubform_core::plan::Change;
use hubform_core::provider::{Failure, Progress};

use crate::probe::{Checks, Facts};
use crate::provider::HostSettings;
use crate::ssh::{RunOptions, Session};
use crate::tljh;

/// Runs `command`, failing on a non-zero exit with the command's own
/// words and the end of its stderr.
pub(crate) async fn run(
    session: &Session,
    what: &str,
    command: &str,
    options: RunOptions<'_>,
) -> Result<String, Failure> {
    let out = session
        .run(command, options)
        .await
        .map_err(|e| Failure::new(format!("{what}: {e}")))?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    let tail: Vec<&str> = out.stderr.lines().rev().take(8).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    let sudo = out.stderr.contains("a password is required")
        || out.stderr.contains("sudo: a terminal is required");
    let hint = if sudo {
        format!(
            "; {} has no passwordless sudo for this user (hubform ran \
             `{command}`): add a NOPASSWD rule as cloud-init does",
            session.host()
        )
    } else {
        String::new()
    };
    Err(Failure::new(format!(
        "{what} on {} exited with {}: {}{hint}",
        session.host(),
        out.status,
        tail.join(" | ")
    )))
}

/// One round trip: the probe script, as root.
pub(crate) async fn probe(
    session: &Session,
    checks: &Checks,
) -> Result<Facts, Failure> {
    let script = checks.script();
    let options = RunOptions {
        stdin: Some(script.as_bytes()),
        ..RunOptions::new(Duration::from_secs(120))
    };
    let out = run(session, "the host probe", "sudo -n sh -s", options).await?;
    Facts::parse(&out)
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
        }
    }
}

pub(crate) async fn install(
    session: &Session,
    change: &Change,
    base_dir: &Path,
    settings: &HostSettings,
    progress: &dyn Progress,
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
    if source.starts_with("https://") || source.starts_with("http://") {
        let command = format!(
            "curl -fsSL {} | sudo -n python3 -{args}",
            tljh::quote(source)
        );
        let options = RunOptions {
            on_line: Some(&print),
            ..RunOptions::new(settings.install)
        };
        run(session, "the TLJH bootstrap", &command, options).await?;
    } else {
        let path = hubform_core::spec::resolve_path(base_dir, source);
        let script = std::fs::read(&path).map_err(|e| {
            Failure::new(format!("cannot read bootstrap file {source}: {e}"))
        })?;
        let command = format!("sudo -n python3 -{args}");
        let options = RunOptions {
            stdin: Some(&script),
            on_line: Some(&print),
            ..RunOptions::new(settings.install)
        };
        run(session, "the TLJH bootstrap", &command, options).await?;
    }
    Ok(wanted.text("version").unwrap_or("latest").to_owned())
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
        run(session, "tljh-config", "sudo -n sh -s", options).await?;
    }

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
            ..RunOptions::new(settings.reload + Duration::from_secs(10))
        };
        let out = session
            .run(&command, options)
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
    run(session, "apt-get upgrade", command, options).await?;
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
        run(session, &format!("{manager} install"), &command, options).await?;
        done.push(format!("{manager}: {}", items.join(" ")));
    }
    Ok(done.join("; "))
}
