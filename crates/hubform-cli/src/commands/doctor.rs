//! `hubform doctor`.

use std::process::ExitCode;

use crate::cli::DoctorArgs;
use crate::commands::CliError;

pub async fn run(_args: &DoctorArgs) -> Result<ExitCode, CliError> {
    Err(CliError::Other(
        "`hubform doctor` is not built yet".to_owned(),
    ))
}
