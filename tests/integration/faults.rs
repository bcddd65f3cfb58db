//! AWS faults: throttling, server errors, objects that AWS does not show
//! yet right after their create, slow stops, the Elastic IP quota and
//! credentials that expire mid-run. Each test applies the example
//! workshop through the fault proxy and checks the world (moto, and the
//! proxy's record of every attempt), not only what hubform printed.
//!
//! The proxy fails the first attempts of each SDK call (by its invocation
//! id), so whether a call gets through depends on hubform's retries only,
//! never on timing. The world gives hubform 4 attempts per call.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::Filter;

use crate::common::{self, example, hubform, Run};
use crate::drift::{KEY_NAME, WORKSHOP};
use crate::world::{Attempt, World};

/// Attempts per call in the world (`HUBFORM_RETRY_MAX_ATTEMPTS`).
const MAX_ATTEMPTS: u32 = 4;
/// Enough invocations to catch every call of an apply.
const EVERY_CALL: u32 = 100_000;

/// How many of each of the example's objects exist in moto.
#[derive(Debug, PartialEq, Eq)]
struct Census {
    instances: usize,
    key_pairs: usize,
    security_groups: usize,
    addresses: usize,
    iam_users: usize,
    iam_groups: usize,
}

/// One of each: what a converged apply of the example leaves.
const ONE_OF_EACH: Census = Census {
    instances: 1,
    key_pairs: 1,
    security_groups: 1,
    addresses: 1,
    iam_users: 1,
    iam_groups: 1,
};

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// Counts the example's objects in moto: instances that are not
/// terminated, key pairs and security groups by name, tagged addresses,
/// IAM users and groups by name.
async fn census(world: &World) -> Census {
    let ec2 = world.ec2().await;
    let workshop = filter("tag:hubform:workshop", WORKSHOP);
    let instances = crate::common::live_instances(&ec2, Some(WORKSHOP))
        .await
        .len();
    let key_pairs = ec2
        .describe_key_pairs()
        .filters(filter("key-name", KEY_NAME))
        .send()
        .await
        .expect("DescribeKeyPairs")
        .key_pairs()
        .len();
    let security_groups = ec2
        .describe_security_groups()
        .filters(filter("group-name", "workshop-sg"))
        .send()
        .await
        .expect("DescribeSecurityGroups")
        .security_groups()
        .len();
    let addresses = ec2
        .describe_addresses()
        .filters(workshop)
        .send()
        .await
        .expect("DescribeAddresses")
        .addresses()
        .len();

    let iam = world.iam().await;
    let users = iam.list_users().send().await.expect("ListUsers");
    let iam_users = users
        .users()
        .iter()
        .filter(|u| u.user_name() == "ec2-admin")
        .count();
    let groups = iam.list_groups().send().await.expect("ListGroups");
    let iam_groups = groups
        .groups()
        .iter()
        .filter(|g| g.group_name() == "EC2Admins")
        .count();
    Census {
        instances,
        key_pairs,
        security_groups,
        addresses,
        iam_users,
        iam_groups,
    }
}

/// After the faults are switched off, a plan finds nothing to do.
fn expect_in_sync(world: &World, spec: &std::path::Path) {
    world.reset_controls();
    common::plan(world, spec).expect_code(0);
}

/// Every attempt, grouped by the SDK call it belongs to.
fn by_invocation(attempts: &[Attempt]) -> BTreeMap<String, Vec<Attempt>> {
    let mut calls: BTreeMap<String, Vec<Attempt>> = BTreeMap::new();
    for a in attempts {
        calls
            .entry(a.invocation.clone())
            .or_default()
            .push(a.clone());
    }
    calls
}

/// The attempts of `action`.
fn attempts_of(world: &World, action: &str) -> Vec<Attempt> {
    world
        .attempts()
        .into_iter()
        .filter(|a| a.action == action)
        .collect()
}

/// How many answers carried the error `code`.
fn answered(world: &World, code: &str) -> usize {
    world.attempts().iter().filter(|a| a.code == code).count()
}

