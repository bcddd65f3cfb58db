//! Discovery for one workshop or many at once. Each kind is described
//! once for the whole fleet, concurrently with the other kinds: the EC2
//! tag filter `tag:hubform:workshop` takes every workshop's name, and
//! IAM's account details are read once and split by path. The results are
//! then split per workshop, so observing fifty workshops of a Region costs
//! the same describe calls as observing one.
//!
//! The workshops' providers must share one connection, made for their
//! Region ([`Aws::for_workshop`]): the calls go through the first one.

use aws_sdk_ec2::types::{Filter, Tag};
use hubform_core::graph::Desired;
use hubform_core::model::Observed;
use hubform_core::provider::Failure;

use crate::observe::{self, merge, FoundImage, IamDetails, ImageQuery};
use crate::tags::{self, filter};
use crate::{lookalike, Aws};

use std::collections::BTreeMap;

/// Every kind's objects of a whole fleet, one call each.
struct Described {
    iam: IamDetails,
    key_pairs: Vec<aws_sdk_ec2::types::KeyPairInfo>,
    security_groups: Vec<aws_sdk_ec2::types::SecurityGroup>,
    images: BTreeMap<ImageQuery, Option<FoundImage>>,
    instances: Vec<aws_sdk_ec2::types::Instance>,
    volumes: Vec<aws_sdk_ec2::types::Volume>,
    addresses: Vec<aws_sdk_ec2::types::Address>,
}

/// Observes the workshops of `fleet` (each its provider and its graph,
/// all of one Region), in the fleet's order. A failed describe fails
/// every workshop; a failure of one workshop's own calls (its users'
/// access keys, its DNS zone) fails only that one.
pub async fn observe(
    fleet: &[(&Aws, &Desired)],
) -> Vec<Result<Observed, Failure>> {
    let Some((client, _)) = fleet.first() else {
        return Vec::new();
    };
    let fail_all = |e: Failure| fleet.iter().map(|_| Err(e.clone())).collect();

    let described = match describe(client, fleet).await {
        Ok(described) => described,
        Err(e) => return fail_all(e),
    };
    let mut results = futures::future::join_all(
        fleet
            .iter()
            .map(|(aws, desired)| observe_one(aws, desired, &described)),
    )
    .await;

    if let Err(e) = lookalike::look_for(client, fleet, &mut results).await {
        return fail_all(e);
    }
    for ((aws, desired), result) in fleet.iter().zip(&mut results) {
        if let Ok(observed) = result {
            observe::newer_image_notes(aws, desired, observed);
            remember(aws, observed);
        }
    }
    results
}

/// The EC2 filter that selects the objects of all these workshops.
fn workshops_filter(workshops: &[&str]) -> Filter {
    filter(&format!("tag:{}", tags::WORKSHOP), workshops)
}

/// One call per kind for the whole fleet, concurrently.
async fn describe(
    client: &Aws,
    fleet: &[(&Aws, &Desired)],
) -> Result<Described, Failure> {
    let names: Vec<&str> =
        fleet.iter().map(|(aws, _)| aws.workshop.as_str()).collect();
    let ours = || workshops_filter(&names);
    let graphs = fleet.iter().map(|(_, desired)| *desired);
    let (
        iam,
        key_pairs,
        security_groups,
        images,
        instances,
        volumes,
        addresses,
    ) = tokio::join!(
        observe::describe_iam(client),
        observe::describe_key_pairs(client, ours()),
        observe::describe_security_groups(client, ours()),
        observe::lookup_images(client, graphs),
        observe::describe_instances(client, vec![ours()]),
        observe::describe_volumes(client, ours()),
        observe::describe_addresses(client, ours()),
    );
    Ok(Described {
        iam: iam?,
        key_pairs: key_pairs?,
        security_groups: security_groups?,
        images: images?,
        instances: instances?,
        volumes: volumes?,
        addresses: addresses?,
    })
}

/// The objects of `items` that carry `workshop`'s tag.
fn of_workshop<T: Clone>(
    items: &[T],
    tags_of: impl Fn(&T) -> &[Tag],
    workshop: &str,
) -> Vec<T> {
    items
        .iter()
        .filter(|item| {
            tags::value(tags_of(item), tags::WORKSHOP) == Some(workshop)
        })
        .cloned()
        .collect()
}

/// One workshop's share of what the fleet's calls found.
async fn observe_one(
    aws: &Aws,
    desired: &Desired,
    found: &Described,
) -> Result<Observed, Failure> {
    let workshop = aws.workshop.as_str();
    let key_pairs = of_workshop(&found.key_pairs, |k| k.tags(), workshop);
    let groups = of_workshop(&found.security_groups, |g| g.tags(), workshop);
    let instances = of_workshop(&found.instances, |i| i.tags(), workshop);
    let volumes = of_workshop(&found.volumes, |v| v.tags(), workshop);
    let addresses = of_workshop(&found.addresses, |a| a.tags(), workshop);

    let mut observed = observe::iam_lives(aws, desired, &found.iam).await?;
    for part in [
        observe::key_pair_lives(aws, desired, &key_pairs),
        observe::security_group_lives(desired, &groups),
        observe::image_lives(aws, desired, &found.images),
        observe::volume_lives(&volumes),
        observe::instance_lives(aws, desired, &instances),
        observe::address_lives(&addresses, &instances),
    ] {
        merge(&mut observed, part);
    }
    crate::dns::observe(aws, desired, &mut observed).await?;
    Ok(observed)
}

/// Remembers the cloud ids seen, for later changes, and closes the
/// journal entries of creates now seen by tag.
fn remember(aws: &Aws, observed: &Observed) {
    let mut ids = aws.ids.lock().unwrap_or_else(|p| p.into_inner());
    for (id, live) in &observed.live {
        ids.insert(id.clone(), live.cloud_id.clone());
        // A create in flight is done once its object is seen by tag: a
        // stale entry would reuse a spent token or wait for nothing.
        if let Err(e) = aws.journal.clear(&id.to_string()) {
            tracing::warn!(error = %e, "cannot clear a journal entry");
        }
    }
}
