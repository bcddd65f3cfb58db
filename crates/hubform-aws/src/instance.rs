//! Instances and their root volumes.
//!
//! `RunInstances` carries a client token written to the create journal
//! first, so that a re-run after a crash gets the first instance back from
//! EC2 instead of a second one. A type change stops, modifies and starts
//! the instance (its Elastic IP stays); a volume grows by modify-volume.

use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, InstanceType, ResourceType, VolumeType,
};
use hubform_core::graph::selection_digest;
use hubform_core::journal::{self, Entry};
use hubform_core::model::{Kind, Resource, ResourceId, Value};
use hubform_core::pause::pause_point;
use hubform_core::plan::{Action, Change};
use hubform_core::provider::{Failure, Progress};

use crate::error::{self, failure, is};
use crate::security_group::{group_ids, set_groups};
use crate::tags::{self, filter};
use crate::{changed, desired, Aws};

const NOT_FOUND: &[&str] = &["InvalidInstanceID.NotFound"];

pub async fn execute(
    aws: &Aws,
    change: &Change,
    progress: &dyn Progress,
) -> Result<String, Failure> {
    match change.action {
        Action::Create => create(aws, change, progress).await,
        Action::Update => update(aws, change, progress).await,
        Action::Replace => {
            let old = aws.cloud_id(&change.id)?;
            let backup = back_up(aws, &change.id, &old, progress).await?;
            terminate(aws, &change.id, &old, progress).await?;
            aws.forget(&change.id);
            let new = create(aws, change, progress).await?;
            Ok(format!("{new}, replacing {old}{backup}"))
        }
        Action::Delete => {
            let instance_id = aws.cloud_id(&change.id)?;
            let backup =
                back_up(aws, &change.id, &instance_id, progress).await?;
            terminate(aws, &change.id, &instance_id, progress).await?;
            aws.forget(&change.id);
            Ok(format!("{instance_id}{backup}"))
        }
    }
}

/// Takes the AMI backup due before an instance is terminated, unless
/// turned off; says which, for the apply's report.
async fn back_up(
    aws: &Aws,
    id: &ResourceId,
    instance_id: &str,
    progress: &dyn Progress,
) -> Result<String, Failure> {
    if !aws.backs_up() {
        return Ok(", no backup (--no-backup)".to_owned());
    }
    let state = state_of(aws, instance_id).await?;
    if matches!(
        state.as_deref(),
        None | Some("terminated" | "shutting-down")
    ) {
        return Ok(String::new());
    }
    progress.report(id, &format!("backing up {instance_id} before it goes"));
    let backup = crate::backup::take(aws, &id.key, instance_id, progress)
        .await
        .map_err(|e| {
            Failure::new(format!(
                "the backup before terminating {instance_id} failed, so it \
                 was not terminated: {e}; retry, or pass --no-backup"
            ))
        })?;
    Ok(format!(
        ", backed up as {} ({})",
        backup.image_id, backup.name
    ))
}

