//! `hubform init`.

use std::process::ExitCode;

use crate::cli::InitArgs;
use crate::commands::CliError;

pub fn run(_args: &InitArgs) -> Result<ExitCode, CliError> {
    Err(CliError::Other(
        "`hubform init` is not built yet".to_owned(),
    ))
}
