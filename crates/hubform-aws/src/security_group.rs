//! Security groups: exact rule sets, rules added and revoked in place; a
//! new description replaces the group by a swap, because AWS cannot
//! change a description and names are unique in a VPC.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{IpPermission, IpRange, Ipv6Range, ResourceType};
use hubform_core::model::{Kind, Value};
use hubform_core::plan::{Action, Change};
use hubform_core::provider::{Failure, Progress};
use hubform_core::rule::Rule;

use crate::error::{checked, failure, is};
use crate::observe::describe_instances;
use crate::tags::{self, filter};
use crate::Aws;

/// Errors that mean a rule is already as wanted.
const ALREADY_THERE: &[&str] = &["InvalidPermission.Duplicate"];
const ALREADY_GONE: &[&str] = &["InvalidPermission.NotFound"];

/// The rules the spec wants in `direction`; `None` when it does not
/// manage that direction (egress without an `egress` list).
fn wanted(change: &Change, direction: &str) -> Option<BTreeSet<String>> {
    let desired = change.desired.as_ref()?;
    desired
        .attrs
        .contains_key(direction)
        .then(|| change.wanted_items(direction))
}

pub async fn execute(
    aws: &Aws,
    change: &Change,
    progress: &dyn Progress,
) -> Result<String, Failure> {
    match change.action {
        Action::Create => create(aws, change).await,
        Action::Update => {
            let group_id = aws.cloud_id(&change.id)?;
            sync_rules(aws, change, &group_id).await?;
            Ok(group_id)
        }
        Action::Replace => swap(aws, change, progress).await,
        Action::Delete => {
            let group_id = aws.cloud_id(&change.id)?;
            delete(aws, &group_id).await?;
            aws.forget(&change.id);
            Ok(group_id)
        }
    }
}

async fn create(aws: &Aws, change: &Change) -> Result<String, Failure> {
    let description = change
        .desired
        .as_ref()
        .and_then(|d| d.text("description"))
        .unwrap_or_default();
    let mut tag_list = tags::owner_tags(&aws.workshop, &change.id);
    tag_list.push(tags::tag("Name", &change.id.key));
    let out = aws
        .ec2
        .create_security_group()
        .group_name(&change.id.key)
        .description(description)
        .tag_specifications(tags::spec(ResourceType::SecurityGroup, tag_list))
        .send()
        .await
        .map_err(|e| failure("CreateSecurityGroup", &e))?;
    let group_id = out.group_id().unwrap_or_default().to_owned();
    hubform_core::pause::pause_point("after-create-security-group");
    aws.remember(&change.id, &group_id);

    // A new group comes with "all traffic out"; that is the live egress.
    let mut fresh = change.clone();
    let mut live = hubform_core::model::Live::new(&group_id);
    live.attrs.insert(
        "egress".into(),
        Value::set(["all from 0.0.0.0/0".to_owned()]),
    );
    fresh.live = Some(live);
    sync_rules(aws, &fresh, &group_id).await?;
    Ok(group_id)
}

/// Authorizes missing rules and revokes extra ones, ingress and (when the
/// spec manages it) egress.
async fn sync_rules(
    aws: &Aws,
    change: &Change,
    group_id: &str,
) -> Result<(), Failure> {
    for direction in ["ingress", "egress"] {
        let Some(want) = wanted(change, direction) else {
            continue;
        };
        let have = change.live_items(direction);
        let add: Vec<Rule> = parse(want.difference(&have))?;
        let remove: Vec<Rule> = parse(have.difference(&want))?;
        let egress = direction == "egress";
        if !add.is_empty() {
            authorize(aws, group_id, egress, &add).await?;
        }
        if !remove.is_empty() {
            revoke(aws, group_id, egress, &remove).await?;
        }
    }
    Ok(())
}

fn parse<'a>(
    texts: impl Iterator<Item = &'a String>,
) -> Result<Vec<Rule>, Failure> {
    texts
        .map(|t| t.parse().map_err(|e| Failure::new(format!("{e}"))))
        .collect()
}

fn permission(rule: &Rule) -> IpPermission {
    let mut p = IpPermission::builder().ip_protocol(rule.aws_protocol());
    if rule.protocol != "all" {
        p = p.from_port(rule.from_port).to_port(rule.to_port);
    }
    if rule.is_ipv6() {
        p = p.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(&rule.cidr).build());
    } else {
        p = p.ip_ranges(IpRange::builder().cidr_ip(&rule.cidr).build());
    }
    p.build()
}

/// Authorizes `rules` in one call. AWS refuses the whole call when one
/// rule is already there (added by hand since the plan, or by a run that
/// was killed midway): then they are added one at a time, each rule
/// already there taken as done.
async fn authorize(
    aws: &Aws,
    group_id: &str,
    egress: bool,
    rules: &[Rule],
) -> Result<(), Failure> {
    let one_call = authorize_call(aws, group_id, egress, rules).await;
    match one_call {
        Err(e) if e.is(ALREADY_THERE) && rules.len() > 1 => {
            for rule in rules {
                let single = std::slice::from_ref(rule);
                match authorize_call(aws, group_id, egress, single).await {
                    Err(e) if !e.is(ALREADY_THERE) => return Err(e.failure),
                    _ => {}
                }
            }
            Ok(())
        }
        Err(e) if !e.is(ALREADY_THERE) => Err(e.failure),
        _ => Ok(()),
    }
}