async fn create(
    aws: &Aws,
    change: &Change,
    progress: &dyn Progress,
) -> Result<String, Failure> {
    let wanted = desired(change)?;
    let id = &change.id;
    let image_ref = wanted
        .deps
        .iter()
        .find(|d| d.kind == Kind::Image)
        .cloned()
        .ok_or_else(|| Failure::new(format!("{id} names no image")))?;
    let image_id = aws
        .images
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&image_ref)
        .map(|i| i.id.clone())
        .ok_or_else(|| {
            Failure::new(format!("{image_ref} selected no image"))
        })?;
    let selection = wanted.text("image").unwrap_or_default();
    let name = wanted.text("name").unwrap_or_default();
    let key_name = wanted.text("key_pair").unwrap_or_default();
    let groups = group_ids(aws, &wanted.items("security_groups"))?;
    let device = wanted.text("root_device").unwrap_or("/dev/sda1");

    let volume_id = ResourceId::new(Kind::Volume, &id.key);
    let (size, volume_type) = volume_settings(wanted);

    let mut instance_tags = tags::owner_tags(&aws.workshop, id);
    instance_tags.push(tags::tag("Name", name));
    instance_tags.push(tags::tag(tags::IMAGE, &image_id));
    instance_tags.push(tags::tag(
        tags::IMAGE_SELECTION,
        &selection_digest(selection),
    ));
    for pair in wanted.items("tags") {
        let (k, v) = pair.split_once('=').unwrap_or((&pair, ""));
        instance_tags.push(tags::tag(k, v));
    }
    let mut volume_tags = tags::owner_tags(&aws.workshop, &volume_id);
    volume_tags.push(tags::tag("Name", name));

    let ebs = EbsBlockDevice::builder()
        .volume_size(size)
        .volume_type(VolumeType::from(volume_type.as_str()))
        .delete_on_termination(true)
        .build();
    let launch = aws
        .ec2
        .run_instances()
        .image_id(&image_id)
        .instance_type(InstanceType::from(
            wanted.text("type").unwrap_or_default(),
        ))
        .key_name(key_name)
        .set_security_group_ids(Some(groups))
        .min_count(1)
        .max_count(1)
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name(device)
                .ebs(ebs)
                .build(),
        )
        .tag_specifications(tags::spec(ResourceType::Instance, instance_tags))
        .tag_specifications(tags::spec(ResourceType::Volume, volume_tags));

    let key = id.to_string();
    let mut instance_id = String::new();
    for _ in 0..2 {
        // The token goes to disk before the call: a re-run reuses it, and
        // EC2 answers a reused token with the first launch's instance.
        let (token, reused) = journal_token(aws, id)?;
        let out = launch
            .clone()
            .client_token(&token)
            .send()
            .await
            .map_err(|e| failure("RunInstances", &e))?;
        instance_id = out
            .instances()
            .first()
            .and_then(|i| i.instance_id())
            .ok_or_else(|| Failure::new("RunInstances returned no instance"))?
            .to_owned();
        pause_point("after-run-instances");

        // The interrupted launch's instance was terminated since: the
        // token is spent, launch anew with a fresh one.
        let state = state_of(aws, &instance_id).await?;
        let gone =
            matches!(state.as_deref(), Some("terminated" | "shutting-down"));
        if !(reused && gone) {
            break;
        }
        progress.report(
            id,
            &format!(
                "{instance_id}, launched by an interrupted run, is gone; \
                 launching anew"
            ),
        );
        aws.journal
            .clear(&key)
            .map_err(|e| Failure::new(e.to_string()))?;
    }

    progress
        .report(id, &format!("{instance_id} launched, waiting for running"));
    wait_state(aws, id, &instance_id, "running").await?;
    aws.journal
        .clear(&key)
        .map_err(|e| Failure::new(e.to_string()))?;
    aws.remember(id, &instance_id);
    if wanted.text("state") == Some("stopped") {
        set_state(aws, id, &instance_id, "stopped", progress).await?;
    }
    Ok(format!("{instance_id} from {image_id}"))
}

/// The client token of `id`'s launch: the journal's, when an earlier run
/// was interrupted (`true`), else a new one written to the journal first.
fn journal_token(
    aws: &Aws,
    id: &ResourceId,
) -> Result<(String, bool), Failure> {
    let key = id.to_string();
    if let Some(entry) = aws.journal.get(&key) {
        return Ok((entry.token, true));
    }
    let token = new_token(&aws.workshop, id);
    let entry = Entry {
        call: "RunInstances".into(),
        token: token.clone(),
        started: journal::now(),
    };
    aws.journal
        .put(&key, entry)
        .map_err(|e| Failure::new(e.to_string()))?;
    Ok((token, false))
}

/// A client token unique to this attempt, at most 64 characters.
fn new_token(workshop: &str, id: &ResourceId) -> String {
    let random: u64 = rand::random();
    let mut token = format!("hubform-{workshop}-{}-{random:016x}", id.key);
    token.truncate(64);
    token
}

fn volume_settings(wanted: &Resource) -> (i32, String) {
    let size = wanted.int("root_size_gb").unwrap_or(0);
    let kind = wanted.text("root_type").unwrap_or("gp3");
    (i32::try_from(size).unwrap_or(0), kind.to_owned())
}

/// The state name of an instance; `None` while EC2 does not show it yet.
async fn state_of(
    aws: &Aws,
    instance_id: &str,
) -> Result<Option<String>, Failure> {
    let out = aws
        .ec2
        .describe_instances()
        .instance_ids(instance_id)
        .send()
        .await;
    let out = match out {
        Ok(out) => out,
        // Eventual consistency: a new instance may not be visible yet.
        Err(e) if is(&e, NOT_FOUND) => return Ok(None),
        Err(e) => return Err(failure("DescribeInstances", &e)),
    };
    Ok(out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find(|i| i.instance_id() == Some(instance_id))
        .and_then(|i| i.state())
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_owned()))
}

async fn wait_state(
    aws: &Aws,
    id: &ResourceId,
    instance_id: &str,
    wanted: &str,
) -> Result<(), Failure> {
    let what = format!("{instance_id} to be {wanted}");
    aws.wait_for(id, &what, || async {
        let state = state_of(aws, instance_id).await?;
        if wanted == "running"
            && matches!(
                state.as_deref(),
                Some("terminated" | "shutting-down" | "stopped")
            )
        {
            return Err(Failure::new(format!(
                "{instance_id} is {} instead of running; look at its \
                 state reason in the EC2 console",
                state.unwrap_or_default()
            )));
        }
        Ok((state.as_deref() == Some(wanted)).then_some(()))
    })
    .await
}

