//! `hubform status`.

use std::process::ExitCode;

use crate::cli::AwsArgs;
use crate::commands::CliError;

pub async fn run(_args: &AwsArgs) -> Result<ExitCode, CliError> {
    Err(CliError::Other(
        "`hubform status` is not built yet".to_owned(),
    ))
}
