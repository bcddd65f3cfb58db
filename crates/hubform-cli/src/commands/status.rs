//! `hubform status SPEC`: each server's instance as AWS reports it and,
//! when it runs, its host over SSH: disk, memory, TLJH's services and
//! the last lines of their logs.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use hubform_core::model::{Kind, Live, Observed, ResourceId, Value};
use hubform_core::provider::Provider;
use hubform_host::provider::{Host, HostSettings};
use hubform_host::status::{Disk, HostStatus, Log};

use crate::cli::AwsArgs;
use crate::commands::CliError;
use crate::session::{self, Session};

/// How many lines of each log to show.
const LOG_LINES: u32 = 10;

/// How long to retry an SSH connection, unless `HUBFORM_SSH_RETRY_SECS`
/// says otherwise: status asks about a server that should be up, and
/// apply's two minutes for a booting one would only delay the answer.
const SSH_RETRY: Duration = Duration::from_secs(5);

pub async fn run(args: &AwsArgs) -> Result<ExitCode, CliError> {
    let mut session = session::open(args).await?;
    session.stack.host = status_host(&session, args)?;
    eprintln!(
        "hubform: workshop {} in {}",
        session.desired.workshop, session.desired.region
    );
    let observed = session.stack.aws.observe(&session.desired).await?;

    let mut problems = Vec::new();
    for server in session.desired.of_kind(Kind::Instance) {
        let (text, problem) =
            server_status(&session, &observed, &server.id).await;
        out!("{text}");
        problems.extend(problem);
    }
    if problems.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(CliError::Other(problems.join("\n")))
    }
}

/// The host provider with status's shorter SSH retry.
fn status_host(session: &Session, args: &AwsArgs) -> Result<Host, CliError> {
    let loopback_only = hubform_aws::connect::loopback_only_from_env()?;
    let mut settings = HostSettings::from_env(loopback_only);
    if std::env::var_os("HUBFORM_SSH_RETRY_SECS").is_none() {
        settings.ssh.connect_retries_for = SSH_RETRY;
    }
    Ok(Host::new(
        session.loaded.dir.clone(),
        args.ssh_endpoint.clone(),
        settings,
    ))
}

/// One server's status as text, and what kept it from being read whole.
async fn server_status(
    session: &Session,
    observed: &Observed,
    instance: &ResourceId,
) -> (String, Option<String>) {
    let key = &instance.key;
    let mut out = String::new();
    let Some(live) = observed.live.get(instance) else {
        let _ = writeln!(out, "{key}: no instance in AWS\n");
        let problem =
            format!("{instance} not found in AWS; run `hubform apply` first");
        return (out, Some(problem));
    };
    let state = live.get_extra("state").unwrap_or("unknown");
    let _ = writeln!(
        out,
        "{key}: instance {} ({}), {state}, {}",
        live.cloud_id,
        match live.attrs.get("type") {
            Some(Value::Str(t)) => t.as_str(),
            _ => "?",
        },
        address(observed, key, live)
    );

    let has_host = session
        .desired
        .get(&ResourceId::new(Kind::Tljh, key))
        .is_some();
    let mut problem = None;
    if !has_host {
        out.push_str(
            "  host: not read (the spec has no tljh section for this \
             server, so hubform does not log in to it)\n",
        );
    } else if state != "running" {
        let _ =
            writeln!(out, "  host: not read over SSH: the instance is {state}");
    } else {
        let stack = &session.stack;
        let read = stack
            .host
            .status(&stack.aws, &session.desired, key, LOG_LINES)
            .await;
        match read {
            Ok(status) => host_text(&mut out, &status),
            Err(e) => {
                let _ = writeln!(out, "  host: unreachable over SSH: {e}");
                problem = Some(format!(
                    "the host of server {key} could not be read over SSH: {e}"
                ));
            }
        }
    }
    out.push('\n');
    (out, problem)
}

