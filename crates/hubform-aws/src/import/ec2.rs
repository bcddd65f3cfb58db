//! Importing EC2 objects: each gets the ownership tags hubform writes when
//! it creates one (an instance also the tags of the image it runs).

use aws_sdk_ec2::types::{Instance, Tag};
use hubform_core::graph::{selection_digest, Desired};
use hubform_core::model::{Kind, Resource, ResourceId};
use hubform_core::provider::Failure;

use super::{check_tags, Found, Imported};
use crate::error::{code, failure};
use crate::observe::describe_instances;
use crate::tags::{self, filter, workshop_filter};
use crate::Aws;

/// An object found for import, with what importing it adds.
struct Adoption {
    found: Found,
    /// Tags written besides the ownership tags.
    extra: Vec<Tag>,
    /// Remarks for the lecturer.
    notes: Vec<String>,
    /// Untagged objects that belong with this one, to import next.
    next: Vec<(ResourceId, String)>,
}

impl Adoption {
    fn new(words: String, cloud_id: &str, tags: &[Tag]) -> Adoption {
        Adoption {
            found: Found {
                words,
                cloud_id: cloud_id.to_owned(),
                tags: tags.to_vec(),
            },
            extra: Vec::new(),
            notes: Vec::new(),
            next: Vec::new(),
        }
    }
}

pub(super) async fn import(
    aws: &Aws,
    desired: &Desired,
    id: &ResourceId,
    aws_id: &str,
) -> Result<Imported, Failure> {
    let wanted = desired
        .get(id)
        .ok_or_else(|| Failure::new(format!("the spec declares no {id}")))?;
    let adoption = match id.kind {
        Kind::SecurityGroup => security_group(aws, id, aws_id).await?,
        Kind::KeyPair => key_pair(aws, wanted, aws_id).await?,
        Kind::Instance => instance(aws, desired, wanted, aws_id).await?,
        Kind::Volume => volume(aws, id, aws_id).await?,
        Kind::ElasticIp => address(aws, aws_id).await?,
        _ => return Err(Failure::new(format!("cannot import {id} into EC2"))),
    };
    let Adoption {
        found,
        extra,
        notes,
        next,
    } = adoption;
    let mut imported = Imported {
        object: found.words.clone(),
        marks: Vec::new(),
        notes,
        next,
    };
    if check_tags(&aws.workshop, id, &found)? {
        return Ok(imported);
    }
    if let Some(holder) = holder(aws, id, &found.cloud_id).await? {
        return Err(Failure::new(format!(
            "already managed: {holder} is this workshop's {id}; hubform \
             manages one object per resource, so {} stays as it is (delete \
             one of the two by hand first)",
            found.words
        )));
    }

    let mut set = tags::owner_tags(&aws.workshop, id);
    set.extend(extra);
    aws.ec2
        .create_tags()
        .resources(&found.cloud_id)
        .set_tags(Some(set.clone()))
        .send()
        .await
        .map_err(|e| failure("CreateTags", &e))?;
    imported.marks = set
        .iter()
        .map(|t| {
            format!("{}={}", t.key().unwrap_or(""), t.value().unwrap_or(""))
        })
        .collect();
    Ok(imported)
}

/// The failure of a describe by id: "no such object" when AWS says the
/// id is unknown or malformed, else the call's own failure.
fn lookup_failure<E, R>(
    aws: &Aws,
    what: &str,
    aws_id: &str,
    call: &str,
    err: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> Failure
where
    E: aws_sdk_ec2::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let unknown = code(err)
        .is_some_and(|c| c.ends_with(".NotFound") || c.ends_with(".Malformed"));
    if unknown {
        return no_such(aws, what, aws_id);
    }
    failure(call, err)
}

fn no_such(aws: &Aws, what: &str, aws_id: &str) -> Failure {
    let region = aws
        .ec2
        .config()
        .region()
        .map_or("this Region".to_owned(), |r| r.to_string());
    Failure::new(format!(
        "no {what} {aws_id} exists in {region}; check the id (and that the \
         spec's region is where the object is)"
    ))
}