async fn update(
    aws: &Aws,
    change: &Change,
    progress: &dyn Progress,
) -> Result<String, Failure> {
    let wanted = desired(change)?;
    let id = &change.id;
    let instance_id = aws.cloud_id(id)?;

    if changed(change, "name") || changed(change, "tags") {
        retag(aws, change, &instance_id).await?;
    }
    if changed(change, "security_groups") {
        let groups = group_ids(aws, &wanted.items("security_groups"))?;
        set_groups(aws, &instance_id, &groups).await?;
    }
    // A server being stopped changes type while stopped and stays so; one
    // being started starts once, with its new type.
    let new_state = wanted.text("state").filter(|_| changed(change, "state"));
    if new_state == Some("stopped") {
        set_state(aws, id, &instance_id, "stopped", progress).await?;
    }
    if changed(change, "type") {
        let new_type = wanted.text("type").unwrap_or_default();
        change_type(aws, id, &instance_id, new_type, progress).await?;
    }
    if new_state == Some("running") {
        set_state(aws, id, &instance_id, "running", progress).await?;
    }
    Ok(instance_id)
}

/// Starts or stops an instance and waits until it is there; its Elastic
/// IP stays associated through both.
async fn set_state(
    aws: &Aws,
    id: &ResourceId,
    instance_id: &str,
    wanted: &str,
    progress: &dyn Progress,
) -> Result<(), Failure> {
    if wanted == "stopped" {
        progress.report(id, &format!("stopping {instance_id}"));
        aws.ec2
            .stop_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .map_err(|e| failure("StopInstances", &e))?;
    } else {
        progress.report(id, &format!("starting {instance_id}"));
        aws.ec2
            .start_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .map_err(|e| failure("StartInstances", &e))?;
    }
    wait_state(aws, id, instance_id, wanted).await
}

async fn retag(
    aws: &Aws,
    change: &Change,
    instance_id: &str,
) -> Result<(), Failure> {
    let wanted = desired(change)?;
    let mut set = vec![tags::tag("Name", wanted.text("name").unwrap_or(""))];
    for pair in wanted.items("tags") {
        let (k, v) = pair.split_once('=').unwrap_or((&pair, ""));
        set.push(tags::tag(k, v));
    }
    aws.ec2
        .create_tags()
        .resources(instance_id)
        .set_tags(Some(set))
        .send()
        .await
        .map_err(|e| failure("CreateTags", &e))?;

    let old = match change.live.as_ref().and_then(|l| l.attrs.get("tags")) {
        Some(Value::Set(items)) => items.clone(),
        _ => Default::default(),
    };
    let keep: Vec<String> = wanted
        .items("tags")
        .iter()
        .map(|p| p.split_once('=').map_or(p.clone(), |(k, _)| k.to_owned()))
        .collect();
    let gone: Vec<_> = old
        .iter()
        .map(|p| p.split_once('=').map_or(p.clone(), |(k, _)| k.to_owned()))
        .filter(|k| !keep.contains(k))
        .map(|k| aws_sdk_ec2::types::Tag::builder().key(k).build())
        .collect();
    if !gone.is_empty() {
        aws.ec2
            .delete_tags()
            .resources(instance_id)
            .set_tags(Some(gone))
            .send()
            .await
            .map_err(|e| failure("DeleteTags", &e))?;
    }
    Ok(())
}

/// Stop, modify, start: EC2 changes the type only of a stopped instance.
async fn change_type(
    aws: &Aws,
    id: &ResourceId,
    instance_id: &str,
    new_type: &str,
    progress: &dyn Progress,
) -> Result<(), Failure> {
    // A type EC2 does not know would leave the server stopped: ask first.
    let known = aws
        .ec2
        .describe_instance_types()
        .instance_types(InstanceType::from(new_type))
        .send()
        .await;
    if let Err(e) = known {
        if error::code(&e).is_some_and(|c| c.starts_with("InvalidInstanceType"))
            || is(&e, &["InvalidParameterValue"])
        {
            return Err(Failure::new(format!(
                "the instance type {new_type} does not exist in this Region; \
                 nothing was stopped: fix the type in the spec"
            )));
        }
        tracing::debug!(error = %failure("DescribeInstanceTypes", &e),
            "cannot check the instance type; going on");
    }

    let state = state_of(aws, instance_id).await?.unwrap_or_default();
    let was_running = state != "stopped";
    if was_running {
        progress
            .report(id, &format!("stopping {instance_id} to change its type"));
        aws.ec2
            .stop_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .map_err(|e| failure("StopInstances", &e))?;
        wait_state(aws, id, instance_id, "stopped").await?;
    }

    let modified = aws
        .ec2
        .modify_instance_attribute()
        .instance_id(instance_id)
        .instance_type(
            aws_sdk_ec2::types::AttributeValue::builder()
                .value(new_type)
                .build(),
        )
        .send()
        .await
        .map_err(|e| failure("ModifyInstanceAttribute", &e));
    if let Err(refused) = modified {
        // Never leave the hub down: start it again with its old type.
        if was_running {
            progress.report(id, &format!("starting {instance_id} again"));
            let restarted = aws
                .ec2
                .start_instances()
                .instance_ids(instance_id)
                .send()
                .await;
            if let Err(e) = restarted {
                return Err(Failure::new(format!(
                    "{refused}; starting it again also failed ({}): the \
                     instance is stopped",
                    failure("StartInstances", &e)
                )));
            }
            wait_state(aws, id, instance_id, "running").await?;
        }
        let now = if was_running {
            "runs again"
        } else {
            "stays stopped"
        };
        return Err(Failure::new(format!(
            "{refused}; the instance {now} with its old type"
        )));
    }

    if was_running {
        progress.report(id, &format!("starting {instance_id} as {new_type}"));
        aws.ec2
            .start_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .map_err(|e| failure("StartInstances", &e))?;
        wait_state(aws, id, instance_id, "running").await?;
    }
    Ok(())
}

