//! Local secret files: private keys (0400) and access keys (0600), written
//! once, synced before the matching AWS call, never overwritten.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use hubform_core::provider::Failure;

/// Creates `path` with `mode`, failing if it exists, writes `contents`
/// and syncs the file and its folder.
pub fn write_new(
    path: &Path,
    mode: u32,
    contents: &[u8],
) -> Result<(), Failure> {
    let err = |what: &str, e: std::io::Error| {
        Failure::new(format!("cannot {what} {}: {e}", path.display()))
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| err("create the folder of", e))?;
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| err("create", e))?;
    file.write_all(contents).map_err(|e| err("write", e))?;
    file.sync_all().map_err(|e| err("sync", e))?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}
