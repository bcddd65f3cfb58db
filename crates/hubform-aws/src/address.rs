//! Elastic IPs: allocated with tags, associated with their instance;
//! disassociated and released on delete.
//!
//! `AllocateAddress` takes no idempotency token: a journal entry written
//! before the call makes a re-run wait for the tagged address to appear
//! before it allocates a second one.

use aws_sdk_ec2::types::{DomainType, ResourceType};
use hubform_core::journal::{self, Entry};
use hubform_core::model::{Kind, ResourceId, Value};
use hubform_core::pause::pause_point;
use hubform_core::plan::{Action, Change};
use hubform_core::provider::Failure;

use crate::error::{checked, failure, is};
use crate::tags::{self, filter};
use crate::Aws;

pub async fn execute(aws: &Aws, change: &Change) -> Result<String, Failure> {
    let id = &change.id;
    match change.action {
        Action::Create | Action::Replace => {
            let (allocation, ip) = allocate(aws, id).await?;
            associate(aws, id, &allocation).await?;
            hubform_core::pause::pause_point("after-associate-address");
            Ok(format!("{allocation}, {ip}"))
        }
        Action::Update => {
            let allocation = aws.cloud_id(id)?;
            let wants_instance = change
                .desired
                .as_ref()
                .and_then(|d| d.attrs.get("instance"))
                .is_some_and(|a| a.value != Value::None);
            if wants_instance {
                associate(aws, id, &allocation).await?;
            } else {
                disassociate(aws, change).await?;
            }
            Ok(allocation)
        }
        Action::Delete => {
            let allocation = aws.cloud_id(id)?;
            disassociate(aws, change).await?;
            match aws
                .ec2
                .release_address()
                .allocation_id(&allocation)
                .send()
                .await
            {
                Ok(_) => {}
                Err(e) if is(&e, &["InvalidAllocationID.NotFound"]) => {}
                Err(e) => return Err(failure("ReleaseAddress", &e)),
            }
            aws.forget(id);
            Ok(allocation)
        }
    }
}

/// The tagged address of `id`, if EC2 shows one.
async fn find_tagged(
    aws: &Aws,
    id: &ResourceId,
) -> Result<Option<(String, String)>, Failure> {
    let out = aws
        .ec2
        .describe_addresses()
        .filters(tags::workshop_filter(&aws.workshop))
        .filters(filter(&format!("tag:{}", tags::ID), &[&id.to_string()]))
        .send()
        .await
        .map_err(|e| failure("DescribeAddresses", &e))?;
    Ok(out.addresses().first().map(|a| {
        (
            a.allocation_id().unwrap_or_default().to_owned(),
            a.public_ip().unwrap_or_default().to_owned(),
        )
    }))
}

async fn allocate(
    aws: &Aws,
    id: &ResourceId,
) -> Result<(String, String), Failure> {
    let key = id.to_string();
    if aws.journal.get(&key).is_some() {
        // An earlier run may have allocated it: wait for it to show.
        let found = aws
            .wait_for(id, "the address an earlier run allocated", || async {
                find_tagged(aws, id).await
            })
            .await;
        if let Ok(found) = found {
            aws.journal
                .clear(&key)
                .map_err(|e| Failure::new(e.to_string()))?;
            aws.remember(id, &found.0);
            return Ok(found);
        }
    }

    aws.journal
        .put(
            &key,
            Entry {
                call: "AllocateAddress".into(),
                token: String::new(),
                started: journal::now(),
            },
        )
        .map_err(|e| Failure::new(e.to_string()))?;
    let mut address_tags = tags::owner_tags(&aws.workshop, id);
    address_tags
        .push(tags::tag("Name", &format!("{}-{}", aws.workshop, id.key)));
    let sent = aws
        .ec2
        .allocate_address()
        .domain(DomainType::Vpc)
        .tag_specifications(tags::spec(ResourceType::ElasticIp, address_tags))
        .send()
        .await;
    let out = match sent {
        Ok(out) => out,
        Err(e) => {
            // A refusal (the quota, say) allocated nothing: the next run
            // need not wait for an address to show up.
            if crate::error::refused(&e) {
                aws.journal
                    .clear(&key)
                    .map_err(|e| Failure::new(e.to_string()))?;
            }
            return Err(failure("AllocateAddress", &e));
        }
    };
    let allocation = out.allocation_id().unwrap_or_default().to_owned();
    let ip = out.public_ip().unwrap_or_default().to_owned();
    pause_point("after-allocate-address");
    aws.journal
        .clear(&key)
        .map_err(|e| Failure::new(e.to_string()))?;
    aws.remember(id, &allocation);
    Ok((allocation, ip))
}

async fn associate(
    aws: &Aws,
    id: &ResourceId,
    allocation: &str,
) -> Result<(), Failure> {
    let instance = ResourceId::new(Kind::Instance, &id.key);
    let instance_id = aws.cloud_id(&instance)?;
    let not_visible =
        ["InvalidInstanceID.NotFound", "InvalidAllocationID.NotFound"];
    aws.eventually(&not_visible, || async {
        let sent = aws
            .ec2
            .associate_address()
            .allocation_id(allocation)
            .instance_id(&instance_id)
            .allow_reassociation(true)
            .send()
            .await;
        checked("AssociateAddress", sent)
    })
    .await?;
    Ok(())
}

async fn disassociate(aws: &Aws, change: &Change) -> Result<(), Failure> {
    let association = change
        .live
        .as_ref()
        .and_then(|l| l.get_extra("association"))
        .unwrap_or_default();
    if association.is_empty() {
        return Ok(());
    }
    match aws
        .ec2
        .disassociate_address()
        .association_id(association)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is(&e, &["InvalidAssociationID.NotFound"]) => Ok(()),
        Err(e) => Err(failure("DisassociateAddress", &e)),
    }
}
