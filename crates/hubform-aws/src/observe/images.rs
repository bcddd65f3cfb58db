//! Image lookups: the newest available image of a selection (or a pinned
//! one), one call per distinct selection however many workshops ask, and
//! the note when a newer image than a server's exists.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::Image;
use hubform_core::graph::Desired;
use hubform_core::model::{Kind, Live, Note, Observed, Resource, Value};
use hubform_core::provider::Failure;

use super::FoundImage;
use crate::error::failure;
use crate::tags::filter;
use crate::Aws;

/// What an image lookup asks AWS: a pinned id, or the newest available
/// image of an owner, name pattern and architecture. Lookups that ask the
/// same share one call, however many workshops make them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ImageQuery {
    /// A pinned image id.
    Pinned(String),
    /// The newest available image of a selection.
    Newest {
        /// The owner's account id or alias.
        owner: String,
        /// The name pattern.
        name: String,
        /// The architecture.
        architecture: String,
    },
}

impl ImageQuery {
    /// The query of an `image` resource.
    pub fn of(image: &Resource) -> ImageQuery {
        if let Some(pinned) = image.text("id") {
            return ImageQuery::Pinned(pinned.to_owned());
        }
        ImageQuery::Newest {
            owner: image.text("owner").unwrap_or_default().to_owned(),
            name: image.text("name").unwrap_or_default().to_owned(),
            architecture: image
                .text("architecture")
                .unwrap_or("x86_64")
                .to_owned(),
        }
    }
}

/// The images the lookups of all `graphs` select: one `DescribeImages`
/// per distinct query, concurrently.
pub async fn lookup_images(
    aws: &Aws,
    graphs: impl Iterator<Item = &Desired>,
) -> Result<BTreeMap<ImageQuery, Option<FoundImage>>, Failure> {
    let queries: BTreeSet<ImageQuery> = graphs
        .flat_map(|desired| desired.of_kind(Kind::Image))
        .map(ImageQuery::of)
        .collect();
    let found = futures::future::try_join_all(
        queries.iter().map(|query| lookup_image(aws, query)),
    )
    .await?;
    Ok(queries.into_iter().zip(found).collect())
}

/// A workshop's image lookups in the planner's terms; the selected images
/// are kept for the newer-image notes and for launches.
pub fn image_lives(
    aws: &Aws,
    desired: &Desired,
    found: &BTreeMap<ImageQuery, Option<FoundImage>>,
) -> Observed {
    let mut observed = Observed::default();
    for image in desired.of_kind(Kind::Image) {
        let Some(Some(found)) = found.get(&ImageQuery::of(image)) else {
            continue;
        };
        let live = Live::new(&found.id)
            .attr("name", Value::str(&found.name))
            .attr("created", Value::str(&found.created));
        aws.images
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(image.id.clone(), found.clone());
        observed.live.insert(image.id.clone(), live);
    }
    observed
}

/// The newest available image of a query, or the pinned one.
async fn lookup_image(
    aws: &Aws,
    query: &ImageQuery,
) -> Result<Option<FoundImage>, Failure> {
    let mut call = aws.ec2.describe_images();
    match query {
        ImageQuery::Pinned(id) => call = call.image_ids(id),
        ImageQuery::Newest {
            owner,
            name,
            architecture,
        } => {
            call = call
                .owners(owner)
                .filters(filter("name", &[name]))
                .filters(filter("architecture", &[architecture]))
                .filters(filter("state", &["available"]));
        }
    }
    let out = call
        .send()
        .await
        .map_err(|e| failure("DescribeImages", &e))?;
    let newest = out
        .images()
        .iter()
        .filter(|i| i.state().map(|s| s.as_str()) == Some("available"))
        .max_by(|a, b| a.creation_date().cmp(&b.creation_date()));
    Ok(newest.map(found_image))
}

fn found_image(i: &Image) -> FoundImage {
    FoundImage {
        id: i.image_id().unwrap_or_default().to_owned(),
        name: i.name().unwrap_or_default().to_owned(),
        created: i.creation_date().unwrap_or_default().to_owned(),
    }
}

/// A newer image from the same selection is worth a note, never a change.
pub fn newer_image_notes(
    aws: &Aws,
    desired: &Desired,
    observed: &mut Observed,
) {
    let images = aws.images.lock().unwrap_or_else(|p| p.into_inner());
    for instance in desired.of_kind(Kind::Instance) {
        let Some(live) = observed.live.get(&instance.id) else {
            continue;
        };
        let Some(image_id) = instance
            .deps
            .iter()
            .find(|d| d.kind == Kind::Image)
            .cloned()
        else {
            continue;
        };
        let Some(newest) = images.get(&image_id) else {
            continue;
        };
        let running = live.get_extra("image_id").unwrap_or_default();
        let same_selection = live.attrs.get("image")
            == instance.attrs.get("image").map(|a| &a.value);
        if same_selection && !running.is_empty() && running != newest.id {
            observed.notes.push(Note {
                id: image_id.clone(),
                text: format!(
                    "a newer image exists: {} ({}, created {}); {} keeps \
                     running {running}; hubform never replaces a server \
                     for a newer image",
                    newest.id, newest.name, newest.created, instance.id
                ),
            });
        }
    }
}
