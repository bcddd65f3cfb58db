//! The spec reference, `docs/spec-reference.md`, generated from the JSON
//! Schema.
//!
//! One section per object of a spec, in the order a reader meets them
//! from the top of a file: where it sits (`servers.<name>.root_volume`),
//! what it is, a table of its fields (type, default, allowed values,
//! description) and a small example. Types, patterns, ranges and
//! descriptions come from the schema; the defaults that code applies and
//! the examples are kept here, each checked by a test. Another test fails
//! when the committed page is stale.

use serde_json::Value;

use super::schema::schema_value;

/// The name of the top-level section: the whole file.
const ROOT: &str = "Spec";

/// What hubform uses when a field is left out, by `Section.field`, where
/// the schema has no `default`. Lists and maps not named here default to
/// empty, other fields to nothing.
const DEFAULTS: &[(&str, &str)] = &[
    ("Image.architecture", "`x86_64`"),
    ("Rule.protocol", "`tcp`"),
    ("RootVolume.device", "`/dev/sda1`"),
    ("RootVolume.type", "`gp3`"),
    ("SecurityGroup.egress", "not managed"),
    ("Server.elastic_ip", "`false`"),
    ("Server.protect", "`true`"),
    ("Server.state", "not managed"),
    ("Server.tljh", "no host layer"),
    ("Dns.zone", "none: the A record is yours"),
    ("Https.domains", "the server's `dns.name`"),
    ("Https.staging", "`false`"),
    ("IamUser.access_key_file", "none: no access key"),
    ("Tljh.bootstrap", "TLJH's own URL"),
    ("Tljh.https", "none: HTTP only"),
    ("Tljh.ssh_endpoint", "the server's address"),
    ("Tljh.ssh_user", "`ubuntu`"),
    ("Tljh.version", "the latest release"),
    ("System.upgrade", "`false`"),
];

/// A small example of each section, written from the top of a spec, for
/// sections whose schema has no `examples`. Merged into the manual's
/// workshop (`specs/groundwater-workshop.yaml`), each must load.
const EXAMPLES: &[(&str, &str)] = &[
    (
        ROOT,
        "workshop: groundwater-central-asia\nregion: ap-south-1\n\
         # then iam, key_pairs, security_groups, images, servers\n",
    ),
    (
        "Iam",
        "iam:\n  groups:\n    EC2Admins: { policies: [AdministratorAccess] }\n  \
         users:\n    ec2-admin: { groups: [EC2Admins] }\n",
    ),
    (
        "IamGroup",
        "iam:\n  groups:\n    EC2Admins:\n      policies:\n        \
         - AdministratorAccess\n        \
         - arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess\n",
    ),
    (
        "IamUser",
        "iam:\n  users:\n    ec2-admin:\n      groups: [EC2Admins]\n      \
         access_key_file: keys/ec2-admin.credentials\n",
    ),
    (
        "KeyPair",
        "key_pairs:\n  workshop-central-asia:\n    \
         private_key_file: keys/workshop-central-asia.pem\n",
    ),
    (
        "SecurityGroup",
        "security_groups:\n  workshop-sg:\n    \
         description: Security group for JupyterHub workshop\n    \
         ingress:\n      - { ports: [80, 443], from: 0.0.0.0/0 }\n      \
         - { ports: [22], from: 203.0.113.0/24, description: lecturer }\n",
    ),
    (
        "Rule",
        "security_groups:\n  workshop-sg:\n    description: Workshop\n    \
         ingress:\n      - { ports: [22, 80, 443], from: 0.0.0.0/0 }\n      \
         - { protocol: icmp, from: 0.0.0.0/0, description: ping }\n",
    ),
    (
        "Port",
        "security_groups:\n  workshop-sg:\n    description: Workshop\n    \
         ingress:\n      - { ports: [443, \"8000-8100\"], from: 10.0.0.0/8 }\n",
    ),
    (
        "Image",
        "images:\n  ubuntu-jammy:\n    owner: \"099720109477\"\n    \
         name: ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*\n    \
         architecture: x86_64\n  pinned:\n    id: ami-0dee22c13ea7a9a67\n",
    ),
    (
        "Server",
        "servers:\n  hub:\n    name: workshop-central-asia-instance\n    \
         type: t3.xlarge\n    image: ubuntu-jammy\n    \
         key_pair: workshop-central-asia\n    \
         security_groups: [workshop-sg]\n    \
         root_volume: { size_gb: 20 }\n    elastic_ip: true\n    \
         expected_users: 20\n    state: running\n",
    ),
    (
        "RootVolume",
        "servers:\n  hub:\n    \
         root_volume: { device: /dev/sda1, size_gb: 20, type: gp3 }\n",
    ),
    (
        "Dns",
        "servers:\n  hub:\n    \
         dns: { name: jupyter.example.org, zone: example.org }\n",
    ),
    (
        "Tljh",
        "servers:\n  hub:\n    tljh:\n      version: 2.0.0\n      \
         admins: [lecturer]\n      users: [ana, bakyt]\n",
    ),
    (
        "ConfigValue",
        "servers:\n  hub:\n    tljh:\n      config:\n        \
         limits.memory: 4G\n        services.cull.timeout: 3600\n        \
         limits.cpu: 0.5\n        auth.type: firstuseauthenticator.\
         FirstUseAuthenticator\n",
    ),
    (
        "Https",
        "servers:\n  hub:\n    tljh:\n      https:\n        \
         letsencrypt_email: it@example.org\n        staging: true\n",
    ),
    (
        "Packages",
        "servers:\n  hub:\n    tljh:\n      packages:\n        \
         pip: [pandas, numpy==1.26.4]\n        conda: [geopandas]\n",
    ),
    (
        "System",
        "servers:\n  hub:\n    tljh:\n      system: { upgrade: true }\n",
    ),
];

