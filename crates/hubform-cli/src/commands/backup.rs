//! `hubform backup SPEC` and `hubform backups SPEC`.

use std::process::ExitCode;

use crate::cli::{BackupArgs, BackupsArgs};
use crate::commands::CliError;

pub async fn run(_args: &BackupArgs) -> Result<ExitCode, CliError> {
    Err(CliError::Other(
        "`hubform backup` is not built yet".to_owned(),
    ))
}

pub async fn list(_args: &BackupsArgs) -> Result<ExitCode, CliError> {
    Err(CliError::Other(
        "`hubform backups` is not built yet".to_owned(),
    ))
}