async fn security_group(
    aws: &Aws,
    id: &ResourceId,
    aws_id: &str,
) -> Result<Adoption, Failure> {
    let mut call = aws.ec2.describe_security_groups();
    call = if aws_id.starts_with("sg-") {
        call.group_ids(aws_id)
    } else {
        call.filters(filter("group-name", &[aws_id]))
    };
    let what = "security group";
    let out = call.send().await.map_err(|e| {
        lookup_failure(aws, what, aws_id, "DescribeSecurityGroups", &e)
    })?;
    let g = out
        .security_groups()
        .first()
        .ok_or_else(|| no_such(aws, what, aws_id))?;
    let name = g.group_name().unwrap_or_default();
    let group_id = g.group_id().unwrap_or_default();
    // Instances name their groups, and hubform names a group after its key.
    if name != id.key {
        return Err(Failure::new(format!(
            "the security group {group_id} is named {name}, but {id} stands \
             for a group named {key}; AWS cannot rename a group: rename the \
             key in the spec to {name} (and where servers name it)",
            key = id.key
        )));
    }
    let words = format!("security group {name} ({group_id})");
    Ok(Adoption::new(words, group_id, g.tags()))
}

async fn key_pair(
    aws: &Aws,
    wanted: &Resource,
    aws_id: &str,
) -> Result<Adoption, Failure> {
    let mut call = aws.ec2.describe_key_pairs().include_public_key(true);
    call = if aws_id.starts_with("key-") {
        call.key_pair_ids(aws_id)
    } else {
        call.key_names(aws_id)
    };
    let what = "key pair";
    let out = call.send().await.map_err(|e| {
        lookup_failure(aws, what, aws_id, "DescribeKeyPairs", &e)
    })?;
    let k = out
        .key_pairs()
        .first()
        .ok_or_else(|| no_such(aws, what, aws_id))?;
    let name = k.key_name().unwrap_or_default();
    let pair_id = k.key_pair_id().unwrap_or_default();
    let key = &wanted.id.key;
    // Instances name their key pair, and hubform names it after its key.
    if name != key {
        return Err(Failure::new(format!(
            "the key pair {pair_id} is named {name}, but {} stands for a \
             key pair named {key}; rename the key in the spec to {name} \
             (and where servers name it)",
            wanted.id
        )));
    }
    let mut adoption = Adoption::new(
        format!("key pair {name} ({pair_id})"),
        pair_id,
        k.tags(),
    );
    let file = wanted.text("private_key_file").unwrap_or_default();
    let public = k.public_key().unwrap_or_default();
    adoption.notes.extend(key_file_note(aws, file, public));
    Ok(adoption)
}

/// What is wrong with the local private key file of a key pair, if
/// anything.
fn key_file_note(aws: &Aws, file: &str, public: &str) -> Option<String> {
    match crate::key_pair::public_key_of(&aws.resolve(file)) {
        Ok(None) => Some(format!(
            "the private key file {file} is missing here: SSH to servers \
             launched with this key pair will fail until you put the key \
             made with it there (hubform never overwrites it; the next plan \
             notes it too)"
        )),
        Ok(Some(local)) if !same_key(&local, public) => Some(format!(
            "the private key file {file} does not belong to this key \
                 pair: put the key made with it there"
        )),
        Ok(Some(_)) => None,
        Err(e) => Some(e.message),
    }
}

/// Whether two OpenSSH public keys have the same type and key (comments
/// aside).
fn same_key(a: &str, b: &str) -> bool {
    a.split_whitespace()
        .take(2)
        .eq(b.split_whitespace().take(2))
}

async fn instance(
    aws: &Aws,
    desired: &Desired,
    wanted: &Resource,
    aws_id: &str,
) -> Result<Adoption, Failure> {
    let what = "instance";
    let out = aws
        .ec2
        .describe_instances()
        .instance_ids(aws_id)
        .send()
        .await
        .map_err(|e| {
            lookup_failure(aws, what, aws_id, "DescribeInstances", &e)
        })?;
    let i = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .next()
        .ok_or_else(|| no_such(aws, what, aws_id))?;
    let state = i
        .state()
        .and_then(|s| s.name())
        .map_or("unknown", |n| n.as_str());
    if matches!(state, "terminated" | "shutting-down") {
        return Err(Failure::new(format!(
            "the instance {aws_id} is {state}; there is nothing left to \
             import"
        )));
    }
    let name = tags::value(i.tags(), "Name").unwrap_or("no Name tag");
    let mut adoption =
        Adoption::new(format!("instance {name} ({aws_id})"), aws_id, i.tags());
    image_tags(aws, desired, wanted, i, &mut adoption).await?;
    companions(aws, desired, &wanted.id.key, i, &mut adoption).await?;
    Ok(adoption)
}

