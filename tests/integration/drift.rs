//! Drift made by hand: the example workshop is applied, then changed
//! behind hubform's back through the AWS API. A plan must show the drift
//! on the right resource and field, apply must repair it, the repair is
//! checked through the AWS API, and a last plan finds nothing to do.
//!
//! The helpers at the top (`deployed`, the tag lookups, the plan text
//! checks) are shared with `edits.rs`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{
    Address, AttributeValue, Filter, Instance, IpPermission, IpRange,
    KeyPairInfo, SecurityGroup, Tag, Volume, VolumeType,
};

use crate::common::{self, example, is_mutating, Run};
use crate::world::World;

/// The example's workshop name, written into every tag.
pub const WORKSHOP: &str = "groundwater-central-asia";
pub const INSTANCE: &str = "instance.hub";
pub const VOLUME: &str = "volume.hub";
pub const ADDRESS: &str = "elastic_ip.hub";
pub const GROUP: &str = "security_group.workshop-sg";
pub const KEY_PAIR: &str = "key_pair.workshop-central-asia";
pub const KEY_NAME: &str = "workshop-central-asia";
pub const KEY_FILE: &str = "keys/workshop-central-asia.pem";
pub const IAM_GROUP: &str = "iam_group.EC2Admins";
pub const IAM_USER: &str = "iam_user.ec2-admin";
/// The example's instance name (its Name tag).
pub const SERVER_NAME: &str = "workshop-central-asia-instance";
pub const ADMIN_POLICY: &str = "arn:aws:iam::aws:policy/AdministratorAccess";
pub const READ_ONLY_POLICY: &str = "arn:aws:iam::aws:policy/ReadOnlyAccess";

/// The example workshop, applied in a fresh world, with clients that talk
/// to moto directly (not through the proxy, not recorded).
pub struct Deployed {
    pub world: World,
    pub spec: PathBuf,
    pub ec2: aws_sdk_ec2::Client,
    pub iam: aws_sdk_iam::Client,
}

/// Starts a world, copies the example spec into it and applies it.
pub async fn deployed() -> Deployed {
    let world = World::start().await;
    let spec = example(&world);
    common::apply(&world, &spec);
    let ec2 = world.ec2().await;
    let iam = world.iam().await;
    Deployed {
        world,
        spec,
        ec2,
        iam,
    }
}

impl Deployed {
    /// `plan --detailed-exitcode`, as it ended.
    pub fn plan(&self) -> Run {
        common::plan(&self.world, &self.spec)
    }

    /// A plan that must find changes (exit 2); its stdout.
    pub fn drift(&self) -> String {
        self.plan().expect_code(2).stdout
    }

    /// `apply --auto-approve`, which must succeed.
    pub fn repair(&self) -> Run {
        common::apply(&self.world, &self.spec)
    }

    /// A plan that must find nothing to do.
    pub fn expect_in_sync(&self) {
        let run = self.plan().expect_code(0);
        assert!(
            run.stdout.contains("No changes."),
            "expected `No changes.`:\n{}",
            run.stdout
        );
    }

    /// Replaces `from` (which must occur once) by `to` in the spec.
    pub fn edit_spec(&self, from: &str, to: &str) -> String {
        let text = std::fs::read_to_string(&self.spec).expect("read spec");
        assert_eq!(
            text.matches(from).count(),
            1,
            "{from:?} must occur once in the spec:\n{text}"
        );
        let text = text.replace(from, to);
        std::fs::write(&self.spec, &text).expect("write the spec");
        text
    }

    /// The actions of the calls the proxy saw that change something.
    pub fn mutating_calls(&self) -> Vec<String> {
        self.world
            .requests()
            .into_iter()
            .filter(|r| is_mutating(&r.action))
            .map(|r| r.action)
            .collect()
    }