/// One section of the page: a definition of the schema and where a spec
/// holds it.
struct Section<'a> {
    /// The definition's name (`RootVolume`), or [`ROOT`].
    name: String,
    /// Its places in a spec (`servers.<name>.root_volume`), in the order
    /// met; one empty path for the top level.
    paths: Vec<String>,
    /// Its schema.
    schema: &'a Value,
}

/// The spec reference as Markdown.
pub fn markdown() -> String {
    let schema = schema_value();
    let sections = sections(&schema);

    let mut out = header(&schema, &sections);
    for section in &sections {
        out.push_str(&section_text(section));
    }
    out
}

/// The page's title, how to regenerate it and its contents.
fn header(schema: &Value, sections: &[Section]) -> String {
    let mut out = String::from("# Spec reference\n\n");
    out.push_str(
        "<!-- Generated from the JSON Schema by \
         hubform_core::spec::reference; do not edit. Regenerate with\n     \
         UPDATE_SPEC_REFERENCE=1 cargo test -p hubform-core \
         committed_reference_is_current -->\n\n",
    );
    out.push_str(&format!("{}\n\n", one_line(text(schema, "description"))));
    out.push_str(
        "A spec is one YAML file. `hubform init` writes a commented one to \
         start from, `hubform validate` checks one without contacting AWS, \
         and with the first line\n`# yaml-language-server: \
         $schema=../schema/hubform.schema.json` editors complete and check \
         it as you type (the schema is also printed by `hubform schema`).\n\n\
         In the tables, *default* is what hubform uses when a field is left \
         out; **required** fields must be given. `<name>` stands for a key \
         you choose.\n\n## Contents\n\n",
    );
    for section in sections {
        out.push_str(&format!(
            "- [{}](#{})\n",
            title(section),
            anchor(&section.name)
        ));
    }
    out.push('\n');
    out
}

/// Every section, depth first from the top level, each definition once
/// with every place a spec holds it.
fn sections(schema: &Value) -> Vec<Section<'_>> {
    let mut out = Vec::new();
    visit(
        schema,
        ROOT,
        String::new(),
        schema,
        &mut Vec::new(),
        &mut out,
    );
    out
}

fn visit<'a>(
    root: &'a Value,
    name: &str,
    path: String,
    node: &'a Value,
    ancestors: &mut Vec<String>,
    out: &mut Vec<Section<'a>>,
) {
    match out.iter_mut().find(|s| s.name == name) {
        Some(section) => section.paths.push(path.clone()),
        None => out.push(Section {
            name: name.to_owned(),
            paths: vec![path.clone()],
            schema: node,
        }),
    }

    let mut inner = Vec::new();
    for (field, field_schema) in fields(node) {
        let field_path = if path.is_empty() {
            field.to_owned()
        } else {
            format!("{path}.{field}")
        };
        refs(field_schema, field_path, &mut inner);
    }
    for alternative in alternatives(node) {
        refs(alternative, path.clone(), &mut inner);
    }

    // A definition inside itself would never end: list it once.
    ancestors.push(name.to_owned());
    for (name, path) in inner {
        if ancestors.contains(&name) {
            continue;
        }
        if let Some(definition) = root["definitions"].get(&name) {
            visit(root, &name, path, definition, ancestors, out);
        }
    }
    ancestors.pop();
}