/// The image tags of an imported instance: the image it runs, and the
/// spec's selection when that selection could have chosen it (else the
/// next plan shows the instance to be replaced, and says why).
async fn image_tags(
    aws: &Aws,
    desired: &Desired,
    wanted: &Resource,
    i: &Instance,
    adoption: &mut Adoption,
) -> Result<(), Failure> {
    let image_id = i.image_id().unwrap_or_default();
    adoption.extra.push(tags::tag(tags::IMAGE, image_id));
    let lookup = wanted
        .deps
        .iter()
        .find(|d| d.kind == Kind::Image)
        .and_then(|d| desired.get(d));
    let selection = wanted.text("image").unwrap_or_default();
    let Some(lookup) = lookup else {
        return Ok(());
    };
    let out = aws.ec2.describe_images().image_ids(image_id).send().await;
    let image = out.ok().and_then(|o| o.images().first().cloned());
    let chosen = image.as_ref().is_some_and(|image| {
        let name = image.name().unwrap_or_default();
        let arch = image.architecture().map_or("", |a| a.as_str());
        match lookup.text("id") {
            Some(pinned) => pinned == image_id,
            None => {
                lookup.text("owner") == image.owner_id()
                    && glob(lookup.text("name").unwrap_or("*"), name)
                    && lookup.text("architecture").unwrap_or("x86_64") == arch
            }
        }
    });
    if chosen {
        adoption.extra.push(tags::tag(
            tags::IMAGE_SELECTION,
            &selection_digest(selection),
        ));
    } else {
        adoption.notes.push(format!(
            "its image {image_id} is not one that {} selects, so the next \
             plan shows the instance to be replaced (which guards refuse \
             without --allow-replace); change the spec's image to match it \
             to keep the instance",
            lookup.id
        ));
    }
    Ok(())
}

/// The instance's root volume and Elastic IP, when the spec has them and
/// they are not tagged yet: to import next.
async fn companions(
    aws: &Aws,
    desired: &Desired,
    key: &str,
    i: &Instance,
    adoption: &mut Adoption,
) -> Result<(), Failure> {
    let root = i.root_device_name().unwrap_or_default();
    let volume = i
        .block_device_mappings()
        .iter()
        .find(|m| m.device_name() == Some(root))
        .and_then(|m| m.ebs())
        .and_then(|e| e.volume_id());
    let volume_id = ResourceId::new(Kind::Volume, key);
    if let (Some(volume), Some(_)) = (volume, desired.get(&volume_id)) {
        let out = aws
            .ec2
            .describe_volumes()
            .volume_ids(volume)
            .send()
            .await
            .map_err(|e| failure("DescribeVolumes", &e))?;
        let untagged = out
            .volumes()
            .iter()
            .any(|v| tags::value(v.tags(), tags::WORKSHOP).is_none());
        if untagged {
            adoption.next.push((volume_id, volume.to_owned()));
        }
    }

    let eip_id = ResourceId::new(Kind::ElasticIp, key);
    if desired.get(&eip_id).is_some() {
        let instance = i.instance_id().unwrap_or_default();
        let out = aws
            .ec2
            .describe_addresses()
            .filters(filter("instance-id", &[instance]))
            .send()
            .await
            .map_err(|e| failure("DescribeAddresses", &e))?;
        for a in out.addresses() {
            if tags::value(a.tags(), tags::WORKSHOP).is_none() {
                let allocation = a.allocation_id().unwrap_or_default();
                adoption.next.push((eip_id.clone(), allocation.to_owned()));
            }
        }
    }
    Ok(())
}

async fn volume(
    aws: &Aws,
    id: &ResourceId,
    aws_id: &str,
) -> Result<Adoption, Failure> {
    let what = "volume";
    let out = aws
        .ec2
        .describe_volumes()
        .volume_ids(aws_id)
        .send()
        .await
        .map_err(|e| {
            lookup_failure(aws, what, aws_id, "DescribeVolumes", &e)
        })?;
    let v = out
        .volumes()
        .first()
        .ok_or_else(|| no_such(aws, what, aws_id))?;

    // A volume resource is its server's root volume: the server first.
    let server = ResourceId::new(Kind::Instance, &id.key);
    let owned = vec![
        workshop_filter(&aws.workshop),
        filter(&format!("tag:{}", tags::ID), &[&server.to_string()]),
    ];
    let instance = describe_instances(aws, owned).await?;
    let Some(instance) = instance.first().and_then(|i| i.instance_id()) else {
        return Err(Failure::new(format!(
            "{server} is not managed yet: import the instance first ({id} \
             is its root volume)"
        )));
    };
    let attached = v
        .attachments()
        .iter()
        .any(|a| a.instance_id() == Some(instance));
    if !attached {
        return Err(Failure::new(format!(
            "the volume {aws_id} is not attached to {server} ({instance}); \
             {id} is that instance's root volume"
        )));
    }
    Ok(Adoption::new(format!("volume {aws_id}"), aws_id, v.tags()))
}

