//! `hubform drift` over folders of specs: several workshops in one moto
//! world, drifted by hand through the AWS API and over SSH on a TLJH test
//! host, reported by the exit code and the JSON report, and found with
//! one describe call per kind however many workshops there are.

use std::collections::BTreeSet;
use std::path::PathBuf;

use aws_sdk_ec2::types::Filter;
use serde_json::{json, Value};

use crate::common::{self, spec_text, write_spec, Run, EXAMPLE};
use crate::drift::{rules, tcp_from_anywhere, value_pos};
use crate::tljh_double::{config_value, TljhHost};
use crate::world::World;

/// The folder of the test's specs, inside the world's folder.
const FOLDER: &str = "specs";

/// The example renamed for workshop `drift-<letter>`: its own workshop,
/// IAM names (account-wide), key pair and security group (unique in the
/// Region and the VPC), instance name and key files.
fn renamed(letter: &str) -> String {
    spec_text(EXAMPLE)
        .replace("groundwater-central-asia", &format!("drift-{letter}"))
        .replace("EC2Admins", &format!("EC2Admins-{letter}"))
        .replace("ec2-admin", &format!("ec2-admin-{letter}"))
        .replace("workshop-central-asia", &format!("ws-{letter}"))
        .replace("workshop-sg", &format!("web-{letter}"))
}

/// The workshop of `letter`.
fn workshop(letter: &str) -> String {
    format!("drift-{letter}")
}

/// Writes workshop `letter`'s spec into the test's folder.
fn add_spec(world: &World, letter: &str) -> PathBuf {
    let dir = world.dir().join(FOLDER);
    std::fs::create_dir_all(&dir).expect("the specs folder");
    write_spec(world, &format!("{FOLDER}/{letter}.yaml"), &renamed(letter))
}

/// Writes workshop `letter`'s spec with a host layer on `tljh`'s test
/// host, whose login key stands in for the key pair's private key.
fn add_host_spec(world: &World, letter: &str, tljh: &TljhHost) -> PathBuf {
    let host = format!(
        "{}        limits.memory: 4G
        services.cull.timeout: 3600
      packages:
        pip: [hubform-tiny-a]
",
        tljh.spec_block()
    );
    tljh.lend_key(&world.dir().join(FOLDER), &format!("ws-{letter}"));
    let text = format!("{}{host}", renamed(letter));
    write_spec(world, &format!("{FOLDER}/{letter}.yaml"), &text)
}

/// `hubform drift ARGS…` in the world.
fn drift(world: &World, args: &[&str]) -> Run {
    let mut all = vec!["drift"];
    all.extend_from_slice(args);
    common::hubform(world, &all)
}

/// `hubform drift --json ARGS…` with exit `code`, its report parsed.
fn drift_json(world: &World, args: &[&str], code: i32) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let run = drift(world, &all).expect_code(code);
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("JSON report: {e}\n{}", run.stdout))
}

/// The report's entry of `workshop`.
fn entry<'a>(report: &'a Value, workshop: &str) -> &'a Value {
    report["workshops"]
        .as_array()
        .expect("a list of workshops")
        .iter()
        .find(|w| w["workshop"] == workshop)
        .unwrap_or_else(|| panic!("no {workshop} in {report:#}"))
}

/// The (resource, field) pairs a workshop's entry reports as drift.
fn drifted(entry: &Value) -> BTreeSet<(String, String)> {
    entry["drift"]
        .as_array()
        .expect("a drift list")
        .iter()
        .map(|d| {
            let field = d["field"].as_str().unwrap_or("").to_owned();
            (d["resource"].as_str().expect("resource").to_owned(), field)
        })
        .collect()
}

fn pair(resource: &str, field: &str) -> (String, String) {
    (resource.to_owned(), field.to_owned())
}

