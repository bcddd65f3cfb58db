//! The interface between the engine and the worlds it changes.

use std::future::Future;

use crate::graph::Desired;
use crate::model::{Observed, ResourceId};
use crate::plan::Change;

/// A failed observation or action, already phrased for the user: which
/// call failed, what the service said, what to do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// The whole message.
    pub message: String,
}

impl Failure {
    /// A failure with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
        }
    }
}

/// Where providers say what they are doing while an action runs (waits,
/// retries). Lines go to the user on stderr.
pub trait Progress: Sync {
    /// Reports one line about a resource.
    fn report(&self, id: &ResourceId, message: &str);

    /// Reports the last line about a resource's change: `done` when it
    /// succeeded, not when it failed or was skipped. A terminal display
    /// marks the resource finished; by default it is one more line.
    fn finish(&self, id: &ResourceId, done: bool, message: &str) {
        let _ = done;
        self.report(id, message);
    }
}

/// A progress sink that drops everything.
pub struct Quiet;

impl Progress for Quiet {
    fn report(&self, _: &ResourceId, _: &str) {}
}

/// Observes live objects and carries out changes, one resource at a time.
pub trait Provider: Sync {
    /// Finds the live objects of the desired resources' kinds that belong
    /// to the workshop, in as few calls as possible.
    fn observe<'a>(
        &'a self,
        desired: &'a Desired,
    ) -> impl Future<Output = Result<Observed, Failure>> + Send + 'a;

    /// Carries out one change; returns a short phrase of what it did
    /// (for example the new object's id).
    fn execute<'a>(
        &'a self,
        change: &'a Change,
        progress: &'a dyn Progress,
    ) -> impl Future<Output = Result<String, Failure>> + Send + 'a;
}
