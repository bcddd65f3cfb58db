//! Importing IAM groups and users: IAM groups cannot carry tags, so an
//! IAM object is the workshop's when it lives under the path
//! `/hubform/<workshop>/`. Import moves it there (`UpdateGroup`,
//! `UpdateUser` with `NewPath`); a user also gets the ownership tags, as
//! hubform gives the users it creates.

use hubform_core::graph::Desired;
use hubform_core::model::{Kind, ResourceId};
use hubform_core::provider::Failure;

use super::Imported;
use crate::error::{failure, is};
use crate::{tags, Aws};

/// An IAM object as found by name.
struct Found {
    path: String,
    arn: String,
    /// Its `hubform:workshop` tag (users only).
    workshop_tag: Option<String>,
}

pub(super) async fn import(
    aws: &Aws,
    desired: &Desired,
    id: &ResourceId,
    aws_id: &str,
) -> Result<Imported, Failure> {
    let what = match id.kind {
        Kind::IamGroup => "IAM group",
        _ => "IAM user",
    };
    // IAM names are account-wide; hubform names the object after its key.
    if aws_id != id.key {
        return Err(Failure::new(format!(
            "{id} stands for the {what} named {key}, not {aws_id}: IAM \
             objects are known by name; declare it as {kind}.{aws_id} in \
             the spec, or import {key}",
            key = id.key,
            kind = id.kind
        )));
    }
    let found = match id.kind {
        Kind::IamGroup => group(aws, aws_id).await?,
        _ => user(aws, aws_id).await?,
    };
    let ours = aws.iam_path();
    let mut imported = Imported {
        object: format!("{what} {aws_id} (path {})", found.path),
        marks: Vec::new(),
        notes: Vec::new(),
        next: Vec::new(),
    };
    if found.path == ours {
        return Ok(imported);
    }
    refuse_others(&aws.workshop, &imported.object, &found)?;

    move_to(aws, id, &ours).await?;
    confirm_path(aws, id, &ours).await?;
    imported.marks.push(format!("path {ours}"));
    if id.kind == Kind::IamUser {
        tag_user(aws, id).await?;
        imported
            .marks
            .extend(tags::owner_tags(&aws.workshop, id).iter().map(|t| {
                format!("{}={}", t.key().unwrap_or(""), t.value().unwrap_or(""))
            }));
        imported
            .notes
            .extend(key_file_note(aws, desired, id).await?);
    }
    let moved = format!("{}{aws_id}", found.path);
    let new_arn = found.arn.replace(&moved, &format!("{ours}{aws_id}"));
    imported.notes.push(format!(
        "its ARN is now {new_arn}; policies that name the old ARN {} need \
         the new one",
        found.arn
    ));
    Ok(imported)
}

/// Refuses an object under another workshop's path or tag.
fn refuse_others(
    workshop: &str,
    words: &str,
    found: &Found,
) -> Result<(), Failure> {
    let by_path = found
        .path
        .strip_prefix("/hubform/")
        .and_then(|rest| rest.strip_suffix('/'));
    let by_tag = found.workshop_tag.as_deref().filter(|w| *w != workshop);
    match by_path.or(by_tag) {
        Some(other) => Err(Failure::new(format!(
            "{words} belongs to workshop {other}; hubform does not take \
             objects from another workshop: import it into that workshop's \
             spec, or move it out of /hubform/{other}/ by hand if that \
             workshop is gone"
        ))),
        None => Ok(()),
    }
}

fn no_such(what: &str, name: &str) -> Failure {
    Failure::new(format!(
        "no {what} named {name} exists in this account; check the name"
    ))
}

async fn group(aws: &Aws, name: &str) -> Result<Found, Failure> {
    let out = aws.iam.get_group().group_name(name).send().await;
    let out = match out {
        Ok(out) => out,
        Err(e) if is(&e, &["NoSuchEntity"]) => {
            return Err(no_such("IAM group", name))
        }
        Err(e) => return Err(failure("GetGroup", &e)),
    };
    let g = out.group().ok_or_else(|| no_such("IAM group", name))?;
    Ok(Found {
        path: g.path().to_owned(),
        arn: g.arn().to_owned(),
        workshop_tag: None,
    })
}

