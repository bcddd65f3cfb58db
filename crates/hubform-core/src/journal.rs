//! The create journal: a small file beside the spec
//! (`.hubform/<workshop>.journal.json`) that remembers creates in flight.
//!
//! It is not state. Before `RunInstances` the client token is written
//! here, so that a re-run after a crash reuses it and EC2 returns the first
//! instance instead of launching a second one; before `AllocateAddress`
//! an entry makes a re-run wait for the tagged address. Losing the file
//! loses only this protection.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One create in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The AWS call, for example `RunInstances`.
    pub call: String,
    /// Its idempotency token, when the call takes one.
    pub token: String,
    /// When it was written (seconds since the epoch).
    pub started: u64,
}

/// The journal of one workshop.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    entries: Mutex<BTreeMap<String, Entry>>,
}

/// The journal file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("journal {path}: {source}")]
pub struct JournalError {
    path: String,
    #[source]
    source: std::io::Error,
}

impl Journal {
    /// Opens the journal of `workshop` in `dir/.hubform/`; a missing file
    /// is an empty journal, an unreadable one is treated as empty too
    /// (with a warning), because it only protects.
    pub fn open(dir: &Path, workshop: &str) -> Journal {
        let path = dir
            .join(".hubform")
            .join(format!("{workshop}.journal.json"));
        let entries = match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e,
                    "ignoring an unreadable journal");
                BTreeMap::new()
            }),
            Err(_) => BTreeMap::new(),
        };
        Journal {
            path,
            entries: Mutex::new(entries),
        }
    }

    /// The open entry of a resource, if any.
    pub fn get(&self, id: &str) -> Option<Entry> {
        self.lock().get(id).cloned()
    }

    /// Records an entry and syncs it to disk before returning.
    pub fn put(&self, id: &str, entry: Entry) -> Result<(), JournalError> {
        let mut entries = self.lock();
        entries.insert(id.to_owned(), entry);
        self.write(&entries)
    }

    /// Removes a resource's entry (a no-op when there is none).
    pub fn clear(&self, id: &str) -> Result<(), JournalError> {
        let mut entries = self.lock();
        if entries.remove(id).is_none() {
            return Ok(());
        }
        self.write(&entries)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn write(
        &self,
        entries: &BTreeMap<String, Entry>,
    ) -> Result<(), JournalError> {
        let err = |source| JournalError {
            path: self.path.display().to_string(),
            source,
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(err)?;
        let text = serde_json::to_string_pretty(entries)
            .map_err(|e| err(std::io::Error::other(e)))?;
        let tmp = self.path.with_extension("json.tmp");
        let mut file = fs::File::create(&tmp).map_err(err)?;
        file.write_all(text.as_bytes()).map_err(err)?;
        file.sync_all().map_err(err)?;
        fs::rename(&tmp, &self.path).map_err(err)?;
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// Seconds since the epoch, for journal entries.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_reopening_and_clear() {
        let dir = std::env::temp_dir()
            .join(format!("hubform-journal-{}", std::process::id()));
        let journal = Journal::open(&dir, "w");
        let entry = Entry {
            call: "RunInstances".into(),
            token: "t1".into(),
            started: 1,
        };
        journal.put("instance.hub", entry.clone()).expect("put");

        let again = Journal::open(&dir, "w");
        assert_eq!(again.get("instance.hub"), Some(entry));
        again.clear("instance.hub").expect("clear");
        assert_eq!(Journal::open(&dir, "w").get("instance.hub"), None);
        let _ = fs::remove_dir_all(dir);
    }
}