    /// The workshop's one live instance.
    pub async fn instance(&self) -> Instance {
        let out = self
            .ec2
            .describe_instances()
            .set_filters(Some(ours(INSTANCE)))
            .filters(
                Filter::builder()
                    .name("instance-state-name")
                    .values("pending")
                    .values("running")
                    .values("stopping")
                    .values("stopped")
                    .build(),
            )
            .send()
            .await
            .expect("DescribeInstances");
        let all: Vec<Instance> = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances().iter().cloned())
            .collect();
        assert_eq!(all.len(), 1, "one live tagged instance: {all:#?}");
        all.into_iter().next().expect("one instance")
    }

    /// The workshop's security group, by tag.
    pub async fn group(&self) -> SecurityGroup {
        let out = self
            .ec2
            .describe_security_groups()
            .set_filters(Some(ours(GROUP)))
            .send()
            .await
            .expect("DescribeSecurityGroups");
        let all = out.security_groups();
        assert_eq!(all.len(), 1, "one tagged security group: {all:#?}");
        all[0].clone()
    }

    /// The workshop's root volume, by tag.
    pub async fn volume(&self) -> Volume {
        let out = self
            .ec2
            .describe_volumes()
            .set_filters(Some(ours(VOLUME)))
            .send()
            .await
            .expect("DescribeVolumes");
        let all = out.volumes();
        assert_eq!(all.len(), 1, "one tagged volume: {all:#?}");
        all[0].clone()
    }

    /// Every address tagged as the workshop's Elastic IP.
    pub async fn addresses(&self) -> Vec<Address> {
        self.ec2
            .describe_addresses()
            .set_filters(Some(ours(ADDRESS)))
            .send()
            .await
            .expect("DescribeAddresses")
            .addresses()
            .to_vec()
    }

    /// The one tagged Elastic IP.
    pub async fn address(&self) -> Address {
        let all = self.addresses().await;
        assert_eq!(all.len(), 1, "one tagged Elastic IP: {all:#?}");
        all[0].clone()
    }

    /// Asserts that the tagged Elastic IP is associated with the instance.
    pub async fn expect_address_on_instance(&self) {
        let instance = self.instance().await;
        let address = self.address().await;
        assert_eq!(
            address.instance_id(),
            instance.instance_id(),
            "the Elastic IP is associated with the instance: {address:#?}"
        );
        assert!(
            address.association_id().is_some_and(|a| !a.is_empty()),
            "the Elastic IP has an association: {address:#?}"
        );
    }

    /// Key pairs named `name`, with their public keys.
    pub async fn key_pairs(&self, name: &str) -> Vec<KeyPairInfo> {
        self.ec2
            .describe_key_pairs()
            .filters(Filter::builder().name("key-name").values(name).build())
            .include_public_key(true)
            .send()
            .await
            .expect("DescribeKeyPairs")
            .key_pairs()
            .to_vec()
    }

    /// The managed policies attached to an IAM group.
    pub async fn group_policies(&self, group: &str) -> BTreeSet<String> {
        self.iam
            .list_attached_group_policies()
            .group_name(group)
            .send()
            .await
            .expect("ListAttachedGroupPolicies")
            .attached_policies()
            .iter()
            .filter_map(|p| p.policy_arn().map(str::to_owned))
            .collect()
    }

    /// The groups an IAM user is in.
    pub async fn user_groups(&self, user: &str) -> BTreeSet<String> {
        self.iam
            .list_groups_for_user()
            .user_name(user)
            .send()
            .await
            .expect("ListGroupsForUser")
            .groups()
            .iter()
            .map(|g| g.group_name().to_owned())
            .collect()
    }

    /// Waits (direct client) until the instance is in `state`.
    pub async fn wait_state(&self, instance_id: &str, state: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self
                .ec2
                .describe_instances()
                .instance_ids(instance_id)
                .send()
                .await
                .expect("DescribeInstances");
            let now = out
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .find_map(|i| i.state().and_then(|s| s.name()).cloned());
            if now.as_ref().map(|n| n.as_str()) == Some(state) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{instance_id} never became {state} (is {now:?})"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// EC2 filters for the object tagged as this workshop's `id`.
pub fn ours(id: &str) -> Vec<Filter> {
    vec![
        Filter::builder()
            .name("tag:hubform:workshop")
            .values(WORKSHOP)
            .build(),
        Filter::builder().name("tag:hubform:id").values(id).build(),
    ]
}

/// The value of one EC2 tag.
pub fn tag<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// Canonical rules (`tcp 22 from 0.0.0.0/0`) of AWS permissions.
pub fn rules(permissions: &[IpPermission]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for p in permissions {
        for range in p.ip_ranges() {
            let ports = match (p.from_port(), p.to_port()) {
                (Some(a), Some(b)) if a == b => format!(" {a}"),
                (Some(a), Some(b)) => format!(" {a}-{b}"),
                _ => String::new(),
            };
            out.insert(format!(
                "{}{ports} from {}",
                p.ip_protocol().unwrap_or("?"),
                range.cidr_ip().unwrap_or("?")
            ));
        }
    }
    out
}

/// The example's ingress rules, canonical.
pub fn example_rules() -> BTreeSet<String> {
    [
        "tcp 22 from 0.0.0.0/0",
        "tcp 80 from 0.0.0.0/0",
        "tcp 443 from 0.0.0.0/0",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

/// One TCP permission from everywhere.
pub fn tcp_from_anywhere(port: i32) -> IpPermission {
    IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(port)
        .to_port(port)
        .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
        .build()
}

// ---- plan text ---------------------------------------------------------

/// The block a plan prints for resource `id`, from its `  # id (…)`
/// header to its closing brace; panics, showing the plan, when absent.
pub fn block(plan: &str, id: &str) -> String {
    let header = format!("  # {id} ");
    let mut lines = plan.lines().skip_while(|l| !l.starts_with(&header));
    let mut out = Vec::new();
    for line in lines.by_ref() {
        out.push(line);
        if line == "    }" {
            return out.join("\n");
        }
    }
    panic!("the plan has no block for {id}:\n{plan}");
}

/// Asserts that the plan changes `id` with `marker` (`+ ~ - -/+`) and
/// returns its block.
pub fn change(plan: &str, marker: &str, id: &str) -> String {
    let found = block(plan, id);
    let opening = format!("  {marker} {id} {{");
    assert!(
        found.lines().any(|l| l == opening),
        "expected `{opening}` in the block of {id}:\n{found}\n\nwhole \
         plan:\n{plan}"
    );
    found
}

/// Whether `text` has a line equal to `wanted` up to runs of spaces.
pub fn has_line(text: &str, wanted: &str) -> bool {
    let squeeze = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let wanted = squeeze(wanted);
    text.lines().any(|l| squeeze(l) == wanted)
}

/// Asserts that `text` has the line `wanted` (up to runs of spaces).
pub fn expect_line(text: &str, wanted: &str) {
    assert!(has_line(text, wanted), "expected `{wanted}` in:\n{text}");
}

/// Asserts the plan's summary line.
pub fn expect_summary(plan: &str, add: usize, change: usize, destroy: usize) {
    let line = format!(
        "Plan: {add} to add, {change} to change, {destroy} to destroy."
    );
    assert!(
        plan.lines().any(|l| l == line),
        "expected `{line}` in:\n{plan}"
    );
}

/// The `line:column` where `key: ` is followed by its value in `spec`
/// (1-based, the value's first character).
pub fn value_pos(spec: &str, key: &str) -> String {
    let needle = format!("{key}: ");
    let mut found = spec.lines().enumerate().filter_map(|(n, line)| {
        line.find(&needle)
            .map(|col| (n + 1, col + needle.len() + 1))
    });
    let (line, column) = found.next().expect("the key in the spec");
    assert!(found.next().is_none(), "{key} occurs once in the spec");
    format!("{line}:{column}")
}

// ---- security group ----------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn drift_extra_ingress_rule_is_revoked() {
    let d = deployed().await;
    let group_id = d.group().await.group_id().expect("group id").to_owned();
    d.ec2
        .authorize_security_group_ingress()
        .group_id(&group_id)
        .ip_permissions(tcp_from_anywhere(8080))
        .send()
        .await
        .expect("authorize 8080 by hand");

    let plan = d.drift();
    let found = change(&plan, "~", GROUP);
    assert!(found.contains(&format!("({group_id})")), "{found}");
    expect_line(&found, "~ ingress = [");
    expect_line(&found, r#"- "tcp 8080 from 0.0.0.0/0","#);
    expect_line(&found, r#""tcp 22 from 0.0.0.0/0","#);
    expect_summary(&plan, 0, 1, 0);

    d.world.reset_requests();
    d.repair();
    assert_eq!(d.mutating_calls(), ["RevokeSecurityGroupIngress"]);
    let group = d.group().await;
    assert_eq!(group.group_id(), Some(group_id.as_str()));
    assert_eq!(rules(group.ip_permissions()), example_rules());
    d.expect_in_sync();
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_missing_ingress_rule_is_authorized() {
    let d = deployed().await;
    let group_id = d.group().await.group_id().expect("group id").to_owned();
    d.ec2
        .revoke_security_group_ingress()
        .group_id(&group_id)
        .ip_permissions(tcp_from_anywhere(80))
        .send()
        .await
        .expect("revoke 80 by hand");
    assert!(!rules(d.group().await.ip_permissions())
        .contains("tcp 80 from 0.0.0.0/0"));

    let plan = d.drift();
    let found = change(&plan, "~", GROUP);
    expect_line(&found, "~ ingress = [");
    expect_line(&found, r#"+ "tcp 80 from 0.0.0.0/0","#);
    expect_summary(&plan, 0, 1, 0);

    d.world.reset_requests();
    d.repair();
    assert_eq!(d.mutating_calls(), ["AuthorizeSecurityGroupIngress"]);
    let group = d.group().await;
    assert_eq!(group.group_id(), Some(group_id.as_str()));
    assert_eq!(rules(group.ip_permissions()), example_rules());
    d.expect_in_sync();
}

// ---- instance ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn drift_instance_name_tag_is_restored() {
    let d = deployed().await;
    let instance = d.instance().await;
    let instance_id = instance.instance_id().expect("id").to_owned();
    assert_eq!(tag(instance.tags(), "Name"), Some(SERVER_NAME));
    d.ec2
        .create_tags()
        .resources(&instance_id)
        .tags(Tag::builder().key("Name").value("renamed-by-hand").build())
        .send()
        .await
        .expect("rename by hand");

    let plan = d.drift();
    let found = change(&plan, "~", INSTANCE);
    assert!(found.contains(&format!("({instance_id})")), "{found}");
    expect_line(
        &found,
        &format!(r#"~ name = "renamed-by-hand" -> "{SERVER_NAME}""#),
    );
    expect_summary(&plan, 0, 1, 0);

    d.world.reset_requests();
    d.repair();
    assert_eq!(d.mutating_calls(), ["CreateTags"]);
    let instance = d.instance().await;
    assert_eq!(instance.instance_id(), Some(instance_id.as_str()));
    assert_eq!(tag(instance.tags(), "Name"), Some(SERVER_NAME));
    assert_eq!(tag(instance.tags(), "hubform:id"), Some(INSTANCE));
    d.expect_in_sync();
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_instance_type_is_restored_by_stop_modify_start() {
    let d = deployed().await;
    let instance = d.instance().await;
    let instance_id = instance.instance_id().expect("id").to_owned();
    assert_eq!(
        instance.instance_type().map(|t| t.as_str()),
        Some("t3.xlarge")
    );
    let allocation = d.address().await.allocation_id().map(str::to_owned);

    // By hand, as AWS wants it: stop, modify, start (moto directly).
    d.ec2
        .stop_instances()
        .instance_ids(&instance_id)
        .send()
        .await
        .expect("stop by hand");
    d.wait_state(&instance_id, "stopped").await;
    d.ec2
        .modify_instance_attribute()
        .instance_id(&instance_id)
        .instance_type(AttributeValue::builder().value("t3.large").build())
        .send()
        .await
        .expect("modify by hand");
    d.ec2
        .start_instances()
        .instance_ids(&instance_id)
        .send()
        .await
        .expect("start by hand");
    d.wait_state(&instance_id, "running").await;

    let plan = d.drift();
    let found = change(&plan, "~", INSTANCE);
    expect_line(&found, r#"~ type = "t3.large" -> "t3.xlarge""#);
    expect_summary(&plan, 0, 1, 0);

    d.world.reset_requests();
    d.repair();
    let calls = d.mutating_calls();
    assert_eq!(
        calls,
        ["StopInstances", "ModifyInstanceAttribute", "StartInstances"],
        "the repair stops, modifies and starts, in that order"
    );
    let instance = d.instance().await;
    assert_eq!(instance.instance_id(), Some(instance_id.as_str()));
    assert_eq!(
        instance.instance_type().map(|t| t.as_str()),
        Some("t3.xlarge")
    );
    assert_eq!(
        instance.state().and_then(|s| s.name()).map(|n| n.as_str()),
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

// ---- volume ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn drift_volume_type_is_restored() {
    let d = deployed().await;
    let volume = d.volume().await;
    let volume_id = volume.volume_id().expect("volume id").to_owned();
    assert_eq!(volume.volume_type(), Some(&VolumeType::Gp3));
    d.ec2
        .modify_volume()
        .volume_id(&volume_id)
        .volume_type(VolumeType::Gp2)
        .send()
        .await
        .expect("modify the volume type by hand");

    let plan = d.drift();
    let found = change(&plan, "~", VOLUME);
    assert!(found.contains(&format!("({volume_id})")), "{found}");
    expect_line(&found, r#"~ type = "gp2" -> "gp3""#);
    assert!(!found.contains("size_gb"), "{found}");
    expect_summary(&plan, 0, 1, 0);

    d.world.reset_requests();
    d.repair();
    assert_eq!(d.mutating_calls(), ["ModifyVolume"]);
    let volume = d.volume().await;
    assert_eq!(volume.volume_id(), Some(volume_id.as_str()));
    assert_eq!(volume.volume_type(), Some(&VolumeType::Gp3));
    assert_eq!(volume.size(), Some(20));
    d.expect_in_sync();
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_volume_grown_by_hand_is_a_plan_error() {
    let d = deployed().await;
    let volume_id = d.volume().await.volume_id().expect("id").to_owned();
    d.ec2
        .modify_volume()
        .volume_id(&volume_id)
        .size(30)
        .volume_type(VolumeType::Gp2)
        .send()
        .await
        .expect("grow the volume by hand");

    let text = std::fs::read_to_string(&d.spec).expect("read spec");
    let at =
        format!("workshop.yaml:{}: {VOLUME}:", value_pos(&text, "size_gb"));
    d.world.reset_requests();
    for args in [["plan", "--detailed-exitcode"], ["apply", "--auto-approve"]] {
        let spec = d.spec.to_str().expect("utf-8 path");
        let run =
            common::hubform(&d.world, &[args[0], args[1], spec]).expect_code(1);
        assert!(
            run.stderr.contains(&at),
            "{} must point at {at}:\n{}",
            args[0],
            run.stderr
        );
        assert!(
            run.stderr.contains("size_gb cannot shrink from 30 to 20"),
            "{} must say it cannot shrink:\n{}",
            args[0],
            run.stderr
        );
    }
    assert_eq!(d.mutating_calls(), Vec::<String>::new());
    let volume = d.volume().await;
    assert_eq!(volume.size(), Some(30), "nothing was changed");
}

// ---- Elastic IP --------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn drift_elastic_ip_disassociated_is_reassociated() {
    let d = deployed().await;
    let address = d.address().await;
    let allocation = address.allocation_id().expect("allocation").to_owned();
    d.ec2
        .disassociate_address()
        .association_id(address.association_id().expect("associated"))
        .send()
        .await
        .expect("disassociate by hand");
    assert!(d
        .address()
        .await
        .instance_id()
        .filter(|i| !i.is_empty())
        .is_none());

    let plan = d.drift();
    let found = change(&plan, "~", ADDRESS);
    assert!(found.contains(&format!("({allocation})")), "{found}");
    expect_line(&found, &format!("~ instance = (none) -> {INSTANCE}"));
    expect_summary(&plan, 0, 1, 0);

    d.world.reset_requests();
    d.repair();
    assert_eq!(d.mutating_calls(), ["AssociateAddress"]);
    d.expect_address_on_instance().await;
    assert_eq!(d.address().await.allocation_id(), Some(allocation.as_str()));
    d.expect_in_sync();
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_elastic_ip_released_is_allocated_again() {
    let d = deployed().await;
    let old = d.address().await;
    let old_allocation = old.allocation_id().expect("allocation").to_owned();
    d.ec2
        .release_address()
        .allocation_id(&old_allocation)
        .send()
        .await
        .expect("release by hand");
    assert!(d.addresses().await.is_empty());

    let plan = d.drift();
    let found = change(&plan, "+", ADDRESS);
    expect_line(&found, &format!("+ instance = {INSTANCE}"));
    expect_summary(&plan, 1, 0, 0);

    d.world.reset_requests();
    d.repair();
    assert_eq!(d.mutating_calls(), ["AllocateAddress", "AssociateAddress"]);
    d.expect_address_on_instance().await;
    let new = d.address().await;
    assert_ne!(new.allocation_id(), Some(old_allocation.as_str()));
    assert_eq!(tag(new.tags(), "hubform:workshop"), Some(WORKSHOP));
    d.expect_in_sync();
}

// ---- key pair ----------------------------------------------------------

/// The OpenSSH public key of a private key file, as `ssh-keygen -y`
/// derives it: type and key, without the comment.
fn public_key_of(file: &std::path::Path) -> String {
    let out = std::process::Command::new("ssh-keygen")
        .arg("-y")
        .arg("-f")
        .arg(file)
        .output()
        .expect("run ssh-keygen");
    assert!(
        out.status.success(),
        "ssh-keygen -y failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    key_words(&String::from_utf8_lossy(&out.stdout))
}

/// The type and key of an OpenSSH public key line.
fn key_words(line: &str) -> String {
    line.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_key_pair_deleted_is_imported_from_the_key_file() {
    let d = deployed().await;
    let file = d.world.dir().join(KEY_FILE);
    let before = std::fs::read(&file).expect("the key file");
    let public = public_key_of(&file);
    let pairs = d.key_pairs(KEY_NAME).await;
    assert_eq!(pairs.len(), 1);
    assert_eq!(key_words(pairs[0].public_key().unwrap_or_default()), public);

    d.ec2
        .delete_key_pair()
        .key_name(KEY_NAME)
        .send()
        .await
        .expect("delete the key pair by hand");
    assert!(d.key_pairs(KEY_NAME).await.is_empty());

    let plan = d.drift();
    change(&plan, "+", KEY_PAIR);
    expect_summary(&plan, 1, 0, 0);

    d.world.reset_requests();
    d.repair();
    assert_eq!(d.mutating_calls(), ["ImportKeyPair"]);
    assert_eq!(
        std::fs::read(&file).expect("the key file"),
        before,
        "the key file is unchanged"
    );
    let pairs = d.key_pairs(KEY_NAME).await;
    assert_eq!(pairs.len(), 1, "{pairs:#?}");
    assert_eq!(
        key_words(pairs[0].public_key().unwrap_or_default()),
        public,
        "AWS holds the key file's public key"
    );
    assert_eq!(tag(pairs[0].tags(), "hubform:id"), Some(KEY_PAIR));
    d.expect_in_sync();
}

// ---- IAM ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn drift_policy_detached_by_hand_is_attached_again() {
    let d = deployed().await;
    d.iam
        .detach_group_policy()
        .group_name("EC2Admins")
        .policy_arn(ADMIN_POLICY)
        .send()
        .await
        .expect("detach by hand");
    assert!(d.group_policies("EC2Admins").await.is_empty());

    let plan = d.drift();
    let found = change(&plan, "~", IAM_GROUP);
    expect_line(&found, "~ policies = [");
    expect_line(&found, &format!(r#"+ "{ADMIN_POLICY}","#));
    expect_summary(&plan, 0, 1, 0);

    d.world.reset_requests();
    d.repair();
    assert_eq!(d.mutating_calls(), ["AttachGroupPolicy"]);
    assert_eq!(
        d.group_policies("EC2Admins").await,
        BTreeSet::from([ADMIN_POLICY.to_owned()])
    );
    d.expect_in_sync();
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_policy_attached_by_hand_is_detached() {
    let d = deployed().await;
    d.iam
        .attach_group_policy()
        .group_name("EC2Admins")
        .policy_arn(READ_ONLY_POLICY)
        .send()
        .await
        .expect("attach by hand");

    let plan = d.drift();
    let found = change(&plan, "~", IAM_GROUP);
    expect_line(&found, "~ policies = [");
    expect_line(&found, &format!(r#"- "{READ_ONLY_POLICY}","#));
    expect_line(&found, &format!(r#""{ADMIN_POLICY}","#));
    expect_summary(&plan, 0, 1, 0);

    d.world.reset_requests();
    d.repair();
    assert_eq!(d.mutating_calls(), ["DetachGroupPolicy"]);
    assert_eq!(
        d.group_policies("EC2Admins").await,
        BTreeSet::from([ADMIN_POLICY.to_owned()])
    );
    d.expect_in_sync();
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_user_removed_from_group_is_added_again() {
    let d = deployed().await;
    d.iam
        .remove_user_from_group()
        .group_name("EC2Admins")
        .user_name("ec2-admin")
        .send()
        .await
        .expect("remove by hand");
    assert!(d.user_groups("ec2-admin").await.is_empty());

    let plan = d.drift();
    let found = change(&plan, "~", IAM_USER);
    expect_line(&found, "~ groups = [");
    expect_line(&found, r#"+ "EC2Admins","#);
    expect_summary(&plan, 0, 1, 0);

    d.world.reset_requests();
    d.repair();
    assert_eq!(d.mutating_calls(), ["AddUserToGroup"]);
    assert_eq!(
        d.user_groups("ec2-admin").await,
        BTreeSet::from(["EC2Admins".to_owned()])
    );
    d.expect_in_sync();
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_user_added_to_another_group_is_removed_from_it() {
    let d = deployed().await;
    d.iam
        .create_group()
        .group_name("Extra")
        .send()
        .await
        .expect("create a group by hand");
    d.iam
        .add_user_to_group()
        .group_name("Extra")
        .user_name("ec2-admin")
        .send()
        .await
        .expect("add by hand");

    let plan = d.drift();
    let found = change(&plan, "~", IAM_USER);
    expect_line(&found, "~ groups = [");
    expect_line(&found, r#"- "Extra","#);
    expect_line(&found, r#""EC2Admins","#);
    assert!(!plan.contains("iam_group.Extra"), "{plan}");
    expect_summary(&plan, 0, 1, 0);

    d.world.reset_requests();
    d.repair();
    assert_eq!(d.mutating_calls(), ["RemoveUserFromGroup"]);
    assert_eq!(
        d.user_groups("ec2-admin").await,
        BTreeSet::from(["EC2Admins".to_owned()])
    );
    let extra = d
        .iam
        .get_group()
        .group_name("Extra")
        .send()
        .await
        .expect("the hand-made group is left alone");
    assert!(extra.users().is_empty(), "{extra:#?}");
    assert_eq!(extra.group().map(|g| g.path()), Some("/"));
    d.expect_in_sync();
}
