//! AMI backups: `hubform backup` and `hubform backups [--prune N]`
//! against the example workshop, checked in moto: the AMI and its
//! snapshots, their tags, and what prune deletes.

use aws_sdk_ec2::types::{Filter, Image};

use crate::common::{self, example, hubform, spec_text, write_spec, Run};
use crate::drift::{deployed, tag, Deployed, WORKSHOP};
use crate::world::World;

/// The smaller example moved to the big one's Region: a second workshop
/// whose objects sit beside the first one's.
fn second_workshop(world: &World) -> std::path::PathBuf {
    let text = spec_text(common::SMALL)
        .replace("region: eu-central-1", "region: ap-south-1");
    write_spec(world, "second.yaml", &text)
}

const SECOND: &str = "python-intro-bishkek";

fn path(spec: &std::path::Path) -> &str {
    spec.to_str().expect("a UTF-8 path")
}

/// `hubform backup SPEC`, which must succeed; the AMI id and name it
/// printed for server `hub`.
fn backup(world: &World, spec: &std::path::Path) -> (String, String) {
    let run = hubform(world, &["backup", path(spec)]).expect_code(0);
    let line = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("hub: "))
        .unwrap_or_else(|| panic!("no `hub:` line in {run:?}"));
    let (id, name) = line.split_once(' ').expect("an AMI id and a name");
    assert!(id.starts_with("ami-"), "an AMI id: {line}");
    (id.to_owned(), name.to_owned())
}

/// `hubform backups SPEC ARGS…`.
fn backups(world: &World, spec: &std::path::Path, args: &[&str]) -> Run {
    let mut all = vec!["backups", path(spec)];
    all.extend_from_slice(args);
    hubform(world, &all)
}

/// The AMIs moto holds that are backups of `workshop`.
async fn backup_images(
    ec2: &aws_sdk_ec2::Client,
    workshop: &str,
) -> Vec<Image> {
    ec2.describe_images()
        .owners("self")
        .filters(
            Filter::builder()
                .name("tag:hubform:backup-of")
                .values(workshop)
                .build(),
        )
        .send()
        .await
        .expect("DescribeImages")
        .images()
        .to_vec()
}

/// The ids of the snapshots this account holds.
async fn snapshot_ids(ec2: &aws_sdk_ec2::Client) -> Vec<String> {
    ec2.describe_snapshots()
        .owner_ids("self")
        .send()
        .await
        .expect("DescribeSnapshots")
        .snapshots()
        .iter()
        .filter_map(|s| s.snapshot_id().map(str::to_owned))
        .collect()
}

fn snapshots_of(image: &Image) -> Vec<String> {
    image
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()))
        .map(str::to_owned)
        .collect()
}

/// The AMI ids of the table `hubform backups` printed, top to bottom.
fn listed(run: &Run) -> Vec<String> {
    run.stdout
        .lines()
        .filter(|l| l.starts_with("hub "))
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .collect()
}

