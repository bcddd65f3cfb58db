//! `hubform import`: adopting an object made outside hubform (by hand, or
//! by the manual's AWS CLI script) as one of the spec's resources.
//!
//! An EC2 object gets the ownership tags hubform writes when it creates
//! one (`hubform:workshop`, `hubform:id`); an IAM group or user moves
//! under the workshop's path `/hubform/<workshop>/`. Discovery then finds
//! it like any object hubform made, and the next plan shows how it
//! differs from the spec. Nothing else about the object changes.
//!
//! Before writing anything the import checks that the resource is in the
//! spec and can be imported, that the object exists, that it is nobody
//! else's (another workshop's tags or path, another resource's id) and
//! that no tagged object already stands for the resource.

use aws_sdk_ec2::types::Tag;
use hubform_core::graph::Desired;
use hubform_core::model::{Kind, ResourceId};
use hubform_core::provider::Failure;

use crate::tags;
use crate::Aws;

mod ec2;
mod iam;

/// What an import found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The object in words, such as `security group workshop-sg
    /// (sg-0123…)`.
    pub object: String,
    /// What was written on it, such as `hubform:workshop=demo`; empty when
    /// it already stood for the resource.
    pub marks: Vec<String>,
    /// Remarks for the lecturer, such as a missing private key file.
    pub notes: Vec<String>,
    /// Untagged objects that belong with this one (an instance's root
    /// volume and Elastic IP), to import next: resource and AWS id.
    pub next: Vec<(ResourceId, String)>,
}

/// An object as found by its AWS id, before anything is written.
struct Found {
    /// The object in words.
    words: String,
    /// The id write calls take (`sg-…`, `key-…`, `eipalloc-…`, a name).
    cloud_id: String,
    /// Its EC2 tags (none for IAM).
    tags: Vec<Tag>,
}

impl Aws {
    /// Adopts the object `aws_id` as the spec's resource `id` (a
    /// `KIND.KEY` already checked with [`resource`]).
    pub async fn import(
        &self,
        desired: &Desired,
        id: &ResourceId,
        aws_id: &str,
    ) -> Result<Imported, Failure> {
        match id.kind {
            Kind::IamGroup | Kind::IamUser => {
                iam::import(self, desired, id, aws_id).await
            }
            _ => ec2::import(self, desired, id, aws_id).await,
        }
    }
}

/// Refuses an object that another workshop or another resource owns,
/// by its tags. `Ok(true)`: it is already this resource's object.
fn check_tags(
    workshop: &str,
    id: &ResourceId,
    found: &Found,
) -> Result<bool, Failure> {
    let owner = tags::value(&found.tags, tags::WORKSHOP);
    let claimed = tags::value(&found.tags, tags::ID);
    match owner {
        None => Ok(false),
        Some(other) if other != workshop => Err(Failure::new(format!(
            "{} belongs to workshop {other} (tag {}={other}{}); hubform \
             does not take objects from another workshop: import it into \
             that workshop's spec, or remove its hubform tags by hand if \
             that workshop is gone",
            found.words,
            tags::WORKSHOP,
            claimed.map_or(String::new(), |c| format!(", {}={c}", tags::ID)),
        ))),
        Some(_) if claimed == Some(&id.to_string()) => Ok(true),
        Some(_) => Err(Failure::new(format!(
            "{} is already this workshop's {}, not {id}",
            found.words,
            claimed.unwrap_or("(no hubform:id)"),
        ))),
    }
}

/// Parses `KIND.KEY` and checks that the spec declares it and that its
/// kind can be imported; the error lists the spec's importable ids
/// closest to what was asked.
pub fn resource(desired: &Desired, text: &str) -> Result<ResourceId, Failure> {
    let Some(id) = ResourceId::parse(text) else {
        let kinds: Vec<&str> = Kind::ALL
            .iter()
            .filter(|k| refusal(**k).is_none())
            .map(|k| k.name())
            .collect();
        return Err(Failure::new(format!(
            "{text:?} is not KIND.KEY, such as security_group.workshop-sg; \
             kinds that can be imported: {}",
            kinds.join(", ")
        )));
    };
    if let Some(why) = refusal(id.kind) {
        return Err(Failure::new(format!("cannot import {id}: {why}")));
    }
    if desired.get(&id).is_none() {
        return Err(Failure::new(format!(
            "the spec declares no {id}; {}",
            similar(desired, &id)
        )));
    }
    Ok(id)
}