fn both(run: &Run) -> String {
    format!("{}\n{}", run.stdout, run.stderr)
}

fn apply_run(world: &World, spec: &std::path::Path) -> Run {
    let spec = spec.to_str().expect("a UTF-8 path");
    hubform(world, &["apply", "--auto-approve", spec])
}

/// Every call of `services` (but the `spared` actions) went through its
/// `failed` injected answers (codes in order) and then got an answer of
/// its own: exactly that many attempts plus one, never more than the
/// bound.
fn assert_each_call_failed_then_passed(
    world: &World,
    services: &[&str],
    spared: &[&str],
    failed: &[&str],
) {
    let attempts = world.attempts();
    let calls = by_invocation(&attempts);
    let mut checked = 0;
    for (invocation, tries) in &calls {
        let first = &tries[0];
        if !services.contains(&first.service.as_str())
            || spared.contains(&first.action.as_str())
        {
            continue;
        }
        checked += 1;
        let numbers: Vec<u32> = tries.iter().map(|a| a.attempt).collect();
        let expected: Vec<u32> = (1..=failed.len() as u32 + 1).collect();
        assert_eq!(
            numbers,
            expected,
            "call {invocation} ({}) was attempted {} times: {tries:?}",
            tries[0].action,
            tries.len()
        );
        assert!(numbers.len() as u32 <= MAX_ATTEMPTS);
        let codes: Vec<&str> = tries.iter().map(|a| a.code.as_str()).collect();
        assert_eq!(&codes[..failed.len()], failed, "{tries:?}");
        assert!(
            !failed.contains(&codes[failed.len()]),
            "the last attempt got through: {tries:?}"
        );
    }
    assert!(checked >= 5, "an apply makes many calls, saw {checked}");
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_converges_under_throttling_bursts() {
    let world = World::start().await;
    let spec = example(&world);
    // Every call is throttled twice before it gets through.
    for service in ["ec2", "iam", "sts"] {
        world.throttle(service, 2, EVERY_CALL);
    }

    apply_run(&world, &spec).expect_code(0);

    assert_each_call_failed_then_passed(
        &world,
        &["ec2"],
        &[],
        &["RequestLimitExceeded", "RequestLimitExceeded"],
    );
    assert_each_call_failed_then_passed(
        &world,
        &["iam", "sts"],
        &[],
        &["Throttling", "Throttling"],
    );
    assert_eq!(census(&world).await, ONE_OF_EACH);
    expect_in_sync(&world, &spec);
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_converges_under_server_error_bursts() {
    let world = World::start().await;
    let spec = example(&world);
    // Each call first meets a 500, then a 503, then gets through; all
    // but AllocateAddress, which is not repeated after a server error
    // (see server_error_after_allocate_address_is_not_repeated).
    for (code, status) in [("InternalError", 500), ("Unavailable", 503)] {
        world.burst(serde_json::json!({
            "service": "ec2", "code": code, "status": status,
            "attempts": 1, "invocations": EVERY_CALL,
            "except": ["AllocateAddress"],
        }));
    }
    world.server_errors("iam", 500, 1, EVERY_CALL);
    world.server_errors("iam", 503, 1, EVERY_CALL);

    apply_run(&world, &spec).expect_code(0);

    assert_each_call_failed_then_passed(
        &world,
        &["ec2"],
        &["AllocateAddress"],
        &["InternalError", "Unavailable"],
    );
    assert_each_call_failed_then_passed(
        &world,
        &["iam"],
        &[],
        &["ServiceFailure", "ServiceUnavailable"],
    );
    assert_eq!(census(&world).await, ONE_OF_EACH);
    expect_in_sync(&world, &spec);
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_beyond_the_retries_fails_with_what_to_do() {
    let world = World::start().await;
    let spec = example(&world);
    world.burst(serde_json::json!({
        "service": "ec2", "action": "DescribeInstances",
        "code": "RequestLimitExceeded", "status": 503,
        "attempts": 10, "invocations": 1,
    }));

    let run = common::plan(&world, &spec).expect_code(1);

    let text = both(&run);
    assert!(
        text.contains(
            "EC2 throttled DescribeInstances 4 times (RequestLimitExceeded"
        ),
        "says which call, how often and what AWS said:\n{text}"
    );
    assert!(
        text.contains("wait a minute and run the command again"),
        "says what to do:\n{text}"
    );
    let tries = attempts_of(&world, "DescribeInstances");
    let throttled: Vec<&Attempt> =
        tries.iter().filter(|a| a.status == 503).collect();
    assert_eq!(throttled.len(), MAX_ATTEMPTS as usize, "{tries:?}");
    let numbers: Vec<u32> = throttled.iter().map(|a| a.attempt).collect();
    assert_eq!(numbers, [1, 2, 3, 4], "one call, four attempts: {tries:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn instance_not_found_after_launch_is_waited_for() {
    let world = World::start().await;
    let spec = example(&world);
    // More NotFound answers than attempts per call: only a wait for the
    // instance (not a bounded retry of one call) rides this out.
    world.unseen_after_create("instance", 6);

    apply_run(&world, &spec).expect_code(0);

    assert_eq!(answered(&world, "InvalidInstanceID.NotFound"), 6);
    assert_eq!(attempts_of(&world, "RunInstances").len(), 1, "one launch");
    assert_eq!(census(&world).await, ONE_OF_EACH);
    expect_in_sync(&world, &spec);
}

#[tokio::test(flavor = "multi_thread")]
async fn security_group_not_found_after_create_is_ridden_out() {
    let world = World::start().await;
    let spec = example(&world);
    world.unseen_after_create("security_group", 2);

    apply_run(&world, &spec).expect_code(0);

    assert_eq!(answered(&world, "InvalidGroup.NotFound"), 2);
    assert_eq!(attempts_of(&world, "CreateSecurityGroup").len(), 1);
    assert_eq!(census(&world).await, ONE_OF_EACH);
    let ec2 = world.ec2().await;
    let groups = ec2
        .describe_security_groups()
        .filters(filter("group-name", "workshop-sg"))
        .send()
        .await
        .expect("DescribeSecurityGroups");
    let rules =
        crate::drift::rules(groups.security_groups()[0].ip_permissions());
    assert_eq!(rules, crate::drift::example_rules(), "all rules are in");
    expect_in_sync(&world, &spec);
}

#[tokio::test(flavor = "multi_thread")]
async fn iam_user_and_group_not_found_after_create_are_ridden_out() {
    let world = World::start().await;
    let spec = example(&world);
    world.unseen_after_create("iam_group", 2);
    world.unseen_after_create("iam_user", 2);

    apply_run(&world, &spec).expect_code(0);

    // Two for the group (attaching its policy), two for the user (adding
    // it to the group).
    assert_eq!(answered(&world, "NoSuchEntity"), 4);
    assert_eq!(attempts_of(&world, "CreateUser").len(), 1);
    assert_eq!(attempts_of(&world, "CreateGroup").len(), 1);
    assert_eq!(attempts_of(&world, "CreateAccessKey").len(), 1);
    assert_eq!(census(&world).await, ONE_OF_EACH);
    let iam = world.iam().await;
    let group = iam
        .get_group()
        .group_name("EC2Admins")
        .send()
        .await
        .expect("GetGroup");
    let members: Vec<&str> =
        group.users().iter().map(|u| u.user_name()).collect();
    assert_eq!(members, ["ec2-admin"]);
    assert!(world.dir().join("keys/ec2-admin.credentials").exists());
    expect_in_sync(&world, &spec);
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_stop_for_a_type_change_is_waited_for() {
    let world = World::start().await;
    let spec = example(&world);
    common::apply(&world, &spec);
    let text = std::fs::read_to_string(&spec).expect("read the spec");
    std::fs::write(&spec, text.replace("type: t3.xlarge", "type: t3.large"))
        .expect("write the spec");
    // The instance shows `stopping` for 5 describes after the stop; the
    // proxy refuses a type change until it is `stopped`.
    world.set_pending(5);
    world.reset_requests();

    apply_run(&world, &spec).expect_code(0);

    let attempts = world.attempts();
    let stop = attempts
        .iter()
        .position(|a| a.action == "StopInstances")
        .expect("a stop");
    let modify = attempts
        .iter()
        .position(|a| a.action == "ModifyInstanceAttribute")
        .expect("a type change");
    let waits = attempts[stop..modify]
        .iter()
        .filter(|a| a.action == "DescribeInstances")
        .count();
    assert!(waits >= 6, "5 stopping answers, then stopped: {attempts:?}");
    let modifies: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| a.action == "ModifyInstanceAttribute")
        .collect();
    assert_eq!(modifies.len(), 1, "{modifies:?}");
    assert_eq!(modifies[0].status, 200);

    let ec2 = world.ec2().await;
    let found = ec2
        .describe_instances()
        .filters(filter("tag:hubform:workshop", WORKSHOP))
        .filters(filter("instance-state-name", "running"))
        .send()
        .await
        .expect("DescribeInstances");
    let instances: Vec<_> = found
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .collect();
    assert_eq!(instances.len(), 1, "one running instance: {instances:?}");
    assert_eq!(
        instances[0].instance_type().map(|t| t.as_str()),
        Some("t3.large")
    );
    expect_in_sync(&world, &spec);
}

#[tokio::test(flavor = "multi_thread")]
async fn sixth_elastic_ip_fails_at_once_naming_the_quota() {
    let world = World::start().await;
    let spec = example(&world);
    let ec2 = world.ec2().await;
    for _ in 0..5 {
        ec2.allocate_address()
            .send()
            .await
            .expect("AllocateAddress in moto");
    }

    let run = apply_run(&world, &spec).expect_code(1);

    let text = both(&run);
    assert!(
        text.contains("elastic_ip.hub"),
        "names the resource:\n{text}"
    );
    assert!(
        text.contains("AllocateAddress failed: AddressLimitExceeded"),
        "names the call and AWS's code:\n{text}"
    );
    assert!(
        text.contains("release an address") && text.contains("Service Quotas"),
        "says how to get an address:\n{text}"
    );
    let tries = attempts_of(&world, "AllocateAddress");
    assert_eq!(tries.len(), 1, "never retried: {tries:?}");
    assert_eq!(tries[0].code, "AddressLimitExceeded");
    let all = ec2.describe_addresses().send().await.expect("addresses");
    assert_eq!(all.addresses().len(), 5, "no sixth address");
    let mut expected = ONE_OF_EACH;
    expected.addresses = 0;
    assert_eq!(census(&world).await, expected, "everything else is there");

    // With the quota lifted (as issue 6's worlds run), the next apply
    // allocates at once: the refusal left no journal entry to wait for.
    world.set_address_limit(None);
    world.reset_requests();
    common::apply(&world, &spec);
    assert_eq!(attempts_of(&world, "AllocateAddress").len(), 1);
    assert_eq!(census(&world).await, ONE_OF_EACH);
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_credentials_stop_the_run_and_a_fresh_run_converges() {
    let world = World::start().await;
    let spec = example(&world);
    // The credentials run out right after the launch.
    world.expire_credentials_after("RunInstances", 1);

    let run = apply_run(&world, &spec).expect_code(1);

    let text = both(&run);
    assert!(
        text.contains("ExpiredToken") && text.contains("aws sso login"),
        "says the credentials expired and how to refresh them:\n{text}"
    );
    let attempts = world.attempts();
    let expired: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| a.code == "ExpiredToken")
        .collect();
    assert!(!expired.is_empty(), "calls met expired credentials");
    for a in &expired {
        let tries = attempts
            .iter()
            .filter(|b| b.invocation == a.invocation)
            .count();
        assert_eq!(tries, 1, "an expired token is never retried: {a:?}");
    }
    assert_eq!(attempts_of(&world, "RunInstances").len(), 1);

    // `aws sso login`, the lock the failed run could not give back is
    // freed, and the next run goes on where this one stopped.
    world.refresh_credentials();
    crate::lock::free_dead_runs_lock(&world).await;
    common::apply(&world, &spec);
    assert_eq!(census(&world).await, ONE_OF_EACH, "no duplicates");
    expect_in_sync(&world, &spec);
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_requests_are_sent_once() {
    let world = World::start().await;
    let spec = example(&world);
    // Both would fail again; a retry would only hide the cause.
    world.fault_spec(serde_json::json!({
        "action": "AuthorizeSecurityGroupIngress",
        "code": "InvalidParameterValue", "status": 400, "count": 100,
        "message": "Invalid value for portRange",
    }));
    world.fault_spec(serde_json::json!({
        "action": "CreateUser", "code": "AccessDenied", "status": 403,
        "count": 100,
        "message": "User: arn:aws:iam::123456789012:user/x is not \
                    authorized to perform: iam:CreateUser",
    }));

    let run = apply_run(&world, &spec).expect_code(1);

    let text = both(&run);
    assert!(
        text.contains(
            "AuthorizeSecurityGroupIngress failed: \
                       InvalidParameterValue"
        ) && text.contains("not retried"),
        "names the call, the code and why it was not retried:\n{text}"
    );
    assert!(
        text.contains("CreateUser failed: AccessDenied")
            && text.contains("may not call CreateUser"),
        "says the credentials lack the right:\n{text}"
    );
    assert_eq!(
        attempts_of(&world, "AuthorizeSecurityGroupIngress").len(),
        1
    );
    assert_eq!(attempts_of(&world, "CreateUser").len(), 1);
    assert_eq!(census(&world).await.instances, 0, "nothing launched");
}

#[tokio::test(flavor = "multi_thread")]
async fn server_error_after_allocate_address_is_not_repeated() {
    let world = World::start().await;
    let spec = example(&world);
    // moto allocates the address, hubform hears a 500: AllocateAddress has
    // no idempotency token, so a repeat would allocate a second address.
    world.fault_lost_answer("AllocateAddress", "InternalError", 500, 1);

    let run = apply_run(&world, &spec).expect_code(1);

    let text = both(&run);
    assert!(
        text.contains("AllocateAddress")
            && text.contains("InternalError")
            && text.contains("run apply again"),
        "names the call, the error and what to do:\n{text}"
    );
    assert_eq!(attempts_of(&world, "AllocateAddress").len(), 1, "no repeat");

    // The next run finds the address by its tag and allocates none.
    world.reset_requests();
    common::apply(&world, &spec);
    assert_eq!(world.count("AllocateAddress"), 0);
    assert_eq!(census(&world).await, ONE_OF_EACH, "one address");
    expect_in_sync(&world, &spec);
}

/// A rule that appeared between the plan and the apply (added by hand,
/// or by a run killed midway) makes AWS refuse the whole batch of rules
/// as a duplicate: they are then added one at a time, and all three are
/// there.
#[tokio::test(flavor = "multi_thread")]
async fn a_rule_already_there_does_not_keep_the_others_out() {
    let world = World::start().await;
    let spec = example(&world);
    world.fault(
        "AuthorizeSecurityGroupIngress",
        "InvalidPermission.Duplicate",
        400,
        1,
    );

    let run = apply_run(&world, &spec);
    assert_eq!(run.code, 0, "{}", both(&run));

    let calls = attempts_of(&world, "AuthorizeSecurityGroupIngress");
    assert_eq!(calls.len(), 4, "all three at once, then each: {calls:?}");
    let ports = common::ingress_ports(&world.ec2().await, "workshop-sg").await;
    assert_eq!(ports, [22, 80, 443], "the example's ingress rules");
    expect_in_sync(&world, &spec);
}
