//! Spec edits: the example workshop is applied, then its spec is edited
//! and planned and applied again. The result is checked through the AWS
//! API; a last plan finds nothing to do.

use aws_sdk_ec2::types::Filter;

use crate::drift::{
    change, deployed, example_rules, expect_line, expect_summary, rules,
    value_pos, GROUP, INSTANCE, VOLUME,
};

#[tokio::test(flavor = "multi_thread")]
async fn edit_instance_type_changes_it_in_place() {
    let d = deployed().await;
    let before = d.instance().await;
    let instance_id = before.instance_id().expect("id").to_owned();
    let allocation = d.address().await.allocation_id().map(str::to_owned);

    d.edit_spec("type: t3.xlarge", "type: t3.large");
    let plan = d.drift();
    let found = change(&plan, "~", INSTANCE);
    expect_line(&found, r#"~ type = "t3.xlarge" -> "t3.large""#);
    expect_summary(&plan, 0, 1, 0);

    d.world.reset_requests();
    d.repair();
    assert_eq!(
        d.mutating_calls(),
        ["StopInstances", "ModifyInstanceAttribute", "StartInstances"]
    );
    let after = d.instance().await;
    assert_eq!(
        after.instance_id(),
        Some(instance_id.as_str()),
        "the same instance"
    );
    assert_eq!(after.instance_type().map(|t| t.as_str()), Some("t3.large"));
    assert_eq!(
        after.state().and_then(|s| s.name()).map(|n| n.as_str()),
        Some("running")
    );
    d.expect_address_on_instance().await;
    assert_eq!(
        d.address().await.allocation_id().map(str::to_owned),
        allocation,
        "the same Elastic IP"
    );
    d.expect_in_sync();
}

#[tokio::test(flavor = "multi_thread")]
async fn edit_volume_size_grows_and_never_shrinks() {
    let d = deployed().await;
    let volume_id = d.volume().await.volume_id().expect("id").to_owned();

    d.edit_spec("size_gb: 20", "size_gb: 30");
    let plan = d.drift();
    let found = change(&plan, "~", VOLUME);
    assert!(found.contains(&format!("({volume_id})")), "{found}");
    expect_line(&found, "~ size_gb = 20 -> 30");
    expect_summary(&plan, 0, 1, 0);

    d.world.reset_requests();
    d.repair();
    assert_eq!(d.mutating_calls(), ["ModifyVolume"]);
    let volume = d.volume().await;
    assert_eq!(volume.volume_id(), Some(volume_id.as_str()));
    assert_eq!(volume.size(), Some(30));
    d.expect_in_sync();

    // 30 -> 25: a shrink, refused at the spec line, with nothing changed.
    let text = d.edit_spec("size_gb: 30", "size_gb: 25");
    let at =
        format!("workshop.yaml:{}: {VOLUME}:", value_pos(&text, "size_gb"));
    d.world.reset_requests();
    let run = d.plan().expect_code(1);
    assert!(
        run.stderr.contains(&at),
        "expected {at} in:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("size_gb cannot shrink from 30 to 25"),
        "{}",
        run.stderr
    );
    assert_eq!(d.mutating_calls(), Vec::<String>::new());
    assert_eq!(d.volume().await.size(), Some(30));
}

#[tokio::test(flavor = "multi_thread")]
async fn edit_security_group_description_swaps_the_group() {
    const OLD: &str = "Security group for JupyterHub workshop";
    const NEW: &str = "JupyterHub workshop, with SSH, HTTP and HTTPS";
    let d = deployed().await;
    let old_group = d.group().await;
    let old_id = old_group.group_id().expect("group id").to_owned();
    let vpc = old_group.vpc_id().expect("vpc").to_owned();
    let instance_id = d.instance().await.instance_id().expect("id").to_owned();

    d.edit_spec(
        &format!("description: {OLD}"),
        &format!("description: {NEW}"),
    );
    let plan = d.drift();
    let found = change(&plan, "-/+", GROUP);
    assert!(found.contains(&format!("({old_id})")), "{found}");
    expect_line(
        &found,
        &format!(r#"~ description = "{OLD}" -> "{NEW}" # forces replacement"#),
    );
    expect_summary(&plan, 1, 0, 1);

    d.repair();

    // Exactly one group of that name in the VPC: the new one.
    let named = d
        .ec2
        .describe_security_groups()
        .filters(
            Filter::builder()
                .name("group-name")
                .values(GROUP_NAME)
                .build(),
        )
        .filters(Filter::builder().name("vpc-id").values(&vpc).build())
        .send()
        .await
        .expect("DescribeSecurityGroups");
    assert_eq!(named.security_groups().len(), 1, "{named:#?}");
    let group = d.group().await;
    let new_id = group.group_id().expect("group id").to_owned();
    assert_eq!(named.security_groups()[0].group_id(), Some(new_id.as_str()));
    assert_ne!(new_id, old_id, "a new group");
    assert_eq!(group.description(), Some(NEW));
    assert_eq!(rules(group.ip_permissions()), example_rules());

    // The same instance, back in the new group and only there.
    let default_id = d
        .ec2
        .describe_security_groups()
        .filters(
            Filter::builder()
                .name("group-name")
                .values("default")
                .build(),
        )
        .filters(Filter::builder().name("vpc-id").values(&vpc).build())
        .send()
        .await
        .expect("DescribeSecurityGroups")
        .security_groups()
        .first()
        .and_then(|g| g.group_id())
        .expect("the VPC's default group")
        .to_owned();
    let instance = d.instance().await;
    assert_eq!(instance.instance_id(), Some(instance_id.as_str()));
    let groups: Vec<&str> = instance
        .security_groups()
        .iter()
        .filter_map(|g| g.group_id())
        .collect();
    assert_eq!(groups, [new_id.as_str()], "{instance:#?}");
    assert!(!groups.contains(&default_id.as_str()));
    for eni in instance.network_interfaces() {
        let eni_groups: Vec<&str> =
            eni.groups().iter().filter_map(|g| g.group_id()).collect();
        assert_eq!(eni_groups, [new_id.as_str()], "{eni:#?}");
    }
    d.expect_in_sync();
}

/// The example's security group name.
const GROUP_NAME: &str = "workshop-sg";

/// The state name and type of the workshop's instance.
async fn state_and_type(d: &crate::drift::Deployed) -> (String, String) {
    let i = d.instance().await;
    (
        i.state()
            .and_then(|s| s.name())
            .map(|n| n.as_str().to_owned())
            .unwrap_or_default(),
        i.instance_type()
            .map(|t| t.as_str().to_owned())
            .unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn edit_to_an_unknown_instance_type_stops_nothing() {
    let d = deployed().await;
    d.edit_spec("type: t3.xlarge", "type: t3.largee");
    d.world.reset_requests();
    let spec = d.spec.to_str().expect("a UTF-8 path");
    let run =
        crate::common::hubform(&d.world, &["apply", "--auto-approve", spec])
            .expect_code(1);
    assert!(
        run.stdout.contains("t3.largee does not exist")
            && run.stdout.contains("nothing was stopped"),
        "{}",
        run.stdout
    );
    assert!(d.world.count("StopInstances") == 0, "no stop");
    assert_eq!(
        state_and_type(&d).await,
        ("running".to_owned(), "t3.xlarge".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_type_change_starts_the_instance_again() {
    let d = deployed().await;
    d.edit_spec("type: t3.xlarge", "type: t3.large");
    d.world
        .fault("ModifyInstanceAttribute", "Unsupported", 400, 10);
    let spec = d.spec.to_str().expect("a UTF-8 path");
    let run =
        crate::common::hubform(&d.world, &["apply", "--auto-approve", spec])
            .expect_code(1);
    assert!(
        run.stdout.contains("Unsupported")
            && run.stdout.contains("runs again with its old type"),
        "{}",
        run.stdout
    );
    assert_eq!(
        state_and_type(&d).await,
        ("running".to_owned(), "t3.xlarge".to_owned())
    );
    assert_eq!(d.world.count("StartInstances"), 1, "started again");
}
