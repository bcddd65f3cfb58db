//! The drift report: one entry per workshop (or per spec that failed),
//! as text for people and as versioned JSON for machines (the format is
//! documented in docs/json-formats.md; bump [`FORMAT_VERSION`] on any
//! change that is not a new field).

use std::fmt::Write;

use hubform_core::model::{Note, Value};
use hubform_core::plan::render::natural_order;
use hubform_core::plan::{is_sensitive, Action, Change, Diff, Plan, HIDDEN};
use serde_json::{json, Value as Json};

use super::Spec;

/// The version of the JSON format.
pub const FORMAT_VERSION: u32 = 1;

/// What drift found for one spec.
pub struct Report {
    /// The spec's place among the arguments, for a stable order.
    pub order: usize,
    /// The spec file as named.
    pub spec: String,
    /// The workshop, when the spec loaded.
    pub workshop: Option<String>,
    /// The Region, when the spec loaded.
    pub region: Option<String>,
    /// The plan, or why there is none.
    pub outcome: Outcome,
}

/// How a workshop's check ended.
pub enum Outcome {
    /// Observed and planned: an empty plan is in sync.
    Checked(Plan),
    /// Not checked, and why.
    Failed(String),
}

impl Report {
    /// The report of a loaded spec.
    pub fn new(spec: &Spec, outcome: Outcome) -> Report {
        Report {
            order: spec.order,
            spec: spec.loaded.file(),
            workshop: Some(spec.desired.workshop.clone()),
            region: Some(spec.desired.region.clone()),
            outcome,
        }
    }

    /// A loaded spec that could not be checked.
    pub fn failed_spec(spec: &Spec, message: &str) -> Report {
        Report::new(spec, Outcome::Failed(message.to_owned()))
    }

    /// A spec that did not load (its workshop and Region unknown).
    pub fn failed(order: usize, spec: &str, message: &str) -> Report {
        Report {
            order,
            spec: spec.to_owned(),
            workshop: None,
            region: None,
            outcome: Outcome::Failed(message.to_owned()),
        }
    }

    fn status(&self) -> &'static str {
        match &self.outcome {
            Outcome::Failed(_) => "error",
            Outcome::Checked(plan) if plan.is_empty() => "in_sync",
            Outcome::Checked(_) => "drift",
        }
    }
}

/// 1 when any spec failed, else 2 when any workshop drifted, else 0.
pub fn exit_code(reports: &[Report]) -> u8 {
    let any = |status| reports.iter().any(|r| r.status() == status);
    if any("error") {
        1
    } else if any("drift") {
        2
    } else {
        0
    }
}

// ---- text ---------------------------------------------------------------

/// The report for people: a block per workshop and a summary line.
pub fn text(reports: &[Report]) -> String {
    let mut out = String::new();
    for r in reports {
        let name = r.workshop.as_deref().unwrap_or("(not loaded)");
        let place = match &r.region {
            Some(region) => format!("{}, {region}", r.spec),
            None => r.spec.clone(),
        };
        let _ = write!(out, "{name} ({place}): ");
        match &r.outcome {
            Outcome::Failed(message) => {
                let _ = writeln!(out, "error");
                for line in message.lines() {
                    let _ = writeln!(out, "  {line}");
                }
            }
            Outcome::Checked(plan) => text_plan(&mut out, plan),
        }
        out.push('\n');
    }
    out.push_str(&summary(reports));
    out.push('\n');
    out
}

fn text_plan(out: &mut String, plan: &Plan) {
    let n = plan.changes.len();
    if n == 0 {
        let _ = writeln!(out, "in sync");
    } else {
        let s = if n == 1 { "" } else { "s" };
        let _ = writeln!(out, "{n} drifted resource{s}");
    }
    for change in &plan.changes {
        let cloud_id = change
            .live
            .as_ref()
            .map(|l| format!(" ({})", l.cloud_id))
            .unwrap_or_default();
        let what = match change.action {
            Action::Create => ": missing, apply would create it",
            Action::Delete => ": not in the spec, apply would delete it",
            Action::Replace => ": apply would replace it",
            Action::Update => "",
        };
        let marker = change.action.marker();
        let _ = writeln!(out, "  {marker} {}{cloud_id}{what}", change.id);
        if change.action == Action::Create || change.action == Action::Delete {
            continue;
        }
        for diff in &change.diffs {
            let _ = writeln!(out, "      {}", text_diff(diff));
        }
    }
    for note in &plan.blocked {
        let _ = writeln!(out, "  ! {}: {}", note.id, note.text);
    }
    for note in &plan.notes {
        let _ = writeln!(out, "  * {}: {}", note.id, note.text);
    }
}

