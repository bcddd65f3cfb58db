//! Smoke tests of the test world itself: moto behind the proxy, every
//! always-on proxy rule and every per-test control. They use SDK clients
//! pointed at the proxy, and check moto's state with direct clients.

use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::{Filter, InstanceType};
use serde_json::json;

use crate::world::{amis, Request, World, CANONICAL};

const JAMMY: &str = amis::JAMMY_AMD64_NEWEST;
const ADMIN: &str = "arn:aws:iam::aws:policy/AdministratorAccess";

/// The error code and HTTP status of a failed SDK call (EC2 or IAM).
fn code<T, E>(result: Result<T, SdkError<E>>) -> (String, u16)
where
    E: ProvideErrorMetadata + std::fmt::Debug,
{
    match result {
        Ok(_) => panic!("expected an error, the call succeeded"),
        Err(e) => {
            let status =
                e.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
            let code = e
                .code()
                .unwrap_or_else(|| panic!("no error code in {e:?}"))
                .to_string();
            (code, status)
        }
    }
}

async fn instance_state(ec2: &aws_sdk_ec2::Client, id: &str) -> String {
    let out = ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .expect("DescribeInstances");
    out.reservations()[0].instances()[0]
        .state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_string())
        .expect("an instance state")
}

async fn launch(
    ec2: &aws_sdk_ec2::Client,
    token: Option<&str>,
    group: Option<&str>,
) -> String {
    let mut run = ec2
        .run_instances()
        .image_id(JAMMY)
        .instance_type(InstanceType::T3Medium)
        .min_count(1)
        .max_count(1)
        .set_client_token(token.map(str::to_string));
    if let Some(group) = group {
        run = run.security_group_ids(group);
    }
    let out = run.send().await.expect("RunInstances");
    out.instances()[0]
        .instance_id()
        .expect("an instance id")
        .to_string()
}

