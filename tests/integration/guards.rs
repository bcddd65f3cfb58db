//! Guards: the server's instance and root volume are replaced or deleted
//! only with `--allow-replace` / `--allow-destroy` (or `protect: false`),
//! and an AMI backup is taken first (unless `--no-backup`); destroy keeps
//! the backups. Checked through the EC2 API and the proxy's request log.

use aws_sdk_ec2::types::{Filter, Image};

use crate::common::hubform;
use crate::drift::{deployed, Deployed, WORKSHOP};

/// The workshop's backups, read from moto.
async fn backups(d: &Deployed) -> Vec<Image> {
    d.ec2
        .describe_images()
        .owners("self")
        .filters(
            Filter::builder()
                .name("tag:hubform:backup-of")
                .values(WORKSHOP)
                .build(),
        )
        .send()
        .await
        .expect("DescribeImages")
        .images()
        .to_vec()
}

/// The state of an instance by id, as EC2 reports it.
async fn state_of(d: &Deployed, instance_id: &str) -> String {
    let out = d
        .ec2
        .describe_instances()
        .instance_ids(instance_id)
        .send()
        .await
        .expect("DescribeInstances");
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find_map(|i| i.state().and_then(|s| s.name()))
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default()
}

fn spec_arg(d: &Deployed) -> &str {
    d.spec.to_str().expect("a UTF-8 path")
}

/// Moves the server to another key pair, which EC2 can only do by
/// launching a new instance.
fn force_replacement(d: &Deployed) {
    d.edit_spec(
        "    private_key_file: keys/workshop-central-asia.pem\n",
        "    private_key_file: keys/workshop-central-asia.pem\n  \
         workshop-spare:\n    private_key_file: keys/workshop-spare.pem\n",
    );
    d.edit_spec(
        "    key_pair: workshop-central-asia\n",
        "    key_pair: workshop-spare\n",
    );
}

/// The position of the first request for `action` in the proxy's log.
fn position(d: &Deployed, action: &str) -> usize {
    d.world
        .requests()
        .iter()
        .position(|r| r.action == action)
        .unwrap_or_else(|| panic!("no {action} request"))
}

#[tokio::test(flavor = "multi_thread")]
async fn replacing_the_server_without_the_flag_is_refused() {
    let d = deployed().await;
    let before = d.instance().await.instance_id().map(str::to_owned);
    force_replacement(&d);

    let plan = d.drift();
    assert!(plan.contains("-/+ instance.hub {"), "{plan}");
    assert!(plan.contains("Protected: instance.hub"), "{plan}");

    d.world.reset_requests();
    let run = hubform(&d.world, &["apply", "--auto-approve", spec_arg(&d)])
        .expect_code(1);
    assert!(
        run.stderr.contains("--allow-replace")
            && run.stderr.contains("nothing was changed"),
        "{}",
        run.stderr
    );
    let mutating: Vec<String> = d
        .mutating_calls()
        .into_iter()
        .filter(|a| !a.contains("KeyPair")) // the workshop lock
        .collect();
    assert!(mutating.is_empty(), "{mutating:?}");
    assert_eq!(d.instance().await.instance_id().map(str::to_owned), before);
    assert!(backups(&d).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn replacing_with_the_flag_backs_up_before_terminating() {
    let d = deployed().await;
    let old = d.instance().await.instance_id().expect("id").to_owned();
    force_replacement(&d);

    d.world.reset_requests();
    let run = hubform(
        &d.world,
        &["apply", "--auto-approve", "--allow-replace", spec_arg(&d)],
    )
    .expect_code(0);

    let saved = backups(&d).await;
    assert_eq!(saved.len(), 1, "one backup: {saved:#?}\n{}", run.stdout);
    let backup = &saved[0];
    assert_eq!(backup.state().map(|s| s.as_str()), Some("available"));
    assert!(
        backup
            .name()
            .unwrap_or_default()
            .starts_with(&format!("{WORKSHOP}-backup-")),
        "{backup:?}"
    );
    assert!(
        position(&d, "CreateImage") < position(&d, "TerminateInstances"),
        "the backup comes first"
    );
    assert_eq!(state_of(&d, &old).await, "terminated");
    let new = d.instance().await;
    assert_ne!(new.instance_id(), Some(old.as_str()));
    assert_eq!(new.key_name(), Some("workshop-spare"));
    d.expect_address_on_instance().await;
    d.expect_in_sync();
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_needs_the_flag_backs_up_and_keeps_the_backup() {
    let d = deployed().await;
    let instance_id = d.instance().await.instance_id().expect("id").to_owned();

    let run = hubform(&d.world, &["destroy", "--auto-approve", spec_arg(&d)])
        .expect_code(1);
    assert!(run.stderr.contains("--allow-destroy"), "{}", run.stderr);
    assert_eq!(state_of(&d, &instance_id).await, "running");

    let run = hubform(
        &d.world,
        &["destroy", "--auto-approve", "--allow-destroy", spec_arg(&d)],
    )
    .expect_code(0);
    assert_eq!(state_of(&d, &instance_id).await, "terminated");
    let saved = backups(&d).await;
    assert_eq!(saved.len(), 1, "{saved:#?}");
    let image_id = saved[0].image_id().expect("an AMI id");
    assert!(
        run.stdout.contains("Kept 1 backup") && run.stdout.contains(image_id),
        "{}",
        run.stdout
    );

    // A second destroy finds nothing, still lists the backup, and the
    // backup is still in EC2.
    let again = hubform(
        &d.world,
        &["destroy", "--auto-approve", "--allow-destroy", spec_arg(&d)],
    )
    .expect_code(0);
    assert!(again.stdout.contains(image_id), "{}", again.stdout);
    assert_eq!(backups(&d).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn protect_false_lets_destroy_through_and_no_backup_skips_the_ami() {
    let d = deployed().await;
    d.edit_spec(
        "    elastic_ip: true\n",
        "    elastic_ip: true\n    protect: false\n",
    );
    d.world.reset_requests();
    let run = hubform(
        &d.world,
        &["destroy", "--auto-approve", "--no-backup", spec_arg(&d)],
    )
    .expect_code(0);
    assert!(run.stdout.contains("Destroy complete!"), "{}", run.stdout);
    assert_eq!(d.world.count("CreateImage"), 0);
    assert!(backups(&d).await.is_empty());
}