/// The definitions a schema node refers to, with the path of each.
fn refs(node: &Value, path: String, out: &mut Vec<(String, String)>) {
    if let Some(name) = ref_name(node) {
        out.push((name.to_owned(), path.clone()));
    }
    for alternative in alternatives(node) {
        refs(alternative, path.clone(), out);
    }
    if let Some(items) = node.get("items") {
        refs(items, format!("{path}[]"), out);
    }
    if let Some(values) = node.get("additionalProperties") {
        refs(values, format!("{path}.<name>"), out);
    }
}

/// The fields of an object schema: required ones in the schema's order
/// (the order of the spec's types), then the others by name.
fn fields(node: &Value) -> Vec<(&str, &Value)> {
    let Some(properties) = node.get("properties").and_then(Value::as_object)
    else {
        return Vec::new();
    };

    let required = required(node);
    let mut out: Vec<(&str, &Value)> = required
        .iter()
        .filter_map(|r| properties.get_key_value(*r))
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    out.extend(
        properties
            .iter()
            .filter(|(k, _)| !required.contains(&k.as_str()))
            .map(|(k, v)| (k.as_str(), v)),
    );
    out
}

fn required(node: &Value) -> Vec<&str> {
    node.get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The alternatives of `allOf`, `anyOf` and `oneOf`, without `null`.
fn alternatives(node: &Value) -> Vec<&Value> {
    ["allOf", "anyOf", "oneOf"]
        .iter()
        .filter_map(|key| node.get(*key).and_then(Value::as_array))
        .flatten()
        .filter(|n| n.get("type").and_then(Value::as_str) != Some("null"))
        .collect()
}

fn ref_name(node: &Value) -> Option<&str> {
    node.get("$ref")?.as_str()?.strip_prefix("#/definitions/")
}

/// One section: heading, description, fields or alternatives, example.
fn section_text(section: &Section) -> String {
    let node = section.schema;
    let mut out = format!(
        "<a id=\"{}\"></a>\n\n## {}\n\n",
        anchor(&section.name),
        title(section)
    );
    if section.name != ROOT {
        out.push_str(&format!(
            "{} (schema: `{}`)\n\n",
            one_line(text(node, "description")),
            section.name
        ));
    }

    if node.get("properties").is_some() {
        out.push_str(&fields_table(section));
    } else {
        out.push_str(&alternatives_table(node));
    }
    out.push_str(&one_of_note(node));
    out.push_str(&example(section));
    out
}

fn title(section: &Section) -> String {
    if section.name == ROOT {
        return "The top level".to_owned();
    }
    let paths: Vec<String> =
        section.paths.iter().map(|p| format!("`{p}`")).collect();
    paths.join(", ")
}

/// The table of an object's fields.
fn fields_table(section: &Section) -> String {
    let required = required(section.schema);
    let mut out = String::from(
        "| field | type | default | allowed | description |\n\
         |---|---|---|---|---|\n",
    );
    for (field, node) in fields(section.schema) {
        let default = if required.contains(&field) {
            "**required**".to_owned()
        } else {
            default_text(&section.name, field, node)
        };
        out.push_str(&format!(
            "| `{field}` | {} | {} | {} | {} |\n",
            type_text(node),
            default,
            cell(&allowed_text(node)),
            cell(&one_line(text(node, "description"))),
        ));
    }
    out.push('\n');
    out
}

/// The table of a value's alternatives (a port, a `tljh-config` value).
fn alternatives_table(node: &Value) -> String {
    let mut out = String::from(
        "One of:\n\n| type | allowed | description |\n|---|---|---|\n",
    );
    for alternative in alternatives(node) {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            type_text(alternative),
            cell(&allowed_text(alternative)),
            cell(&one_line(text(alternative, "description"))),
        ));
    }
    out.push('\n');
    out
}