/// The id of workshop `letter`'s security group, read from moto.
async fn group_id(world: &World, letter: &str) -> String {
    let out = world
        .ec2()
        .await
        .describe_security_groups()
        .filters(
            Filter::builder()
                .name("group-name")
                .values(format!("web-{letter}"))
                .build(),
        )
        .send()
        .await
        .expect("DescribeSecurityGroups");
    out.security_groups()
        .first()
        .and_then(|g| g.group_id())
        .expect("the security group")
        .to_owned()
}

/// Adds an ingress rule for `port` to workshop `letter`'s group by hand.
async fn open_port_by_hand(world: &World, letter: &str, port: i32) {
    world
        .ec2()
        .await
        .authorize_security_group_ingress()
        .group_id(group_id(world, letter).await)
        .ip_permissions(tcp_from_anywhere(port))
        .send()
        .await
        .expect("add a rule by hand");
}

/// The ingress rules of workshop `letter`'s group, read from moto.
async fn ingress(world: &World, letter: &str) -> BTreeSet<String> {
    let out = world
        .ec2()
        .await
        .describe_security_groups()
        .group_ids(group_id(world, letter).await)
        .send()
        .await
        .expect("DescribeSecurityGroups");
    rules(out.security_groups()[0].ip_permissions())
}

fn folder(world: &World) -> String {
    world.dir().join(FOLDER).display().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_over_a_folder_names_exactly_the_hand_made_changes() {
    let world = World::start().await;
    let tljh = TljhHost::start();
    for spec in [
        add_spec(&world, "a"),
        add_spec(&world, "b"),
        add_host_spec(&world, "c", &tljh),
    ] {
        common::apply(&world, &spec);
    }

    // By hand: a rule in b's security group, a tljh-config value on c's
    // host (as root, as a lecturer would over SSH).
    open_port_by_hand(&world, "b", 8080).await;
    tljh.tljh_config_ok("set limits.memory 2G");
    tljh.tljh_config_ok("reload hub");

    world.reset_requests();
    let report = drift_json(&world, &[&folder(&world)], 2);
    assert_eq!(report["format_version"], 1, "{report:#}");
    assert_eq!(
        report["summary"],
        json!({"workshops": 3, "in_sync": 1, "drift": 2, "error": 0})
    );

    let a = entry(&report, &workshop("a"));
    assert_eq!(a["status"], "in_sync", "{a:#}");
    assert_eq!(a["drift"], json!([]), "{a:#}");
    assert_eq!(a["error"], Value::Null, "{a:#}");
    assert_eq!(a["region"], "ap-south-1", "{a:#}");

    let b = entry(&report, &workshop("b"));
    assert_eq!(b["status"], "drift", "{b:#}");
    assert_eq!(
        drifted(b),
        BTreeSet::from([pair("security_group.web-b", "ingress")])
    );
    let rule = &b["drift"][0];
    assert_eq!(rule["action"], "update", "{rule:#}");
    assert_eq!(rule["cloud_id"], group_id(&world, "b").await.as_str());
    assert_eq!(
        rule["extra"],
        json!(["tcp 8080 from 0.0.0.0/0"]),
        "{rule:#}"
    );
    assert_eq!(rule["missing"], json!([]), "{rule:#}");

    let c = entry(&report, &workshop("c"));
    assert_eq!(c["status"], "drift", "{c:#}");
    assert_eq!(
        drifted(c),
        BTreeSet::from([pair("tljh_config.hub", "limits.memory")])
    );
    let memory = &c["drift"][0];
    assert_eq!(memory["expected"], "4G", "{memory:#}");
    assert_eq!(memory["actual"], "2G", "{memory:#}");

    // Drift only looks: the world keeps both hand changes.
    let mutating: Vec<_> = world
        .requests()
        .into_iter()
        .filter(|r| common::is_mutating(&r.action))
        .collect();
    assert!(mutating.is_empty(), "drift changed AWS: {mutating:?}");
    assert!(ingress(&world, "b")
        .await
        .contains("tcp 8080 from 0.0.0.0/0"));
    assert_eq!(config_value(&tljh, "limits.memory"), json!("2G"));

    // The same for people.
    let run = drift(&world, &[&folder(&world)]).expect_code(2);
    let text = run.stdout;
    assert!(text.contains("drift-a ("), "{text}");
    assert!(text.contains("): in sync"), "{text}");
    assert!(
        text.contains(r#"ingress: extra "tcp 8080 from 0.0.0.0/0""#),
        "{text}"
    );
    assert!(
        text.contains(r#"limits.memory: expected "4G", actual "2G""#),
        "{text}"
    );
    assert!(
        text.contains("Drift: 3 workshops: 1 in sync, 2 drifted, 0 failed."),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mistyped_command_line_exits_1_not_2() {
    let world = World::start().await;
    add_spec(&world, "a");

    let run = drift(&world, &["--jsn", &folder(&world)]).expect_code(1);
    assert!(run.stderr.contains("--jsn"), "{}", run.stderr);
    assert_eq!(run.stdout, "");
    assert!(world.requests().is_empty(), "{:?}", world.requests());
}

/// The calls a drift makes of each discovery kind (one each).
const DESCRIBES: [&str; 7] = [
    "GetAccountAuthorizationDetails",
    "DescribeKeyPairs",
    "DescribeSecurityGroups",
    "DescribeImages",
    "DescribeInstances",
    "DescribeVolumes",
    "DescribeAddresses",
];

/// How many calls of each discovery kind the proxy saw.
fn describe_counts(world: &World) -> Vec<(&'static str, usize)> {
    DESCRIBES.iter().map(|a| (*a, world.count(a))).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_workshops_cost_one_describe_per_kind_like_one() {
    let world = World::start().await;
    let specs: Vec<PathBuf> = ["a", "b", "c"]
        .iter()
        .map(|l| add_spec(&world, l))
        .collect();
    for spec in &specs {
        common::apply(&world, spec);
    }
    let once: Vec<(&str, usize)> = DESCRIBES.iter().map(|a| (*a, 1)).collect();

    world.reset_requests();
    let one = specs[0].to_str().expect("a UTF-8 path");
    drift(&world, &[one]).expect_code(0);
    assert_eq!(describe_counts(&world), once);
    assert_eq!(world.count("ListAccessKeys"), 1, "one IAM user");
    assert_eq!(world.requests().len(), 8, "{:?}", world.requests());

    world.reset_requests();
    drift(&world, &[&folder(&world)]).expect_code(0);
    assert_eq!(describe_counts(&world), once);
    // Access keys are not in the account details: one call per user.
    assert_eq!(world.count("ListAccessKeys"), 3, "three IAM users");
    assert_eq!(world.requests().len(), 10, "{:?}", world.requests());
}

#[tokio::test(flavor = "multi_thread")]
async fn all_in_sync_exits_0() {
    let world = World::start().await;
    let a = add_spec(&world, "a");
    let b = add_spec(&world, "b");
    common::apply(&world, &a);
    common::apply(&world, &b);

    // A spec named on its own and again through its folder counts once.
    let a = a.to_str().expect("a UTF-8 path");
    let run = drift(&world, &[a, &folder(&world)]).expect_code(0);
    assert!(
        run.stdout
            .contains("Drift: 2 workshops: 2 in sync, 0 drifted, 0 failed."),
        "{}",
        run.stdout
    );
    let report = drift_json(&world, &[&folder(&world)], 0);
    for letter in ["a", "b"] {
        let w = entry(&report, &workshop(letter));
        assert_eq!(w["status"], "in_sync", "{w:#}");
        assert_eq!(w["drift"], json!([]), "{w:#}");
        assert_eq!(w["lookalikes"], json!([]), "{w:#}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn untagged_twin_of_a_spec_resource_is_reported_as_a_lookalike() {
    let world = World::start().await;
    common::apply(&world, &add_spec(&world, "a"));
    add_spec(&world, "x");

    // By hand, before x is ever applied: a group with the name x wants.
    let twin = world
        .ec2()
        .await
        .create_security_group()
        .group_name("web-x")
        .description("made by hand")
        .send()
        .await
        .expect("create a group by hand")
        .group_id()
        .expect("the group's id")
        .to_owned();

    let report = drift_json(&world, &[&folder(&world)], 2);
    assert_eq!(entry(&report, &workshop("a"))["status"], "in_sync");
    let x = entry(&report, &workshop("x"));
    assert_eq!(x["status"], "drift", "{x:#}");
    let lookalikes = x["lookalikes"].as_array().expect("lookalikes");
    assert_eq!(lookalikes.len(), 1, "{x:#}");
    assert_eq!(lookalikes[0]["resource"], "security_group.web-x");
    let message = lookalikes[0]["message"].as_str().expect("a message");
    assert!(message.contains(&twin), "{message}");
    let group = x["drift"]
        .as_array()
        .expect("drift")
        .iter()
        .find(|d| d["resource"] == "security_group.web-x")
        .unwrap_or_else(|| panic!("the group's create in {x:#}"));
    assert_eq!(group["action"], "create", "{group:#}");

    // Drift adopted nothing: the twin is still untagged and alone.
    let found = world
        .ec2()
        .await
        .describe_security_groups()
        .filters(Filter::builder().name("group-name").values("web-x").build())
        .send()
        .await
        .expect("DescribeSecurityGroups");
    let groups = found.security_groups();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert!(groups[0].tags().is_empty(), "{groups:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn spec_that_does_not_load_exits_1_and_the_others_are_still_reported() {
    let world = World::start().await;
    common::apply(&world, &add_spec(&world, "a"));
    common::apply(&world, &add_spec(&world, "b"));
    open_port_by_hand(&world, "b", 8080).await;
    let text = renamed("z").replace("from: 0.0.0.0/0", "from: 0.0.0.0/99");
    let broken = write_spec(&world, &format!("{FOLDER}/z.yaml"), &text);
    let place = format!("{}:{}", broken.display(), value_pos(&text, "from"));

    // An error wins over drift, and nothing is left out.
    let run = drift(&world, &["--json", &folder(&world)]).expect_code(1);
    let report: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert!(run.stderr.contains(&place), "{place} in {}", run.stderr);
    assert!(
        run.stderr.contains(
            "drift of 2 workshop(s) in 1 Region(s), and 1 spec(s) that do \
             not load"
        ),
        "the opening line counts every spec:\n{}",
        run.stderr
    );
    assert_eq!(
        report["summary"],
        json!({"workshops": 3, "in_sync": 1, "drift": 1, "error": 1})
    );
    let failed = report["workshops"]
        .as_array()
        .expect("workshops")
        .iter()
        .find(|w| w["status"] == "error")
        .expect("the broken spec's entry");
    assert_eq!(failed["spec"], broken.display().to_string());
    assert_eq!(failed["workshop"], Value::Null);
    let error = failed["error"].as_str().expect("an error message");
    assert!(error.contains(&place), "{place} in {error}");
    assert!(error.contains("invalid prefix length"), "{error}");

    assert_eq!(entry(&report, &workshop("a"))["status"], "in_sync");
    let b = entry(&report, &workshop("b"));
    assert_eq!(
        drifted(b),
        BTreeSet::from([pair("security_group.web-b", "ingress")])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_specs_of_one_workshop_are_an_error() {
    let world = World::start().await;
    common::apply(&world, &add_spec(&world, "a"));
    write_spec(&world, &format!("{FOLDER}/a-copy.yaml"), &renamed("a"));

    let report = drift_json(&world, &[&folder(&world)], 1);
    let entries = report["workshops"].as_array().expect("workshops");
    assert_eq!(entries.len(), 2, "{report:#}");
    // Files in name order: a-copy.yaml is checked, a.yaml is refused.
    assert_eq!(entries[0]["status"], "in_sync", "{report:#}");
    assert_eq!(entries[1]["status"], "error", "{report:#}");
    let error = entries[1]["error"].as_str().expect("an error");
    assert!(error.contains("a-copy.yaml"), "{error}");
}
