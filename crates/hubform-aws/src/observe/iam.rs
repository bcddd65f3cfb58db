//! IAM discovery: the account's groups and users read once, a workshop's
//! own found by path `/hubform/<workshop>/` (IAM groups cannot be tagged).

use aws_sdk_iam::types::{EntityType, GroupDetail, UserDetail};
use hubform_core::graph::Desired;
use hubform_core::model::{Kind, Live, Note, Observed, ResourceId, Value};
use hubform_core::provider::Failure;

use super::insert;
use crate::error::failure;
use crate::Aws;

/// The IAM groups and users of the whole account.
#[derive(Debug, Default)]
pub struct IamDetails {
    groups: Vec<GroupDetail>,
    users: Vec<UserDetail>,
}

/// Every IAM group and user of the account, in one paginated
/// `GetAccountAuthorizationDetails`; workshops own theirs by path.
pub async fn describe_iam(aws: &Aws) -> Result<IamDetails, Failure> {
    let mut details = IamDetails::default();
    let mut pages = aws
        .iam
        .get_account_authorization_details()
        .filter(EntityType::Group)
        .filter(EntityType::User)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| failure("GetAccountAuthorizationDetails", &e))?;
        details
            .groups
            .extend(page.group_detail_list().iter().cloned());
        details
            .users
            .extend(page.user_detail_list().iter().cloned());
    }
    Ok(details)
}

/// The workshop's IAM objects among the account's: those under its path.
/// Access keys are not in the account details: one `ListAccessKeys` per
/// user of the workshop, concurrently.
pub async fn iam_lives(
    aws: &Aws,
    desired: &Desired,
    details: &IamDetails,
) -> Result<Observed, Failure> {
    let mut observed = Observed::default();
    let path = aws.iam_path();
    for g in &details.groups {
        let name = g.group_name().unwrap_or_default();
        let g_path = g.path().unwrap_or_default();
        let id = ResourceId::new(Kind::IamGroup, name);
        if g_path == path {
            let arns = g
                .attached_managed_policies()
                .iter()
                .filter_map(|p| p.policy_arn().map(str::to_owned));
            insert(
                &mut observed,
                id,
                Live::new(name).attr("policies", Value::set(arns)),
            );
        } else if desired.get(&id).is_some() {
            name_taken(&mut observed, id, "IAM group", name, g_path);
        }
    }

    let mut ours = Vec::new();
    for u in &details.users {
        let name = u.user_name().unwrap_or_default();
        let u_path = u.path().unwrap_or_default();
        let id = ResourceId::new(Kind::IamUser, name);
        if u_path == path {
            ours.push((id, name.to_owned(), u.group_list().to_vec()));
        } else if desired.get(&id).is_some() {
            name_taken(&mut observed, id, "IAM user", name, u_path);
        }
    }

    // One call per user, all at once: IAM has no call that lists the
    // access keys of many users (the credential report is hours stale).
    let listed = futures::future::try_join_all(
        ours.iter().map(|(_, name, _)| access_keys(aws, name)),
    )
    .await?;
    for ((id, name, group_list), key_ids) in ours.into_iter().zip(listed) {
        let has_key = !key_ids.is_empty();
        if has_key {
            lost_secret_note(aws, desired, &id, &mut observed);
        }
        let live = Live::new(&name)
            .attr("groups", Value::set(group_list))
            .attr("access_key", Value::Bool(has_key))
            .extra("access_keys", key_ids.join(","));
        insert(&mut observed, id, live);
    }
    Ok(observed)
}

/// The ids of `user`'s access keys: one `ListAccessKeys`.
async fn access_keys(aws: &Aws, user: &str) -> Result<Vec<String>, Failure> {
    let out = aws
        .iam
        .list_access_keys()
        .user_name(user)
        .send()
        .await
        .map_err(|e| failure("ListAccessKeys", &e))?;
    Ok(out
        .access_key_metadata()
        .iter()
        .map(|k| k.access_key_id().unwrap_or_default().to_owned())
        .collect())
}

fn lost_secret_note(
    aws: &Aws,
    desired: &Desired,
    id: &ResourceId,
    observed: &mut Observed,
) {
    let Some(file) = desired.get(id).and_then(|r| r.text("access_key_file"))
    else {
        return;
    };
    if !aws.resolve(file).exists() {
        observed.notes.push(Note {
            id: id.clone(),
            text: format!(
                "the access key exists but its secret file {file} is \
                 missing; AWS never shows a secret twice: restore the file, \
                 or delete the access key in AWS and apply again to get a \
                 new one"
            ),
        });
    }
}

/// Records that an IAM name the spec wants is held outside this
/// workshop: by another workshop (an error) or by hand (a lookalike).
fn name_taken(
    observed: &mut Observed,
    id: ResourceId,
    what: &str,
    name: &str,
    path: &str,
) {
    let other = path
        .strip_prefix("/hubform/")
        .and_then(|rest| rest.strip_suffix('/'));
    match other {
        Some(workshop) => {
            observed.conflicts.insert(
                id,
                format!(
                    "the {what} {name} belongs to workshop {workshop} \
                     (path {path}); IAM names are account-wide, so choose \
                     another name"
                ),
            );
        }
        None => {
            observed.lookalikes.insert(
                id,
                format!(
                    "an {what} named {name} exists outside hubform (path \
                     {path}); apply will not create a twin: rename or \
                     delete it by hand"
                ),
            );
        }
    }
}