/// One `AuthorizeSecurityGroupIngress` (or `…Egress`) call for `rules`,
/// waiting out a group created a moment ago that is not visible yet.
async fn authorize_call(
    aws: &Aws,
    group_id: &str,
    egress: bool,
    rules: &[Rule],
) -> Result<(), crate::error::CallError> {
    let permissions: Vec<IpPermission> = rules.iter().map(permission).collect();
    aws.eventually(&["InvalidGroup.NotFound"], || async {
        let permissions = Some(permissions.clone());
        if egress {
            let sent = aws
                .ec2
                .authorize_security_group_egress()
                .group_id(group_id)
                .set_ip_permissions(permissions)
                .send()
                .await;
            checked("AuthorizeSecurityGroupEgress", sent).map(drop)
        } else {
            let sent = aws
                .ec2
                .authorize_security_group_ingress()
                .group_id(group_id)
                .set_ip_permissions(permissions)
                .send()
                .await;
            checked("AuthorizeSecurityGroupIngress", sent).map(drop)
        }
    })
    .await
}

async fn revoke(
    aws: &Aws,
    group_id: &str,
    egress: bool,
    rules: &[Rule],
) -> Result<(), Failure> {
    for rule in rules {
        let p = permission(rule);
        let result = if egress {
            let sent = aws
                .ec2
                .revoke_security_group_egress()
                .group_id(group_id)
                .ip_permissions(p)
                .send()
                .await;
            checked("RevokeSecurityGroupEgress", sent).map(drop)
        } else {
            let sent = aws
                .ec2
                .revoke_security_group_ingress()
                .group_id(group_id)
                .ip_permissions(p)
                .send()
                .await;
            checked("RevokeSecurityGroupIngress", sent).map(drop)
        };
        // AWS answers success with UnknownIpPermissions for a rule that is
        // not there; other implementations answer NotFound. Both: gone.
        match result {
            Err(e) if !e.is(ALREADY_GONE) => return Err(e.failure),
            _ => {}
        }
    }
    Ok(())
}

/// Deletes a group, waiting out instances that are still shutting down.
async fn delete(aws: &Aws, group_id: &str) -> Result<(), Failure> {
    let start = std::time::Instant::now();
    loop {
        let result = aws
            .ec2
            .delete_security_group()
            .group_id(group_id)
            .send()
            .await;
        match result {
            Ok(_) => return Ok(()),
            Err(e) if is(&e, &["InvalidGroup.NotFound"]) => return Ok(()),
            Err(e)
                if is(&e, &["DependencyViolation"])
                    && start.elapsed() < aws.settings.wait_timeout =>
            {
                tokio::time::sleep(aws.settings.poll).await;
            }
            Err(e) => return Err(failure("DeleteSecurityGroup", &e)),
        }
    }
}

/// Replaces a group whose description changed: its instances move to the
/// VPC's default group, the group is deleted and created anew, and the
/// instances move back. A crash midway leaves instances in the default
/// group, which the next plan shows as drift and repairs.
async fn swap(
    aws: &Aws,
    change: &Change,
    progress: &dyn Progress,
) -> Result<String, Failure> {
    let old_id = aws.cloud_id(&change.id)?;
    let vpc = change
        .live
        .as_ref()
        .and_then(|l| l.get_extra("vpc"))
        .unwrap_or_default()
        .to_owned();
    let default_id = default_group(aws, &vpc).await?;

    let users =
        describe_instances(aws, vec![filter("instance.group-id", &[&old_id])])
            .await?;
    let mut moved = Vec::new();
    for i in &users {
        let Some(instance_id) = i.instance_id() else {
            continue;
        };
        let groups: Vec<String> = i
            .security_groups()
            .iter()
            .filter_map(|g| g.group_id())
            .filter(|g| *g != old_id)
            .map(str::to_owned)
            .collect();
        let had_default = groups.contains(&default_id);
        let mut parked = groups.clone();
        if parked.is_empty() {
            parked.push(default_id.clone());
        }
        set_groups(aws, instance_id, &parked).await?;
        moved.push((instance_id.to_owned(), groups, had_default));
    }
    progress.report(
        &change.id,
        &format!("moved {} instance(s) out of {old_id}", moved.len()),
    );

    delete(aws, &old_id).await?;
    let mut fresh = change.clone();
    fresh.live = None;
    let new_id = create(aws, &fresh).await?;

    for (instance_id, mut groups, had_default) in moved {
        if !had_default {
            groups.retain(|g| *g != default_id);
        }
        groups.push(new_id.clone());
        set_groups(aws, &instance_id, &groups).await?;
    }
    Ok(format!("{old_id} -> {new_id}"))
}

async fn default_group(aws: &Aws, vpc: &str) -> Result<String, Failure> {
    let out = aws
        .ec2
        .describe_security_groups()
        .filters(filter("vpc-id", &[vpc]))
        .filters(filter("group-name", &["default"]))
        .send()
        .await
        .map_err(|e| failure("DescribeSecurityGroups", &e))?;
    out.security_groups()
        .first()
        .and_then(|g| g.group_id())
        .map(str::to_owned)
        .ok_or_else(|| {
            Failure::new(format!("the VPC {vpc} has no default security group"))
        })
}

/// Sets an instance's security groups by id.
pub async fn set_groups(
    aws: &Aws,
    instance_id: &str,
    group_ids: &[String],
) -> Result<(), Failure> {
    aws.ec2
        .modify_instance_attribute()
        .instance_id(instance_id)
        .set_groups(Some(group_ids.to_vec()))
        .send()
        .await
        .map_err(|e| failure("ModifyInstanceAttribute", &e))?;
    Ok(())
}

/// The ids of this workshop's groups by name, for instances.
pub fn group_ids(aws: &Aws, names: &[String]) -> Result<Vec<String>, Failure> {
    names
        .iter()
        .map(|n| {
            aws.cloud_id(&hubform_core::model::ResourceId::new(
                Kind::SecurityGroup,
                n,
            ))
        })
        .collect()
}
