//! IAM groups (policy attachments) and users (memberships, access key).
//! IAM objects cannot all be tagged: the path `/hubform/<workshop>/` says
//! whose they are.

use std::collections::BTreeSet;
use std::path::PathBuf;

use hubform_core::model::Value;
use hubform_core::plan::{Action, Change};
use hubform_core::provider::Failure;

use crate::error::checked;
use crate::error::{failure, is};
use crate::{desired, files, tags, Aws};

/// The set an attribute changes from and to, for set diffs.
fn set_change(
    change: &Change,
    name: &str,
) -> (BTreeSet<String>, BTreeSet<String>) {
    (change.live_items(name), change.wanted_items(name))
}

pub async fn group(aws: &Aws, change: &Change) -> Result<String, Failure> {
    let name = &change.id.key;
    match change.action {
        Action::Create | Action::Update | Action::Replace => {
            if change.action == Action::Create {
                let created = aws
                    .iam
                    .create_group()
                    .group_name(name)
                    .path(aws.iam_path())
                    .send()
                    .await;
                match created {
                    Ok(_) => {}
                    Err(e) if is(&e, &["EntityAlreadyExists"]) => {}
                    Err(e) => return Err(failure("CreateGroup", &e)),
                }
            }
            let (old, new) = set_change(change, "policies");
            for arn in new.difference(&old) {
                // A group created a moment ago may not be visible yet.
                aws.eventually(&["NoSuchEntity"], || async {
                    let sent = aws
                        .iam
                        .attach_group_policy()
                        .group_name(name)
                        .policy_arn(arn)
                        .send()
                        .await;
                    checked("AttachGroupPolicy", sent)
                })
                .await?;
            }
            for arn in old.difference(&new) {
                detach_group_policy(aws, name, arn).await?;
            }
            Ok(String::new())
        }
        Action::Delete => {
            let (old, _) = set_change(change, "policies");
            for arn in &old {
                detach_group_policy(aws, name, arn).await?;
            }
            // Members added by hand would make DeleteGroup fail.
            let members = aws
                .iam
                .get_group()
                .group_name(name)
                .send()
                .await
                .map_err(|e| failure("GetGroup", &e))?;
            for user in members.users() {
                aws.iam
                    .remove_user_from_group()
                    .group_name(name)
                    .user_name(user.user_name())
                    .send()
                    .await
                    .map_err(|e| failure("RemoveUserFromGroup", &e))?;
            }
            match aws.iam.delete_group().group_name(name).send().await {
                Ok(_) => Ok(String::new()),
                Err(e) if is(&e, &["NoSuchEntity"]) => Ok(String::new()),
                Err(e) => Err(failure("DeleteGroup", &e)),
            }
        }
    }
}

async fn detach_group_policy(
    aws: &Aws,
    group: &str,
    arn: &str,
) -> Result<(), Failure> {
    match aws
        .iam
        .detach_group_policy()
        .group_name(group)
        .policy_arn(arn)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is(&e, &["NoSuchEntity"]) => Ok(()),
        Err(e) => Err(failure("DetachGroupPolicy", &e)),
    }
}

pub async fn user(aws: &Aws, change: &Change) -> Result<String, Failure> {
    let name = &change.id.key;
    if change.action == Action::Delete {
        return delete_user(aws, change).await;
    }
    let wanted = desired(change)?;

    if change.action == Action::Create {
        let created = aws
            .iam
            .create_user()
            .user_name(name)
            .path(aws.iam_path())
            .tags(iam_tag(tags::WORKSHOP, &aws.workshop)?)
            .tags(iam_tag(tags::ID, &change.id.to_string())?)
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e) if is(&e, &["EntityAlreadyExists"]) => {}
            Err(e) => return Err(failure("CreateUser", &e)),
        }
        hubform_core::pause::pause_point("after-create-user");
    }

    let (old, new) = set_change(change, "groups");
    for group in new.difference(&old) {
        aws.eventually(&["NoSuchEntity"], || async {
            let sent = aws
                .iam
                .add_user_to_group()
                .group_name(group)
                .user_name(name)
                .send()
                .await;
            checked("AddUserToGroup", sent)
        })
        .await?;
    }
    for group in old.difference(&new) {
        remove_from_group(aws, name, group).await?;
    }

    let has_key = change.live.as_ref().and_then(|l| l.attrs.get("access_key"))
        == Some(&Value::Bool(true));
    let wants_key = wanted.flag("access_key") == Some(true);
    let mut what = String::new();
    if wants_key && !has_key {
        let file = wanted.text("access_key_file").unwrap_or_default();
        what = create_access_key(aws, name, file).await?;
    } else if !wants_key && has_key {
        delete_access_keys(aws, name).await?;
    }
    Ok(what)
}

