//! `hubform drift`.

use std::process::ExitCode;

use crate::cli::DriftArgs;
use crate::commands::CliError;

pub async fn run(_args: &DriftArgs) -> Result<ExitCode, CliError> {
    Err(CliError::Other(
        "`hubform drift` is not built yet".to_owned(),
    ))
}
