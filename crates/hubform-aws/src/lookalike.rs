//! Untagged lookalikes: before a create, one more call per kind looks for
//! an object of the same name that carries no hubform tags (made by hand,
//! or by the manual's script), which apply must not twin. The search runs
//! once per kind for a whole fleet, only for the kinds with creates.

use hubform_core::graph::Desired;
use hubform_core::model::{Kind, Observed, Resource, ResourceId};
use hubform_core::provider::Failure;

use crate::observe::{
    describe_instances, describe_key_pairs, describe_security_groups,
};
use crate::tags::{self, filter};
use crate::Aws;

/// A resource a workshop would create, by its index in the fleet, and the
/// name a twin would carry.
struct Missing {
    workshop: usize,
    id: ResourceId,
    name: String,
}

/// A lookalike found for one workshop's resource.
struct Found {
    workshop: usize,
    id: ResourceId,
    text: String,
}

/// Adds to each observed workshop of `fleet` the untagged objects named
/// like a resource it would create.
pub async fn look_for(
    client: &Aws,
    fleet: &[(&Aws, &Desired)],
    results: &mut [Result<Observed, Failure>],
) -> Result<(), Failure> {
    let mut missing = Vec::new();
    for (n, ((_, desired), result)) in fleet.iter().zip(&*results).enumerate() {
        if let Ok(observed) = result {
            missing.extend(missing_of(n, desired, observed));
        }
    }

    let (keys, groups, servers) = tokio::join!(
        key_pairs(client, &missing),
        security_groups(client, &missing),
        instances(client, &missing),
    );
    for found in keys?.into_iter().chain(groups?).chain(servers?) {
        if let Some(Ok(observed)) = results.get_mut(found.workshop) {
            observed.lookalikes.insert(found.id, found.text);
        }
    }
    Ok(())
}

/// The key pairs, security groups and instances a workshop would create.
fn missing_of(
    workshop: usize,
    desired: &Desired,
    observed: &Observed,
) -> Vec<Missing> {
    let name = |r: &Resource| match r.id.kind {
        Kind::Instance => r.text("name").map(str::to_owned),
        _ => Some(r.id.key.clone()),
    };
    [Kind::KeyPair, Kind::SecurityGroup, Kind::Instance]
        .into_iter()
        .flat_map(|kind| desired.of_kind(kind))
        .filter(|r| !observed.live.contains_key(&r.id))
        .filter_map(|r| {
            Some(Missing {
                workshop,
                id: r.id.clone(),
                name: name(r)?,
            })
        })
        .collect()
}

/// The names of the missing resources of `kind`, each once.
fn names(missing: &[Missing], kind: Kind) -> Vec<&str> {
    let mut names: Vec<&str> = missing
        .iter()
        .filter(|m| m.id.kind == kind)
        .map(|m| m.name.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// A lookalike named `name` for every missing resource of `kind` with
/// that name: `text` says what was found and what to do by hand, and
/// the note ends with the import that adopts it (`aws_id`) instead.
fn found_for(
    missing: &[Missing],
    kind: Kind,
    name: &str,
    text: &str,
    aws_id: &str,
) -> Vec<Found> {
    missing
        .iter()
        .filter(|m| m.id.kind == kind && m.name == name)
        .map(|m| Found {
            workshop: m.workshop,
            id: m.id.clone(),
            text: format!(
                "{text}, or adopt it as the spec's {}: `hubform import \
                 SPEC {} {aws_id}`",
                m.id, m.id
            ),
        })
        .collect()
}

async fn key_pairs(
    client: &Aws,
    missing: &[Missing],
) -> Result<Vec<Found>, Failure> {
    let names = names(missing, Kind::KeyPair);
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let found = describe_key_pairs(client, filter("key-name", &names)).await?;
    let mut out = Vec::new();
    for k in &found {
        let name = k.key_name().unwrap_or_default();
        let text = format!(
            "a key pair named {name} ({}) exists without hubform's tags; \
             apply will not create a twin: rename or delete it by hand",
            k.key_pair_id().unwrap_or("?")
        );
        out.extend(found_for(missing, Kind::KeyPair, name, &text, name));
    }
    Ok(out)
}

async fn security_groups(
    client: &Aws,
    missing: &[Missing],
) -> Result<Vec<Found>, Failure> {
    let names = names(missing, Kind::SecurityGroup);
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let found =
        describe_security_groups(client, filter("group-name", &names)).await?;
    let mut out = Vec::new();
    for g in &found {
        let name = g.group_name().unwrap_or_default();
        let group_id = g.group_id().unwrap_or("?");
        let text = format!(
            "a security group named {name} ({group_id}) exists without \
             hubform's tags; apply will not create a twin: delete it by \
             hand, name this group differently in the spec"
        );
        out.extend(found_for(
            missing,
            Kind::SecurityGroup,
            name,
            &text,
            group_id,
        ));
    }
    Ok(out)
}

async fn instances(
    client: &Aws,
    missing: &[Missing],
) -> Result<Vec<Found>, Failure> {
    let names = names(missing, Kind::Instance);
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let found =
        describe_instances(client, vec![filter("tag:Name", &names)]).await?;
    let mut out = Vec::new();
    for i in found
        .iter()
        .filter(|i| tags::resource_id(i.tags()).is_none())
    {
        let name = tags::value(i.tags(), "Name").unwrap_or_default();
        let instance_id = i.instance_id().unwrap_or("?");
        let text = format!(
            "an instance named {name} ({instance_id}) exists without \
             hubform's tags; apply will not launch a twin: rename or \
             terminate it by hand"
        );
        out.extend(found_for(
            missing,
            Kind::Instance,
            name,
            &text,
            instance_id,
        ));
    }
    Ok(out)
}