async fn instance_ids(ec2: &aws_sdk_ec2::Client) -> Vec<String> {
    let out = ec2
        .describe_instances()
        .send()
        .await
        .expect("DescribeInstances");
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn world_reaches_moto_through_the_proxy() {
    let world = World::start().await;
    let via_proxy = world.proxy_ec2().await;
    let direct = world.ec2().await;
    let vpcs = via_proxy
        .describe_vpcs()
        .send()
        .await
        .expect("DescribeVpcs");
    let direct_vpcs = direct.describe_vpcs().send().await.expect("direct");
    assert_eq!(vpcs.vpcs().len(), 1, "one default VPC");
    assert_eq!(
        vpcs.vpcs()[0].vpc_id(),
        direct_vpcs.vpcs()[0].vpc_id(),
        "the proxy talks to this world's moto"
    );
    let iam = world.proxy_iam().await;
    iam.create_group()
        .group_name("g")
        .path("/hubform/w/")
        .send()
        .await
        .expect("CreateGroup");
    assert_eq!(
        world.requests(),
        vec![
            Request {
                service: "ec2".into(),
                action: "DescribeVpcs".into(),
                status: 200,
            },
            Request {
                service: "iam".into(),
                action: "CreateGroup".into(),
                status: 200,
            },
        ],
        "direct calls are not recorded"
    );
    world.reset_requests();
    assert!(world.requests().is_empty());
    assert!(world.dir().is_dir());
    assert!(world.endpoint().starts_with("http://127.0.0.1:"));
}

#[tokio::test]
async fn world_iam_delete_conflicts() {
    let world = World::start().await;
    let iam = world.proxy_iam().await;
    iam.create_group()
        .group_name("g")
        .send()
        .await
        .expect("group");
    iam.create_user().user_name("u").send().await.expect("user");
    iam.add_user_to_group()
        .group_name("g")
        .user_name("u")
        .send()
        .await
        .expect("AddUserToGroup");
    let conflict = ("DeleteConflict".to_string(), 409);
    let err = iam.delete_group().group_name("g").send().await;
    assert_eq!(code(err), conflict, "a group with members");
    iam.remove_user_from_group()
        .group_name("g")
        .user_name("u")
        .send()
        .await
        .expect("RemoveUserFromGroup");
    iam.attach_group_policy()
        .group_name("g")
        .policy_arn(ADMIN)
        .send()
        .await
        .expect("AttachGroupPolicy");
    let err = iam.delete_group().group_name("g").send().await;
    assert_eq!(code(err), conflict, "a group with a policy");
    iam.detach_group_policy()
        .group_name("g")
        .policy_arn(ADMIN)
        .send()
        .await
        .expect("DetachGroupPolicy");
    iam.delete_group()
        .group_name("g")
        .send()
        .await
        .expect("an empty group deletes");

    let key = iam
        .create_access_key()
        .user_name("u")
        .send()
        .await
        .expect("CreateAccessKey");
    let key_id = key.access_key().expect("a key").access_key_id().to_string();
    let err = iam.delete_user().user_name("u").send().await;
    assert_eq!(code(err), conflict, "a user with an access key");
    iam.delete_access_key()
        .user_name("u")
        .access_key_id(key_id)
        .send()
        .await
        .expect("DeleteAccessKey");
    iam.create_login_profile()
        .user_name("u")
        .password("Secret-123")
        .send()
        .await
        .expect("CreateLoginProfile");
    let err = iam.delete_user().user_name("u").send().await;
    assert_eq!(code(err), conflict, "a user with a login profile");
    iam.delete_login_profile()
        .user_name("u")
        .send()
        .await
        .expect("DeleteLoginProfile");
    iam.delete_user()
        .user_name("u")
        .send()
        .await
        .expect("DeleteUser");

    let direct = world.iam().await;
    let users = direct.list_users().send().await.expect("ListUsers");
    assert!(users.users().is_empty(), "moto has no user left");
    let groups = direct.list_groups().send().await.expect("ListGroups");
    assert!(groups.groups().is_empty(), "moto has no group left");
}

#[tokio::test]
async fn world_security_group_rules() {
    let world = World::start().await;
    let ec2 = world.proxy_ec2().await;
    let group = ec2
        .create_security_group()
        .group_name("hub")
        .description("hub")
        .send()
        .await
        .expect("CreateSecurityGroup")
        .group_id()
        .expect("a group id")
        .to_string();
    let id = launch(&ec2, None, Some(&group)).await;
    let err = ec2.delete_security_group().group_id(&group).send().await;
    assert_eq!(code(err), ("DependencyViolation".into(), 400));

    let default = world
        .ec2()
        .await
        .describe_security_groups()
        .group_names("default")
        .send()
        .await
        .expect("the default group");
    let default_id = default.security_groups()[0].group_id().expect("id");
    let err = ec2
        .delete_security_group()
        .group_id(default_id)
        .send()
        .await;
    assert_eq!(code(err), ("CannotDelete".into(), 400));
    let err = ec2
        .delete_security_group()
        .group_name("default")
        .send()
        .await;
    assert_eq!(code(err), ("CannotDelete".into(), 400));

    ec2.terminate_instances()
        .instance_ids(&id)
        .send()
        .await
        .expect("TerminateInstances");
    ec2.delete_security_group()
        .group_id(&group)
        .send()
        .await
        .expect("a group used only by a terminated instance deletes");
    let err = world
        .ec2()
        .await
        .describe_security_groups()
        .group_ids(&group)
        .send()
        .await;
    assert_eq!(code(err).0, "InvalidGroup.NotFound");
}

#[tokio::test]
async fn world_instance_states_and_pending_phase() {
    let world = World::start().await;
    let ec2 = world.proxy_ec2().await;
    let id = launch(&ec2, None, None).await;
    assert_eq!(instance_state(&ec2, &id).await, "pending");
    let err = ec2
        .modify_instance_attribute()
        .instance_id(&id)
        .instance_type(
            aws_sdk_ec2::types::AttributeValue::builder()
                .value("t3.large")
                .build(),
        )
        .send()
        .await;
    assert_eq!(code(err), ("IncorrectInstanceState".into(), 400));
    assert_eq!(instance_state(&ec2, &id).await, "pending");
    assert_eq!(instance_state(&ec2, &id).await, "running");
    assert_eq!(
        instance_state(&world.ec2().await, &id).await,
        "running",
        "moto itself is already running"
    );
    let err = ec2
        .modify_instance_attribute()
        .instance_id(&id)
        .instance_type(
            aws_sdk_ec2::types::AttributeValue::builder()
                .value("t3.large")
                .build(),
        )
        .send()
        .await;
    assert_eq!(code(err).0, "IncorrectInstanceState", "still running");

    ec2.stop_instances()
        .instance_ids(&id)
        .send()
        .await
        .expect("StopInstances");
    assert_eq!(instance_state(&ec2, &id).await, "stopping");
    assert_eq!(instance_state(&ec2, &id).await, "stopping");
    assert_eq!(instance_state(&ec2, &id).await, "stopped");
    ec2.modify_instance_attribute()
        .instance_id(&id)
        .instance_type(
            aws_sdk_ec2::types::AttributeValue::builder()
                .value("t3.large")
                .build(),
        )
        .send()
        .await
        .expect("a stopped instance changes type");

    world.set_pending(0);
    ec2.start_instances()
        .instance_ids(&id)
        .send()
        .await
        .expect("StartInstances");
    assert_eq!(instance_state(&ec2, &id).await, "running", "phase off");

    ec2.terminate_instances()
        .instance_ids(&id)
        .send()
        .await
        .expect("TerminateInstances");
    assert_eq!(instance_state(&ec2, &id).await, "terminated");
    let err = ec2.start_instances().instance_ids(&id).send().await;
    assert_eq!(code(err), ("IncorrectInstanceState".into(), 400));
    let err = ec2.stop_instances().instance_ids(&id).send().await;
    assert_eq!(code(err).0, "IncorrectInstanceState");
    let err = ec2
        .modify_instance_attribute()
        .instance_id(&id)
        .disable_api_termination(
            aws_sdk_ec2::types::AttributeBooleanValue::builder()
                .value(true)
                .build(),
        )
        .send()
        .await;
    assert_eq!(code(err).0, "IncorrectInstanceState");
    assert_eq!(
        instance_state(&world.ec2().await, &id).await,
        "terminated",
        "moto did not resurrect it"
    );
}

#[tokio::test]
async fn world_run_instances_client_token() {
    let world = World::start().await;
    let ec2 = world.proxy_ec2().await;
    let first = launch(&ec2, Some("token-1"), None).await;
    let again = launch(&ec2, Some("token-1"), None).await;
    assert_eq!(first, again, "same token, same parameters: same instance");
    assert_eq!(instance_ids(&world.ec2().await).await, vec![first.clone()]);

    let err = ec2
        .run_instances()
        .image_id(JAMMY)
        .instance_type(InstanceType::T3Large)
        .min_count(1)
        .max_count(1)
        .client_token("token-1")
        .send()
        .await;
    assert_eq!(code(err), ("IdempotentParameterMismatch".into(), 400));

    // The client-token filter (moto answers it with HTTP 500).
    let other = launch(&ec2, Some("token-2"), None).await;
    let found = ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name("client-token")
                .values("token-2")
                .build(),
        )
        .send()
        .await
        .expect("DescribeInstances by client-token");
    let ids: Vec<_> = found
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| i.instance_id())
        .collect();
    assert_eq!(ids, vec![other.as_str()]);

    // An answer lost after moto launched: the retry gets the original.
    world.fault_lost_answer("RunInstances", "InternalError", 500, 1);
    let err = ec2
        .run_instances()
        .image_id(JAMMY)
        .instance_type(InstanceType::T3Medium)
        .min_count(1)
        .max_count(1)
        .client_token("token-3")
        .send()
        .await;
    assert_eq!(code(err), ("InternalError".into(), 500));
    let retried = launch(&ec2, Some("token-3"), None).await;
    assert_eq!(instance_ids(&world.ec2().await).await.len(), 3);
    assert!(instance_ids(&world.ec2().await).await.contains(&retried));
}

