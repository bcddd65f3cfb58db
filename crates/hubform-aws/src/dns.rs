//! Route 53 A records: a server's DNS name in a hosted zone, pointing at
//! its Elastic IP. Records cannot be tagged: the spec's name in the spec's
//! zone is the workshop's record.

use aws_sdk_route53::types::{
    Change as RecordChange, ChangeAction, ChangeBatch, ResourceRecord,
    ResourceRecordSet, RrType,
};
use hubform_core::graph::Desired;
use hubform_core::model::{Kind, Live, Observed, Resource, Value};
use hubform_core::plan::{Action, Change};
use hubform_core::provider::Failure;

use crate::error::failure;
use crate::Aws;

/// Time to live of the records hubform writes, in seconds.
const TTL: i64 = 300;

/// A name as Route 53 writes it: lowercase, with the final dot.
fn absolute(name: &str) -> String {
    let name = name.trim_end_matches('.').to_lowercase();
    format!("{name}.")
}

/// The hosted zone id of `zone`: an id as given (`Z…`, `/hostedzone/Z…`)
/// or the zone found by its name.
async fn zone_id(aws: &Aws, zone: &str) -> Result<String, Failure> {
    let bare = zone.trim_start_matches("/hostedzone/");
    if bare.starts_with('Z') && !bare.contains('.') {
        return Ok(bare.to_owned());
    }
    let out = aws
        .route53
        .list_hosted_zones_by_name()
        .dns_name(zone)
        .max_items(1)
        .send()
        .await
        .map_err(|e| failure("ListHostedZonesByName", &e))?;
    out.hosted_zones()
        .iter()
        .find(|z| absolute(z.name()) == absolute(zone))
        .map(|z| z.id().trim_start_matches("/hostedzone/").to_owned())
        .ok_or_else(|| {
            Failure::new(format!(
                "there is no Route 53 hosted zone {zone} in this account; \
                 create it, or give its id"
            ))
        })
}

/// Finds the record of each desired `dns_record`, after addresses and
/// instances were observed (a record pointing at the Elastic IP reads as a
/// reference to it).
pub async fn observe(
    aws: &Aws,
    desired: &Desired,
    observed: &mut Observed,
) -> Result<(), Failure> {
    for record in desired.of_kind(Kind::DnsRecord) {
        let (Some(name), Some(zone)) =
            (record.text("name"), record.text("zone"))
        else {
            continue;
        };
        let zone = zone_id(aws, zone).await?;
        let out = aws
            .route53
            .list_resource_record_sets()
            .hosted_zone_id(&zone)
            .start_record_name(absolute(name))
            .start_record_type(RrType::A)
            .max_items(1)
            .send()
            .await
            .map_err(|e| failure("ListResourceRecordSets", &e))?;
        let found = out.resource_record_sets().iter().find(|r| {
            absolute(r.name()) == absolute(name) && *r.r#type() == RrType::A
        });
        let Some(found) = found else {
            continue;
        };
        let value = found
            .resource_records()
            .first()
            .map(|r| r.value().to_owned())
            .unwrap_or_default();
        let live = Live::new(format!("{zone}/{}", absolute(name)))
            .attr("name", Value::str(name))
            .attr("address", address_value(record, observed, &value))
            .extra("zone", zone)
            .extra("value", value)
            .extra("ttl", found.ttl().unwrap_or(TTL).to_string());
        observed.live.insert(record.id.clone(), live);
    }
    Ok(())
}

/// The record's value in the planner's terms: a reference to what the
/// spec points it at when it holds that address, else the address.
fn address_value(record: &Resource, observed: &Observed, value: &str) -> Value {
    let Some(Value::Ref(target)) =
        record.attrs.get("address").map(|a| &a.value)
    else {
        return Value::str(value);
    };
    let current = observed
        .live
        .get(target)
        .and_then(|l| l.get_extra("public_ip"))
        .unwrap_or_default();
    if !current.is_empty() && current == value {
        Value::Ref(target.clone())
    } else {
        Value::str(value)
    }
}

pub async fn execute(aws: &Aws, change: &Change) -> Result<String, Failure> {
    let id = &change.id;
    if change.action == Action::Delete {
        let live = change
            .live
            .as_ref()
            .ok_or_else(|| Failure::new(format!("{id} has no record")))?;
        let name = live.attrs.get("name").map(|v| match v {
            Value::Str(s) => s.clone(),
            other => other.to_string(),
        });
        let ttl = live.get_extra("ttl").and_then(|t| t.parse().ok());
        write(
            aws,
            ChangeAction::Delete,
            live.get_extra("zone").unwrap_or_default(),
            &name.unwrap_or_default(),
            live.get_extra("value").unwrap_or_default(),
            ttl.unwrap_or(TTL),
        )
        .await?;
        return Ok(String::new());
    }

    let wanted = crate::desired(change)?;
    let name = wanted.text("name").unwrap_or_default();
    let zone = zone_id(aws, wanted.text("zone").unwrap_or_default()).await?;
    let address = aws.server_address(&id.key).await?;
    if change.action == Action::Replace {
        // A new name: the old record goes, as the spec no longer names it.
        if let Some(live) = &change.live {
            if let Some(Value::Str(old)) = live.attrs.get("name") {
                write(
                    aws,
                    ChangeAction::Delete,
                    live.get_extra("zone").unwrap_or(&zone),
                    old,
                    live.get_extra("value").unwrap_or_default(),
                    TTL,
                )
                .await?;
            }
        }
    }
    write(aws, ChangeAction::Upsert, &zone, name, &address, TTL).await?;
    Ok(format!("{name} -> {address}"))
}

async fn write(
    aws: &Aws,
    action: ChangeAction,
    zone: &str,
    name: &str,
    value: &str,
    ttl: i64,
) -> Result<(), Failure> {
    let record = ResourceRecord::builder()
        .value(value)
        .build()
        .map_err(|e| Failure::new(format!("internal: {e}")))?;
    let set = ResourceRecordSet::builder()
        .name(absolute(name))
        .r#type(RrType::A)
        .ttl(ttl)
        .resource_records(record)
        .build()
        .map_err(|e| Failure::new(format!("internal: {e}")))?;
    let change = RecordChange::builder()
        .action(action)
        .resource_record_set(set)
        .build()
        .map_err(|e| Failure::new(format!("internal: {e}")))?;
    let batch = ChangeBatch::builder()
        .changes(change)
        .comment("hubform")
        .build()
        .map_err(|e| Failure::new(format!("internal: {e}")))?;
    aws.route53
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(batch)
        .send()
        .await
        .map_err(|e| failure("ChangeResourceRecordSets", &e))?;
    Ok(())
}
