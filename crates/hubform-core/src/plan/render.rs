//! Plan text in Terraform's shape: a block per change with `+ ~ - -/+`
//! markers and attribute diffs, notes, and the summary line.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::{is_sensitive, Action, Change, Diff, Plan, HIDDEN};
use crate::model::Value;

/// The whole plan as text, ending in the summary line.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();

    if !plan.notes.is_empty() {
        out.push_str("Notes:\n");
        for note in &plan.notes {
            let _ = writeln!(out, "  * {}: {}", note.id, note.text);
        }
        out.push('\n');
    }
    if !plan.blocked.is_empty() {
        out.push_str("Warnings:\n");
        for note in &plan.blocked {
            let _ = writeln!(out, "  ! {}: {}", note.id, note.text);
        }
        out.push('\n');
    }

    if plan.is_empty() {
        out.push_str("No changes. The live workshop matches the spec.\n");
        return out;
    }

    out.push_str("hubform will perform the following actions:\n\n");
    for change in &plan.changes {
        render_change(&mut out, change);
        out.push('\n');
    }
    out.push_str(&summary(plan));
    out.push('\n');
    out
}

/// `Plan: X to add, Y to change, Z to destroy.`
pub fn summary(plan: &Plan) -> String {
    let (add, change, destroy) = plan.counts();
    format!("Plan: {add} to add, {change} to change, {destroy} to destroy.")
}

fn render_change(out: &mut String, change: &Change) {
    let what = match change.action {
        Action::Create => "will be created",
        Action::Update => "will be updated in place",
        Action::Replace => "must be replaced",
        Action::Delete => "will be destroyed",
    };
    let cloud_id = change
        .live
        .as_ref()
        .map(|l| format!(" ({})", l.cloud_id))
        .unwrap_or_default();
    let _ = writeln!(out, "  # {}{} {}", change.id, cloud_id, what);
    let _ = writeln!(out, "  {} {} {{", change.action.marker(), change.id);

    let width = change.diffs.iter().map(|d| d.name.len()).max().unwrap_or(0);
    for diff in &change.diffs {
        render_diff(out, change.action, diff, width);
    }
    out.push_str("    }\n");
}

fn render_diff(out: &mut String, action: Action, diff: &Diff, width: usize) {
    let name = format!("{:width$}", diff.name);
    if is_sensitive(&diff.name) {
        let marker = match (&diff.old, &diff.new) {
            (None, _) => "+",
            (_, None) => "-",
            _ if action == Action::Create => "+",
            _ => "~",
        };
        let _ = writeln!(out, "      {marker} {name} = {HIDDEN}");
        return;
    }
    match (&diff.old, &diff.new) {
        (None, Some(new)) => {
            let _ = writeln!(out, "      + {name} = {new}");
        }
        (Some(old), None) => {
            let _ = writeln!(out, "      - {name} = {old}");
        }
        (Some(Value::Set(old)), Some(Value::Set(new)))
            if !diff.forces_replace =>
        {
            let _ = writeln!(out, "      ~ {} = [", diff.name);
            render_set_diff(out, old, new);
            out.push_str("        ]\n");
        }
        (Some(old), Some(new)) => {
            let new = if diff.known_after_apply {
                "(known after apply)".to_owned()
            } else {
                new.to_string()
            };
            let marker = if action == Action::Create { "+" } else { "~" };
            let forces = if diff.forces_replace {
                " # forces replacement"
            } else {
                ""
            };
            let _ =
                writeln!(out, "      {marker} {name} = {old} -> {new}{forces}");
        }
        (None, None) => {}
    }
}

/// Items in the order people read them: numbers inside compare as
/// numbers, so `tcp 80` comes before `tcp 443`.
pub fn natural_order<'a>(
    items: impl Iterator<Item = &'a String>,
) -> Vec<&'a String> {
    let mut items: Vec<&String> = items.collect();
    items.sort_by_cached_key(|item| natural_key(item));
    items
}

fn natural_key(text: &str) -> Vec<(String, u64)> {
    let mut key = Vec::new();
    let mut word = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            let mut digits = c.to_string();
            while let Some(d) = chars.next_if(char::is_ascii_digit) {
                digits.push(d);
            }
            key.push((std::mem::take(&mut word), digits.parse().unwrap_or(0)));
        } else {
            word.push(c);
        }
    }
    key.push((word, 0));
    key
}

fn render_set_diff(
    out: &mut String,
    old: &BTreeSet<String>,
    new: &BTreeSet<String>,
) {
    for item in natural_order(old.union(new)) {
        let marker = match (old.contains(item), new.contains(item)) {
            (true, false) => "-",
            (false, true) => "+",
            _ => " ",
        };
        let _ = writeln!(out, "          {marker} {item:?},");
    }
}