#[tokio::test]
async fn world_delete_key_pair_by_id() {
    let world = World::start().await;
    let ec2 = world.proxy_ec2().await;
    let key = ec2
        .create_key_pair()
        .key_name("hub")
        .send()
        .await
        .expect("CreateKeyPair");
    let key_id = key.key_pair_id().expect("a key pair id").to_string();
    ec2.delete_key_pair()
        .key_pair_id(key_id)
        .send()
        .await
        .expect("DeleteKeyPair by id");
    let left = world
        .ec2()
        .await
        .describe_key_pairs()
        .send()
        .await
        .expect("DescribeKeyPairs");
    assert!(left.key_pairs().is_empty(), "deleted in moto: {left:?}");
}

#[tokio::test]
async fn world_faults() {
    let world = World::start().await;
    let ec2 = world.proxy_ec2().await;
    let iam = world.proxy_iam().await;
    world.fault_skip("DescribeVpcs", "RequestLimitExceeded", 503, 2, 1);
    ec2.describe_vpcs().send().await.expect("skipped");
    let err = ec2.describe_vpcs().send().await;
    assert_eq!(code(err), ("RequestLimitExceeded".into(), 503));
    let err = ec2.describe_vpcs().send().await;
    assert_eq!(code(err), ("RequestLimitExceeded".into(), 503));
    ec2.describe_vpcs().send().await.expect("count used up");

    world.fault("GetUser", "Throttling", 400, 1);
    let err = iam.get_user().user_name("nobody").send().await;
    assert_eq!(code(err), ("Throttling".into(), 400));
    let err = iam.get_user().user_name("nobody").send().await;
    assert!(
        err.expect_err("no such user")
            .as_service_error()
            .is_some_and(|e| e.is_no_such_entity_exception()),
        "after the fault, moto answers"
    );

    let statuses: Vec<(String, u16)> = world
        .requests()
        .into_iter()
        .map(|r| (r.action, r.status))
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("DescribeVpcs".into(), 200),
            ("DescribeVpcs".into(), 503),
            ("DescribeVpcs".into(), 503),
            ("DescribeVpcs".into(), 200),
            ("GetUser".into(), 400),
            ("GetUser".into(), 404),
        ]
    );
    assert_eq!(world.count("DescribeVpcs"), 4);
}

