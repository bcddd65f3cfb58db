//! Planner tests: golden plan texts for each kind of action, and the
//! planner's rules (grow-only sizes, references rebuilt, delete order).
//!
//! Golden files live in `src/plan/golden/`; `UPDATE_GOLDEN=1 cargo test`
//! rewrites them, and the diff is then reviewed like code.

use std::path::PathBuf;

use super::render::render;
use super::*;
use crate::model::{Kind, Live, Observed, Value};
use crate::spec;

const SPEC: &str = r#"
workshop: golden
region: ap-south-1
iam:
  groups:
    EC2Admins: { policies: [AdministratorAccess] }
  users:
    ec2-admin:
      groups: [EC2Admins]
      access_key_file: keys/ec2-admin.credentials
key_pairs:
  golden-key:
    private_key_file: keys/golden-key.pem
security_groups:
  golden-sg:
    description: Security group for JupyterHub workshop
    ingress:
      - { ports: [22, 80, 443], from: 0.0.0.0/0 }
images:
  jammy:
    owner: "099720109477"
    name: ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*
    architecture: x86_64
servers:
  hub:
    name: golden-instance
    type: t3.xlarge
    image: jammy
    key_pair: golden-key
    security_groups: [golden-sg]
    root_volume: { device: /dev/sda1, size_gb: 20, type: gp3 }
    elastic_ip: true
"#;

fn desired() -> Desired {
    let spec = spec::parse(SPEC, "golden.yaml").expect("the spec parses");
    Desired::from_spec(&spec).expect("the graph builds")
}

/// What a provider would find after applying the spec above.
fn converged(desired: &Desired) -> Observed {
    let mut observed = Observed::default();
    let mut add = |kind, key: &str, live: Live| {
        observed.live.insert(ResourceId::new(kind, key), live);
    };
    add(
        Kind::IamGroup,
        "EC2Admins",
        Live::new("EC2Admins").attr(
            "policies",
            Value::set(["arn:aws:iam::aws:policy/AdministratorAccess"]),
        ),
    );
    add(
        Kind::IamUser,
        "ec2-admin",
        Live::new("ec2-admin")
            .attr("groups", Value::set(["EC2Admins"]))
            .attr("access_key", Value::Bool(true)),
    );
    add(Kind::KeyPair, "golden-key", Live::new("key-0123"));
    add(
        Kind::SecurityGroup,
        "golden-sg",
        Live::new("sg-0123")
            .attr(
                "description",
                Value::str("Security group for JupyterHub workshop"),
            )
            .attr(
                "ingress",
                Value::set([
                    "tcp 22 from 0.0.0.0/0",
                    "tcp 80 from 0.0.0.0/0",
                    "tcp 443 from 0.0.0.0/0",
                ]),
            ),
    );
    add(Kind::Image, "jammy", Live::new("ami-0123"));
    let instance = desired
        .get(&ResourceId::new(Kind::Instance, "hub"))
        .expect("instance.hub");
    let mut live = Live::new("i-0123");
    for (name, attr) in &instance.attrs {
        if attr.policy != crate::model::Policy::Local {
            live.attrs.insert(name.clone(), attr.value.clone());
        }
    }
    add(Kind::Instance, "hub", live);
    add(
        Kind::Volume,
        "hub",
        Live::new("vol-0123")
            .attr("size_gb", Value::Int(20))
            .attr("type", Value::str("gp3")),
    );
    add(
        Kind::ElasticIp,
        "hub",
        Live::new("eipalloc-0123").attr(
            "instance",
            Value::Ref(ResourceId::new(Kind::Instance, "hub")),
        ),
    );
    observed
}

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/plan/golden")
        .join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().expect("a folder"))
            .expect("golden folder");
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!("{} is missing; run with UPDATE_GOLDEN=1", path.display())
    });
    assert_eq!(
        actual,
        expected,
        "plan text differs from {}; review and run with UPDATE_GOLDEN=1",
        path.display()
    );
}

fn live_mut<'a>(
    observed: &'a mut Observed,
    kind: Kind,
    key: &str,
) -> &'a mut Live {
    observed
        .live
        .get_mut(&ResourceId::new(kind, key))
        .expect("a live object")
}

#[test]
fn golden_create_from_nothing() {
    let desired = desired();
    let mut observed = Observed::default();
    observed
        .live
        .insert(ResourceId::new(Kind::Image, "jammy"), Live::new("ami-1"));
    let plan = plan(&desired, &observed).expect("a plan");
    assert_eq!(plan.counts(), (7, 0, 0));
    golden("create", &render(&plan));
}

