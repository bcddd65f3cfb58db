//! The planner: a pure function from what the spec wants and what the
//! providers found to the changes that make them agree.
//!
//! ```
//! use hubform_core::graph::Desired;
//! use hubform_core::model::Observed;
//! use hubform_core::plan::plan;
//!
//! let desired = Desired::empty("w".into(), "ap-south-1".into());
//! let plan = plan(&desired, &Observed::default()).unwrap();
//! assert!(plan.is_empty());
//! ```

use std::collections::{BTreeMap, BTreeSet};

use crate::graph::Desired;
use crate::model::{
    Kind, Live, Note, Observed, Policy, Resource, ResourceId, Value, Wait,
};
use crate::spec::Pos;

pub mod json;
pub mod render;

/// What happens to one resource.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Created.
    Create,
    /// Changed in place.
    Update,
    /// Deleted and created again (or swapped, for security groups).
    Replace,
    /// Deleted.
    Delete,
}

impl Action {
    /// The marker plans show, Terraform's.
    pub fn marker(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
        }
    }
}

/// What plans, drift reports and JSON show instead of a secret value.
pub const HIDDEN: &str = "(sensitive)";

/// Whether an attribute's name says its value is a secret (a
/// `tljh-config` key such as `auth.GitHubOAuthenticator.client_secret`):
/// its values are never shown, only that they differ.
pub fn is_sensitive(name: &str) -> bool {
    let name = name.to_lowercase();
    ["secret", "password", "token"]
        .iter()
        .any(|word| name.contains(word))
}

/// A difference in one attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct Diff {
    /// The attribute's name.
    pub name: String,
    /// What the live object has; `None` on create.
    pub old: Option<Value>,
    /// What the spec wants; `None` on delete.
    pub new: Option<Value>,
    /// Whether this difference forces a replacement.
    pub forces_replace: bool,
    /// Whether the new value is known only after apply.
    pub known_after_apply: bool,
}

/// One resource's change.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The resource.
    pub id: ResourceId,
    /// What happens to it.
    pub action: Action,
    /// What the spec wants (absent for deletes).
    pub desired: Option<Resource>,
    /// What was found (absent for creates).
    pub live: Option<Live>,
    /// The attribute differences.
    pub diffs: Vec<Diff>,
    /// Changes that must finish before this one starts.
    pub after: Vec<ResourceId>,
}

fn items(value: Option<&Value>) -> BTreeSet<String> {
    match value {
        Some(Value::Set(items)) => items.clone(),
        _ => BTreeSet::new(),
    }
}

impl Change {
    /// The items of set attribute `name` the spec wants (none if absent).
    pub fn wanted_items(&self, name: &str) -> BTreeSet<String> {
        let desired = self.desired.as_ref();
        items(desired.and_then(|d| d.attrs.get(name)).map(|a| &a.value))
    }

    /// The items of set attribute `name` found live (none if absent).
    pub fn live_items(&self, name: &str) -> BTreeSet<String> {
        items(self.live.as_ref().and_then(|l| l.attrs.get(name)))
    }
}

/// A change that cannot be planned, at the spec line that asks for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pos}: {id}: {message}")]
pub struct PlanError {
    /// The resource.
    pub id: ResourceId,
    /// Where the spec asks for it.
    pub pos: Pos,
    /// What is wrong and what to do.
    pub message: String,
}

/// Everything apply would do, in an order it can be done.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Changes in dependency order.
    pub changes: Vec<Change>,
    /// Remarks that change nothing.
    pub notes: Vec<Note>,
    /// Creates that apply refuses, because an untagged twin exists.
    pub blocked: Vec<Note>,
}

impl Plan {
    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Counts to add, to change and to destroy, as Terraform counts them
    /// (a replace adds one and destroys one).
    pub fn counts(&self) -> (usize, usize, usize) {
        tally(self.changes.iter().map(|c| c.action))
    }

    /// The change of one resource, if any.
    pub fn change(&self, id: &ResourceId) -> Option<&Change> {
        self.changes.iter().find(|c| &c.id == id)
    }
}

/// Counts to add, to change and to destroy of some actions, as Terraform
/// counts them: a replace adds one and destroys one.
pub fn tally(actions: impl Iterator<Item = Action>) -> (usize, usize, usize) {
    let mut counts = (0, 0, 0);
    for action in actions {
        match action {
            Action::Create => counts.0 += 1,
            Action::Update => counts.1 += 1,
            Action::Replace => {
                counts.0 += 1;
                counts.2 += 1;
            }
            Action::Delete => counts.2 += 1,
        }
    }
    counts
}