#[tokio::test]
async fn world_hold_proves_concurrency() {
    let world = World::start().await;
    let ec2 = world.proxy_ec2().await;
    let iam = world.proxy_iam().await;

    // Concurrent: the held call goes through once the other arrives.
    world.hold("CreateSecurityGroup", "CreateGroup", 20);
    let sg = ec2
        .create_security_group()
        .group_name("hub")
        .description("hub")
        .send();
    let group = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        iam.create_group().group_name("g").send().await
    };
    let (sg, group) = tokio::join!(sg, group);
    sg.expect("the held CreateSecurityGroup");
    group.expect("CreateGroup");
    assert_eq!(world.holds()[0]["outcome"], "released");

    // Sequential: the held call times out.
    world.hold("CreateKeyPair", "CreateUser", 1);
    let started = Instant::now();
    let err = ec2.create_key_pair().key_name("k").send().await;
    assert_eq!(code(err), ("HoldTimeout".into(), 400));
    assert!(started.elapsed() >= Duration::from_millis(900));
    iam.create_user().user_name("u").send().await.expect("user");
    world.hold("DeleteVpc", "CreateUser", 1);
    assert_eq!(
        world.holds(),
        json!([
            {"action": "CreateSecurityGroup", "until": "CreateGroup",
             "outcome": "released"},
            {"action": "CreateKeyPair", "until": "CreateUser",
             "outcome": "timed_out"},
            {"action": "DeleteVpc", "until": "CreateUser",
             "outcome": "never_triggered"},
        ])
    );
    let pairs = world.ec2().await.describe_key_pairs().send().await;
    assert!(
        pairs.expect("keys").key_pairs().is_empty(),
        "never forwarded"
    );
}

#[tokio::test]
async fn world_hide_new_instances() {
    let world = World::start().await;
    let ec2 = world.proxy_ec2().await;
    world.set_pending(0);
    world.hide_new_instances(3);
    let id = launch(&ec2, None, None).await;
    let err = ec2.describe_instances().instance_ids(&id).send().await;
    assert_eq!(code(err), ("InvalidInstanceID.NotFound".into(), 400));
    assert!(instance_ids(&ec2).await.is_empty());
    assert!(instance_ids(&ec2).await.is_empty());
    assert_eq!(instance_ids(&ec2).await, vec![id.clone()]);
    assert_eq!(instance_state(&ec2, &id).await, "running");
    assert_eq!(instance_ids(&world.ec2().await).await, vec![id]);
}