#[test]
fn converged_world_plans_no_changes() {
    let desired = desired();
    let plan = plan(&desired, &converged(&desired)).expect("a plan");
    assert!(plan.is_empty());
    assert_eq!(
        render(&plan),
        "No changes. The live workshop matches the spec.\n"
    );
}

#[test]
fn golden_update_in_place() {
    let desired = desired();
    let mut observed = converged(&desired);
    live_mut(&mut observed, Kind::Instance, "hub")
        .attrs
        .insert("type".into(), Value::str("t3.large"));
    live_mut(&mut observed, Kind::SecurityGroup, "golden-sg")
        .attrs
        .insert(
            "ingress".into(),
            Value::set([
                "tcp 22 from 0.0.0.0/0",
                "tcp 80 from 0.0.0.0/0",
                "tcp 8080 from 0.0.0.0/0",
            ]),
        );
    live_mut(&mut observed, Kind::Volume, "hub")
        .attrs
        .insert("size_gb".into(), Value::Int(10));
    let plan = plan(&desired, &observed).expect("a plan");
    assert_eq!(plan.counts(), (0, 3, 0));
    golden("update", &render(&plan));
}

#[test]
fn golden_replace_of_security_group() {
    let desired = desired();
    let mut observed = converged(&desired);
    live_mut(&mut observed, Kind::SecurityGroup, "golden-sg")
        .attrs
        .insert("description".into(), Value::str("Old description"));
    let plan = plan(&desired, &observed).expect("a plan");
    assert_eq!(plan.counts(), (1, 0, 1));
    golden("replace", &render(&plan));
}

#[test]
fn golden_delete_of_everything() {
    let desired = Desired::empty("golden".into(), "ap-south-1".into());
    let full = crate::plan::tests::desired();
    let plan = plan(&desired, &converged(&full)).expect("a plan");
    assert_eq!(plan.counts(), (0, 0, 7));
    golden("delete", &render(&plan));

    // Elastic IP and volume before the instance, the instance before
    // what it uses, users before their groups.
    let order: Vec<String> =
        plan.changes.iter().map(|c| c.id.to_string()).collect();
    let at = |id: &str| order.iter().position(|o| o == id).expect(id);
    assert!(at("elastic_ip.hub") < at("instance.hub"));
    assert!(at("instance.hub") < at("security_group.golden-sg"));
    assert!(at("instance.hub") < at("key_pair.golden-key"));
    assert!(at("iam_user.ec2-admin") < at("iam_group.EC2Admins"));
    let instance = plan
        .change(&ResourceId::new(Kind::Instance, "hub"))
        .expect("instance delete");
    assert!(instance
        .after
        .contains(&ResourceId::new(Kind::ElasticIp, "hub")));
}

#[test]
fn shrinking_a_volume_is_a_plan_error_at_its_line() {
    let desired = desired();
    let mut observed = converged(&desired);
    live_mut(&mut observed, Kind::Volume, "hub")
        .attrs
        .insert("size_gb".into(), Value::Int(30));
    let errors = plan(&desired, &observed).expect_err("a shrink");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].id.to_string(), "volume.hub");
    assert_eq!(errors[0].pos.line, 31);
    assert!(errors[0].message.contains("cannot shrink from 30 to 20"));
}

#[test]
fn a_new_instance_reassociates_its_elastic_ip() {
    let desired = desired();
    let mut observed = converged(&desired);
    observed
        .live
        .remove(&ResourceId::new(Kind::Instance, "hub"));
    observed.live.remove(&ResourceId::new(Kind::Volume, "hub"));
    let plan = plan(&desired, &observed).expect("a plan");
    let eip = plan
        .change(&ResourceId::new(Kind::ElasticIp, "hub"))
        .expect("the address changes");
    assert_eq!(eip.action, Action::Update);
    assert!(eip.diffs[0].known_after_apply);
    assert!(eip.after.contains(&ResourceId::new(Kind::Instance, "hub")));
}

#[test]
fn a_missing_image_is_a_plan_error() {
    let desired = desired();
    let mut observed = converged(&desired);
    observed.live.remove(&ResourceId::new(Kind::Image, "jammy"));
    let errors = plan(&desired, &observed).expect_err("no image");
    assert!(errors[0].message.contains("found no available image"));
}