/// A note for `oneOf` lists of required fields: give exactly one.
fn one_of_note(node: &Value) -> String {
    let Some(choices) = node.get("oneOf").and_then(Value::as_array) else {
        return String::new();
    };
    let names: Vec<String> = choices
        .iter()
        .flat_map(required)
        .map(|name| format!("`{name}`"))
        .collect();
    if names.is_empty() {
        return String::new();
    }
    format!("Give exactly one of {}.\n\n", names.join(", "))
}

fn example(section: &Section) -> String {
    if let Some(first) = section
        .schema
        .get("examples")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return format!("Example:\n\n```json\n{first:#}\n```\n\n");
    }
    match EXAMPLES.iter().find(|(name, _)| *name == section.name) {
        Some((_, yaml)) => format!("Example:\n\n```yaml\n{yaml}```\n\n"),
        None => String::new(),
    }
}

/// A field's type in words, with links to the sections of definitions.
fn type_text(node: &Value) -> String {
    if let Some(name) = ref_name(node) {
        return format!("[{name}](#{})", anchor(name));
    }
    let alternatives = alternatives(node);
    if !alternatives.is_empty() {
        let parts: Vec<String> =
            alternatives.into_iter().map(type_text).collect();
        return parts.join(" or ");
    }

    let types: Vec<&str> = match node.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(list)) => {
            list.iter().filter_map(Value::as_str).collect()
        }
        _ => Vec::new(),
    };
    let words: Vec<String> = types
        .into_iter()
        .filter(|t| *t != "null")
        .map(|t| match t {
            "array" => format!("list of {}", type_text(&node["items"])),
            "object" => match node.get("additionalProperties") {
                Some(values) if values.is_object() => {
                    format!("map of `<name>` to {}", type_text(values))
                }
                _ => "object".to_owned(),
            },
            other => other.to_owned(),
        })
        .collect();
    if words.is_empty() {
        "any".to_owned()
    } else {
        words.join(" or ")
    }
}

/// Allowed values: enum, pattern, numeric range, length.
fn allowed_text(node: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(values) = node.get("enum").and_then(Value::as_array) {
        let values: Vec<String> = values
            .iter()
            .filter_map(Value::as_str)
            .map(|v| format!("`{v}`"))
            .collect();
        parts.push(values.join(", "));
    }
    if let Some(pattern) = node.get("pattern").and_then(Value::as_str) {
        parts.push(format!("pattern `{pattern}`"));
    }
    if let Some(range) = range(node) {
        parts.push(range);
    }
    if let Some(length) = length(node) {
        parts.push(length);
    }
    parts.join("; ")
}

fn range(node: &Value) -> Option<String> {
    let min = node.get("minimum").and_then(Value::as_i64);
    let max = node.get("maximum").and_then(Value::as_i64);
    match (min, max) {
        (Some(a), Some(b)) => Some(format!("{a} to {b}")),
        (Some(a), None) => Some(format!("at least {a}")),
        (None, Some(b)) => Some(format!("at most {b}")),
        (None, None) => None,
    }
}

fn length(node: &Value) -> Option<String> {
    let min = node.get("minLength").and_then(Value::as_i64);
    let max = node.get("maxLength").and_then(Value::as_i64);
    match (min, max) {
        (Some(1), None) => Some("not empty".to_owned()),
        (Some(a), None) => Some(format!("at least {a} characters")),
        (Some(a), Some(b)) => Some(format!("{a} to {b} characters")),
        (None, Some(b)) => Some(format!("at most {b} characters")),
        (None, None) => None,
    }
}

/// The default of an optional field: the schema's, else [`DEFAULTS`],
/// else empty for lists and maps.
fn default_text(section: &str, field: &str, node: &Value) -> String {
    if let Some(value) = node.get("default") {
        return format!("`{value}`");
    }
    let key = format!("{section}.{field}");
    if let Some((_, text)) = DEFAULTS.iter().find(|(k, _)| *k == key) {
        return (*text).to_owned();
    }
    let collection = type_text(node);
    if collection.starts_with("list of") || collection.starts_with("map of") {
        "empty".to_owned()
    } else {
        "none".to_owned()
    }
}

fn text<'a>(node: &'a Value, key: &str) -> &'a str {
    node.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A schema description as one line (the schema wraps doc comments).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Text safe inside a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

fn anchor(name: &str) -> String {
    name.to_lowercase()
}

#[cfg(test)]
mod tests;
