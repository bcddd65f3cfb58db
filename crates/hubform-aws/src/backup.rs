//! AMI backups of a workshop's servers: taken on demand (`hubform
//! backup`) and before an instance is replaced or destroyed.
//!
//! A backup is an AMI named `<workshop>-backup-YYYYMMDD-HHMM` (UTC). AMI
//! names are unique per account and Region, so a second backup in the
//! same minute is named `…-HHMM-2`, a third `…-HHMM-3`. The AMI and its
//! snapshots carry `hubform:backup-of=<workshop>`, never the workshop tag
//! `hubform:workshop`: discovery does not see backups and destroy never
//! deletes them.
//!
//! Backups are taken without a reboot, so the hub stays up; a backup of a
//! running server is crash-consistent (like pulling the plug), which the
//! journaling file system of Ubuntu recovers from.

use std::time::{Instant, SystemTime};

use aws_sdk_ec2::types::{Image, ResourceType};
use aws_smithy_types::date_time::{DateTime, Format};
use hubform_core::model::{Kind, ResourceId};
use hubform_core::provider::{Failure, Progress};

use crate::error::{checked, failure, is};
use crate::observe::describe_instances;
use crate::tags::{self, filter, workshop_filter};
use crate::Aws;

/// The workshop a backup belongs to (instead of `hubform:workshop`).
pub const BACKUP_OF: &str = "hubform:backup-of";
/// The spec key of the server a backup was taken of, e.g. `hub`.
pub const BACKUP_SERVER: &str = "hubform:backup-server";
/// The instance a backup was taken of.
pub const BACKUP_INSTANCE: &str = "hubform:backup-instance";

/// How many names a backup tries when others of the minute are taken.
const NAME_ATTEMPTS: usize = 5;
/// Image states from which no backup will come.
const DEAD_STATES: [&str; 4] = ["failed", "error", "invalid", "deregistered"];

/// One AMI backup of a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// The AMI's id.
    pub image_id: String,
    /// The AMI's name, `<workshop>-backup-YYYYMMDD-HHMM[-N]`.
    pub name: String,
    /// The spec key of the server it was taken of, e.g. `hub`.
    pub server: String,
    /// The instance it was taken of.
    pub instance_id: String,
    /// When AWS made it (ISO 8601, as AWS writes it).
    pub created: String,
    /// The AMI's state: `pending`, `available`, `failed`, …
    pub state: String,
    /// The EBS snapshots that hold its volumes.
    pub snapshots: Vec<String>,
}

/// Creates an AMI of `instance_id` (server `server` of the spec) without
/// rebooting it, waits until it is available and tags its snapshots.
pub async fn take(
    aws: &Aws,
    server: &str,
    instance_id: &str,
    progress: &dyn Progress,
) -> Result<Backup, Failure> {
    let id = ResourceId::new(Kind::Instance, server);
    let base = format!("{}-backup-{}", aws.workshop, stamp(&now_utc()));

    let (image_id, name) = create(aws, &base, server, instance_id).await?;
    progress.report(
        &id,
        &format!(
            "backup {image_id} ({name}) of {instance_id} started, waiting \
             for it to be available"
        ),
    );

    let image = wait_available(aws, &id, &image_id, progress).await?;
    let backup = backup_of(&image);
    tag_snapshots(aws, &backup).await?;
    progress.report(&id, &format!("backup {image_id} ({name}) is available"));
    Ok(backup)
}

/// This workshop's backups, newest first.
pub async fn list(aws: &Aws) -> Result<Vec<Backup>, Failure> {
    let out = aws
        .ec2
        .describe_images()
        .owners("self")
        .filters(filter(&format!("tag:{BACKUP_OF}"), &[&aws.workshop]))
        .send()
        .await
        .map_err(|e| failure("DescribeImages", &e))?;
    let mut backups: Vec<Backup> = out.images().iter().map(backup_of).collect();
    newest_first(&mut backups);
    Ok(backups)
}

/// Deletes all but the newest `keep` available backups of each server,
/// and every failed one: deregisters the AMI, then deletes its snapshots.
/// Backups still pending are left alone. Returns what it deleted.
pub async fn prune(aws: &Aws, keep: usize) -> Result<Vec<Backup>, Failure> {
    let backups = list(aws).await?;
    let doomed = surplus(&backups, keep);
    for backup in &doomed {
        delete(aws, backup).await?;
    }
    Ok(doomed)
}

