//! Lints of the example specs and of edits of them, with positions.

use super::*;
use crate::spec::tests::{example_path, repo};

/// The example spec `name` with each `(from, to)` replaced once.
fn edited(name: &str, edits: &[(&str, &str)]) -> Spec {
    let mut text = std::fs::read_to_string(example_path(name)).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "{from} in {name}");
        text = text.replacen(from, to, 1);
    }
    crate::spec::parse(&text, name).unwrap()
}

fn lints_of(spec: &Spec) -> Vec<(&'static str, Severity, String)> {
    lint(spec, &PriceTable::builtin())
        .into_iter()
        .map(|l| (l.id, l.severity, l.pos.to_string()))
        .collect()
}

const GROUNDWATER: &str = "groundwater-workshop.yaml";
const SMALL: &str = "small-workshop.yaml";
const W: Severity = Severity::Warning;

#[test]
fn groundwater_example_opens_ssh_and_grants_administrator_access() {
    let spec = edited(GROUNDWATER, &[]);
    assert_eq!(
        lints_of(&spec),
        [
            (ADMINISTRATOR_ACCESS, W, "15:18".to_owned()),
            (SSH_OPEN_TO_WORLD, W, "32:39".to_owned()),
        ]
    );
    assert!(!refused(&lint(&spec, &PriceTable::builtin()), false));
    assert!(refused(&lint(&spec, &PriceTable::builtin()), true));
}

#[test]
fn small_example_has_no_lint() {
    assert_eq!(lints_of(&edited(SMALL, &[])), []);
}

#[test]
fn ssh_counts_port_ranges_all_protocols_and_ipv6() {
    let rule = "      - { ports: [22], from: 203.0.113.0/24, description: \
                lecturer SSH }";
    for (replacement, open) in [
        ("      - { ports: [\"20-30\"], from: 0.0.0.0/0 }", true),
        ("      - { protocol: all, from: \"::/0\" }", true),
        (
            "      - { protocol: udp, ports: [22], from: 0.0.0.0/0 }",
            false,
        ),
        ("      - { ports: [2222], from: 0.0.0.0/0 }", false),
        ("      - { ports: [22], from: 0.0.0.0/1 }", false),
    ] {
        let spec = edited(SMALL, &[(rule, replacement)]);
        let ids: Vec<_> = lints_of(&spec).into_iter().map(|l| l.0).collect();
        let expected: &[&str] = if open { &[SSH_OPEN_TO_WORLD] } else { &[] };
        assert_eq!(ids, expected, "{replacement}");
    }
}

#[test]
fn administrator_access_by_name_or_arn_only_from_aws() {
    let policy = "        - arn:aws:iam::aws:policy/AmazonEC2FullAccess";
    for (replacement, flagged) in [
        (
            "        - arn:aws:iam::aws:policy/AdministratorAccess",
            true,
        ),
        ("        - AdministratorAccess", true),
        (
            "        - arn:aws:iam::123456789012:policy/AdministratorAccess",
            false,
        ),
    ] {
        let spec = edited(SMALL, &[(policy, replacement)]);
        let lints = lints_of(&spec);
        assert_eq!(!lints.is_empty(), flagged, "{replacement}: {lints:?}");
    }
}

#[test]
fn tljh_without_https_is_warned_at_its_block() {
    let https = "      https: { letsencrypt_email: teacher@example.org }\n";
    let spec = edited(SMALL, &[(https, "")]);
    assert_eq!(lints_of(&spec), [(HTTPS_OFF, W, "48:7".to_owned())]);
}

#[test]
fn half_a_gib_is_refused_and_one_gib_warned() {
    let small = "type: t3.small ";
    let spec = edited(SMALL, &[(small, "type: t3.nano  ")]);
    let lints = lint(&spec, &PriceTable::builtin());
    let nano = &lints[0];
    assert_eq!(nano.id, MEMORY_BELOW_TLJH_MINIMUM);
    assert_eq!(nano.severity, Severity::Error);
    assert_eq!(nano.pos.to_string(), "37:11");
    assert!(nano.message.contains("t3.nano has 0.5 GiB"), "{nano:?}");
    assert!(refused(&lints, false));

    let spec = edited(SMALL, &[(small, "type: t3.micro ")]);
    let lints = lint(&spec, &PriceTable::builtin());
    assert_eq!(lints[0].id, MEMORY_AT_TLJH_MINIMUM);
    assert_eq!(lints[0].severity, Severity::Warning);
    assert!(!refused(&lints, false));
}

