//! What `hubform status` reads on a server: disk and memory use, the
//! states of TLJH's services and the last lines of their logs, in one
//! SSH round trip.
//!
//! The script runs as the login user and uses `sudo -n` only where it
//! works, so a host without passwordless sudo still shows what a user
//! may see. On a real TLJH server the services are systemd units and
//! their logs are in the journal; a missing `systemctl` or `journalctl`
//! is reported in place of the figure, never as a failure.
//!
//! ```
//! use hubform_host::status::HostStatus;
//!
//! let status = HostStatus::parse(
//!     "==hubform:disk==\n/dev/root 20000 5000 15000 25% /\n\
//!      ==hubform:services==\njupyterhub=active\n==hubform:end==\n",
//! )
//! .unwrap();
//! assert_eq!(status.disk.unwrap().percent, 25);
//! assert_eq!(status.services[0].1, "active");
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use hubform_aws::Aws;
use hubform_core::graph::Desired;
use hubform_core::provider::Failure;

use crate::provider::Host;
use crate::ssh::RunOptions;

/// The services of a TLJH server, in the order status shows them.
pub const SERVICES: [&str; 2] = ["jupyterhub", "traefik"];

/// The longest the status script may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The script (`sh -s`, as the login user), with `HUBFORM_LINES` set in
/// front.
/// Log lines are printed behind a `|` so that no line of a log can pass
/// for a section marker.
const SCRIPT: &str = r#"
section() { printf '\n==hubform:%s==\n' "$1"; }
if sudo -n true >/dev/null 2>&1; then ROOT="sudo -n"; else ROOT=""; fi
section disk
df -P -k / 2>/dev/null | tail -n 1
section memory
grep -E '^(MemTotal|MemAvailable):' /proc/meminfo 2>/dev/null
section services
for s in jupyterhub traefik; do
  if command -v systemctl >/dev/null 2>&1; then
    state=$(timeout 10 systemctl is-active "$s" 2>/dev/null | head -n 1)
    printf '%s=%s\n' "$s" "${state:-unknown}"
  else
    printf '%s=?systemctl: not found\n' "$s"
  fi
done
for s in jupyterhub traefik; do
  section "log $s"
  if ! command -v journalctl >/dev/null 2>&1; then
    echo "error=journalctl: not found"
    continue
  fi
  out=$(timeout 20 $ROOT journalctl -u "$s" -n "$HUBFORM_LINES" --no-pager -q 2>&1)
  rc=$?
  if [ "$rc" -ne 0 ]; then
    why=$(printf '%s\n' "$out" | head -n 1 | cut -c1-200)
    printf 'error=journalctl: %s (exit %s)\n' "${why:-no output}" "$rc"
    continue
  fi
  printf '%s\n' "$out" | grep -v '^-- No entries --$' | sed 's/^/|/'
done
section end
exit 0
"#;

/// The root file system's use, as `df` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disk {
    /// Used bytes.
    pub used: u64,
    /// Size in bytes.
    pub size: u64,
    /// Used share in percent, as `df` rounds it.
    pub percent: u64,
}

/// Memory use: total less what is available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// Used bytes.
    pub used: u64,
    /// Total bytes.
    pub total: u64,
}

/// The last lines of one service's log, or why they cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    /// The service.
    pub service: String,
    /// Its last lines, oldest first, or why there are none.
    pub lines: Result<Vec<String>, String>,
}

/// What the status script found on a host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostStatus {
    /// The root file system; `None` when `df` printed nothing usable.
    pub disk: Option<Disk>,
    /// Memory; `None` when `/proc/meminfo` could not be read.
    pub memory: Option<Memory>,
    /// Each service and its state (`active`, `inactive`, `failed`, …),
    /// or `?` and why it is unknown.
    pub services: Vec<(String, String)>,
    /// The logs of the services.
    pub logs: Vec<Log>,
}

/// The status script's output is not what it prints.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The output ends before the last section: the script was cut off.
    #[error("the status script's output is incomplete (no end marker)")]
    Incomplete,
}

impl HostStatus {
    /// Parses the status script's output.
    pub fn parse(output: &str) -> Result<HostStatus, StatusError> {
        let sections = sections(output);
        if !sections.contains_key("end") {
            return Err(StatusError::Incomplete);
        }
        let text = |name: &str| {
            sections.get(name).map_or(&[][..], |lines| lines.as_slice())
        };

        let services = text("services")
            .iter()
            .filter_map(|l| l.split_once('='))
            .map(|(name, state)| (name.to_owned(), state.trim().to_owned()))
            .collect();
        let logs = SERVICES
            .iter()
            .map(|service| Log {
                service: (*service).to_owned(),
                lines: log_lines(text(&format!("log {service}"))),
            })
            .collect();
        Ok(HostStatus {
            disk: text("disk").first().and_then(|l| disk(l)),
            memory: memory(text("memory")),
            services,
            logs,
        })
    }
}

