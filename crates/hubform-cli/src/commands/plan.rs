//! `hubform plan SPEC`: observe, plan, print (text or JSON), and save the
//! plan for `apply --plan` when asked.

use std::process::ExitCode;

use hubform_core::graph::Desired;
use hubform_core::guard::{self, Allowed, Held};
use hubform_core::model::Observed;
use hubform_core::plan::{self, json::plan_json, render, Plan};
use hubform_core::provider::Provider;

use crate::cli::PlanArgs;
use crate::commands::CliError;
use crate::saved::SavedPlan;
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
    let (plan, observed) = observe_and_plan(&session, &session.desired).await?;
    let held = guard::held(&plan, &session.desired, Allowed::default());
    let (workshop, region) =
        (&session.desired.workshop, &session.desired.region);
    if args.json {
        let mut json = plan_json(&plan, workshop, region);
        json["protected"] = held
            .iter()
            .map(|h| {
                serde_json::json!({
                    "resource": h.id.to_string(),
                    "action": h.action,
                    "message": h.message(),
                })
            })
            .collect();
        println!("{json:#}");
    } else {
        print!("{}", render::render(&plan));
        print_held(&held);
    }
    if let Some(out) = &args.out {
        SavedPlan::new(&args.aws, workshop, region, &plan, &observed)?
            .write(out)?;
        eprintln!(
            "hubform: saved the plan to {0}; `hubform apply --plan {0}` \
             applies exactly it",
            out.display()
        );
    }
    if args.detailed_exitcode && !plan.is_empty() {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

/// Says which changes apply will refuse without a flag.
pub fn print_held(held: &[Held]) {
    for h in held {
        println!("\nProtected: {}", h.message());
    }
}

/// Observes and plans towards `desired`; also returns what was observed.
pub async fn observe_and_plan(
    session: &Session,
    desired: &Desired,
) -> Result<(Plan, Observed), CliError> {
    let observed = session.stack.observe(desired).await?;
    let plan =
        plan::plan(desired, &observed).map_err(|errors| CliError::Plan {
            file: session.loaded.file(),
            errors,
        })?;
    Ok((plan, observed))
}
