//! `hubform completions`.

use std::process::ExitCode;

use crate::cli::CompletionsArgs;
use crate::commands::CliError;

pub fn run(_args: &CompletionsArgs) -> Result<ExitCode, CliError> {
    Err(CliError::Other(
        "`hubform completions` is not built yet".to_owned(),
    ))
}
