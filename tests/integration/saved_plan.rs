//! Saved plans and plan JSON: `plan --out FILE` then `apply --plan FILE`
//! applies exactly that plan, and is refused when the spec or the live
//! state moved since; `plan --json` is the documented format. Checked
//! through the EC2 API and the proxy's request log.

use std::path::PathBuf;

use crate::common::{self, example, hubform, is_mutating};
use crate::drift::{deployed, tcp_from_anywhere, Deployed, KEY_NAME, WORKSHOP};
use crate::world::World;

/// `plan --out FILE` for `spec`; returns the file.
fn save_plan(world: &World, spec: &std::path::Path, name: &str) -> PathBuf {
    let file = world.dir().join(name);
    let spec = spec.to_str().expect("UTF-8");
    let file_arg = file.to_str().expect("UTF-8");
    hubform(world, &["plan", "--out", file_arg, spec]).expect_code(0);
    file
}

fn apply_saved(world: &World, file: &std::path::Path) -> common::Run {
    hubform(world, &["apply", "--plan", file.to_str().expect("UTF-8")])
}

/// Mutating calls the proxy saw, without the workshop lock's key pair.
fn changes_made(world: &World) -> Vec<String> {
    world
        .requests()
        .into_iter()
        .filter(|r| is_mutating(&r.action))
        .filter(|r| !r.action.contains("KeyPair") && r.action != "CreateTags")
        .map(|r| r.action)
        .collect()
}

async fn instance_count(world: &World) -> usize {
    common::live_instances(&world.ec2().await, Some(WORKSHOP))
        .await
        .len()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_saved_against_an_empty_account_applies_once() {
    let world = World::start().await;
    let spec = example(&world);
    let file = save_plan(&world, &spec, "first.plan");

    let run = apply_saved(&world, &file).expect_code(0);
    assert!(run.stdout.contains("Apply complete!"), "{}", run.stdout);
    assert_eq!(instance_count(&world).await, 1);
    let key_pairs = world
        .ec2()
        .await
        .describe_key_pairs()
        .key_names(KEY_NAME)
        .send()
        .await
        .expect("DescribeKeyPairs");
    assert_eq!(key_pairs.key_pairs().len(), 1);

    world.reset_requests();
    let again = apply_saved(&world, &file).expect_code(1);
    assert!(
        again.stderr.contains("live state moved")
            && again.stderr.contains("instance.hub"),
        "{}",
        again.stderr
    );
    assert_eq!(changes_made(&world), Vec::<String>::new());
    assert_eq!(instance_count(&world).await, 1, "no second server");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_plan_is_refused_after_a_hand_change_to_a_planned_resource() {
    let d = deployed().await;
    d.edit_spec(
        "      - { ports: [22, 80, 443], from: 0.0.0.0/0 }\n",
        "      - { ports: [22, 80, 443], from: 0.0.0.0/0 }\n      \
         - { ports: [8080], from: 10.0.0.0/8 }\n",
    );
    let file = save_plan(&d.world, &d.spec, "rule.plan");

    // By hand, through the API: another rule on the planned group.
    let group = d.group().await;
    d.ec2
        .authorize_security_group_ingress()
        .group_id(group.group_id().expect("group id"))
        .ip_permissions(tcp_from_anywhere(8888))
        .send()
        .await
        .expect("AuthorizeSecurityGroupIngress");

    d.world.reset_requests();
    let run = apply_saved(&d.world, &file).expect_code(1);
    assert!(
        run.stderr.contains("live state moved")
            && run.stderr.contains("security_group.workshop-sg")
            && run.stderr.contains("nothing was changed"),
        "{}",
        run.stderr
    );
    assert_eq!(changes_made(&d.world), Vec::<String>::new());
    let rules = crate::drift::rules(d.group().await.ip_permissions());
    assert!(!rules.iter().any(|r| r.contains("8080")), "{rules:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_plan_applies_exactly_and_refuses_an_edited_spec() {
    let d = deployed().await;
    d.edit_spec(
        "      - { ports: [22, 80, 443], from: 0.0.0.0/0 }\n",
        "      - { ports: [22, 80, 443], from: 0.0.0.0/0 }\n      \
         - { ports: [8080], from: 10.0.0.0/8 }\n",
    );
    let file = save_plan(&d.world, &d.spec, "rule.plan");

    // Editing the spec after saving the plan voids it.
    let text = std::fs::read_to_string(&d.spec).expect("spec");
    std::fs::write(&d.spec, format!("{text}# an edit\n")).expect("write");
    let run = apply_saved(&d.world, &file).expect_code(1);
    assert!(
        run.stderr.contains("changed since this plan"),
        "{}",
        run.stderr
    );
    std::fs::write(&d.spec, &text).expect("write");

    let run = apply_saved(&d.world, &file).expect_code(0);
    assert!(run.stdout.contains("1 changed"), "{}", run.stdout);
    let rules = crate::drift::rules(d.group().await.ip_permissions());
    assert!(rules.iter().any(|r| r.contains("8080")), "{rules:?}");
    d.expect_in_sync();
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_json_and_plan_files_name_changes_and_hold_no_secret() {
    let d: Deployed = deployed().await;
    // The access key's secret, as the apply wrote it.
    let credentials = std::fs::read_to_string(
        d.spec
            .parent()
            .expect("dir")
            .join("keys/ec2-admin.credentials"),
    )
    .expect("the credentials file");
    let secret = credentials
        .lines()
        .find_map(|l| l.split_once("aws_secret_access_key"))
        .map(|(_, v)| v.trim_start_matches([' ', '=']).trim().to_owned())
        .expect("a secret in the credentials file");
    assert!(secret.len() > 10);
    let private_key = std::fs::read_to_string(
        d.spec
            .parent()
            .expect("dir")
            .join("keys/workshop-central-asia.pem"),
    )
    .expect("the private key");

    d.edit_spec("type: t3.xlarge", "type: t3.large");
    let spec = d.spec.to_str().expect("UTF-8");
    let run = hubform(&d.world, &["plan", "--json", spec]).expect_code(0);
    let json: serde_json::Value =
        serde_json::from_str(&run.stdout).expect("plan --json is JSON");
    assert_eq!(json["format_version"], 1);
    assert_eq!(json["workshop"], WORKSHOP);
    let changes = json["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 1, "{json:#}");
    assert_eq!(changes[0]["resource"], "instance.hub");
    assert_eq!(changes[0]["action"], "update");
    assert_eq!(changes[0]["diffs"][0]["field"], "type");
    assert_eq!(changes[0]["diffs"][0]["old"], "t3.xlarge");
    assert_eq!(changes[0]["diffs"][0]["new"], "t3.large");
    assert_eq!(json["summary"]["change"], 1);

    let file = save_plan(&d.world, &d.spec, "type.plan");
    let saved = std::fs::read_to_string(&file).expect("the plan file");
    for text in [&run.stdout, &run.stderr, &saved] {
        assert!(!text.contains(&secret), "a secret leaked");
        assert!(!text.contains("PRIVATE KEY"), "a private key leaked");
        for line in private_key.lines().filter(|l| l.len() > 20) {
            assert!(!text.contains(line), "a private key line leaked");
        }
    }
}