/// The id of server `server`'s live instance, found by its tags; `None`
/// when the workshop has no such instance (not applied yet).
pub async fn instance_of(
    aws: &Aws,
    server: &str,
) -> Result<Option<String>, Failure> {
    let id = ResourceId::new(Kind::Instance, server).to_string();
    let found = describe_instances(
        aws,
        vec![
            workshop_filter(&aws.workshop),
            filter(&format!("tag:{}", tags::ID), &[&id]),
        ],
    )
    .await?;
    Ok(found
        .first()
        .and_then(|i| i.instance_id())
        .map(str::to_owned))
}

/// Starts the AMI under the first free name of `base`, `base-2`, …;
/// returns its id and name.
async fn create(
    aws: &Aws,
    base: &str,
    server: &str,
    instance_id: &str,
) -> Result<(String, String), Failure> {
    let mut taken = names_taken(aws, base).await?;
    for _ in 0..NAME_ATTEMPTS {
        let name = free_name(base, &taken);
        let image_tags = vec![
            tags::tag(BACKUP_OF, &aws.workshop),
            tags::tag(BACKUP_SERVER, server),
            tags::tag(BACKUP_INSTANCE, instance_id),
            tags::tag("Name", &name),
        ];
        // The snapshots are tagged once the image is available: moto
        // answers a snapshot TagSpecification on CreateImage with a 500.
        let out = aws
            .ec2
            .create_image()
            .instance_id(instance_id)
            .name(&name)
            .description(format!(
                "hubform backup of {} server {server} ({instance_id})",
                aws.workshop
            ))
            .no_reboot(true)
            .tag_specifications(tags::spec(ResourceType::Image, image_tags))
            .send()
            .await;
        match out {
            Ok(out) => {
                let image_id = out.image_id().unwrap_or_default().to_owned();
                tracing::debug!(image = %image_id, %name, "backup started");
                return Ok((image_id, name));
            }
            // Another backup took the name since we looked.
            Err(e) if is(&e, &["InvalidAMIName.Duplicate"]) => {
                taken.push(name);
            }
            Err(e) => return Err(failure("CreateImage", &e)),
        }
    }
    Err(Failure::new(format!(
        "cannot find a free AMI name for the backup ({base}-N); wait a \
         minute and run the backup again"
    )))
}

/// The names of this account's AMIs that are `base` or `base-…`.
async fn names_taken(aws: &Aws, base: &str) -> Result<Vec<String>, Failure> {
    let out = aws
        .ec2
        .describe_images()
        .owners("self")
        .filters(filter("name", &[base, &format!("{base}-*")]))
        .send()
        .await
        .map_err(|e| failure("DescribeImages", &e))?;
    Ok(out
        .images()
        .iter()
        .filter_map(|i| i.name().map(str::to_owned))
        .collect())
}