/// The Elastic IP, else the public address, as words.
fn address(observed: &Observed, key: &str, live: &Live) -> String {
    let eip = observed
        .live
        .get(&ResourceId::new(Kind::ElasticIp, key))
        .and_then(|l| l.get_extra("public_ip"))
        .filter(|ip| !ip.is_empty());
    if let Some(ip) = eip {
        return format!("Elastic IP {ip}");
    }
    match live.get_extra("public_ip").filter(|ip| !ip.is_empty()) {
        Some(ip) => format!("public IP {ip} (no Elastic IP)"),
        None => "no public address".to_owned(),
    }
}

/// Disk, memory, services and logs, indented under the server's line.
fn host_text(out: &mut String, status: &HostStatus) {
    match status.disk {
        Some(d) => out.push_str(&disk_text(&d)),
        None => {
            out.push_str("  disk /:     not available (df printed nothing)\n")
        }
    }
    match status.memory {
        Some(m) => {
            let percent = (m.used * 100).checked_div(m.total).unwrap_or(0);
            let _ = writeln!(
                out,
                "  memory:     {} used of {} ({percent}%)",
                size(m.used),
                size(m.total)
            );
        }
        None => out.push_str(
            "  memory:     not available (/proc/meminfo unreadable)\n",
        ),
    }
    for (service, state) in &status.services {
        let state = match state.strip_prefix('?') {
            Some(why) => format!("unknown ({why})"),
            None => printable(state),
        };
        let _ = writeln!(out, "  {:<11} {state}", format!("{service}:"));
    }
    for log in &status.logs {
        log_text(out, log);
    }
}

fn log_text(out: &mut String, log: &Log) {
    let service = &log.service;
    match &log.lines {
        Err(why) => {
            let _ = writeln!(
                out,
                "  {service} log: not available ({})",
                printable(why)
            );
        }
        Ok(lines) if lines.is_empty() => {
            let _ = writeln!(out, "  {service} log: no entries");
        }
        Ok(lines) => {
            let _ =
                writeln!(out, "  {service} log, last {} lines:", lines.len());
            for line in lines {
                let _ = writeln!(out, "    {}", printable(line));
            }
        }
    }
}

/// The disk's line, and what to do when it is nearly full: a full root
/// file system stops the hub, package installs and users' saves.
fn disk_text(d: &Disk) -> String {
    let mut out = format!(
        "  disk /:     {} used of {} ({}%)\n",
        size(d.used),
        size(d.size),
        d.percent
    );
    if d.percent >= DISK_NEARLY_FULL {
        out.push_str(
            "  disk / is nearly full: raise root_volume.size_gb in the spec \
             and run `hubform apply`, which grows the volume and the file \
             system in place\n",
        );
    }
    out
}

/// The used share of the root file system, in percent, from which status
/// says to grow it.
const DISK_NEARLY_FULL: u64 = 90;

/// Bytes as GiB with one decimal, or MiB below one GiB.
fn size(bytes: u64) -> String {
    const GIB: u64 = 1 << 30;
    if bytes >= GIB {
        format!("{:.1} GiB", bytes as f64 / GIB as f64)
    } else {
        format!("{} MiB", bytes >> 20)
    }
}

/// A line from the host with control characters (terminal escapes
/// among them) shown as escapes, so a log cannot rewrite the screen.
fn printable(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        if c.is_control() && c != '\t' {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_gib_or_mib() {
        assert_eq!(size(20 << 30), "20.0 GiB");
        assert_eq!(size((3 << 30) + (1 << 29)), "3.5 GiB");
        assert_eq!(size(512 << 20), "512 MiB");
    }

    #[test]
    fn a_nearly_full_disk_says_how_to_grow_it() {
        let disk = |percent| Disk {
            used: 9 << 30,
            size: 10 << 30,
            percent,
        };
        assert!(!disk_text(&disk(89)).contains("nearly full"));
        let full = disk_text(&disk(90));
        assert!(full.starts_with("  disk /:     9.0 GiB used of 10.0 GiB"));
        assert!(full.contains("raise root_volume.size_gb"), "{full}");
    }

    #[test]
    fn terminal_escapes_in_logs_are_shown_not_run() {
        assert_eq!(printable("a\u{1b}[31mred\tb"), "a\\u{1b}[31mred\tb");
        assert_eq!(printable("plain"), "plain");
    }
}
