//! The plan's monthly cost and lints (issue 7), from the real binary
//! against an empty world: the figures of the example specs, the lints
//! with their spec positions, `--lint=deny`, the memory floor refused by
//! plan and apply, and a price table given instead of the built-in one.
//! Each test also checks that the world was left as it was.

use std::path::Path;

use crate::common::{
    full_spec_text, hubform, is_mutating, spec_text, write_spec, Run, EXAMPLE,
    SMALL,
};
use crate::world::World;

/// `hubform plan ARGS… SPEC`, the spec named as in the world's folder
/// (hubform's working directory), as lints then name it.
fn plan(world: &World, spec: &Path, args: &[&str]) -> Run {
    let spec = name(spec);
    let mut all = vec!["plan"];
    all.extend_from_slice(args);
    all.push(spec);
    hubform(world, &all)
}

/// The file name of `spec`, in the world's folder.
fn name(spec: &Path) -> &str {
    let name = spec.file_name().and_then(|n| n.to_str());
    name.expect("a UTF-8 file name")
}

/// Panics unless hubform sent AWS nothing that changes it.
fn assert_unchanged(world: &World) {
    let changes: Vec<String> = world
        .requests()
        .into_iter()
        .filter(|r| is_mutating(&r.action))
        .map(|r| r.action)
        .collect();
    assert!(changes.is_empty(), "AWS was changed: {changes:?}");
}

/// The instances moto holds, any workshop, not terminated.
async fn instances(world: &World) -> usize {
    crate::common::live_instances(&world.ec2().await, None)
        .await
        .len()
}

/// The small example with its host layer, `edits` applied once each.
fn small_with_tljh(edits: &[(&str, &str)]) -> String {
    let mut text = full_spec_text(SMALL);
    for (from, to) in edits {
        assert!(text.contains(from), "{from} in {SMALL}");
        text = text.replacen(from, to, 1);
    }
    text
}

