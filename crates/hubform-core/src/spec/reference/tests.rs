//! The committed page is current, and what the generator adds to the
//! schema (defaults, examples) is true of the code.

use serde_json::Value;

use super::*;
use crate::graph::{canonical_rules, Desired};
use crate::model::{Kind, ResourceId, Value as Attr};
use crate::spec::parse;
use crate::spec::tests::{example_path, repo};

#[test]
fn committed_reference_is_current() {
    let path = repo().join("docs/spec-reference.md");
    let fresh = markdown();
    if std::env::var_os("UPDATE_SPEC_REFERENCE").is_some_and(|v| v == "1") {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }

    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "docs/spec-reference.md is stale (the spec's types or \
         spec/reference.rs changed); regenerate it with \
         `UPDATE_SPEC_REFERENCE=1 cargo test -p hubform-core \
         committed_reference_is_current` and commit it"
    );
}

#[test]
fn every_definition_and_field_is_on_the_page() {
    let schema = schema_value();
    let page = markdown();

    let definitions = schema["definitions"].as_object().unwrap();
    for (name, definition) in definitions {
        assert!(
            page.contains(&format!("<a id=\"{}\"></a>", anchor(name))),
            "no section for {name}"
        );
        for (field, _) in fields(definition) {
            assert!(
                page.contains(&format!("| `{field}` |")),
                "no row for {name}.{field}"
            );
        }
    }
    for (field, _) in fields(&schema) {
        assert!(page.contains(&format!("| `{field}` |")), "no row: {field}");
    }
}

#[test]
fn sections_are_placed_where_a_spec_holds_them() {
    let page = markdown();
    for path in [
        "## `servers.<name>.root_volume`",
        "## `security_groups.<name>.egress[]`, \
         `security_groups.<name>.ingress[]`\n",
        "## `servers.<name>.tljh.https`",
        "## `iam.users.<name>`",
    ] {
        assert!(page.contains(path), "missing heading {path}");
    }
    let server = page.find("## `servers.<name>`\n").unwrap();
    let volume = page.find("## `servers.<name>.root_volume`").unwrap();
    assert!(server < volume, "nested sections follow their parent");
}

#[test]
fn constraints_of_the_schema_are_shown() {
    let page = markdown();
    assert!(page.contains("| `size_gb` | integer | **required** | 1 to 16384"));
    assert!(page.contains("`gp3`, `gp2`, `io1`"));
    assert!(page.contains("pattern `^ami-([0-9a-f]{8}\\|[0-9a-f]{17})$`"));
    assert!(page.contains("| `protect` | boolean | `true` |"));
    assert!(page.contains("Give exactly one of `from`, `to`."));
}

/// Each default of [`DEFAULTS`] names a field of the schema.
#[test]
fn defaults_name_fields_of_the_schema() {
    let schema = schema_value();
    for (key, _) in DEFAULTS {
        let (section, field) = key.split_once('.').unwrap();
        let node = if section == ROOT {
            &schema
        } else {
            &schema["definitions"][section]
        };
        assert!(
            node["properties"].get(field).is_some(),
            "DEFAULTS names {key}, which the schema does not have"
        );
    }
}

fn default_of(key: &str) -> &'static str {
    let text = DEFAULTS.iter().find(|(k, _)| *k == key).unwrap().1;
    text.trim_matches('`')
}

/// The defaults the page states are the ones the graph applies.
#[test]
fn defaults_are_what_the_graph_applies() {
    let spec = parse(
        "workshop: demo\nregion: eu-central-1\n\
         key_pairs: { k: { private_key_file: k.pem } }\n\
         security_groups:\n  sg:\n    description: d\n    \
         ingress: [ { ports: [22], from: 0.0.0.0/0 } ]\n\
         images: { u: { owner: \"099720109477\", name: \"ubuntu/*\" } }\n\
         servers:\n  hub:\n    name: hub\n    type: t3.small\n    \
         image: u\n    key_pair: k\n    security_groups: [sg]\n    \
         root_volume: { size_gb: 10 }\n    tljh: {}\n",
        "demo.yaml",
    )
    .unwrap();
    let desired = Desired::from_spec(&spec).unwrap();
    let get = |kind, key| desired.get(&ResourceId::new(kind, key)).unwrap();

    let image = get(Kind::Image, "u");
    assert_eq!(
        image.text("architecture"),
        Some(default_of("Image.architecture"))
    );
    let instance = get(Kind::Instance, "hub");
    assert_eq!(
        instance.text("root_device"),
        Some(default_of("RootVolume.device"))
    );
    assert_eq!(
        instance.attrs["protect"].value,
        Attr::Bool(default_of("Server.protect") == "true")
    );
    let volume = get(Kind::Volume, "hub");
    assert_eq!(volume.text("type"), Some(default_of("RootVolume.type")));
    let tljh = get(Kind::Tljh, "hub");
    assert_eq!(tljh.text("ssh_user"), Some(default_of("Tljh.ssh_user")));
    assert_eq!(default_of("Server.elastic_ip"), "false");
    assert!(desired
        .get(&ResourceId::new(Kind::ElasticIp, "hub"))
        .is_none());

    let rule = &spec.security_groups["sg"].ingress[0];
    let canonical = canonical_rules(rule);
    assert!(canonical[0].starts_with(default_of("Rule.protocol")));
}

/// `a` with `b` merged in: maps key by key, anything else replaced.
fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in b {
                match a.get_mut(&key) {
                    Some(slot) => merge(slot, value),
                    None => {
                        a.insert(key, value);
                    }
                }
            }
        }
        (slot, value) => *slot = value,
    }
}

/// Every section has an example, and each, merged into the manual's
/// workshop, gives a spec that loads.
#[test]
fn examples_are_valid_specs() {
    let base =
        std::fs::read_to_string(example_path("groundwater-workshop.yaml"))
            .unwrap();
    let base: Value = serde_saphyr::from_str(&base).unwrap();

    for section in sections(&schema_value()) {
        let example = EXAMPLES
            .iter()
            .find(|(name, _)| *name == section.name)
            .map(|(_, yaml)| *yaml);
        let has_own = section.schema.get("examples").is_some();
        assert!(
            has_own || example.is_some(),
            "section {} has no example: add one to EXAMPLES",
            section.name
        );
        let Some(example) = example else { continue };

        let mut spec = base.clone();
        merge(&mut spec, serde_saphyr::from_str(example).unwrap());
        let text = serde_json::to_string_pretty(&spec).unwrap();
        if let Err(err) = parse(&text, "example.yaml") {
            panic!("the example of {} does not load:\n{err}", section.name);
        }
    }
}
