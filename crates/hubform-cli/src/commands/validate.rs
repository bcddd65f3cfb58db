//! `hubform validate SPEC`: offline checks only, no AWS request.

use std::process::ExitCode;

use crate::cli::SpecArg;
use crate::commands::CliError;
use crate::session;

pub fn run(args: &SpecArg) -> Result<ExitCode, CliError> {
    let (loaded, desired) = session::load(&args.spec, None)?;
    println!(
        "{}: valid; workshop {} in {}, {} resources.",
        loaded.file(),
        desired.workshop,
        desired.region,
        desired.order.len()
    );
    Ok(ExitCode::SUCCESS)
}