/// Plans the changes from `observed` to `desired`.
pub fn plan(
    desired: &Desired,
    observed: &Observed,
) -> Result<Plan, Vec<PlanError>> {
    let mut errors = Vec::new();
    let mut actions: BTreeMap<ResourceId, Change> = BTreeMap::new();
    // Resources with changes held back by a wait: only those say so.
    let mut waiting: Vec<ResourceId> = Vec::new();

    let resting = resting_hosts(desired, observed);
    for id in &desired.order {
        let Some(resource) = desired.get(id) else {
            continue;
        };
        if id.kind.on_host() && resting.contains_key(&id.key) {
            continue;
        }
        if let Some(holder) = observed.conflicts.get(id) {
            errors.push(PlanError {
                id: id.clone(),
                pos: resource.pos,
                message: holder.clone(),
            });
            continue;
        }
        if id.kind == Kind::Image {
            if !observed.live.contains_key(id) {
                errors.push(PlanError {
                    id: id.clone(),
                    pos: resource.pos,
                    message: "the image lookup found no available image; \
                              check owner, name pattern and architecture"
                        .to_owned(),
                });
            }
            continue;
        }
        match diff_resource(resource, observed.live.get(id), &actions) {
            Ok(Some(change)) => {
                let before = change.diffs.len();
                let held = hold_back(change, &observed.waits);
                let after = held.as_ref().map_or(0, |c| c.diffs.len());
                if after < before {
                    waiting.push(id.clone());
                }
                if let Some(change) = held {
                    actions.insert(id.clone(), change);
                }
            }
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }

    tie_volumes_to_instances(desired, observed, &mut actions);
    tie_hosts_to_instances(desired, &mut actions);
    show_selected_images(desired, observed, &mut actions);

    for (id, live) in &observed.live {
        if id.kind != Kind::Image && desired.get(id).is_none() {
            actions.insert(id.clone(), deletion(id, live));
        }
    }

    if !errors.is_empty() {
        return Err(errors);
    }

    let blocked = actions
        .values()
        .filter(|c| c.action == Action::Create)
        .filter_map(|c| {
            observed.lookalikes.get(&c.id).map(|what| Note {
                id: c.id.clone(),
                text: what.clone(),
            })
        })
        .collect();
    let mut notes = observed.notes.clone();
    notes.extend(resting.into_iter().map(|(key, text)| Note {
        id: ResourceId::new(Kind::Tljh, key),
        text,
    }));
    notes.extend(downtime_notes(&actions));
    let held = observed.waits.iter().filter(|w| waiting.contains(&w.id));
    notes.extend(held.map(|w| Note {
        id: w.id.clone(),
        text: format!("{} wait(s): {}", w.attrs.join(", "), w.reason),
    }));
    notes.sort();
    let changes = order_changes(desired, actions);
    Ok(Plan {
        changes,
        notes,
        blocked,
    })
}

/// The change of one declared resource, or `None` when it is in sync.
fn diff_resource(
    resource: &Resource,
    live: Option<&Live>,
    planned: &BTreeMap<ResourceId, Change>,
) -> Result<Option<Change>, PlanError> {
    let Some(live) = live else {
        let diffs = resource
            .attrs
            .iter()
            .map(|(name, attr)| Diff {
                name: name.clone(),
                old: None,
                new: Some(attr.value.clone()),
                forces_replace: false,
                known_after_apply: false,
            })
            .collect();
        return Ok(Some(Change {
            id: resource.id.clone(),
            action: Action::Create,
            desired: Some(resource.clone()),
            live: None,
            diffs,
            after: Vec::new(),
        }));
    };

    let mut diffs = Vec::new();
    for (name, attr) in &resource.attrs {
        if attr.policy == Policy::Local {
            continue;
        }
        let old = live.attrs.get(name).cloned().unwrap_or(Value::None);
        let target_rebuilt = match &attr.value {
            Value::Ref(target) => planned.get(target).is_some_and(|c| {
                matches!(c.action, Action::Create | Action::Replace)
            }),
            _ => false,
        };
        if old == attr.value && !target_rebuilt {
            continue;
        }
        if attr.policy == Policy::Grow {
            if let (Value::Int(was), Value::Int(want)) = (&old, &attr.value) {
                if want < was {
                    return Err(PlanError {
                        id: resource.id.clone(),
                        pos: attr.pos,
                        message: format!(
                            "{name} cannot shrink from {was} to {want}; \
                             AWS volumes only grow (set it to {was} or more)"
                        ),
                    });
                }
            }
        }
        diffs.push(Diff {
            name: name.clone(),
            old: Some(old),
            new: Some(attr.value.clone()),
            forces_replace: attr.policy == Policy::Replace,
            known_after_apply: target_rebuilt,
        });
    }

    if diffs.is_empty() {
        return Ok(None);
    }
    let action = if diffs.iter().any(|d| d.forces_replace) {
        Action::Replace
    } else {
        Action::Update
    };
    Ok(Some(Change {
        id: resource.id.clone(),
        action,
        desired: Some(resource.clone()),
        live: Some(live.clone()),
        diffs,
        after: Vec::new(),
    }))
}

/// Servers with a host layer that cannot or should not be reached now,
/// with the reason: a stopped instance, or one the spec stops. Their host
/// resources are left out of the plan until the server runs.
fn resting_hosts(
    desired: &Desired,
    observed: &Observed,
) -> BTreeMap<String, String> {
    let mut resting = BTreeMap::new();
    for install in desired.of_kind(Kind::Tljh) {
        let key = &install.id.key;
        let instance = ResourceId::new(Kind::Instance, key);
        let Some(live) = observed.live.get(&instance) else {
            continue;
        };
        let now = live.get_extra("state").unwrap_or_default();
        let wanted = desired.get(&instance).and_then(|r| r.text("state"));
        let reason = if wanted == Some("stopped") {
            "the spec stops the server; its host layer is not checked"
        } else if !matches!(now, "running" | "pending") {
            "the server is not running; its host layer is checked once it \
             runs (apply again after it started)"
        } else {
            continue;
        };
        resting.insert(key.clone(), reason.to_owned());
    }
    for (key, why) in &observed.unreachable {
        resting.entry(key.clone()).or_insert_with(|| {
            format!(
                "{why}; its host layer is not checked, and apply changes \
                 only AWS: apply again once the server answers"
            )
        });
    }
    resting
}

/// A new or replaced server has a new disk: everything on its host is
/// created again, whatever the old host had.
fn tie_hosts_to_instances(
    desired: &Desired,
    actions: &mut BTreeMap<ResourceId, Change>,
) {
    let replaced: Vec<String> = actions
        .values()
        .filter(|c| c.id.kind == Kind::Instance && c.action == Action::Replace)
        .map(|c| c.id.key.clone())
        .collect();
    for key in replaced {
        let on_host = desired
            .order
            .iter()
            .filter(|id| id.kind.on_host() && id.key == key);
        for id in on_host {
            let Some(resource) = desired.get(id) else {
                continue;
            };
            if let Ok(Some(change)) = diff_resource(resource, None, actions) {
                actions.insert(id.clone(), change);
            }
        }
    }
}

/// Changes that interrupt the workshop deserve a word in the plan.
fn downtime_notes(actions: &BTreeMap<ResourceId, Change>) -> Vec<Note> {
    actions
        .values()
        .filter(|c| c.id.kind == Kind::Instance && c.action == Action::Update)
        .filter(|c| c.diffs.iter().any(|d| d.name == "type"))
        .map(|c| Note {
            id: c.id.clone(),
            text: "a new type means stopping and starting the instance: \
                   the hub is down for a few minutes and running notebooks \
                   are lost"
                .to_owned(),
        })
        .collect()
}

/// Drops the diffs of attributes that must wait; a change left with no
/// diff is no change (an update) or still a create.
fn hold_back(mut change: Change, waits: &[Wait]) -> Option<Change> {
    let held: Vec<&String> = waits
        .iter()
        .filter(|w| w.id == change.id)
        .flat_map(|w| w.attrs.iter())
        .collect();
    if held.is_empty() {
        return Some(change);
    }
    change.diffs.retain(|d| !held.contains(&&d.name));
    if change.diffs.is_empty() && change.action == Action::Update {
        return None;
    }
    Some(change)
}

/// A root volume lives and dies with its instance: when the instance is
/// created or replaced, so is its volume, whatever the volume's own diff.
fn tie_volumes_to_instances(
    desired: &Desired,
    observed: &Observed,
    actions: &mut BTreeMap<ResourceId, Change>,
) {
    for volume in desired.of_kind(Kind::Volume) {
        let instance = ResourceId::new(Kind::Instance, &volume.id.key);
        let rebuilt = actions.get(&instance).is_some_and(|c| {
            matches!(c.action, Action::Create | Action::Replace)
        });
        if !rebuilt {
            continue;
        }
        let live = observed.live.get(&volume.id);
        let mut change = match diff_resource(volume, None, actions) {
            Ok(Some(change)) => change,
            _ => continue,
        };
        if live.is_some() {
            change.action = Action::Replace;
            change.live = live.cloned();
        }
        actions.insert(volume.id.clone(), change);
    }
}

/// A new instance shows the image its lookup selected, so that the plan
/// says exactly what will boot.
fn show_selected_images(
    desired: &Desired,
    observed: &Observed,
    actions: &mut BTreeMap<ResourceId, Change>,
) {
    for change in actions.values_mut() {
        if change.id.kind != Kind::Instance || change.action != Action::Create {
            continue;
        }
        let image = desired
            .get(&change.id)
            .and_then(|r| r.deps.iter().find(|d| d.kind == Kind::Image))
            .and_then(|id| observed.live.get(id));
        let Some(image) = image else {
            continue;
        };
        let name = match image.attrs.get("name") {
            Some(Value::Str(name)) => format!(" ({name})"),
            _ => String::new(),
        };
        change.diffs.push(Diff {
            name: "ami".to_owned(),
            old: None,
            new: Some(Value::str(format!("{}{name}", image.cloud_id))),
            forces_replace: false,
            known_after_apply: false,
        });
        change.diffs.sort_by(|a, b| a.name.cmp(&b.name));
    }
}

fn deletion(id: &ResourceId, live: &Live) -> Change {
    let diffs = live
        .attrs
        .iter()
        .map(|(name, value)| Diff {
            name: name.clone(),
            old: Some(value.clone()),
            new: None,
            forces_replace: false,
            known_after_apply: false,
        })
        .collect();
    Change {
        id: id.clone(),
        action: Action::Delete,
        desired: None,
        live: Some(live.clone()),
        diffs,
        after: Vec::new(),
    }
}

/// Puts changes in an order apply can follow and records, for each, the
/// changes it must wait for: creates and updates wait for the changes of
/// what they depend on; deletes wait for every change of the kinds that
/// hold references to them.
fn order_changes(
    desired: &Desired,
    mut actions: BTreeMap<ResourceId, Change>,
) -> Vec<Change> {
    let ids: Vec<ResourceId> = actions.keys().cloned().collect();
    for id in &ids {
        let after: Vec<ResourceId> = match actions[id].action {
            Action::Delete => ids
                .iter()
                .filter(|other| id.kind.dependents().contains(&other.kind))
                .cloned()
                .collect(),
            _ => desired
                .get(id)
                .map(|r| r.deps.clone())
                .unwrap_or_default()
                .into_iter()
                .filter(|dep| actions.contains_key(dep))
                .collect(),
        };
        if let Some(change) = actions.get_mut(id) {
            change.after = after;
        }
    }

    let mut position: BTreeMap<&ResourceId, usize> = BTreeMap::new();
    for (i, id) in desired.order.iter().enumerate() {
        position.insert(id, i);
    }
    let mut changes: Vec<Change> = actions.into_values().collect();
    changes.sort_by_key(|c| {
        let deleting = c.action == Action::Delete;
        // Deletes go last, the most dependent kinds first.
        let rank = if deleting {
            usize::MAX - delete_rank(c.id.kind)
        } else {
            position.get(&c.id).copied().unwrap_or(0)
        };
        (deleting, rank, c.id.clone())
    });
    changes
}

/// How deep a kind sits in the chain of references (0 holds none).
fn delete_rank(kind: Kind) -> usize {
    match kind {
        Kind::TljhConfig | Kind::Packages => 5,
        Kind::Tljh | Kind::System | Kind::DnsRecord => 4,
        Kind::Volume | Kind::ElasticIp => 3,
        Kind::Instance => 2,
        Kind::IamUser => 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