/// Why a kind cannot be imported, if it cannot.
fn refusal(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::IamGroup
        | Kind::IamUser
        | Kind::KeyPair
        | Kind::SecurityGroup
        | Kind::Instance
        | Kind::Volume
        | Kind::ElasticIp => None,
        Kind::Image => Some(
            "an image is a lookup that only reads; there is nothing to \
             import (pin an image with `id:` in the spec instead)",
        ),
        Kind::DnsRecord => Some(
            "a Route 53 record cannot carry tags, and hubform already \
             finds it by its name in the zone",
        ),
        Kind::System | Kind::Tljh | Kind::TljhConfig | Kind::Packages => Some(
            "it belongs to the host layer, which hubform reads from the \
                 server itself on every plan; there is nothing to import",
        ),
    }
}

/// The spec's importable ids of the same kind, else those whose key is
/// closest, as a phrase.
fn similar(desired: &Desired, id: &ResourceId) -> String {
    let importable: Vec<&ResourceId> = desired
        .resources
        .keys()
        .filter(|r| refusal(r.kind).is_none())
        .collect();
    let same_kind: Vec<String> = importable
        .iter()
        .filter(|r| r.kind == id.kind)
        .map(|r| r.to_string())
        .collect();
    if !same_kind.is_empty() {
        return format!("it declares {}", same_kind.join(", "));
    }
    let mut ranked: Vec<(usize, String)> = importable
        .iter()
        .map(|r| (distance(&r.key, &id.key), r.to_string()))
        .collect();
    ranked.sort();
    let names: Vec<String> =
        ranked.into_iter().take(5).map(|(_, name)| name).collect();
    if names.is_empty() {
        "it declares nothing that can be imported".to_owned()
    } else {
        format!("closest ids it declares: {}", names.join(", "))
    }
}

/// The edit distance of two words (insertions, deletions, changes).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let change = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = change.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use hubform_core::model::Resource;
    use hubform_core::spec::Pos;

    use super::*;

    fn desired(ids: &[ResourceId]) -> Desired {
        let resources = ids
            .iter()
            .map(|id| Resource::new(id.clone(), Pos::default()))
            .collect();
        Desired::from_resources("w".into(), "r".into(), resources)
            .expect("a graph")
    }

    #[test]
    fn an_id_outside_the_spec_names_the_ones_it_declares() {
        let d = desired(&[
            ResourceId::new(Kind::SecurityGroup, "workshop-sg"),
            ResourceId::new(Kind::KeyPair, "workshop-key"),
        ]);
        let e = resource(&d, "security_group.web").unwrap_err();
        assert!(e.message.contains("security_group.workshop-sg"), "{e}");
        let e = resource(&d, "instance.workshop-sx").unwrap_err();
        assert!(
            e.message.contains(
                "closest ids it declares: security_group.workshop-sg, \
                 key_pair.workshop-key"
            ),
            "{e}"
        );
        assert!(resource(&d, "key_pair.workshop-key").is_ok());
    }

    #[test]
    fn lookups_records_and_host_resources_are_refused() {
        let d = desired(&[
            ResourceId::new(Kind::Image, "jammy"),
            ResourceId::new(Kind::DnsRecord, "hub"),
            ResourceId::new(Kind::Tljh, "hub"),
        ]);
        for (text, why) in [
            ("image.jammy", "lookup"),
            ("dns_record.hub", "cannot carry tags"),
            ("tljh.hub", "host layer"),
            ("nonsense", "KIND.KEY"),
        ] {
            let e = resource(&d, text).unwrap_err();
            assert!(e.message.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn edit_distance_counts_changes() {
        assert_eq!(distance("workshop-sg", "workshop-sg"), 0);
        assert_eq!(distance("workshop-sg", "workshop-sx"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
