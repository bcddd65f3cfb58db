//! The plan as JSON (`hubform plan --json`, saved plans), and the
//! fingerprint of the live state a plan was made from.
//!
//! The format is versioned by `format_version` and documented in
//! `docs/json-formats.md`. It holds attribute values as the planner
//! compares them, except those of secret-looking names (`is_sensitive`);
//! access-key secrets and private keys live only in their files.

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};

use crate::model::Observed;
use crate::plan::{is_sensitive, Change, Plan, HIDDEN};

/// The version of the plan JSON; raised when a field changes meaning.
pub const FORMAT_VERSION: u32 = 1;

/// The plan of `workshop` in `region` as JSON.
pub fn plan_json(plan: &Plan, workshop: &str, region: &str) -> Json {
    let (add, change, destroy) = plan.counts();
    let notes = |notes: &[crate::model::Note]| -> Vec<Json> {
        notes
            .iter()
            .map(|n| json!({"resource": n.id.to_string(), "text": n.text}))
            .collect()
    };
    json!({
        "format_version": FORMAT_VERSION,
        "workshop": workshop,
        "region": region,
        "changes": plan.changes.iter().map(change_json).collect::<Vec<_>>(),
        "notes": notes(&plan.notes),
        "blocked": notes(&plan.blocked),
        "summary": {"add": add, "change": change, "destroy": destroy},
    })
}

fn change_json(change: &Change) -> Json {
    let diffs: Vec<Json> = change
        .diffs
        .iter()
        .map(|d| {
            let show = |v: &Option<crate::model::Value>| match v {
                Some(_) if is_sensitive(&d.name) => json!(HIDDEN),
                Some(v) => v.to_json(),
                None => Json::Null,
            };
            json!({
                "field": d.name,
                "old": show(&d.old),
                "new": show(&d.new),
                "forces_replace": d.forces_replace,
                "known_after_apply": d.known_after_apply,
            })
        })
        .collect();
    json!({
        "resource": change.id.to_string(),
        "kind": change.id.kind.name(),
        "key": change.id.key,
        "action": change.action,
        "cloud_id": change.live.as_ref().map(|l| l.cloud_id.clone()),
        "diffs": diffs,
    })
}

/// A digest of each live object a plan was made from: its cloud id and
/// the attributes the planner compares. Anything that moves one of them
/// (a hand edit, another apply) changes its digest; the empty account
/// has no entries at all.
pub fn fingerprint(observed: &Observed) -> BTreeMap<String, String> {
    observed
        .live
        .iter()
        .map(|(id, live)| {
            let text = format!("{}\n{:?}", live.cloud_id, live.attrs);
            (id.to_string(), hex(&Sha256::digest(text.as_bytes())))
        })
        .collect()
}

/// The resources whose digest differs between two fingerprints: changed,
/// appeared or gone.
pub fn moved(
    before: &BTreeMap<String, String>,
    now: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut ids: Vec<String> = before
        .keys()
        .chain(now.keys())
        .filter(|id| before.get(*id) != now.get(*id))
        .cloned()
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Lowercase hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Kind, Live, ResourceId, Value};

    fn observed(rule: &str) -> Observed {
        let mut observed = Observed::default();
        observed.live.insert(
            ResourceId::new(Kind::SecurityGroup, "sg"),
            Live::new("sg-1").attr("ingress", Value::set([rule])),
        );
        observed
    }

    #[test]
    fn a_changed_attribute_moves_its_resource_only() {
        let before = fingerprint(&observed("tcp 22 0.0.0.0/0"));
        let mut now_observed = observed("tcp 22 10.0.0.0/8");
        now_observed
            .live
            .insert(ResourceId::new(Kind::KeyPair, "k"), Live::new("key-1"));
        let now = fingerprint(&now_observed);
        assert_eq!(moved(&before, &now), ["key_pair.k", "security_group.sg"]);
        assert!(moved(&before, &fingerprint(&observed("tcp 22 0.0.0.0/0")))
            .is_empty());
    }

    #[test]
    fn extras_do_not_move_a_resource() {
        let mut a = observed("r");
        let b = observed("r");
        for live in a.live.values_mut() {
            *live = live.clone().extra("public_ip", "203.0.113.9");
        }
        assert!(moved(&fingerprint(&a), &fingerprint(&b)).is_empty());
    }
}
