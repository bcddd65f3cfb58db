//! `hubform import`.

use std::process::ExitCode;

use crate::cli::ImportArgs;
use crate::commands::CliError;

pub async fn run(_args: &ImportArgs) -> Result<ExitCode, CliError> {
    Err(CliError::Other(
        "`hubform import` is not built yet".to_owned(),
    ))
}