/// The first of `base`, `base-2`, `base-3`, … that is not `taken`.
fn free_name(base: &str, taken: &[String]) -> String {
    let mut name = base.to_owned();
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

/// The current time in UTC as RFC 3339, e.g. `2026-12-04T19:09:45Z`.
fn now_utc() -> String {
    DateTime::from(SystemTime::now())
        .fmt(Format::DateTime)
        .unwrap_or_default()
}

/// `YYYYMMDD-HHMM` of an RFC 3339 time.
fn stamp(rfc3339: &str) -> String {
    let digits = |range: std::ops::Range<usize>| {
        rfc3339.get(range).unwrap_or("0000").to_owned()
    };
    format!(
        "{}{}{}-{}{}",
        digits(0..4),
        digits(5..7),
        digits(8..10),
        digits(11..13),
        digits(14..16)
    )
}

/// Polls the image until it is available; a failed image is an error.
async fn wait_available(
    aws: &Aws,
    id: &ResourceId,
    image_id: &str,
    progress: &dyn Progress,
) -> Result<Image, Failure> {
    let start = Instant::now();
    let mut last_report = Instant::now();
    loop {
        if let Some(image) = image_state(aws, image_id).await? {
            let state = image.state().map(|s| s.as_str()).unwrap_or("");
            if state == "available" {
                return Ok(image);
            }
            if DEAD_STATES.contains(&state) {
                return Err(failed(image_id, state, &image));
            }
        }
        if start.elapsed() >= aws.settings.wait_timeout {
            return Err(Failure::new(format!(
                "timed out after {}s waiting for the backup {image_id} to \
                 be available; AWS goes on making it: `hubform backups` \
                 shows its state (raise HUBFORM_WAIT_TIMEOUT_SECS to wait \
                 longer)",
                aws.settings.wait_timeout.as_secs()
            )));
        }
        if last_report.elapsed().as_secs() >= 10 {
            last_report = Instant::now();
            progress.report(id, &format!("still waiting for {image_id}"));
        }
        tokio::time::sleep(aws.settings.poll).await;
    }
}

/// The image as AWS shows it; `None` while it is not visible yet.
async fn image_state(
    aws: &Aws,
    image_id: &str,
) -> Result<Option<Image>, Failure> {
    let out = aws.ec2.describe_images().image_ids(image_id).send().await;
    match out {
        Ok(out) => Ok(out.images().first().cloned()),
        // Eventual consistency: a new image may not be visible yet.
        Err(e) if is(&e, &["InvalidAMIID.NotFound"]) => Ok(None),
        Err(e) => Err(failure("DescribeImages", &e)),
    }
}

fn failed(image_id: &str, state: &str, image: &Image) -> Failure {
    let reason = image
        .state_reason()
        .and_then(|r| r.message())
        .unwrap_or("AWS gave no reason");
    Failure::new(format!(
        "the backup {image_id} is {state} ({reason}); nothing was changed \
         on the server: run the backup again (`hubform backups \
         --prune N` deletes failed backups)"
    ))
}

/// Tags the backup's snapshots like the backup, so that they are found
/// and billed to it.
async fn tag_snapshots(aws: &Aws, backup: &Backup) -> Result<(), Failure> {
    if backup.snapshots.is_empty() {
        return Ok(());
    }
    aws.ec2
        .create_tags()
        .set_resources(Some(backup.snapshots.clone()))
        .tags(tags::tag(BACKUP_OF, &aws.workshop))
        .tags(tags::tag(BACKUP_SERVER, &backup.server))
        .tags(tags::tag(BACKUP_INSTANCE, &backup.instance_id))
        .tags(tags::tag("Name", &backup.name))
        .send()
        .await
        .map_err(|e| failure("CreateTags", &e))?;
    Ok(())
}

fn backup_of(image: &Image) -> Backup {
    let tag = |key| tags::value(image.tags(), key).unwrap_or("").to_owned();
    Backup {
        image_id: image.image_id().unwrap_or_default().to_owned(),
        name: image.name().unwrap_or_default().to_owned(),
        server: tag(BACKUP_SERVER),
        instance_id: tag(BACKUP_INSTANCE),
        created: image.creation_date().unwrap_or_default().to_owned(),
        state: image
            .state()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        snapshots: image
            .block_device_mappings()
            .iter()
            .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()))
            .map(str::to_owned)
            .collect(),
    }
}

/// Sorts newest first. Two backups made in the same second are ordered
/// by name: `base-2` is newer than `base`, `base-10` than `base-9`.
fn newest_first(backups: &mut [Backup]) {
    backups.sort_by(|a, b| {
        (&b.created, b.name.len(), &b.name).cmp(&(
            &a.created,
            a.name.len(),
            &a.name,
        ))
    });
}

/// What prune deletes of `backups` (newest first): per server, the
/// available ones after the newest `keep`, and the failed ones.
fn surplus(backups: &[Backup], keep: usize) -> Vec<Backup> {
    let mut kept: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut doomed = Vec::new();
    for backup in backups {
        if DEAD_STATES.contains(&backup.state.as_str()) {
            doomed.push(backup.clone());
        } else if backup.state == "available" {
            let count = kept.entry(backup.server.as_str()).or_default();
            if *count < keep {
                *count += 1;
            } else {
                doomed.push(backup.clone());
            }
        }
    }
    doomed
}