async fn address(aws: &Aws, aws_id: &str) -> Result<Adoption, Failure> {
    let mut call = aws.ec2.describe_addresses();
    call = if aws_id.parse::<std::net::IpAddr>().is_ok() {
        call.public_ips(aws_id)
    } else {
        call.allocation_ids(aws_id)
    };
    let what = "Elastic IP";
    let out = call.send().await.map_err(|e| {
        lookup_failure(aws, what, aws_id, "DescribeAddresses", &e)
    })?;
    let a = out
        .addresses()
        .first()
        .ok_or_else(|| no_such(aws, what, aws_id))?;
    let allocation = a.allocation_id().unwrap_or_default();
    let ip = a.public_ip().unwrap_or_default();
    let words = format!("Elastic IP {ip} ({allocation})");
    Ok(Adoption::new(words, allocation, a.tags()))
}

/// Another object already tagged as this workshop's `id`, if any.
async fn holder(
    aws: &Aws,
    id: &ResourceId,
    own: &str,
) -> Result<Option<String>, Failure> {
    let owned = || {
        vec![
            workshop_filter(&aws.workshop),
            filter(&format!("tag:{}", tags::ID), &[&id.to_string()]),
        ]
    };
    let ids: Vec<String> = match id.kind {
        Kind::SecurityGroup => {
            let out = aws
                .ec2
                .describe_security_groups()
                .set_filters(Some(owned()))
                .send()
                .await
                .map_err(|e| failure("DescribeSecurityGroups", &e))?;
            ids(out.security_groups().iter().map(|g| g.group_id()))
        }
        Kind::KeyPair => {
            let out = aws
                .ec2
                .describe_key_pairs()
                .set_filters(Some(owned()))
                .send()
                .await
                .map_err(|e| failure("DescribeKeyPairs", &e))?;
            ids(out.key_pairs().iter().map(|k| k.key_pair_id()))
        }
        Kind::Instance => {
            let found = describe_instances(aws, owned()).await?;
            ids(found.iter().map(|i| i.instance_id()))
        }
        Kind::Volume => {
            let out = aws
                .ec2
                .describe_volumes()
                .set_filters(Some(owned()))
                .send()
                .await
                .map_err(|e| failure("DescribeVolumes", &e))?;
            ids(out.volumes().iter().map(|v| v.volume_id()))
        }
        Kind::ElasticIp => {
            let out = aws
                .ec2
                .describe_addresses()
                .set_filters(Some(owned()))
                .send()
                .await
                .map_err(|e| failure("DescribeAddresses", &e))?;
            ids(out.addresses().iter().map(|a| a.allocation_id()))
        }
        _ => Vec::new(),
    };
    Ok(ids.into_iter().find(|i| i != own))
}

fn ids<'a>(found: impl Iterator<Item = Option<&'a str>>) -> Vec<String> {
    found.flatten().map(str::to_owned).collect()
}

/// Whether `text` matches an EC2 filter pattern (`*` any run, `?` one
/// character).
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // matches[j]: the pattern so far matches the first j characters.
    let mut matches = vec![false; t.len() + 1];
    matches[0] = true;
    for c in &p {
        let mut next = vec![false; t.len() + 1];
        for j in 0..=t.len() {
            next[j] = match c {
                '*' => matches[j] || (j > 0 && next[j - 1]),
                '?' => j > 0 && matches[j - 1],
                c => j > 0 && matches[j - 1] && t[j - 1] == *c,
            };
        }
        matches = next;
    }
    matches[t.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_name_patterns_match_like_ec2_filters() {
        let pattern = "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*";
        assert!(glob(
            pattern,
            "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20240301"
        ));
        assert!(!glob(
            pattern,
            "ubuntu/images/hvm-ssd/ubuntu-noble-24.04-amd64-server-20240301"
        ));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(glob("*", ""));
        assert!(!glob("", "a"));
    }
}