/// The output's lines by section name.
fn sections(output: &str) -> BTreeMap<String, Vec<String>> {
    let mut sections: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in output.lines() {
        let marker = line
            .strip_prefix("==hubform:")
            .and_then(|rest| rest.strip_suffix("=="));
        if let Some(name) = marker {
            sections.entry(name.to_owned()).or_default();
            current = Some(name.to_owned());
        } else if let Some(name) = &current {
            if !line.trim().is_empty() || line.starts_with('|') {
                sections.entry(name.clone()).or_default().push(line.into());
            }
        }
    }
    sections
}

/// A log section: `|`-prefixed lines, or `error=` and why.
fn log_lines(section: &[String]) -> Result<Vec<String>, String> {
    if let Some(why) = section.iter().find_map(|l| l.strip_prefix("error=")) {
        return Err(why.trim().to_owned());
    }
    Ok(section
        .iter()
        .filter_map(|l| l.strip_prefix('|'))
        .map(str::to_owned)
        .collect())
}

/// `df -P -k`'s line: filesystem, size, used, available, capacity, mount.
fn disk(line: &str) -> Option<Disk> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [_, size, used, _, percent, ..] = fields[..] else {
        return None;
    };
    Some(Disk {
        used: used.parse::<u64>().ok()? * 1024,
        size: size.parse::<u64>().ok()? * 1024,
        percent: percent.trim_end_matches('%').parse().ok()?,
    })
}

/// `MemTotal:` and `MemAvailable:` lines of `/proc/meminfo`, in kB.
fn memory(lines: &[String]) -> Option<Memory> {
    let kib = |name: &str| -> Option<u64> {
        let line = lines.iter().find(|l| l.starts_with(name))?;
        let value = line.split_once(':')?.1.trim();
        value.trim_end_matches("kB").trim().parse().ok()
    };
    let total = kib("MemTotal")? * 1024;
    let available = kib("MemAvailable")? * 1024;
    Some(Memory {
        used: total.saturating_sub(available),
        total,
    })
}

impl Host {
    /// Reads server `key`'s status over SSH: one connection (the host key
    /// checked against its pin, trusted without pinning on first
    /// contact), one command. `lines` is how many log lines to show.
    ///
    /// The AWS provider must have observed the workshop first: the
    /// connection reads the server's address and pin through it.
    pub async fn status(
        &self,
        aws: &Aws,
        desired: &Desired,
        key: &str,
        lines: u32,
    ) -> Result<HostStatus, Failure> {
        let session = self.session(aws, desired, key, false).await?;
        let script = format!("HUBFORM_LINES={lines}\n{SCRIPT}");
        let options = RunOptions {
            stdin: Some(script.as_bytes()),
            ..RunOptions::new(TIMEOUT)
        };
        let out = session
            .run("sh -s", options)
            .await
            .map_err(|e| Failure::new(format!("the status script: {e}")))?;
        HostStatus::parse(&out.stdout).map_err(|e| {
            let why = out.stderr.lines().last().unwrap_or("").trim();
            Failure::new(format!("{}: {e} {why}", session.host()))
        })
    }

    /// Connects to server `key` and logs in (the host key checked against
    /// its pin, trusted without pinning on first contact), and returns
    /// the `address:port` reached: `hubform doctor`'s SSH check. The AWS
    /// provider must have observed the workshop first.
    pub async fn reach(
        &self,
        aws: &Aws,
        desired: &Desired,
        key: &str,
    ) -> Result<String, Failure> {
        let session = self.session(aws, desired, key, false).await?;
        Ok(session.host().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\n==hubform:disk==\n/dev/root 20000 5000 15000 \
        25% /\n==hubform:memory==\nMemTotal: 16000 kB\nMemAvailable: 12000 \
        kB\n==hubform:services==\njupyterhub=active\ntraefik=?systemctl: \
        not found\n==hubform:log jupyterhub==\n|[I] started\n|\n\
        |==hubform:end==\n==hubform:log traefik==\nerror=journalctl: not \
        found\n==hubform:end==\n";

    #[test]
    fn status_output_parses_into_figures_states_and_logs() {
        let status = HostStatus::parse(OUTPUT).expect("parses");
        assert_eq!(
            status.disk,
            Some(Disk {
                used: 5000 * 1024,
                size: 20000 * 1024,
                percent: 25
            })
        );
        assert_eq!(
            status.memory,
            Some(Memory {
                used: 4000 * 1024,
                total: 16000 * 1024
            })
        );
        assert_eq!(status.services[1].1, "?systemctl: not found");
        assert_eq!(
            status.logs[0].lines,
            Ok(vec![
                "[I] started".to_owned(),
                String::new(),
                "==hubform:end==".to_owned()
            ])
        );
        assert_eq!(
            status.logs[1].lines,
            Err("journalctl: not found".to_owned())
        );
    }

    #[test]
    fn a_cut_off_status_is_an_error() {
        let cut = OUTPUT.replace("\n==hubform:end==\n", "\n");
        assert!(HostStatus::parse(&cut).is_err());
    }

    #[test]
    fn missing_figures_are_none() {
        let status =
            HostStatus::parse("==hubform:disk==\n==hubform:end==\n").unwrap();
        assert_eq!(status.disk, None);
        assert_eq!(status.memory, None);
        assert!(status.services.is_empty());
    }
}