/// `field: expected X, actual Y`; for sets, the items missing and extra.
fn text_diff(diff: &Diff) -> String {
    let name = &diff.name;
    if is_sensitive(name) {
        return format!("{name}: {HIDDEN} differs");
    }
    let forces = if diff.forces_replace {
        " (forces replacement)"
    } else {
        ""
    };
    if let (Some(Value::Set(actual)), Some(Value::Set(expected))) =
        (&diff.old, &diff.new)
    {
        let quote = |items: Vec<&String>| {
            items
                .iter()
                .map(|i| format!("{i:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let missing = quote(natural_order(expected.difference(actual)));
        let extra = quote(natural_order(actual.difference(expected)));
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!("missing {missing}"));
        }
        if !extra.is_empty() {
            parts.push(format!("extra {extra}"));
        }
        return format!("{name}: {}{forces}", parts.join("; "));
    }
    let show = |v: &Option<Value>| {
        v.as_ref().map_or("(none)".to_owned(), ToString::to_string)
    };
    format!(
        "{name}: expected {}, actual {}{forces}",
        show(&diff.new),
        show(&diff.old)
    )
}

/// `Drift: N workshops: A in sync, B drifted, C failed.`
fn summary(reports: &[Report]) -> String {
    let count =
        |status| reports.iter().filter(|r| r.status() == status).count();
    let n = reports.len();
    let s = if n == 1 { "" } else { "s" };
    format!(
        "Drift: {n} workshop{s}: {} in sync, {} drifted, {} failed.",
        count("in_sync"),
        count("drift"),
        count("error")
    )
}

// ---- JSON ---------------------------------------------------------------

/// The report as JSON (docs/json-formats.md, section drift).
pub fn json(reports: &[Report]) -> String {
    let count =
        |status| reports.iter().filter(|r| r.status() == status).count();
    let doc = json!({
        "format_version": FORMAT_VERSION,
        "summary": {
            "workshops": reports.len(),
            "in_sync": count("in_sync"),
            "drift": count("drift"),
            "error": count("error"),
        },
        "workshops": reports.iter().map(json_report).collect::<Vec<_>>(),
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

fn json_report(r: &Report) -> Json {
    let (drift, lookalikes, notes, error) = match &r.outcome {
        Outcome::Failed(message) => {
            (Vec::new(), Vec::new(), Vec::new(), json!(message))
        }
        Outcome::Checked(plan) => (
            plan.changes.iter().flat_map(json_change).collect(),
            plan.blocked.iter().map(json_note).collect(),
            plan.notes.iter().map(json_note).collect(),
            Json::Null,
        ),
    };
    json!({
        "workshop": r.workshop,
        "spec": r.spec,
        "region": r.region,
        "status": r.status(),
        "drift": drift,
        "lookalikes": lookalikes,
        "notes": notes,
        "error": error,
    })
}

fn json_note(note: &Note) -> Json {
    json!({ "resource": note.id.to_string(), "message": note.text })
}

/// One entry per differing field; one without a field for a create (the
/// object is missing) or a delete (the object is not in the spec).
fn json_change(change: &Change) -> Vec<Json> {
    let entry = |field: Option<&str>, expected: Json, actual: Json| {
        json!({
            "resource": change.id.to_string(),
            "cloud_id": change.live.as_ref().map(|l| l.cloud_id.clone()),
            "action": change.action,
            "field": field,
            "expected": expected,
            "actual": actual,
        })
    };
    if matches!(change.action, Action::Create | Action::Delete)
        || change.diffs.is_empty()
    {
        return vec![entry(None, Json::Null, Json::Null)];
    }
    change
        .diffs
        .iter()
        .map(|d| {
            let value = |v: &Option<Value>| match v {
                _ if is_sensitive(&d.name) => json!(HIDDEN),
                Some(v) => v.to_json(),
                None => Json::Null,
            };
            let mut e = entry(Some(&d.name), value(&d.new), value(&d.old));
            if let (Some(Value::Set(actual)), Some(Value::Set(expected))) =
                (&d.old, &d.new)
            {
                if !is_sensitive(&d.name) {
                    e["missing"] =
                        json!(natural_order(expected.difference(actual)));
                    e["extra"] =
                        json!(natural_order(actual.difference(expected)));
                }
            }
            e
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_looking_fields_are_hidden() {
        let diff = Diff {
            name: "auth.GitHubOAuthenticator.client_secret".to_owned(),
            old: Some(Value::str("old-secret-value")),
            new: Some(Value::str("new-secret-value")),
            forces_replace: false,
            known_after_apply: false,
        };
        let text = text_diff(&diff);
        assert!(!text.contains("secret-value"), "{text}");
        assert!(text.contains(HIDDEN), "{text}");
    }

    #[test]
    fn sets_show_missing_and_extra_items() {
        let diff = Diff {
            name: "ingress".to_owned(),
            old: Some(Value::set(["tcp 22", "tcp 8080"])),
            new: Some(Value::set(["tcp 22", "tcp 443"])),
            forces_replace: false,
            known_after_apply: false,
        };
        assert_eq!(
            text_diff(&diff),
            r#"ingress: missing "tcp 443"; extra "tcp 8080""#
        );
    }
}