#[test]
fn memory_floor_applies_only_to_servers_with_tljh() {
    let spec = edited(
        SMALL,
        &[
            ("type: t3.small ", "type: t3.nano  "),
            ("    expected_users: 10\n", ""),
        ],
    );
    let mut spec = spec;
    spec.servers.values_mut().for_each(|s| s.value.tljh = None);
    assert_eq!(lints_of(&spec), []);
}

#[test]
fn too_many_users_for_the_memory_is_warned_with_a_bigger_type() {
    // A t3.small's 2 GiB serve 10 users; 11 are one too many.
    let spec = edited(SMALL, &[("expected_users: 10", "expected_users: 11")]);
    let lints = lint(&spec, &PriceTable::builtin());
    assert_eq!(lints.len(), 1, "{lints:?}");
    assert_eq!(lints[0].id, TOO_MANY_USERS);
    assert_eq!(lints[0].pos.to_string(), "43:21");
    assert!(lints[0].message.contains("serves about 10"), "{lints:?}");
    assert!(lints[0].fix.contains("at least 3 GiB, e.g. t3.medium"));

    // The manual's t3.xlarge takes its 20 users and more.
    let spec =
        edited(GROUNDWATER, &[("expected_users: 20", "expected_users: 80")]);
    assert_eq!(lints_of(&spec).len(), 2);
}

#[test]
fn root_volume_counts_tljh_and_each_package() {
    // 8 GiB for TLJH, 3 pip packages × 0.25: 8.75, so 9 GiB.
    let spec = edited(SMALL, &[("size_gb: 12", "size_gb: 8")]);
    let lints = lint(&spec, &PriceTable::builtin());
    assert_eq!(lints.len(), 1, "{lints:?}");
    assert_eq!(lints[0].id, ROOT_VOLUME_TOO_SMALL);
    assert_eq!(lints[0].pos.to_string(), "41:29");
    assert!(lints[0].fix.starts_with("set root_volume.size_gb to 9 "));

    let spec = edited(SMALL, &[("size_gb: 12", "size_gb: 9")]);
    assert_eq!(lints_of(&spec), []);

    // The manual's 8 pip and 2 conda packages: 8 + 2 + 1 = 11 GiB.
    let spec = edited(GROUNDWATER, &[("size_gb: 20", "size_gb: 10")]);
    let lints = lint(&spec, &PriceTable::builtin());
    assert!(lints
        .iter()
        .any(|l| l.id == ROOT_VOLUME_TOO_SMALL
            && l.fix.contains("to 11 or more")));
}

#[test]
fn an_unknown_type_is_said_not_guessed() {
    let spec = edited(SMALL, &[("type: t3.small ", "type: z9.large ")]);
    let lints = lint(&spec, &PriceTable::builtin());
    assert_eq!(lints.len(), 1, "{lints:?}");
    assert_eq!(lints[0].id, INSTANCE_TYPE_UNKNOWN);
    assert!(lints[0].message.contains(
        "no memory size for z9.large in the instance table (dated \
                   2026-12-04)"
    ));
}

#[test]
fn render_names_the_position_the_id_and_the_fix() {
    let spec = edited(GROUNDWATER, &[]);
    let lints = lint(&spec, &PriceTable::builtin());
    let text = render(&lints, "w.yaml", false);
    assert!(text.starts_with(
        "Warning [administrator-access] w.yaml:15:18: IAM group EC2Admins \
         gets AdministratorAccess"
    ));
    assert!(text.contains("\n  fix: attach only what"), "{text}");
    assert!(render(&lints, "w.yaml", true).contains("Warning (denied) ["));

    let json = to_json(&lints, "w.yaml");
    assert_eq!(json[1]["id"], "ssh-open-to-world");
    assert_eq!(json[1]["line"], 32);
    assert_eq!(json[1]["column"], 39);
    assert_eq!(json[1]["severity"], "warning");
}

#[test]
fn every_lint_is_documented() {
    let docs = std::fs::read_to_string(repo().join("docs/lints.md")).unwrap();
    for (id, _) in LINTS {
        assert!(
            docs.contains(&format!("## `{id}`")),
            "{id} in docs/lints.md"
        );
    }
}