async fn terminate(
    aws: &Aws,
    id: &ResourceId,
    instance_id: &str,
    progress: &dyn Progress,
) -> Result<(), Failure> {
    match aws
        .ec2
        .terminate_instances()
        .instance_ids(instance_id)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e) if is(&e, NOT_FOUND) => return Ok(()),
        Err(e) => return Err(failure("TerminateInstances", &e)),
    }
    progress.report(id, &format!("waiting for {instance_id} to terminate"));
    let what = format!("{instance_id} to be terminated");
    aws.wait_for(id, &what, || async {
        let state = state_of(aws, instance_id).await?;
        Ok(matches!(state.as_deref(), None | Some("terminated")).then_some(()))
    })
    .await
}

/// The root volume: created with its instance, grown by modify-volume.
pub async fn volume(aws: &Aws, change: &Change) -> Result<String, Failure> {
    let id = &change.id;
    match change.action {
        Action::Create | Action::Replace => {
            let instance = ResourceId::new(Kind::Instance, &id.key);
            let instance_id = aws.cloud_id(&instance)?;
            let out = aws
                .ec2
                .describe_volumes()
                .filters(filter("attachment.instance-id", &[&instance_id]))
                .send()
                .await
                .map_err(|e| failure("DescribeVolumes", &e))?;
            let volume_id = out
                .volumes()
                .iter()
                .find(|v| tags::resource_id(v.tags()).as_ref() == Some(id))
                .or_else(|| out.volumes().first())
                .and_then(|v| v.volume_id())
                .ok_or_else(|| {
                    Failure::new(format!(
                        "{instance_id} has no root volume to manage"
                    ))
                })?
                .to_owned();
            aws.remember(id, &volume_id);
            Ok(volume_id)
        }
        Action::Update => {
            let wanted = desired(change)?;
            let volume_id = aws.cloud_id(id)?;
            let mut call = aws.ec2.modify_volume().volume_id(&volume_id);
            if changed(change, "size_gb") {
                let size = wanted.int("size_gb").unwrap_or(0);
                call = call.size(i32::try_from(size).unwrap_or(i32::MAX));
            }
            if changed(change, "type") {
                let kind = wanted.text("type").unwrap_or("gp3");
                call = call.volume_type(VolumeType::from(kind));
            }
            call.send().await.map_err(|e| failure("ModifyVolume", &e))?;
            Ok(volume_id)
        }
        // Deleted with its instance (DeleteOnTermination); a volume left
        // behind without one is deleted here.
        Action::Delete => {
            let volume_id = aws.cloud_id(id)?;
            let out = aws
                .ec2
                .describe_volumes()
                .volume_ids(&volume_id)
                .send()
                .await;
            let attached_to = match &out {
                Ok(out) => out
                    .volumes()
                    .iter()
                    .flat_map(|v| v.attachments())
                    .find_map(|a| a.instance_id())
                    .map(str::to_owned),
                Err(e) if is(e, &["InvalidVolume.NotFound"]) => {
                    return Ok(volume_id)
                }
                Err(_) => None,
            };
            if let Some(instance_id) = attached_to {
                return Ok(format!("goes with {instance_id}"));
            }
            match aws.ec2.delete_volume().volume_id(&volume_id).send().await {
                Ok(_) => Ok(volume_id),
                Err(e) if is(&e, &["InvalidVolume.NotFound"]) => Ok(volume_id),
                Err(e) => Err(failure("DeleteVolume", &e)),
            }
        }
    }
}