#[tokio::test]
async fn world_image_catalogue_and_injection() {
    let world = World::start().await;
    let ec2 = world.proxy_ec2().await;
    let jammy = |ec2: aws_sdk_ec2::Client, arch: &'static str| async move {
        let out = ec2
            .describe_images()
            .owners(CANONICAL)
            .filters(
                Filter::builder()
                    .name("name")
                    .values(amis::AMD64_NAME_PATTERN)
                    .build(),
            )
            .filters(
                Filter::builder().name("architecture").values(arch).build(),
            )
            .filters(
                Filter::builder().name("state").values("available").build(),
            )
            .send()
            .await
            .expect("DescribeImages");
        let mut images: Vec<(String, String)> = out
            .images()
            .iter()
            .map(|i| {
                (
                    i.creation_date().unwrap_or_default().to_string(),
                    i.image_id().unwrap_or_default().to_string(),
                )
            })
            .collect();
        images.sort();
        images
    };
    let images = jammy(world.ec2().await, "x86_64").await;
    assert_eq!(images.len(), 3, "Canonical's amd64 images: {images:?}");
    assert_eq!(images.last().map(|i| i.1.as_str()), Some(JAMMY));
    assert_eq!(jammy(ec2.clone(), "arm64").await.len(), 1, "misnamed arm64");

    world.add_image(
        "ami-0f1e2d3c4b5a69788",
        "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20270301",
        "2027-03-01T00:00:00.000Z",
    );
    let images = jammy(ec2.clone(), "x86_64").await;
    assert_eq!(images.len(), 4);
    assert_eq!(
        images.last().map(|i| i.1.as_str()),
        Some("ami-0f1e2d3c4b5a69788")
    );
    assert_eq!(jammy(ec2.clone(), "arm64").await.len(), 1, "x86_64 only");
    let by_id = ec2
        .describe_images()
        .image_ids("ami-0f1e2d3c4b5a69788")
        .send()
        .await
        .expect("DescribeImages by id");
    assert_eq!(by_id.images().len(), 1);

    // A launch from the injected image works and shows its id.
    world.set_pending(0);
    let out = ec2
        .run_instances()
        .image_id("ami-0f1e2d3c4b5a69788")
        .instance_type(InstanceType::T3Medium)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .expect("RunInstances from the injected image");
    let id = out.instances()[0].instance_id().expect("id").to_string();
    let seen = ec2
        .describe_instances()
        .instance_ids(&id)
        .send()
        .await
        .expect("DescribeInstances");
    assert_eq!(
        seen.reservations()[0].instances()[0].image_id(),
        Some("ami-0f1e2d3c4b5a69788")
    );
}

#[tokio::test]
async fn world_hubform_command_and_pause_helper() {
    let world = World::start().await;
    let cmd = world.hubform();
    let envs: std::collections::HashMap<_, _> = cmd
        .get_envs()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.map(|v| v.to_string_lossy().into_owned()),
            )
        })
        .collect();
    assert_eq!(envs.get("AWS_ENDPOINT_URL"), Some(&Some(world.endpoint())));
    assert_eq!(envs.get("HUBFORM_LOOPBACK_ONLY"), Some(&Some("1".into())));
    assert!(!matches!(envs.get("AWS_REGION"), Some(Some(_))));
    assert_eq!(cmd.get_current_dir(), Some(world.dir()));

    // The pause helper, with a stand-in for a paused hubform.
    let mut stand_in = Command::new("sh");
    stand_in.args([
        "-c",
        r#"echo working >&2; echo "hubform: paused at $HUBFORM_PAUSE_AT" >&2;
           exec sleep 60"#,
    ]);
    let mut child = world.spawn_paused(stand_in, "after-run-instances");
    child.kill().expect("SIGKILL the paused process");
    let status = child.wait().expect("wait");
    assert!(!status.success());
}
