//! The tags hubform writes on every taggable object, and reading them back.

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use hubform_core::model::ResourceId;

/// The workshop an object belongs to.
pub const WORKSHOP: &str = "hubform:workshop";
/// The resource id (`<kind>.<key>`) an object stands for.
pub const ID: &str = "hubform:id";
/// The image an instance was launched from.
pub const IMAGE: &str = "hubform:image";
/// The digest of the image selection that chose that image.
pub const IMAGE_SELECTION: &str = "hubform:image-selection";
/// The SSH host key pinned on first contact.
pub const HOST_KEY: &str = "hubform:host-key";

/// One EC2 tag.
pub fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

/// The ownership tags of a resource.
pub fn owner_tags(workshop: &str, id: &ResourceId) -> Vec<Tag> {
    vec![tag(WORKSHOP, workshop), tag(ID, &id.to_string())]
}

/// A tag specification for a create call.
pub fn spec(kind: ResourceType, tags: Vec<Tag>) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(tags))
        .build()
}

/// The value of one tag in a list.
pub fn value<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// The resource id an object's tags name, if it has a valid one.
pub fn resource_id(tags: &[Tag]) -> Option<ResourceId> {
    value(tags, ID).and_then(ResourceId::parse)
}

/// Tags a user manages by hand: everything but `Name` and `hubform:*`.
pub fn user_tags(tags: &[Tag]) -> Vec<String> {
    tags.iter()
        .filter_map(|t| Some((t.key()?, t.value().unwrap_or(""))))
        .filter(|(k, _)| *k != "Name" && !k.starts_with("hubform:"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

/// The EC2 filter that selects a workshop's objects.
pub fn workshop_filter(workshop: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name(format!("tag:{WORKSHOP}"))
        .values(workshop)
        .build()
}

/// An EC2 filter.
pub fn filter(name: &str, values: &[&str]) -> aws_sdk_ec2::types::Filter {
    let mut f = aws_sdk_ec2::types::Filter::builder().name(name);
    for v in values {
        f = f.values(*v);
    }
    f.build()
}
