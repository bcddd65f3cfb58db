//! Discovery, kind by kind: the one describe call of each kind (filtered
//! by the workshop tag, IAM read whole) and what its objects mean to the
//! planner. [`crate::fleet`] issues the calls for one workshop or many and
//! splits the results; [`observe`] is its one-workshop case.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{
    Address, Filter, Instance, IpPermission, KeyPairInfo, SecurityGroup, Volume,
};
use hubform_core::graph::{selection_digest, Desired};
use hubform_core::model::{Live, Note, Observed, ResourceId, Value};
use hubform_core::provider::Failure;
use hubform_core::rule::Rule;

use crate::error::failure;
use crate::tags::{self, filter};
use crate::Aws;

mod iam;
mod images;

pub use iam::{describe_iam, iam_lives, IamDetails};
pub use images::{image_lives, lookup_images, newer_image_notes, ImageQuery};

/// The image a lookup selected.
#[derive(Debug, Clone)]
pub struct FoundImage {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// When it was created, as AWS writes it.
    pub created: String,
}

/// States in which an instance still exists.
pub const LIVE_STATES: [&str; 5] =
    ["pending", "running", "stopping", "stopped", "shutting-down"];

/// Observes one workshop: the fleet's discovery with a fleet of one, so
/// that both make the same calls.
pub async fn observe(
    aws: &Aws,
    desired: &Desired,
) -> Result<Observed, Failure> {
    crate::fleet::observe(&[(aws, desired)])
        .await
        .pop()
        .unwrap_or_else(|| {
            Err(Failure::new("internal: the workshop was not observed"))
        })
}

/// Adds everything `part` found to `into`.
pub fn merge(into: &mut Observed, part: Observed) {
    into.live.extend(part.live);
    into.lookalikes.extend(part.lookalikes);
    into.conflicts.extend(part.conflicts);
    into.notes.extend(part.notes);
}

/// Adds a live object, noting a second object that claims the same id.
fn insert(observed: &mut Observed, id: ResourceId, live: Live) {
    if let Some(first) = observed.live.get(&id) {
        observed.notes.push(Note {
            id: id.clone(),
            text: format!(
                "two live objects carry this id ({} and {}); hubform \
                 manages the first, remove the other by hand",
                first.cloud_id, live.cloud_id
            ),
        });
        return;
    }
    observed.live.insert(id, live);
}

/// Key pairs matching `filter`, with their public keys.
pub async fn describe_key_pairs(
    aws: &Aws,
    filter: Filter,
) -> Result<Vec<KeyPairInfo>, Failure> {
    let out = aws
        .ec2
        .describe_key_pairs()
        .filters(filter)
        .include_public_key(true)
        .send()
        .await
        .map_err(|e| failure("DescribeKeyPairs", &e))?;
    Ok(out.key_pairs().to_vec())
}

/// A workshop's key pairs in the planner's terms, with notes on their
/// local private key files.
pub fn key_pair_lives(
    aws: &Aws,
    desired: &Desired,
    key_pairs: &[KeyPairInfo],
) -> Observed {
    let mut observed = Observed::default();
    for k in key_pairs {
        let Some(id) = tags::resource_id(k.tags()) else {
            continue;
        };
        let name = k.key_name().unwrap_or_default();
        let live = Live::new(k.key_pair_id().unwrap_or(name))
            .extra("name", name)
            .extra("public_key", k.public_key().unwrap_or_default());
        key_file_notes(aws, desired, &id, &live, &mut observed);
        insert(&mut observed, id, live);
    }
    observed
}

fn key_file_notes(
    aws: &Aws,
    desired: &Desired,
    id: &ResourceId,
    live: &Live,
    observed: &mut Observed,
) {
    let Some(file) = desired.get(id).and_then(|r| r.text("private_key_file"))
    else {
        return;
    };
    let path = aws.resolve(file);
    match crate::key_pair::public_key_of(&path) {
        Ok(None) => observed.notes.push(Note {
            id: id.clone(),
            text: format!(
                "the private key file {file} is missing; the key pair \
                 still exists in AWS, but SSH to its servers will fail: \
                 restore the file from a backup (a new key pair would only \
                 reach new servers: running ones keep the key they were \
                 launched with)"
            ),
        }),
        Ok(Some(public)) => {
            let live_key = live.get_extra("public_key").unwrap_or_default();
            if !live_key.is_empty() && !same_key(&public, live_key) {
                observed.notes.push(Note {
                    id: id.clone(),
                    text: format!(
                        "the private key file {file} does not match the \
                         key pair in AWS"
                    ),
                });
            }
        }
        Err(e) => observed.notes.push(Note {
            id: id.clone(),
            text: e.message,
        }),
    }
}

