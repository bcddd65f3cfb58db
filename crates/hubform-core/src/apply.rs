//! The applier: carries out a plan's changes in dependency order, the
//! independent ones concurrently. A failed change stops only the changes
//! that wait for it; everything else still runs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use tracing::Instrument;

use crate::model::ResourceId;
use crate::plan::{tally, Action, Change, Plan};
use crate::provider::{Failure, Progress, Provider};

/// How one change ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done; the provider's phrase of what it did.
    Done(String),
    /// Failed with this message.
    Failed(String),
    /// Not attempted because a change it waits for failed.
    Skipped(ResourceId),
}

/// The outcomes of a whole apply, in the plan's order.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Each change's id, action and outcome.
    pub outcomes: Vec<(ResourceId, Action, Outcome)>,
}

impl Report {
    /// Whether any change failed or was skipped.
    pub fn failed(&self) -> bool {
        self.outcomes
            .iter()
            .any(|(_, _, o)| !matches!(o, Outcome::Done(_)))
    }

    /// Counts of added, changed and destroyed resources that succeeded.
    pub fn counts(&self) -> (usize, usize, usize) {
        let done = self
            .outcomes
            .iter()
            .filter(|(_, _, outcome)| matches!(outcome, Outcome::Done(_)));
        tally(done.map(|(_, action, _)| *action))
    }
}

fn verb(action: Action) -> (&'static str, &'static str) {
    match action {
        Action::Create => ("creating", "created"),
        Action::Update => ("updating", "updated"),
        Action::Replace => ("replacing", "replaced"),
        Action::Delete => ("destroying", "destroyed"),
    }
}

/// Carries out `plan` with `provider`, reporting progress as it goes.
pub async fn apply<P: Provider>(
    provider: &P,
    plan: &Plan,
    progress: &dyn Progress,
) -> Report {
    let mut outcomes: BTreeMap<ResourceId, Outcome> = BTreeMap::new();
    let mut running = FuturesUnordered::new();
    let mut started: Vec<ResourceId> = Vec::new();

    loop {
        for change in &plan.changes {
            if started.contains(&change.id) {
                continue;
            }
            if let Some(blocker) = change.after.iter().find(|a| {
                matches!(
                    outcomes.get(*a),
                    Some(Outcome::Failed(_) | Outcome::Skipped(_))
                )
            }) {
                progress.finish(
                    &change.id,
                    false,
                    &format!("skipped: it waits for {blocker}, which failed"),
                );
                outcomes.insert(
                    change.id.clone(),
                    Outcome::Skipped(blocker.clone()),
                );
                started.push(change.id.clone());
                continue;
            }
            let ready = change
                .after
                .iter()
                .all(|a| matches!(outcomes.get(a), Some(Outcome::Done(_))));
            if ready {
                started.push(change.id.clone());
                progress
                    .report(&change.id, &format!("{}…", verb(change.action).0));
                running.push(run(provider, change, progress));
            }
        }

        let Some((id, action, result, took)) = running.next().await else {
            break;
        };
        let outcome = match result {
            Ok(what) => {
                let what = if what.is_empty() {
                    String::new()
                } else {
                    format!(" ({what})")
                };
                progress.finish(
                    &id,
                    true,
                    &format!("{}{what} [{}]", verb(action).1, seconds(took)),
                );
                Outcome::Done(what.trim().trim_matches(['(', ')']).to_owned())
            }
            Err(failure) => {
                progress.finish(&id, false, &format!("failed: {failure}"));
                Outcome::Failed(failure.message)
            }
        };
        outcomes.insert(id, outcome);
    }

    let outcomes = plan
        .changes
        .iter()
        .map(|c| {
            let outcome = outcomes
                .remove(&c.id)
                .unwrap_or(Outcome::Failed("never started".to_owned()));
            (c.id.clone(), c.action, outcome)
        })
        .collect();
    Report { outcomes }
}

async fn run<'a, P: Provider>(
    provider: &'a P,
    change: &'a Change,
    progress: &'a dyn Progress,
) -> (ResourceId, Action, Result<String, Failure>, Duration) {
    let span = tracing::debug_span!(
        "change",
        resource = %change.id,
        action = ?change.action
    );
    let start = Instant::now();
    let result = provider.execute(change, progress).instrument(span).await;
    (change.id.clone(), change.action, result, start.elapsed())
}

fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}
