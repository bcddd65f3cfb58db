//! `hubform validate SPEC`: offline checks only, no AWS request; the
//! lints too (docs/lints.md).

use std::process::ExitCode;

use hubform_core::model::Kind;

use crate::cli::SpecArg;
use crate::commands::{plan, CliError};
use crate::session;

pub fn run(args: &SpecArg) -> Result<ExitCode, CliError> {
    let (loaded, desired) = session::load(&args.spec, None)?;
    let lookups = desired.of_kind(Kind::Image).count();
    outln!(
        "{}: valid; workshop {} in {}, {} resources and {lookups} image \
         lookup(s).",
        loaded.file(),
        desired.workshop,
        desired.region,
        desired.order.len() - lookups,
    );
    plan::show_lints(&loaded, "the spec is refused", "")?;
    Ok(ExitCode::SUCCESS)
}