/// Compares two OpenSSH public keys by type and key, ignoring comments.
fn same_key(a: &str, b: &str) -> bool {
    let words = |s: &str| {
        s.split_whitespace()
            .take(2)
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    words(a) == words(b)
}

/// Security groups matching `filter`.
pub async fn describe_security_groups(
    aws: &Aws,
    filter: Filter,
) -> Result<Vec<SecurityGroup>, Failure> {
    let out = aws
        .ec2
        .describe_security_groups()
        .filters(filter)
        .send()
        .await
        .map_err(|e| failure("DescribeSecurityGroups", &e))?;
    Ok(out.security_groups().to_vec())
}

/// A workshop's security groups in the planner's terms; egress rules only
/// where the spec manages them.
pub fn security_group_lives(
    desired: &Desired,
    groups: &[SecurityGroup],
) -> Observed {
    let mut observed = Observed::default();
    for g in groups {
        let Some(id) = tags::resource_id(g.tags()) else {
            continue;
        };
        let mut live = Live::new(g.group_id().unwrap_or_default())
            .attr("description", Value::str(g.description().unwrap_or("")))
            .attr("ingress", Value::Set(rules(g.ip_permissions())))
            .extra("vpc", g.vpc_id().unwrap_or_default())
            .extra("name", g.group_name().unwrap_or_default());
        let manages_egress = desired
            .get(&id)
            .is_some_and(|r| r.attrs.contains_key("egress"));
        if manages_egress {
            live = live
                .attr("egress", Value::Set(rules(g.ip_permissions_egress())));
        }
        insert(&mut observed, id, live);
    }
    observed
}

/// AWS permissions as canonical rules, one per address block.
pub fn rules(permissions: &[IpPermission]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for p in permissions {
        let protocol = p.ip_protocol().unwrap_or("-1");
        let cidrs = p
            .ip_ranges()
            .iter()
            .filter_map(|r| r.cidr_ip())
            .chain(p.ipv6_ranges().iter().filter_map(|r| r.cidr_ipv6()));
        for cidr in cidrs {
            let rule =
                Rule::from_aws(protocol, p.from_port(), p.to_port(), cidr);
            out.insert(rule.to_string());
        }
    }
    out
}

/// Instances matching `filters` that still exist.
pub async fn describe_instances(
    aws: &Aws,
    filters: Vec<Filter>,
) -> Result<Vec<Instance>, Failure> {
    let out = aws
        .ec2
        .describe_instances()
        .set_filters(Some(filters))
        .filters(filter("instance-state-name", &LIVE_STATES))
        .send()
        .await
        .map_err(|e| failure("DescribeInstances", &e))?;
    Ok(out
        .reservations()
        .iter()
        .flat_map(|r| r.instances().iter().cloned())
        .collect())
}

/// A workshop's instances in the planner's terms.
pub fn instance_lives(
    aws: &Aws,
    desired: &Desired,
    instances: &[Instance],
) -> Observed {
    let mut observed = Observed::default();
    for i in instances {
        let Some(id) = tags::resource_id(i.tags()) else {
            continue;
        };
        let live = instance_live(aws, desired, &id, i);
        insert(&mut observed, id, live);
    }
    observed
}

/// An instance in the planner's terms.
pub fn instance_live(
    _aws: &Aws,
    desired: &Desired,
    id: &ResourceId,
    i: &Instance,
) -> Live {
    let t = i.tags();
    let wanted = desired.get(id);
    let launched_from = tags::value(t, tags::IMAGE).unwrap_or_default();

    // The image is compared by its selection: the same selection shows the
    // desired text, another one shows what the instance was launched from.
    let selection_tag = tags::value(t, tags::IMAGE_SELECTION);
    let wanted_selection = wanted.and_then(|r| r.text("image"));
    let image = match (selection_tag, wanted_selection) {
        (Some(tag), Some(want)) if tag == selection_digest(want) => {
            want.to_owned()
        }
        _ => format!("{launched_from} (another selection)"),
    };
    let groups = i.security_groups().iter().filter_map(|g| g.group_name());
    let state = i
        .state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default();

    let mut live = Live::new(i.instance_id().unwrap_or_default())
        .attr("name", Value::str(tags::value(t, "Name").unwrap_or("")))
        .attr(
            "type",
            Value::str(i.instance_type().map(|t| t.as_str()).unwrap_or("")),
        )
        .attr("image", Value::str(image))
        .attr("key_pair", Value::str(i.key_name().unwrap_or("")))
        .attr("security_groups", Value::set(groups))
        .attr(
            "root_device",
            Value::str(i.root_device_name().unwrap_or("")),
        )
        .extra("image_id", launched_from)
        .extra("public_ip", i.public_ip_address().unwrap_or_default())
        .extra(
            "host_key",
            tags::value(t, tags::HOST_KEY).unwrap_or_default(),
        );
    if wanted.is_some_and(|r| r.attrs.contains_key("tags")) {
        live = live.attr("tags", Value::set(tags::user_tags(t)));
    }
    if wanted.is_some_and(|r| r.attrs.contains_key("state")) {
        live = live.attr("state", Value::str(declared_state(&state)));
    }
    live.extra("state", state)
}

/// The declared state an instance is in or on its way to: `pending` is
/// `running`, `stopping` is `stopped`.
fn declared_state(state: &str) -> &str {
    match state {
        "pending" => "running",
        "stopping" => "stopped",
        other => other,
    }
}

/// Volumes matching `filter`.
pub async fn describe_volumes(
    aws: &Aws,
    filter: Filter,
) -> Result<Vec<Volume>, Failure> {
    let out = aws
        .ec2
        .describe_volumes()
        .filters(filter)
        .send()
        .await
        .map_err(|e| failure("DescribeVolumes", &e))?;
    Ok(out.volumes().to_vec())
}

/// A workshop's volumes in the planner's terms.
pub fn volume_lives(volumes: &[Volume]) -> Observed {
    let mut observed = Observed::default();
    for v in volumes {
        let Some(id) = tags::resource_id(v.tags()) else {
            continue;
        };
        let live = Live::new(v.volume_id().unwrap_or_default())
            .attr("size_gb", Value::Int(i64::from(v.size().unwrap_or(0))))
            .attr(
                "type",
                Value::str(v.volume_type().map(|t| t.as_str()).unwrap_or("")),
            );
        insert(&mut observed, id, live);
    }
    observed
}

/// Elastic IPs matching `filter`.
pub async fn describe_addresses(
    aws: &Aws,
    filter: Filter,
) -> Result<Vec<Address>, Failure> {
    let out = aws
        .ec2
        .describe_addresses()
        .filters(filter)
        .send()
        .await
        .map_err(|e| failure("DescribeAddresses", &e))?;
    Ok(out.addresses().to_vec())
}

/// A workshop's Elastic IPs in the planner's terms, their associations
/// read as references to the workshop's `instances`.
pub fn address_lives(
    addresses: &[Address],
    instances: &[Instance],
) -> Observed {
    let by_instance: BTreeMap<&str, ResourceId> = instances
        .iter()
        .filter_map(|i| Some((i.instance_id()?, tags::resource_id(i.tags())?)))
        .collect();
    let mut observed = Observed::default();
    for a in addresses {
        let Some(id) = tags::resource_id(a.tags()) else {
            continue;
        };
        // moto shows an unassociated address with empty strings.
        let instance = a.instance_id().filter(|s| !s.is_empty());
        let association = a.association_id().filter(|s| !s.is_empty());
        let target = match instance {
            None => Value::None,
            Some(i) => match by_instance.get(i) {
                Some(rid) => Value::Ref(rid.clone()),
                None => Value::str(i),
            },
        };
        let live = Live::new(a.allocation_id().unwrap_or_default())
            .attr("instance", target)
            .extra("public_ip", a.public_ip().unwrap_or_default())
            .extra("association", association.unwrap_or_default());
        insert(&mut observed, id, live);
    }
    observed
}