fn expect_backup_name(name: &str) {
    let stamp = name
        .strip_prefix(&format!("{WORKSHOP}-backup-"))
        .unwrap_or_else(|| panic!("a backup name of the workshop: {name}"));
    let (date, time) = stamp.split_at(8);
    assert!(date.chars().all(|c| c.is_ascii_digit()), "date in {name}");
    let time = time.strip_prefix('-').expect("a dash after the date");
    assert!(
        time.len() >= 4 && time[..4].chars().all(|c| c.is_ascii_digit()),
        "HHMM in {name}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_is_an_available_tagged_ami_and_changes_nothing() {
    let d: Deployed = deployed().await;
    let instance_id = d.instance().await.instance_id().unwrap().to_owned();

    let (image_id, name) = backup(&d.world, &d.spec);
    expect_backup_name(&name);

    let images = backup_images(&d.ec2, WORKSHOP).await;
    assert_eq!(images.len(), 1, "one backup: {images:#?}");
    let image = &images[0];
    assert_eq!(image.image_id(), Some(image_id.as_str()));
    assert_eq!(image.name(), Some(name.as_str()));
    assert_eq!(image.state().map(|s| s.as_str()), Some("available"));
    let tags = image.tags();
    assert_eq!(tag(tags, "hubform:backup-server"), Some("hub"));
    assert_eq!(
        tag(tags, "hubform:backup-instance"),
        Some(instance_id.as_str())
    );
    assert_eq!(tag(tags, "Name"), Some(name.as_str()));
    assert_eq!(tag(tags, "hubform:workshop"), None, "not the workshop's");
    assert_eq!(tag(tags, "hubform:id"), None, "no resource id: {tags:?}");

    let snapshots = snapshots_of(image);
    assert!(!snapshots.is_empty(), "the AMI has snapshots: {image:#?}");
    let out = d
        .ec2
        .describe_snapshots()
        .set_snapshot_ids(Some(snapshots.clone()))
        .send()
        .await
        .expect("DescribeSnapshots");
    assert_eq!(out.snapshots().len(), snapshots.len());
    for s in out.snapshots() {
        assert_eq!(tag(s.tags(), "hubform:backup-of"), Some(WORKSHOP));
        assert_eq!(tag(s.tags(), "hubform:backup-server"), Some("hub"));
        assert_eq!(tag(s.tags(), "hubform:workshop"), None);
    }

    // The hub stayed up and the workshop is as the spec says.
    assert_eq!(
        d.instance()
            .await
            .state()
            .and_then(|s| s.name())
            .map(|n| n.as_str()),
        Some("running")
    );
    d.expect_in_sync();
}

#[tokio::test(flavor = "multi_thread")]
async fn two_backups_are_listed_newest_first_and_prune_keeps_the_newest() {
    let d = deployed().await;
    let (older, older_name) = backup(&d.world, &d.spec);
    let (newer, newer_name) = backup(&d.world, &d.spec);
    assert_ne!(older_name, newer_name, "AMI names are unique");
    if newer_name.starts_with(&older_name) {
        // The same minute: the second name carries a suffix.
        assert_eq!(newer_name, format!("{older_name}-2"));
    }

    let run = backups(&d.world, &d.spec, &[]).expect_code(0);
    assert_eq!(listed(&run), [newer.as_str(), older.as_str()], "{run:?}");

    let images = backup_images(&d.ec2, WORKSHOP).await;
    let old_snapshots: Vec<String> = images
        .iter()
        .filter(|i| i.image_id() == Some(older.as_str()))
        .flat_map(snapshots_of)
        .collect();
    let new_snapshots: Vec<String> = images
        .iter()
        .filter(|i| i.image_id() == Some(newer.as_str()))
        .flat_map(snapshots_of)
        .collect();
    assert!(!old_snapshots.is_empty() && !new_snapshots.is_empty());

    let run = backups(&d.world, &d.spec, &["--prune", "1"]).expect_code(0);
    assert!(
        run.stdout
            .contains(&format!("Deleted {older} {older_name}")),
        "{run:?}"
    );
    assert_eq!(listed(&run), [newer.as_str()], "{run:?}");

    let left: Vec<String> = backup_images(&d.ec2, WORKSHOP)
        .await
        .iter()
        .filter_map(|i| i.image_id().map(str::to_owned))
        .collect();
    assert_eq!(left, [newer.as_str()], "only the newer AMI is left");
    let snapshots = snapshot_ids(&d.ec2).await;
    for s in &old_snapshots {
        assert!(!snapshots.contains(s), "{s} of {older} is deleted");
    }
    for s in &new_snapshots {
        assert!(snapshots.contains(s), "{s} of {newer} is kept");
    }

    // A second prune finds nothing more to delete.
    let run = backups(&d.world, &d.spec, &["--prune", "1"]).expect_code(0);
    assert!(run.stdout.contains("Nothing to prune."), "{run:?}");
    assert_eq!(backup_images(&d.ec2, WORKSHOP).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_before_apply_says_apply_first() {
    let world = World::start().await;
    let spec = example(&world);

    let run = hubform(&world, &["backup", path(&spec)]).expect_code(1);
    assert!(
        run.stderr.contains("instance.hub not found in AWS")
            && run.stderr.contains("run `hubform apply` first"),
        "{run:?}"
    );
    assert!(backup_images(&world.ec2().await, WORKSHOP).await.is_empty());

    let run = hubform(&world, &["backup", path(&spec), "--server", "lab"])
        .expect_code(1);
    assert!(
        run.stderr.contains("--server lab")
            && run.stderr.contains("its servers: hub"),
        "{run:?}"
    );

    let run = backups(&world, &spec, &["--prune", "0"]).expect_code(1);
    assert!(run.stderr.contains("--prune 1"), "{run:?}");
    let run = backups(&world, &spec, &[]).expect_code(0);
    assert!(run.stdout.contains(&format!("No backups of {WORKSHOP}.")));
}

#[tokio::test(flavor = "multi_thread")]
async fn backups_of_one_workshop_are_not_listed_by_another() {
    let d = deployed().await;
    let second = second_workshop(&d.world);
    common::apply(&d.world, &second);

    let (first_ami, _) = backup(&d.world, &d.spec);
    let (second_ami, second_name) = backup(&d.world, &second);
    assert!(second_name.starts_with(&format!("{SECOND}-backup-")));

    let run = backups(&d.world, &d.spec, &[]).expect_code(0);
    assert_eq!(listed(&run), [first_ami.as_str()], "{run:?}");
    let run = backups(&d.world, &second, &[]).expect_code(0);
    assert_eq!(listed(&run), [second_ami.as_str()], "{run:?}");

    // Pruning one workshop to a single backup leaves the other's alone,
    // and its own single backup too.
    backups(&d.world, &second, &["--prune", "1"]).expect_code(0);
    let first = backup_images(&d.ec2, WORKSHOP).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].image_id(), Some(first_ami.as_str()));
    assert_eq!(backup_images(&d.ec2, SECOND).await.len(), 1);

    // Neither workshop's plan sees a backup.
    d.expect_in_sync();
    common::plan(&d.world, &second).expect_code(0);
}