async fn user(aws: &Aws, name: &str) -> Result<Found, Failure> {
    let out = aws.iam.get_user().user_name(name).send().await;
    let out = match out {
        Ok(out) => out,
        Err(e) if is(&e, &["NoSuchEntity"]) => {
            return Err(no_such("IAM user", name))
        }
        Err(e) => return Err(failure("GetUser", &e)),
    };
    let u = out.user().ok_or_else(|| no_such("IAM user", name))?;
    let workshop_tag = u
        .tags()
        .iter()
        .find(|t| t.key() == tags::WORKSHOP)
        .map(|t| t.value().to_owned());
    Ok(Found {
        path: u.path().to_owned(),
        arn: u.arn().to_owned(),
        workshop_tag,
    })
}

async fn move_to(
    aws: &Aws,
    id: &ResourceId,
    path: &str,
) -> Result<(), Failure> {
    let name = &id.key;
    if id.kind == Kind::IamGroup {
        aws.iam
            .update_group()
            .group_name(name)
            .new_path(path)
            .send()
            .await
            .map_err(|e| failure("UpdateGroup", &e))?;
    } else {
        aws.iam
            .update_user()
            .user_name(name)
            .new_path(path)
            .send()
            .await
            .map_err(|e| failure("UpdateUser", &e))?;
    }
    Ok(())
}

/// Waits until IAM shows the object under `path`: a change takes a
/// moment to show everywhere, and a move that never shows is no import.
async fn confirm_path(
    aws: &Aws,
    id: &ResourceId,
    path: &str,
) -> Result<(), Failure> {
    let mut attempt = 1;
    loop {
        let now = match id.kind {
            Kind::IamGroup => group(aws, &id.key).await?.path,
            _ => user(aws, &id.key).await?.path,
        };
        if now == path {
            return Ok(());
        }
        if attempt >= aws.settings.max_attempts {
            return Err(Failure::new(format!(
                "IAM accepted moving {id} to the path {path} but still shows                  it under {now}; run the import again in a minute"
            )));
        }
        let backoff = aws.settings.base_backoff * 2u32.pow(attempt.min(5));
        tokio::time::sleep(backoff + aws.settings.poll).await;
        attempt += 1;
    }
}

async fn tag_user(aws: &Aws, id: &ResourceId) -> Result<(), Failure> {
    let mut call = aws.iam.tag_user().user_name(&id.key);
    for t in tags::owner_tags(&aws.workshop, id) {
        let tag = aws_sdk_iam::types::Tag::builder()
            .key(t.key().unwrap_or_default())
            .value(t.value().unwrap_or_default())
            .build()
            .map_err(|e| Failure::new(format!("internal: bad IAM tag: {e}")))?;
        call = call.tags(tag);
    }
    call.send().await.map_err(|e| failure("TagUser", &e))?;
    Ok(())
}

/// An imported user's access key whose secret file the spec names but
/// which is not here: AWS never shows a secret twice.
async fn key_file_note(
    aws: &Aws,
    desired: &Desired,
    id: &ResourceId,
) -> Result<Option<String>, Failure> {
    let Some(file) = desired.get(id).and_then(|r| r.text("access_key_file"))
    else {
        return Ok(None);
    };
    if aws.resolve(file).exists() {
        return Ok(None);
    }
    let keys = aws
        .iam
        .list_access_keys()
        .user_name(&id.key)
        .send()
        .await
        .map_err(|e| failure("ListAccessKeys", &e))?;
    if keys.access_key_metadata().is_empty() {
        return Ok(None);
    }
    Ok(Some(format!(
        "the user has an access key but its secret file {file} is not \
         here; AWS never shows a secret twice: put the file there, or \
         delete the key in AWS and apply to get a new one"
    )))
}
