//! Apply, plan, output and destroy of the example specs against the test
//! world. Every test checks the world through direct AWS clients, never
//! through hubform's own words alone.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use aws_sdk_ec2::types::{Filter, Tag};

use crate::common::{
    apply, example, hubform, is_mutating, live_instances, plan, spec_text,
    write_spec, SMALL,
};
use crate::world::{amis, World, REGION};

const WORKSHOP: &str = "groundwater-central-asia";
const IAM_PATH: &str = "/hubform/groundwater-central-asia/";
const ADMIN: &str = "arn:aws:iam::aws:policy/AdministratorAccess";
const KEY_NAME: &str = "workshop-central-asia";
const KEY_FILE: &str = "keys/workshop-central-asia.pem";
const CREDENTIALS_FILE: &str = "keys/ec2-admin.credentials";
const GROUP_NAME: &str = "workshop-sg";
const SERVER_NAME: &str = "workshop-central-asia-instance";

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

fn workshop_filter(workshop: &str) -> Filter {
    filter("tag:hubform:workshop", workshop)
}

fn tag<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// Panics unless `tags` carry the workshop's ownership tags for `id`.
fn assert_owned(tags: &[Tag], workshop: &str, id: &str, what: &str) {
    assert_eq!(
        tag(tags, "hubform:workshop"),
        Some(workshop),
        "{what} carries the workshop tag: {tags:?}"
    );
    assert_eq!(
        tag(tags, "hubform:id"),
        Some(id),
        "{what} carries its resource id: {tags:?}"
    );
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{} is missing: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// A direct EC2 client to the world's moto in another Region.
fn ec2_in(world: &World, region: &str) -> aws_sdk_ec2::Client {
    use aws_sdk_ec2::config::{
        retry::RetryConfig, BehaviorVersion, Credentials, Region,
    };
    let conf = aws_sdk_ec2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .endpoint_url(world.moto_endpoint())
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "apply-tests",
        ))
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_ec2::Client::from_conf(conf)
}

async fn default_vpc(ec2: &aws_sdk_ec2::Client) -> String {
    let out = ec2
        .describe_vpcs()
        .filters(filter("isDefault", "true"))
        .send()
        .await
        .expect("DescribeVpcs");
    out.vpcs()
        .first()
        .and_then(|v| v.vpc_id())
        .expect("a default VPC")
        .to_owned()
}

/// The security groups named `name`, in any VPC.
async fn groups_named(
    ec2: &aws_sdk_ec2::Client,
    name: &str,
) -> Vec<aws_sdk_ec2::types::SecurityGroup> {
    ec2.describe_security_groups()
        .filters(filter("group-name", name))
        .send()
        .await
        .expect("DescribeSecurityGroups")
        .security_groups()
        .to_vec()
}

/// The workshop's tagged Elastic IPs.
async fn addresses(
    ec2: &aws_sdk_ec2::Client,
    workshop: &str,
) -> Vec<aws_sdk_ec2::types::Address> {
    ec2.describe_addresses()
        .filters(workshop_filter(workshop))
        .send()
        .await
        .expect("DescribeAddresses")
        .addresses()
        .to_vec()
}

