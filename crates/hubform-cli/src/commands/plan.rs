//! `hubform plan SPEC`: observe, plan, print.

use std::process::ExitCode;

use hubform_core::graph::Desired;
use hubform_core::plan::{self, render, Plan};
use hubform_core::provider::Provider;

use crate::cli::PlanArgs;
use crate::commands::CliError;
use crate::session::{self, Session};

pub async fn run(args: &PlanArgs) -> Result<ExitCode, CliError> {
    let session = session::open(&args.aws).await?;
    eprintln!(
        "hubform: workshop {} in {}{}",
        session.desired.workshop,
        session.desired.region,
        args.aws
            .profile
            .as_ref()
            .map(|p| format!(", profile {p}"))
            .unwrap_or_default()
    );
    let plan = make(&session, &session.desired).await?;
    print!("{}", render::render(&plan));
    if args.detailed_exitcode && !plan.is_empty() {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

/// Observes and plans towards `desired`.
pub async fn make(
    session: &Session,
    desired: &Desired,
) -> Result<Plan, CliError> {
    let observed = session.stack.observe(desired).await?;
    plan::plan(desired, &observed).map_err(|errors| CliError::Plan {
        file: session.loaded.file(),
        errors,
    })
}
