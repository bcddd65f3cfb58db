//! Guards: a server's instance and root volume hold the course's work, so
//! a plan that replaces or deletes them is applied only when the spec
//! (`protect: false`) or a flag (`--allow-replace`, `--allow-destroy`)
//! says so.

use crate::graph::Desired;
use crate::model::{Kind, ResourceId};
use crate::plan::{Action, Plan};

/// What the command line allows beyond the spec.
#[derive(Debug, Clone, Copy, Default)]
pub struct Allowed {
    /// `--allow-replace`.
    pub replace: bool,
    /// `--allow-destroy`.
    pub destroy: bool,
}

/// A change the guards hold back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The protected resource.
    pub id: ResourceId,
    /// Replace or delete.
    pub action: Action,
}

impl Held {
    /// What is held and how to let it through.
    pub fn message(&self) -> String {
        let (verb, flag) = match self.action {
            Action::Replace => ("replace", "--allow-replace"),
            _ => ("delete", "--allow-destroy"),
        };
        format!(
            "{} is protected: hubform refuses to {verb} it (the server's disk \
             and everything on it) unless given {flag}, or the spec sets \
             `protect: false` on servers.{}",
            self.id, self.id.key
        )
    }
}

/// Whether this change of a resource is one the guards watch: any
/// replace or delete of an instance, and the delete of a volume. A root
/// volume is "replaced" only along with its instance: when the instance
/// is replaced, its own guard holds; when the instance is created (it was
/// lost), the old volume is not deleted.
fn guarded(kind: Kind, action: Action) -> bool {
    match kind {
        Kind::Instance => matches!(action, Action::Replace | Action::Delete),
        Kind::Volume => action == Action::Delete,
        _ => false,
    }
}

/// The changes of `plan` the guards hold. `spec` is the graph of the whole
/// spec (also for destroy, whose plan aims at nothing): a resource it does
/// not hold, or holds without `protect: false`, is protected.
pub fn held(plan: &Plan, spec: &Desired, allowed: Allowed) -> Vec<Held> {
    plan.changes
        .iter()
        .filter(|c| guarded(c.id.kind, c.action))
        .filter(|c| match c.action {
            Action::Replace => !allowed.replace,
            Action::Delete => !allowed.destroy,
            Action::Create | Action::Update => false,
        })
        .filter(|c| {
            spec.get(&c.id)
                .and_then(|r| r.flag("protect"))
                .unwrap_or(true)
        })
        .map(|c| Held {
            id: c.id.clone(),
            action: c.action,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Live, Policy, Resource, Value};
    use crate::plan::Change;
    use crate::spec::Pos;

    fn change(kind: Kind, action: Action) -> Change {
        Change {
            id: ResourceId::new(kind, "hub"),
            action,
            desired: None,
            live: Some(Live::new("i-1")),
            diffs: Vec::new(),
            after: Vec::new(),
        }
    }

    fn spec(protect: Option<bool>) -> Desired {
        let mut instance = Resource::new(
            ResourceId::new(Kind::Instance, "hub"),
            Pos::default(),
        );
        if let Some(p) = protect {
            instance = instance.attr(
                "protect",
                Value::Bool(p),
                Policy::Local,
                Pos::default(),
            );
        }
        Desired::from_resources("w".into(), "eu-west-1".into(), vec![instance])
            .expect("one resource builds")
    }

    fn plan_of(changes: Vec<Change>) -> Plan {
        Plan {
            changes,
            ..Plan::default()
        }
    }

    #[test]
    fn replace_and_delete_of_a_server_are_held_by_default() {
        let plan = plan_of(vec![
            change(Kind::Instance, Action::Replace),
            change(Kind::Volume, Action::Delete),
            change(Kind::SecurityGroup, Action::Replace),
            change(Kind::Instance, Action::Update),
        ]);
        let held = held(&plan, &spec(None), Allowed::default());
        let ids: Vec<String> = held.iter().map(|h| h.id.to_string()).collect();
        assert_eq!(ids, ["instance.hub", "volume.hub"]);
        assert!(held[0].message().contains("--allow-replace"));
        assert!(held[1].message().contains("--allow-destroy"));
    }

    #[test]
    fn a_volume_replaced_with_its_new_instance_is_not_held() {
        let plan = plan_of(vec![
            change(Kind::Instance, Action::Create),
            change(Kind::Volume, Action::Replace),
        ]);
        assert!(held(&plan, &spec(None), Allowed::default()).is_empty());
    }

    #[test]
    fn flags_let_each_action_through() {
        let plan = plan_of(vec![
            change(Kind::Instance, Action::Replace),
            change(Kind::Volume, Action::Delete),
        ]);
        let only_replace = Allowed {
            replace: true,
            destroy: false,
        };
        let held = held(&plan, &spec(None), only_replace);
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].action, Action::Delete);
        let both = Allowed {
            replace: true,
            destroy: true,
        };
        assert!(super::held(&plan, &spec(None), both).is_empty());
    }

    #[test]
    fn protect_false_in_the_spec_lets_the_server_go() {
        let plan = plan_of(vec![change(Kind::Instance, Action::Delete)]);
        assert!(held(&plan, &spec(Some(false)), Allowed::default()).is_empty());
        assert_eq!(held(&plan, &spec(Some(true)), Allowed::default()).len(), 1);
    }
}