fn assert_has(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "{part:?} missing in:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_shows_the_examples_monthly_cost_and_lints() {
    let world = World::start().await;
    let spec = write_spec(&world, "workshop.yaml", &spec_text(EXAMPLE));

    let run = plan(&world, &spec, &[]).expect_code(0);

    // t3.xlarge in ap-south-1: 730 h × $0.1792; 20 GB gp3 × $0.0912; the
    // Elastic IP 730 h × $0.005.
    assert_has(
        &run.stdout,
        &[
            "Plan: ",
            "Monthly cost estimate (USD, On-Demand list prices of \
             2026-12-04, 730 h a month, built-in table):",
            "  server hub (t3.xlarge in ap-south-1):",
            "instance t3.xlarge, 730 h × $0.1792",
            "$130.82\n",
            "root volume 20 GB gp3 × $0.0912 a GB-month",
            "$1.82\n",
            "Elastic IP (public IPv4), 730 h × $0.005",
            "$3.65\n",
            "  Total: $136.29 a month\n",
            "Warning [administrator-access] workshop.yaml:15:18: IAM group \
             EC2Admins gets AdministratorAccess",
            "Warning [ssh-open-to-world] workshop.yaml:32:39: security \
             group workshop-sg opens SSH (port 22) to the whole internet",
            "\n  fix: open port 22 only to the lecturer's network",
        ],
    );
    // The cost and the lints come after the plan, the lints last.
    let at = |part: &str| run.stdout.find(part).expect(part);
    assert!(at("Plan: ") < at("Monthly cost estimate"));
    assert!(at("Monthly cost estimate") < at("Warning ["));
    assert_unchanged(&world);
    assert_eq!(instances(&world).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn small_example_costs_22_dollars_31_and_has_no_lint() {
    let world = World::start().await;
    let spec = write_spec(&world, "workshop.yaml", &full_spec_text(SMALL));

    let run = plan(&world, &spec, &["--lint=deny"]).expect_code(0);

    // t3.small in eu-central-1: $17.52; 12 GB gp3: $1.14; the EIP $3.65.
    assert_has(
        &run.stdout,
        &[
            "  server hub (t3.small in eu-central-1):",
            "instance t3.small, 730 h × $0.024",
            "$17.52\n",
            "$1.14\n",
            "  Total: $22.31 a month\n",
        ],
    );
    assert!(!run.stdout.contains("Warning"), "{}", run.stdout);
    assert_unchanged(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_json_carries_the_cost_and_the_lints() {
    let world = World::start().await;
    let spec = write_spec(&world, "workshop.yaml", &spec_text(EXAMPLE));

    let run = plan(&world, &spec, &["--json"]).expect_code(0);

    let json: serde_json::Value =
        serde_json::from_str(&run.stdout).expect("plan --json is JSON");
    let cost = &json["cost"];
    assert_eq!(cost["monthly_usd"], 136.29);
    assert_eq!(cost["prices_taken"], "2026-12-04");
    assert_eq!(cost["prices_table"], "built-in");
    assert_eq!(cost["complete"], true);
    let items = &cost["servers"][0]["items"];
    assert_eq!(items[0]["item"], "instance");
    assert_eq!(items[0]["monthly_usd"], 130.82);
    assert_eq!(items[1]["monthly_usd"], 1.82);
    assert_eq!(items[2]["item"], "public_ipv4");
    assert_eq!(items[2]["monthly_usd"], 3.65);

    let lints = json["lints"].as_array().expect("lints");
    let found: Vec<(String, u64, u64)> = lints
        .iter()
        .map(|l| {
            (
                l["id"].as_str().unwrap_or("").to_owned(),
                l["line"].as_u64().unwrap_or(0),
                l["column"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("administrator-access".to_owned(), 15, 18),
            ("ssh-open-to-world".to_owned(), 32, 39),
        ]
    );
    assert_eq!(lints[0]["severity"], "warning");
    assert_eq!(lints[0]["file"], "workshop.yaml");
    assert!(lints[1]["fix"].as_str().unwrap_or("").contains("port 22"));
    assert_eq!(json["lint_level"], "warn");
    assert_eq!(json["refused"], false);
    assert_unchanged(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn lint_deny_refuses_the_plan_and_saves_nothing() {
    let world = World::start().await;
    let spec = write_spec(&world, "workshop.yaml", &spec_text(EXAMPLE));
    let saved = world.dir().join("workshop.plan");
    let out = saved.to_str().expect("UTF-8");

    let run =
        plan(&world, &spec, &["--lint=deny", "--out", out]).expect_code(1);

    // The warnings are printed first, marked, and named in the error.
    assert_has(
        &run.stdout,
        &[
            "Warning (denied) [administrator-access] workshop.yaml:15:18:",
            "Warning (denied) [ssh-open-to-world] workshop.yaml:32:39:",
            "Total: $136.29 a month",
        ],
    );
    assert_has(
        &run.stderr,
        &[
            "the plan is refused by --lint=deny: 2 warning(s) above \
             (administrator-access, ssh-open-to-world)",
            "the plan was not saved",
        ],
    );
    assert!(!saved.exists(), "a refused plan is not saved");

    // The JSON form is printed and refused the same way.
    let run = plan(&world, &spec, &["--lint=deny", "--json"]).expect_code(1);
    let json: serde_json::Value =
        serde_json::from_str(&run.stdout).expect("plan --json is JSON");
    assert_eq!(json["refused"], true);
    assert_eq!(json["lint_level"], "deny");
    assert_unchanged(&world);
    assert_eq!(instances(&world).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn half_a_gib_is_refused_by_plan_and_apply_even_without_deny() {
    let world = World::start().await;
    let text = small_with_tljh(&[("type: t3.small ", "type: t3.nano  ")]);
    let spec = write_spec(&world, "workshop.yaml", &text);

    let run = plan(&world, &spec, &["--detailed-exitcode"]).expect_code(1);
    assert_has(
        &run.stdout,
        &[
            "Error [memory-below-tljh-minimum] workshop.yaml:37:11: server \
             hub: t3.nano has 0.5 GiB of memory",
            "fix: choose a type with 2 GiB or more",
        ],
    );
    assert_has(
        &run.stderr,
        &["the plan is refused: 1 lint error(s) above \
           (memory-below-tljh-minimum)"],
    );

    let spec_arg = spec.to_str().expect("UTF-8");
    let run =
        hubform(&world, &["apply", "--auto-approve", spec_arg]).expect_code(1);
    assert_has(
        &run.stdout,
        // Apply names the spec by its absolute path.
        &[
            "Error [memory-below-tljh-minimum] /",
            "/workshop.yaml:37:11: ",
        ],
    );
    assert_has(
        &run.stderr,
        &[
            "refusing to apply: 1 lint error(s) above",
            "nothing was changed",
        ],
    );
    assert_unchanged(&world);
    assert_eq!(instances(&world).await, 0);
    let groups = world
        .ec2()
        .await
        .describe_security_groups()
        .send()
        .await
        .expect("DescribeSecurityGroups");
    let names: Vec<&str> = groups
        .security_groups()
        .iter()
        .filter_map(|g| g.group_name())
        .collect();
    assert!(!names.contains(&"python-intro-sg"), "{names:?}");
    assert!(!world.dir().join("keys/python-intro.pem").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn one_gib_and_too_many_users_are_warned() {
    let world = World::start().await;
    // A t3.micro: TLJH's bare minimum, and 1 GiB serves about 5 users,
    // not the spec's 10.
    let text = small_with_tljh(&[("type: t3.small ", "type: t3.micro ")]);
    let spec = write_spec(&world, "micro.yaml", &text);

    let run = plan(&world, &spec, &[]).expect_code(0);
    assert_has(
        &run.stdout,
        &[
            "Warning [memory-at-tljh-minimum] micro.yaml:37:11: server hub: \
             t3.micro has 1 GiB of memory; TLJH's install runs out of memory",
            "Warning [too-many-users] micro.yaml:43:21: server hub expects \
             10 users, but t3.micro (1 GiB) serves about 5",
        ],
    );
    plan(&world, &spec, &["--lint=deny"]).expect_code(1);

    // The right type for 10, too many users for it.
    let text = small_with_tljh(&[("expected_users: 10", "expected_users: 30")]);
    let spec = write_spec(&world, "crowd.yaml", &text);
    let run = plan(&world, &spec, &[]).expect_code(0);
    assert_has(
        &run.stdout,
        &[
            "Warning [too-many-users] crowd.yaml:43:21: server hub expects \
             30 users, but t3.small (2 GiB) serves about 10",
            "fix: choose a type with at least 6 GiB, e.g. t3.large",
        ],
    );
    assert!(!run.stdout.contains("memory-at"), "{}", run.stdout);
    assert_unchanged(&world);
}

const TABLE: &str = "taken: \"2027-01-01\"
source: a test table
currency: USD
hours_per_month: 730
regions:
  ap-south-1:
    public_ipv4_per_hour: 0.01
    instances: { t3.xlarge: 0.1 }
    volumes: { gp3: 0.1 }
";

#[tokio::test(flavor = "multi_thread")]
async fn a_given_price_table_replaces_the_built_in_one() {
    let world = World::start().await;
    let table = write_spec(&world, "prices.yaml", TABLE);
    let spec = write_spec(&world, "workshop.yaml", &spec_text(EXAMPLE));
    let table_arg = table.to_str().expect("UTF-8");

    // 730 h × $0.1 = $73.00; 20 GB × $0.1 = $2.00; 730 h × $0.01 = $7.30.
    let run = plan(&world, &spec, &["--prices", table_arg]).expect_code(0);
    assert_has(
        &run.stdout,
        &[
            &format!("prices of 2027-01-01, 730 h a month, from {table_arg}"),
            "$73.00\n",
            "$2.00\n",
            "$7.30\n",
            "  Total: $82.30 a month\n",
        ],
    );

    // HUBFORM_PRICES does the same; a type the table lacks is named.
    let other = spec_text(EXAMPLE).replace("type: t3.xlarge", "type: t3.large");
    let spec = write_spec(&world, "large.yaml", &other);
    let mut cmd = world.hubform();
    cmd.env("HUBFORM_PRICES", &table)
        .args(["plan", name(&spec)]);
    let run = crate::common::run(cmd).expect_code(0);
    assert_has(
        &run.stdout,
        &[
            &format!(
                "instance t3.large: no price for t3.large in ap-south-1 in \
                 the table {table_arg} (dated 2027-01-01)"
            ),
            "  Total: at least $9.30 a month (1 item(s) without a price, \
             above)",
        ],
    );
    assert_unchanged(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_price_table_is_refused_before_any_aws_call() {
    let world = World::start().await;
    let table = write_spec(
        &world,
        "prices.yaml",
        &TABLE.replace("t3.xlarge: 0.1", "t3.xlarge: -0.1"),
    );
    let spec = write_spec(&world, "workshop.yaml", &spec_text(EXAMPLE));

    let run =
        plan(&world, &spec, &["--prices", table.to_str().expect("UTF-8")])
            .expect_code(1);

    assert_has(
        &run.stderr,
        &[
            "prices.yaml: ap-south-1 instances.t3.xlarge is -0.1; expected \
             a price of 0 or more",
            "given with --prices or HUBFORM_PRICES",
        ],
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(world.requests().is_empty(), "{:?}", world.requests());
}
