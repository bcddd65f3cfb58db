//! `hubform backup SPEC` and `hubform backups SPEC`.

use std::process::ExitCode;

use hubform_aws::backup::{self, Backup};
use hubform_core::model::Kind;

use crate::cli::{BackupArgs, BackupsArgs};
use crate::commands::CliError;
use crate::session::{self, Stderr};

/// Takes an AMI backup of each server of the spec (or the one named) and
/// prints its id and name.
pub async fn run(args: &BackupArgs) -> Result<ExitCode, CliError> {
    let session = session::open(&args.aws).await?;
    let servers = chosen_servers(&session.desired, args.server.as_deref())?;
    let aws = &session.stack.aws;

    // Find every instance first, so that a missing one fails before any
    // backup starts.
    let mut instances = Vec::new();
    for server in servers {
        let Some(instance_id) = backup::instance_of(aws, &server).await? else {
            return Err(CliError::Other(format!(
                "instance.{server} not found in AWS: nothing to back up; \
                 run `hubform apply` first"
            )));
        };
        instances.push((server, instance_id));
    }

    // An apply meanwhile could replace or stop the instance mid-backup.
    let lock = crate::lock::hold(&session, "backup").await?;
    let mut result = Ok(());
    for (server, instance_id) in instances {
        match backup::take(aws, &server, &instance_id, &Stderr::open()).await {
            Ok(taken) => {
                outln!("{server}: {} {}", taken.image_id, taken.name)
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    lock.release().await;
    result?;
    Ok(ExitCode::SUCCESS)
}

/// The spec's server keys, or only `wanted` when it is one of them.
fn chosen_servers(
    desired: &hubform_core::graph::Desired,
    wanted: Option<&str>,
) -> Result<Vec<String>, CliError> {
    let all: Vec<String> = desired
        .of_kind(Kind::Instance)
        .map(|r| r.id.key.clone())
        .collect();
    match wanted {
        None if all.is_empty() => Err(CliError::Other(
            "the spec declares no servers: nothing to back up".to_owned(),
        )),
        None => Ok(all),
        Some(key) if all.iter().any(|s| s == key) => Ok(vec![key.to_owned()]),
        Some(key) => Err(CliError::Other(format!(
            "--server {key}: the spec has no such server; its servers: {}",
            all.join(", ")
        ))),
    }
}

/// Lists the workshop's backups; with `--prune N` first deletes all but
/// the newest N of each server.
pub async fn list(args: &BackupsArgs) -> Result<ExitCode, CliError> {
    if args.prune == Some(0) {
        return Err(CliError::Other(
            "--prune 0 would delete every backup; keep at least one \
             (--prune 1), or deregister the AMIs and delete their \
             snapshots in the EC2 console"
                .to_owned(),
        ));
    }
    let session = session::open(&args.aws).await?;
    let aws = &session.stack.aws;

    if let Some(keep) = args.prune {
        // Not while a replace or destroy takes the backup it would keep.
        let lock = crate::lock::hold(&session, "backups --prune").await?;
        let pruned = backup::prune(aws, keep).await;
        lock.release().await;
        let deleted = pruned?;
        for b in &deleted {
            outln!(
                "Deleted {} {} ({})",
                b.image_id,
                b.name,
                snapshot_words(&b.snapshots)
            );
        }
        if deleted.is_empty() {
            outln!("Nothing to prune.");
        }
    }

    let backups = backup::list(aws).await?;
    if backups.is_empty() {
        outln!("No backups of {}.", session.desired.workshop);
    } else {
        out!("{}", table(&backups));
    }
    Ok(ExitCode::SUCCESS)
}

fn snapshot_words(snapshots: &[String]) -> String {
    if snapshots.is_empty() {
        "no snapshots".to_owned()
    } else {
        format!("and {}", snapshots.join(", "))
    }
}

/// Backups as an aligned table with a header line.
fn table(backups: &[Backup]) -> String {
    let header = ["SERVER", "AMI", "NAME", "CREATED", "STATE", "SNAPSHOTS"];
    let mut rows = vec![header.map(str::to_owned).to_vec()];
    for b in backups {
        rows.push(vec![
            b.server.clone(),
            b.image_id.clone(),
            b.name.clone(),
            b.created.clone(),
            b.state.clone(),
            b.snapshots.len().to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let b = Backup {
            image_id: "ami-1".into(),
            name: "w-backup-20261204-1909".into(),
            server: "hub".into(),
            instance_id: "i-1".into(),
            created: "2026-12-04T19:09:45.000Z".into(),
            state: "available".into(),
            snapshots: vec!["snap-1".into()],
        };
        let text = table(&[b]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let words: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            words,
            [
                "hub",
                "ami-1",
                "w-backup-20261204-1909",
                "2026-12-04T19:09:45.000Z",
                "available",
                "1"
            ]
        );
        // Each value starts under its heading.
        for (heading, value) in ["AMI", "CREATED", "STATE", "SNAPSHOTS"]
            .iter()
            .zip(["ami-1", "2026-", "available", "1"])
        {
            let at = lines[0].find(heading).expect("the heading");
            assert!(lines[1][at..].starts_with(value), "{text}");
        }
    }
}