/// The public key of an OpenSSH private key file, as `type base64`.
fn public_key_words(key_file: &Path) -> String {
    let out = std::process::Command::new("ssh-keygen")
        .arg("-y")
        .arg("-f")
        .arg(key_file)
        .output()
        .expect("run ssh-keygen -y");
    assert!(
        out.status.success(),
        "ssh-keygen -y -f {} failed: {}",
        key_file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    key_words(&String::from_utf8_lossy(&out.stdout))
}

fn key_words(public_key: &str) -> String {
    public_key
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

fn both(run: &crate::common::Run) -> String {
    format!("{}\n{}", run.stdout, run.stderr)
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_from_nothing_creates_every_resource_as_specified() {
    let world = World::start().await;
    let spec = example(&world);
    apply(&world, &spec);

    let iam = world.iam().await;
    let ec2 = world.ec2().await;

    // IAM group: under the workshop's path, exactly AdministratorAccess.
    let group = iam
        .get_group()
        .group_name("EC2Admins")
        .send()
        .await
        .expect("the group EC2Admins exists");
    assert_eq!(group.group().map(|g| g.path()), Some(IAM_PATH));
    let members: Vec<&str> =
        group.users().iter().map(|u| u.user_name()).collect();
    assert_eq!(members, ["ec2-admin"], "the group's members");
    let policies = iam
        .list_attached_group_policies()
        .group_name("EC2Admins")
        .send()
        .await
        .expect("ListAttachedGroupPolicies");
    let arns: Vec<&str> = policies
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn())
        .collect();
    assert_eq!(arns, [ADMIN], "the group's policies");

    // IAM user: under the path, in the group, one access key on file.
    let user = iam
        .get_user()
        .user_name("ec2-admin")
        .send()
        .await
        .expect("the user ec2-admin exists");
    assert_eq!(user.user().map(|u| u.path()), Some(IAM_PATH));
    let user_groups = iam
        .list_groups_for_user()
        .user_name("ec2-admin")
        .send()
        .await
        .expect("ListGroupsForUser");
    let names: Vec<&str> = user_groups
        .groups()
        .iter()
        .map(|g| g.group_name())
        .collect();
    assert_eq!(names, ["EC2Admins"], "the user's groups");
    let keys = iam
        .list_access_keys()
        .user_name("ec2-admin")
        .send()
        .await
        .expect("ListAccessKeys");
    let key_ids: Vec<&str> = keys
        .access_key_metadata()
        .iter()
        .filter_map(|k| k.access_key_id())
        .collect();
    assert_eq!(key_ids.len(), 1, "one access key: {key_ids:?}");
    let credentials = world.dir().join(CREDENTIALS_FILE);
    let text = std::fs::read_to_string(&credentials)
        .expect("the access key file is written");
    assert!(
        text.contains(key_ids[0]),
        "{CREDENTIALS_FILE} names the access key {}",
        key_ids[0]
    );
    assert_eq!(mode(&credentials), 0o600, "{CREDENTIALS_FILE} mode");

    // Key pair: tagged, its public key that of the local private key.
    let pairs = ec2
        .describe_key_pairs()
        .key_names(KEY_NAME)
        .include_public_key(true)
        .send()
        .await
        .expect("the key pair exists");
    assert_eq!(pairs.key_pairs().len(), 1);
    let pair = &pairs.key_pairs()[0];
    assert_owned(
        pair.tags(),
        WORKSHOP,
        "key_pair.workshop-central-asia",
        "the key pair",
    );
    let key_file = world.dir().join(KEY_FILE);
    assert_eq!(mode(&key_file), 0o400, "{KEY_FILE} mode");
    assert_eq!(
        key_words(pair.public_key().unwrap_or_default()),
        public_key_words(&key_file),
        "the imported public key belongs to {KEY_FILE}"
    );

    // Security group: default VPC, description, exactly three rules.
    let vpc = default_vpc(&ec2).await;
    let groups = groups_named(&ec2, GROUP_NAME).await;
    assert_eq!(groups.len(), 1, "one {GROUP_NAME}: {groups:?}");
    let sg = &groups[0];
    assert_eq!(sg.vpc_id(), Some(vpc.as_str()), "in the default VPC");
    assert_eq!(
        sg.description(),
        Some("Security group for JupyterHub workshop")
    );
    assert_owned(
        sg.tags(),
        WORKSHOP,
        "security_group.workshop-sg",
        "the group",
    );
    let mut rules = BTreeSet::new();
    for p in sg.ip_permissions() {
        for range in p.ip_ranges() {
            rules.insert((
                p.ip_protocol().unwrap_or_default().to_owned(),
                p.from_port(),
                p.to_port(),
                range.cidr_ip().unwrap_or_default().to_owned(),
            ));
        }
        assert!(
            p.ipv6_ranges().is_empty() && p.user_id_group_pairs().is_empty(),
            "no other sources: {p:?}"
        );
    }
    let wanted: BTreeSet<_> = [22, 80, 443]
        .into_iter()
        .map(|port| {
            (
                "tcp".to_owned(),
                Some(port),
                Some(port),
                "0.0.0.0/0".to_owned(),
            )
        })
        .collect();
    assert_eq!(rules, wanted, "the group's ingress rules");
    let sg_id = sg.group_id().expect("a group id");

    // Instance: one, as specified, from the newest jammy image.
    let instances = live_instances(&ec2, Some(WORKSHOP)).await;
    assert_eq!(instances.len(), 1, "one instance: {instances:?}");
    let instance = &instances[0];
    let instance_id = instance.instance_id().expect("an instance id");
    assert_owned(instance.tags(), WORKSHOP, "instance.hub", "the instance");
    assert_eq!(
        instance.instance_type().map(|t| t.as_str()),
        Some("t3.xlarge")
    );
    assert_eq!(instance.key_name(), Some(KEY_NAME));
    let instance_groups: Vec<_> = instance
        .security_groups()
        .iter()
        .map(|g| (g.group_name(), g.group_id()))
        .collect();
    assert_eq!(instance_groups, [(Some(GROUP_NAME), Some(sg_id))]);
    assert_eq!(tag(instance.tags(), "Name"), Some(SERVER_NAME));
    assert_eq!(
        instance.image_id(),
        Some(amis::JAMMY_AMD64_NEWEST),
        "launched from the newest Canonical jammy amd64 image"
    );
    assert_eq!(
        tag(instance.tags(), "hubform:image"),
        Some(amis::JAMMY_AMD64_NEWEST)
    );

    // Its root volume: /dev/sda1, 20 GiB gp3.
    assert_eq!(instance.root_device_name(), Some("/dev/sda1"));
    let volumes = ec2
        .describe_volumes()
        .filters(filter("attachment.instance-id", instance_id))
        .send()
        .await
        .expect("DescribeVolumes");
    let roots: Vec<_> = volumes
        .volumes()
        .iter()
        .filter(|v| {
            v.attachments()
                .iter()
                .any(|a| a.device() == Some("/dev/sda1"))
        })
        .collect();
    assert_eq!(roots.len(), 1, "one root volume: {:?}", volumes.volumes());
    assert_eq!(roots[0].size(), Some(20), "root volume size");
    assert_eq!(
        roots[0].volume_type().map(|t| t.as_str()),
        Some("gp3"),
        "root volume type"
    );
    assert_owned(roots[0].tags(), WORKSHOP, "volume.hub", "the root volume");

    // Elastic IP: tagged, associated with the instance.
    let eips = addresses(&ec2, WORKSHOP).await;
    assert_eq!(eips.len(), 1, "one Elastic IP: {eips:?}");
    assert_owned(eips[0].tags(), WORKSHOP, "elastic_ip.hub", "the address");
    assert_eq!(eips[0].instance_id(), Some(instance_id));
    assert!(
        eips[0].association_id().is_some_and(|a| !a.is_empty()),
        "the address is associated: {:?}",
        eips[0]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_after_apply_reports_no_changes_with_few_reads() {
    let world = World::start().await;
    let spec = example(&world);
    apply(&world, &spec);

    world.reset_requests();
    let run = plan(&world, &spec).expect_code(0);
    assert!(run.stdout.contains("No changes."), "{}", run.stdout);

    let requests = world.requests();
    assert!(
        requests.len() <= 8,
        "a no-op plan takes at most 8 requests, it took {}: {requests:?}",
        requests.len()
    );
    let mutating: Vec<_> =
        requests.iter().filter(|r| is_mutating(&r.action)).collect();
    assert!(mutating.is_empty(), "a plan changes nothing: {mutating:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn newer_image_is_noted_and_never_planned() {
    const NEWER: &str = "ami-0f1e2d3c4b5a69788";
    let world = World::start().await;
    let spec = example(&world);
    apply(&world, &spec);

    world.add_image(
        NEWER,
        &amis::AMD64_NAME_PATTERN.replace('*', "20270301"),
        "2027-03-01T00:00:00.000Z",
    );
    world.reset_requests();
    let run = plan(&world, &spec).expect_code(0);
    assert!(
        run.stdout.contains(NEWER),
        "the plan notes the newer image {NEWER}:\n{}",
        run.stdout
    );
    assert!(run.stdout.contains("No changes."), "{}", run.stdout);
    assert!(
        world.requests().iter().all(|r| !is_mutating(&r.action)),
        "nothing changed: {:?}",
        world.requests()
    );

    let ec2 = world.ec2().await;
    let instances = live_instances(&ec2, Some(WORKSHOP)).await;
    assert_eq!(instances.len(), 1, "still one instance");
    assert_eq!(instances[0].image_id(), Some(amis::JAMMY_AMD64_NEWEST));
}

#[tokio::test(flavor = "multi_thread")]
async fn independent_resources_are_created_concurrently() {
    let world = World::start().await;
    let spec = example(&world);
    // CreateGroup and CreateSecurityGroup leave in the same wave, and
    // CreateGroup reaches the proxy first in practice, so holding the
    // security group until CreateGroup would test arrival order, not
    // concurrency. CreateUser comes only after two IAM round trips
    // (CreateGroup, AttachGroupPolicy): it arrives while the held
    // CreateSecurityGroup waits only if hubform does not wait for it.
    world.hold("CreateSecurityGroup", "CreateUser", 20);
    apply(&world, &spec);

    let holds = world.holds();
    assert_eq!(
        holds,
        serde_json::json!([{
            "action": "CreateSecurityGroup",
            "until": "CreateUser",
            "outcome": "released",
        }]),
        "CreateUser arrived while CreateSecurityGroup was held"
    );
    let ec2 = world.ec2().await;
    assert_eq!(groups_named(&ec2, GROUP_NAME).await.len(), 1);
    let iam = world.iam().await;
    iam.get_group()
        .group_name("EC2Admins")
        .send()
        .await
        .expect("the group EC2Admins exists");
    iam.get_user()
        .user_name("ec2-admin")
        .send()
        .await
        .expect("the user ec2-admin exists");
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_and_pending_instance_are_waited_out() {
    let world = World::start().await;
    let spec = example(&world);
    world.set_pending(3);
    // Discovery describes instances twice (by tag, then by Name for an
    // untagged twin): the third call is the first wait after the launch.
    world.fault_skip("DescribeInstances", "RequestLimitExceeded", 503, 1, 2);
    apply(&world, &spec);

    let requests = world.requests();
    let launched = requests
        .iter()
        .position(|r| r.action == "RunInstances" && r.status == 200)
        .expect("a successful RunInstances");
    let throttled = requests
        .iter()
        .position(|r| r.action == "DescribeInstances" && r.status == 503)
        .unwrap_or_else(|| {
            panic!("no throttled DescribeInstances: {requests:?}")
        });
    assert!(
        throttled > launched,
        "the throttled describe was a wait after the launch: {requests:?}"
    );
    let waits = requests[launched..]
        .iter()
        .filter(|r| r.action == "DescribeInstances" && r.status == 200)
        .count();
    assert!(
        waits >= 4,
        "three pending answers and a running one: {requests:?}"
    );

    let ec2 = world.ec2().await;
    let instances = live_instances(&ec2, Some(WORKSHOP)).await;
    assert_eq!(instances.len(), 1, "one instance: {instances:?}");
    assert_eq!(
        instances[0]
            .state()
            .and_then(|s| s.name())
            .map(|n| n.as_str()),
        Some("running")
    );
    assert_eq!(addresses(&ec2, WORKSHOP).await.len(), 1, "an Elastic IP");
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_launch_stops_only_its_dependents() {
    let world = World::start().await;
    let spec = example(&world);
    // AWS answers InsufficientInstanceCapacity with 500, which the SDK
    // retries: fail more often than hubform's 4 attempts.
    world.fault("RunInstances", "InsufficientInstanceCapacity", 500, 10);
    let run = hubform(
        &world,
        &["apply", "--auto-approve", spec.to_str().expect("UTF-8")],
    )
    .expect_code(1);
    let text = both(&run);
    assert!(text.contains("instance.hub"), "names instance.hub:\n{text}");
    assert!(
        text.contains("InsufficientInstanceCapacity"),
        "names the error code:\n{text}"
    );

    let attempts = world.count("RunInstances");
    assert!(
        (1..=4).contains(&attempts),
        "RunInstances tried a bounded number of times: {attempts}"
    );
    assert_eq!(world.count("AllocateAddress"), 0, "no Elastic IP allocated");

    // What does not wait for the instance was still done.
    let iam = world.iam().await;
    let group = iam
        .get_group()
        .group_name("EC2Admins")
        .send()
        .await
        .expect("the group EC2Admins exists");
    assert_eq!(group.group().map(|g| g.path()), Some(IAM_PATH));
    let members: Vec<&str> =
        group.users().iter().map(|u| u.user_name()).collect();
    assert_eq!(members, ["ec2-admin"], "the user is in the group");
    let ec2 = world.ec2().await;
    let groups = groups_named(&ec2, GROUP_NAME).await;
    assert_eq!(groups.len(), 1, "the security group exists");
    assert_owned(
        groups[0].tags(),
        WORKSHOP,
        "security_group.workshop-sg",
        "the group",
    );
    let pairs = ec2
        .describe_key_pairs()
        .filters(workshop_filter(WORKSHOP))
        .send()
        .await
        .expect("DescribeKeyPairs");
    let names: Vec<_> = pairs
        .key_pairs()
        .iter()
        .filter_map(|k| k.key_name())
        .collect();
    assert_eq!(names, [KEY_NAME], "the key pair exists");
    assert!(
        live_instances(&ec2, Some(WORKSHOP)).await.is_empty(),
        "no instance was launched"
    );
    assert!(addresses(&ec2, WORKSHOP).await.is_empty(), "no Elastic IP");
}

#[tokio::test(flavor = "multi_thread")]
async fn iam_group_of_another_workshop_is_a_plan_error() {
    let world = World::start().await;
    let spec = example(&world);
    world
        .iam()
        .await
        .create_group()
        .group_name("EC2Admins")
        .path("/hubform/other-workshop/")
        .send()
        .await
        .expect("a group of another workshop");

    world.reset_requests();
    let run = plan(&world, &spec).expect_code(1);
    assert!(
        run.stderr.contains("iam_group.EC2Admins")
            && run.stderr.contains("other-workshop"),
        "the error names the group and the workshop holding it:\n{}",
        run.stderr
    );
    let spec_arg = spec.to_str().expect("a UTF-8 path");
    hubform(&world, &["apply", "--auto-approve", spec_arg]).expect_code(1);
    let mutating: Vec<_> = world
        .requests()
        .into_iter()
        .filter(|r| is_mutating(&r.action))
        .collect();
    assert!(mutating.is_empty(), "nothing changed: {mutating:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn untagged_twin_security_group_is_reported_and_refused() {
    let world = World::start().await;
    let spec = example(&world);
    let ec2 = world.ec2().await;
    let vpc = default_vpc(&ec2).await;
    let made = ec2
        .create_security_group()
        .group_name(GROUP_NAME)
        .description("made by hand")
        .vpc_id(&vpc)
        .send()
        .await
        .expect("CreateSecurityGroup");
    let group_id = made.group_id().expect("a group id").to_owned();

    let spec_arg = spec.to_str().expect("UTF-8");
    let planned = hubform(&world, &["plan", spec_arg]);
    let warning = planned
        .stdout
        .lines()
        .chain(planned.stderr.lines())
        .find(|l| l.contains(GROUP_NAME) && l.contains(&group_id));
    assert!(
        warning.is_some(),
        "plan warns about {GROUP_NAME} ({group_id}):\n{}",
        both(&planned)
    );
    let import =
        format!("`hubform import SPEC security_group.{GROUP_NAME} {group_id}`");
    assert!(
        warning.is_some_and(|w| w.contains(&import)),
        "the warning names the import that adopts it:\n{}",
        both(&planned)
    );

    world.reset_requests();
    let run =
        hubform(&world, &["apply", "--auto-approve", spec_arg]).expect_code(1);
    let requests = world.requests();
    assert_eq!(
        world.count("CreateSecurityGroup"),
        0,
        "no twin created:\n{}",
        both(&run)
    );
    let mutating: Vec<_> =
        requests.iter().filter(|r| is_mutating(&r.action)).collect();
    assert!(mutating.is_empty(), "nothing changed: {mutating:?}");
    let groups = groups_named(&ec2, GROUP_NAME).await;
    assert_eq!(groups.len(), 1, "still one {GROUP_NAME}: {groups:?}");
    assert_eq!(groups[0].group_id(), Some(group_id.as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn output_prints_instance_address_and_ssh_command() {
    let world = World::start().await;
    let spec = example(&world);
    apply(&world, &spec);

    let run = hubform(&world, &["output", spec.to_str().expect("UTF-8")])
        .expect_code(0);
    let ec2 = world.ec2().await;
    let instances = live_instances(&ec2, Some(WORKSHOP)).await;
    assert_eq!(instances.len(), 1);
    let instance_id = instances[0].instance_id().expect("an instance id");
    let eips = addresses(&ec2, WORKSHOP).await;
    assert_eq!(eips.len(), 1);
    let ip = eips[0].public_ip().expect("a public IP");

    assert!(
        run.stdout.contains(instance_id),
        "output names {instance_id}:\n{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(ip),
        "output names the Elastic IP {ip}:\n{}",
        run.stdout
    );
    let ssh = format!("ssh -i {KEY_FILE} ubuntu@{ip}");
    assert!(
        run.stdout.contains(&ssh),
        "output gives `{ssh}`:\n{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_removes_every_object_and_then_has_nothing_to_do() {
    let world = World::start().await;
    let spec = example(&world);
    apply(&world, &spec);
    let spec_arg = spec.to_str().expect("UTF-8");

    hubform(
        &world,
        &["destroy", "--auto-approve", "--allow-destroy", spec_arg],
    )
    .expect_code(0);

    let ec2 = world.ec2().await;
    let pairs = ec2
        .describe_key_pairs()
        .filters(workshop_filter(WORKSHOP))
        .send()
        .await
        .expect("DescribeKeyPairs");
    assert!(pairs.key_pairs().is_empty(), "{:?}", pairs.key_pairs());
    let groups = ec2
        .describe_security_groups()
        .filters(workshop_filter(WORKSHOP))
        .send()
        .await
        .expect("DescribeSecurityGroups");
    assert!(
        groups.security_groups().is_empty(),
        "{:?}",
        groups.security_groups()
    );
    assert!(groups_named(&ec2, GROUP_NAME).await.is_empty());
    let instances = live_instances(&ec2, Some(WORKSHOP)).await;
    assert!(instances.is_empty(), "{instances:?}");
    let volumes = ec2
        .describe_volumes()
        .filters(workshop_filter(WORKSHOP))
        .send()
        .await
        .expect("DescribeVolumes");
    assert!(volumes.volumes().is_empty(), "{:?}", volumes.volumes());
    let eips = addresses(&ec2, WORKSHOP).await;
    assert!(eips.is_empty(), "{eips:?}");

    // IAM: nothing under the workshop's path (ListGroups ignores the
    // path prefix in moto, so filter here too).
    let iam = world.iam().await;
    let users = iam.list_users().send().await.expect("ListUsers");
    let ours: Vec<_> = users
        .users()
        .iter()
        .filter(|u| u.path().starts_with(IAM_PATH))
        .map(|u| u.user_name())
        .collect();
    assert!(ours.is_empty(), "users left: {ours:?}");
    let iam_groups = iam.list_groups().send().await.expect("ListGroups");
    let ours: Vec<_> = iam_groups
        .groups()
        .iter()
        .filter(|g| g.path().starts_with(IAM_PATH))
        .map(|g| g.group_name())
        .collect();
    assert!(ours.is_empty(), "groups left: {ours:?}");

    world.reset_requests();
    let again = hubform(
        &world,
        &["destroy", "--auto-approve", "--allow-destroy", spec_arg],
    )
    .expect_code(0);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);
    let mutating: Vec<_> = world
        .requests()
        .into_iter()
        .filter(|r| is_mutating(&r.action))
        .collect();
    assert!(mutating.is_empty(), "nothing left to change: {mutating:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn small_example_applies_and_then_plans_no_changes() {
    let world = World::start().await;
    let spec = write_spec(&world, "small.yaml", &spec_text(SMALL));
    apply(&world, &spec);

    let run = plan(&world, &spec).expect_code(0);
    assert!(run.stdout.contains("No changes."), "{}", run.stdout);

    let region = "eu-central-1";
    assert_ne!(region, REGION, "the small example has its own Region");
    let ec2 = ec2_in(&world, region);
    let instances = live_instances(&ec2, Some("python-intro-bishkek")).await;
    assert_eq!(instances.len(), 1, "one instance: {instances:?}");
    let instance = &instances[0];
    assert_eq!(
        instance.instance_type().map(|t| t.as_str()),
        Some("t3.small")
    );
    assert_eq!(instance.image_id(), Some(amis::NOBLE_AMD64_NEWEST));
    assert_eq!(
        tag(instance.tags(), "hubform:image"),
        Some(amis::NOBLE_AMD64_NEWEST)
    );
    assert_eq!(tag(instance.tags(), "Name"), Some("python-intro-hub"));
    let eips = addresses(&ec2, "python-intro-bishkek").await;
    assert_eq!(eips.len(), 1, "one Elastic IP: {eips:?}");
    assert_eq!(eips[0].instance_id(), instance.instance_id());
    assert_eq!(groups_named(&ec2, "python-intro-sg").await.len(), 1);
}
