//! The JSON Schema of a spec, generated from the serde types.
//!
//! Editors (yaml-language-server) use it to complete and check specs, so
//! it is written in JSON Schema draft 7, which yaml-language-server
//! supports fully. A copy is committed at `schema/hubform.schema.json`; a
//! test fails when the copy is stale.

use serde_json::{Map, Value};

use super::types::Spec;

/// The schema's `$id`: a name, not a location to fetch.
pub const SCHEMA_ID: &str = "urn:hubform:spec";

/// The JSON Schema of a spec as pretty JSON with a trailing newline.
///
/// Object keys are sorted, so the text is the same whatever serde_json
/// features the build enables.
pub fn json_schema() -> String {
    format!("{:#}\n", schema_value())
}

/// The JSON Schema of a spec as a value, keys sorted.
pub(crate) fn schema_value() -> Value {
    let mut schema = schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<Spec>();

    schema.insert("$id".into(), SCHEMA_ID.into());
    schema.insert("title".into(), "hubform workshop spec".into());
    schema.insert(
        "description".into(),
        "One teaching JupyterHub on AWS: IAM, key pair, security group, \
         image, server, Elastic IP and DNS name. Paths are relative to the \
         spec's folder."
            .into(),
    );

    sorted(schema.to_value())
}

/// `value` with the keys of every object in sorted order.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(object) => {
            let mut entries: Vec<(String, Value)> =
                object.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let object: Map<String, Value> =
                entries.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(object)
        }
        Value::Array(items) => {
            Value::Array(items.into_iter().map(sorted).collect())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};

    use super::*;
    use crate::spec::tests::{example_path, repo};

    fn committed_path() -> PathBuf {
        repo().join("schema/hubform.schema.json")
    }

    #[test]
    fn committed_schema_is_current() {
        let path = committed_path();
        let fresh = json_schema();
        if std::env::var_os("UPDATE_SCHEMA").is_some_and(|v| v == "1") {
            std::fs::write(&path, &fresh).unwrap();
            return;
        }

        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "schema/hubform.schema.json is stale; run `cargo run -p \
             hubform-cli -- schema > schema/hubform.schema.json` (or \
             UPDATE_SCHEMA=1 cargo test -p hubform-core \
             committed_schema_is_current)"
        );
    }

    #[test]
    fn schema_is_draft_07_with_an_id() {
        let schema: Value = serde_json::from_str(&json_schema()).unwrap();
        assert_eq!(schema["$id"], SCHEMA_ID);
        assert_eq!(
            schema["$schema"],
            "http://json-schema.org/draft-07/schema#"
        );
        let volume = &schema["definitions"]["RootVolume"]["properties"];
        assert_eq!(volume["size_gb"]["type"], "integer");
        let server = &schema["definitions"]["Server"]["properties"];
        assert_eq!(server["elastic_ip"]["type"][0], "boolean");
        assert_eq!(server["expected_users"]["type"][0], "integer");
    }

    /// The JSON of a YAML text, as an editor's schema check sees it.
    fn json_of(yaml: &str) -> Value {
        serde_saphyr::from_str(yaml).unwrap()
    }

    /// What Python's `jsonschema` says of each instance: `None` when
    /// valid, else its first complaint. `None` overall when the project's
    /// virtual environment is missing.
    fn python_verdicts(instances: &[Value]) -> Option<Vec<Option<String>>> {
        let python = repo().join(".venv/bin/python");
        if !python.exists() {
            return None;
        }

        const SCRIPT: &str = r#"
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft7Validator.check_schema(schema)
validator = jsonschema.Draft7Validator(schema)
for instance in json.load(sys.stdin):
    errors = sorted(validator.iter_errors(instance), key=str)
    print(json.dumps(errors[0].message if errors else None))
"#;
        let mut child = Command::new(&python)
            .args(["-c", SCRIPT])
            .arg(committed_path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let input = serde_json::to_vec(instances).unwrap();
        child.stdin.take().unwrap().write_all(&input).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "python jsonschema failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );

        let stdout = String::from_utf8(output.stdout).unwrap();
        Some(
            stdout
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
        )
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn committed_schema_accepts_examples_and_rejects_broken_specs() {
        let groundwater = read(&example_path("groundwater-workshop.yaml"));
        let small = read(&example_path("small-workshop.yaml"));
        let with_egress = groundwater.replace(
            "      - { ports: [22, 80, 443], from: 0.0.0.0/0 }\n",
            "      - { ports: [22, 80, 443], from: 0.0.0.0/0 }\n    \
             egress:\n      - { protocol: all, to: 0.0.0.0/0 }\n",
        );
        assert_ne!(with_egress, groundwater);
        let good = [groundwater.clone(), small, with_egress];

        let broken = [
            ("unknown field", "servers:\n", "colour: blue\nservers:\n"),
            ("string size", "size_gb: 20", "size_gb: twenty"),
            ("bad workshop", "groundwater-central-asia", "Groundwater"),
            ("bad protocol", "{ ports:", "{ protocol: sctp, ports:"),
            ("port too large", "[22, 80, 443]", "[22, 80, 70000]"),
            ("bad volume type", "type: gp3", "type: gp4"),
            ("no region", "region: ap-south-1\n", ""),
        ];
        let broken: Vec<(&str, String)> = broken
            .iter()
            .map(|(what, from, to)| {
                assert!(groundwater.contains(from), "{what}");
                (*what, groundwater.replacen(from, to, 1))
            })
            .collect();

        let instances: Vec<Value> = good
            .iter()
            .map(|text| json_of(text))
            .chain(broken.iter().map(|(_, text)| json_of(text)))
            .collect();
        let Some(verdicts) = python_verdicts(&instances) else {
            eprintln!(
                "skipped: {} is missing, so the schema was not checked with \
                 a JSON Schema validator (create the project venv)",
                repo().join(".venv/bin/python").display()
            );
            return;
        };

        for (i, verdict) in verdicts[..good.len()].iter().enumerate() {
            assert_eq!(verdict, &None, "good spec {i} was refused");
        }
        for ((what, _), verdict) in broken.iter().zip(&verdicts[good.len()..]) {
            assert!(verdict.is_some(), "the schema accepts a spec with {what}");
        }
    }
}