/// Deregisters a backup's AMI, then deletes its snapshots (AWS refuses to
/// delete a snapshot while an AMI uses it).
async fn delete(aws: &Aws, backup: &Backup) -> Result<(), Failure> {
    let gone = ["InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"];
    match aws
        .ec2
        .deregister_image()
        .image_id(&backup.image_id)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e) if is(&e, &gone) => {}
        Err(e) => return Err(failure("DeregisterImage", &e)),
    }

    for snapshot in &backup.snapshots {
        let deleted = aws
            .eventually(&["InvalidSnapshot.InUse"], || async {
                checked(
                    "DeleteSnapshot",
                    aws.ec2
                        .delete_snapshot()
                        .snapshot_id(snapshot)
                        .send()
                        .await,
                )
            })
            .await;
        match deleted {
            Ok(_) => {}
            Err(e) if e.is(&["InvalidSnapshot.NotFound"]) => {}
            Err(e) => {
                return Err(Failure::new(format!(
                    "{}; {} is deregistered, delete {snapshot} by hand or \
                     run the prune again",
                    e.failure, backup.image_id
                )))
            }
        }
    }
    tracing::debug!(image = %backup.image_id, "backup deleted");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(name: &str, server: &str, created: &str, state: &str) -> Backup {
        Backup {
            image_id: format!("ami-{name}"),
            name: name.to_owned(),
            server: server.to_owned(),
            instance_id: "i-1".to_owned(),
            created: created.to_owned(),
            state: state.to_owned(),
            snapshots: vec![],
        }
    }

    fn names(backups: &[Backup]) -> Vec<&str> {
        backups.iter().map(|b| b.name.as_str()).collect()
    }

    #[test]
    fn stamp_is_utc_date_and_minute() {
        assert_eq!(stamp("2026-12-04T19:09:45Z"), "20261204-1909");
        assert_eq!(stamp("2026-01-02T03:04:05.678Z"), "20260102-0304");
    }

    #[test]
    fn now_is_rfc3339() {
        let now = now_utc();
        assert_eq!(now.get(4..5), Some("-"), "{now}");
        assert_eq!(now.get(10..11), Some("T"), "{now}");
        assert_eq!(stamp(&now).len(), "YYYYMMDD-HHMM".len());
    }

    #[test]
    fn second_backup_of_a_minute_gets_a_suffix() {
        let base = "w-backup-20261204-1909";
        assert_eq!(free_name(base, &[]), base);
        let taken = vec![base.to_owned(), format!("{base}-2")];
        assert_eq!(free_name(base, &taken), format!("{base}-3"));
    }

    #[test]
    fn same_second_backups_sort_by_suffix() {
        let t = "2026-12-04T19:09:45.000Z";
        let mut list = vec![
            backup("w-backup-20261204-1909-9", "hub", t, "available"),
            backup("w-backup-20261204-1909", "hub", t, "available"),
            backup("w-backup-20261203-1000", "hub", "2026-12-03", "available"),
            backup("w-backup-20261204-1909-10", "hub", t, "available"),
        ];
        newest_first(&mut list);
        assert_eq!(
            names(&list),
            [
                "w-backup-20261204-1909-10",
                "w-backup-20261204-1909-9",
                "w-backup-20261204-1909",
                "w-backup-20261203-1000",
            ]
        );
    }

    #[test]
    fn prune_keeps_the_newest_per_server_and_drops_failed_ones() {
        let list = vec![
            backup("hub-3", "hub", "2026-12-03", "available"),
            backup("lab-2", "lab", "2026-12-02", "available"),
            backup("hub-2", "hub", "2026-12-02", "failed"),
            backup("hub-1b", "hub", "2026-12-01", "pending"),
            backup("hub-1", "hub", "2026-12-01", "available"),
            backup("lab-1", "lab", "2026-12-01", "available"),
        ];
        assert_eq!(names(&surplus(&list, 1)), ["hub-2", "hub-1", "lab-1"]);
        assert_eq!(names(&surplus(&list, 2)), ["hub-2"]);
        assert_eq!(
            names(&surplus(&list, 0)),
            ["hub-3", "lab-2", "hub-2", "hub-1", "lab-1"]
        );
    }
}