fn iam_tag(key: &str, value: &str) -> Result<aws_sdk_iam::types::Tag, Failure> {
    aws_sdk_iam::types::Tag::builder()
        .key(key)
        .value(value)
        .build()
        .map_err(|e| Failure::new(format!("internal: bad IAM tag: {e}")))
}

/// Creates an access key and writes it, once, to a 0600 file in the
/// format of `~/.aws/credentials`. The secret goes nowhere else.
async fn create_access_key(
    aws: &Aws,
    user: &str,
    file: &str,
) -> Result<String, Failure> {
    let path = aws.resolve(file);
    let mut what = String::new();
    if path.exists() {
        // The user has no access key, so the file's key was deleted (by
        // destroy, or by hand) and its secret is dead. Keep it aside
        // rather than overwrite it.
        let aside = PathBuf::from(format!("{}.old", path.display()));
        std::fs::rename(&path, &aside).map_err(|e| {
            Failure::new(format!(
                "cannot move the stale access key file {} aside: {e}",
                path.display()
            ))
        })?;
        what = format!("; the stale key file moved to {file}.old");
    }
    let out = aws
        .iam
        .create_access_key()
        .user_name(user)
        .send()
        .await
        .map_err(|e| failure("CreateAccessKey", &e))?;
    let Some(key) = out.access_key() else {
        return Err(Failure::new("CreateAccessKey returned no key"));
    };
    hubform_core::pause::pause_point("after-create-access-key");
    let contents = format!(
        "[{user}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        key.access_key_id(),
        key.secret_access_key()
    );
    files::write_new(&path, 0o600, contents.as_bytes())?;
    Ok(format!(
        "access key {} written to {file}{what}",
        key.access_key_id()
    ))
}

async fn delete_access_keys(aws: &Aws, user: &str) -> Result<(), Failure> {
    let keys = aws
        .iam
        .list_access_keys()
        .user_name(user)
        .send()
        .await
        .map_err(|e| failure("ListAccessKeys", &e))?;
    for k in keys.access_key_metadata() {
        let Some(key_id) = k.access_key_id() else {
            continue;
        };
        match aws
            .iam
            .delete_access_key()
            .user_name(user)
            .access_key_id(key_id)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if is(&e, &["NoSuchEntity"]) => {}
            Err(e) => return Err(failure("DeleteAccessKey", &e)),
        }
    }
    Ok(())
}

async fn remove_from_group(
    aws: &Aws,
    user: &str,
    group: &str,
) -> Result<(), Failure> {
    match aws
        .iam
        .remove_user_from_group()
        .group_name(group)
        .user_name(user)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is(&e, &["NoSuchEntity"]) => Ok(()),
        Err(e) => Err(failure("RemoveUserFromGroup", &e)),
    }
}

/// Deletes a user after what AWS requires first: memberships, access
/// keys, a login profile and attached policies.
async fn delete_user(aws: &Aws, change: &Change) -> Result<String, Failure> {
    let name = &change.id.key;
    let groups = aws.iam.list_groups_for_user().user_name(name).send().await;
    let groups = match groups {
        Ok(out) => out,
        Err(e) if is(&e, &["NoSuchEntity"]) => return Ok(String::new()),
        Err(e) => return Err(failure("ListGroupsForUser", &e)),
    };
    for g in groups.groups() {
        remove_from_group(aws, name, g.group_name()).await?;
    }
    delete_access_keys(aws, name).await?;
    match aws.iam.delete_login_profile().user_name(name).send().await {
        Ok(_) => {}
        Err(e) if is(&e, &["NoSuchEntity"]) => {}
        Err(e) => return Err(failure("DeleteLoginProfile", &e)),
    }
    let policies = aws
        .iam
        .list_attached_user_policies()
        .user_name(name)
        .send()
        .await
        .map_err(|e| failure("ListAttachedUserPolicies", &e))?;
    for p in policies.attached_policies() {
        if let Some(arn) = p.policy_arn() {
            aws.iam
                .detach_user_policy()
                .user_name(name)
                .policy_arn(arn)
                .send()
                .await
                .map_err(|e| failure("DetachUserPolicy", &e))?;
        }
    }
    match aws.iam.delete_user().user_name(name).send().await {
        Ok(_) => Ok(String::new()),
        Err(e) if is(&e, &["NoSuchEntity"]) => Ok(String::new()),
        Err(e) => Err(failure("DeleteUser", &e)),
    }
}