#[test]
fn creates_wait_for_their_dependencies_only() {
    let desired = desired();
    let mut observed = Observed::default();
    observed
        .live
        .insert(ResourceId::new(Kind::Image, "jammy"), Live::new("ami-1"));
    let plan = plan(&desired, &observed).expect("a plan");
    let after = |kind, key: &str| {
        plan.change(&ResourceId::new(kind, key))
            .expect("a change")
            .after
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    assert!(after(Kind::IamGroup, "EC2Admins").is_empty());
    assert!(after(Kind::SecurityGroup, "golden-sg").is_empty());
    assert!(after(Kind::KeyPair, "golden-key").is_empty());
    assert_eq!(after(Kind::IamUser, "ec2-admin"), ["iam_group.EC2Admins"]);
    let mut instance = after(Kind::Instance, "hub");
    instance.sort();
    assert_eq!(
        instance,
        ["key_pair.golden-key", "security_group.golden-sg"]
    );
}

/// The golden spec with a host layer on its server.
fn desired_with_host() -> Desired {
    let text = format!("{SPEC}    tljh:\n      admins: [lecturer]\n");
    let spec = spec::parse(&text, "golden.yaml").expect("the spec parses");
    Desired::from_spec(&spec).expect("the graph builds")
}

#[test]
fn the_host_layer_of_a_stopped_server_waits_with_a_note() {
    let desired = desired_with_host();
    let mut observed = converged(&desired);
    let live = live_mut(&mut observed, Kind::Instance, "hub");
    *live = live.clone().extra("state", "stopped");

    let plan = plan(&desired, &observed).expect("plans");
    assert!(
        plan.changes.iter().all(|c| !c.id.kind.on_host()),
        "{:?}",
        plan.changes
    );
    let note = plan
        .notes
        .iter()
        .find(|n| n.id == ResourceId::new(Kind::Tljh, "hub"))
        .expect("a note on tljh.hub");
    assert!(note.text.contains("not running"), "{}", note.text);
}

#[test]
fn the_host_layer_of_a_server_that_does_not_answer_is_left_out() {
    let desired = desired_with_host();
    let mut observed = converged(&desired);
    let live = live_mut(&mut observed, Kind::Instance, "hub");
    *live = live.clone().extra("state", "running");
    observed.unreachable.insert(
        "hub".to_owned(),
        "server hub: no ssh answer from 192.0.2.1:22".to_owned(),
    );

    let plan = plan(&desired, &observed).expect("plans");
    assert!(
        plan.changes.iter().all(|c| !c.id.kind.on_host()),
        "{:?}",
        plan.changes
    );
    let note = plan
        .notes
        .iter()
        .find(|n| n.id == ResourceId::new(Kind::Tljh, "hub"))
        .expect("a note on tljh.hub");
    assert!(
        note.text.starts_with("server hub: no ssh answer")
            && note.text.contains("apply again once the server answers"),
        "{}",
        note.text
    );
}

#[test]
fn a_running_server_without_its_host_layer_plans_it() {
    let desired = desired_with_host();
    let mut observed = converged(&desired);
    let live = live_mut(&mut observed, Kind::Instance, "hub");
    *live = live.clone().extra("state", "running");

    let plan = plan(&desired, &observed).expect("plans");
    let tljh = plan
        .change(&ResourceId::new(Kind::Tljh, "hub"))
        .expect("tljh.hub planned");
    assert_eq!(tljh.action, Action::Create);
}

#[test]
fn a_replaced_server_gets_its_host_layer_again() {
    let desired = desired_with_host();
    let mut observed = converged(&desired);
    let live = live_mut(&mut observed, Kind::Instance, "hub");
    *live = live
        .clone()
        .extra("state", "running")
        .attr("key_pair", Value::str("old-key"));
    // The old host had TLJH installed as wanted.
    let install = desired
        .get(&ResourceId::new(Kind::Tljh, "hub"))
        .expect("tljh.hub");
    let mut host = Live::new("hub");
    for (name, attr) in &install.attrs {
        host.attrs.insert(name.clone(), attr.value.clone());
    }
    observed.live.insert(install.id.clone(), host);

    let plan = plan(&desired, &observed).expect("plans");
    let instance = plan
        .change(&ResourceId::new(Kind::Instance, "hub"))
        .expect("instance.hub planned");
    assert_eq!(instance.action, Action::Replace);
    let tljh = plan.change(&install.id).expect("tljh.hub planned");
    assert_eq!(tljh.action, Action::Create);
}

#[test]
fn secret_looking_values_are_never_shown() {
    let change = Change {
        id: ResourceId::new(Kind::TljhConfig, "hub"),
        action: Action::Update,
        desired: None,
        live: Some(Live::new("config.yaml")),
        diffs: vec![Diff {
            name: "auth.GitHubOAuthenticator.client_secret".to_owned(),
            old: Some(Value::str("old-s3cret-value")),
            new: Some(Value::str("new-s3cret-value")),
            forces_replace: false,
            known_after_apply: false,
        }],
        after: Vec::new(),
    };
    let plan = Plan {
        changes: vec![change],
        ..Plan::default()
    };
    let text = render(&plan);
    let json = json::plan_json(&plan, "w", "r").to_string();
    for shown in [&text, &json] {
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains(HIDDEN), "{shown}");
    }
}
