//! `hubform plan SPEC`: observe, plan, print (text or JSON) with the
//! monthly cost and the lints, and save the plan for `apply --plan` when
//! asked and not refused.

use std::path::Path;
use std::process::ExitCode;

use hubform_core::cost::{self, Estimate, PriceTable};
use hubform_core::graph::Desired;
use hubform_core::guard::{self, Allowed, Held};
use hubform_core::lint::{self, Lint, Severity};
use hubform_core::model::Observed;
use hubform_core::plan::{self, json::plan_json, render, Plan};
use hubform_core::provider::Provider;
use hubform_core::spec::Loaded;

use crate::cli::PlanArgs;
use crate::commands::CliError;
use crate::saved::SavedPlan;
use crate::session::{self, Session};

pub async fn run(args: &PlanArgs) -> Result<ExitCode, CliError> {
    let deny = args.lint == "deny";
    // A bad table is refused before any AWS call.
    let table = price_table(args.prices.as_deref())?;
    let session = session::open(&args.aws).await?;
    // A host that does not answer leaves its host layer out, noted.
    session.stack.host.tolerate_unreachable();
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
    let spec = &session.loaded.spec;
    let (estimate, lints) =
        (cost::estimate(spec, &table), lint::lint(spec, &table));
    let file = session.loaded.file();
    let refused = lint::refused(&lints, deny);
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
        json["cost"] = cost::to_json(&estimate);
        json["lints"] = lint::to_json(&lints, &file);
        json["lint_level"] = args.lint.as_str().into();
        json["refused"] = refused.into();
        outln!("{json:#}");
    } else {
        out!("{}", render::render(&plan));
        print_held(&held);
        print_cost(&estimate);
        print_lints(&lints, &file, deny);
    }
    if refused {
        let after = match args.out {
            Some(_) => "; the plan was not saved",
            None => "",
        };
        return Err(refusal(&lints, "the plan is refused", after));
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
        outln!("\nProtected: {}", h.message());
    }
}

/// The price table: the file given (`--prices`, `HUBFORM_PRICES`), else
/// the built-in one.
pub fn price_table(path: Option<&Path>) -> Result<PriceTable, CliError> {
    match path {
        Some(path) => PriceTable::load(path).map_err(|e| {
            CliError::Other(format!(
                "{e} (given with --prices or HUBFORM_PRICES; see \
                 docs/lints.md, \"The price table\")"
            ))
        }),
        None => Ok(PriceTable::builtin()),
    }
}

fn print_cost(estimate: &Estimate) {
    let text = cost::render(estimate);
    if !text.is_empty() {
        out!("\n{text}");
    }
}

/// Prints the lints after a blank line, if any.
pub fn print_lints(lints: &[Lint], file: &str, deny: bool) {
    if !lints.is_empty() {
        out!("\n{}", lint::render(lints, file, deny));
    }
}

/// Why `verb` is refused: the lint errors, or any lint under
/// `--lint=deny`. `verb` is a sentence start such as `the plan is
/// refused`; `after` says what did not happen.
fn refusal(lints: &[Lint], verb: &str, after: &str) -> CliError {
    let errors: Vec<&str> = lints
        .iter()
        .filter(|l| l.severity == Severity::Error)
        .map(|l| l.id)
        .collect();
    if !errors.is_empty() {
        return CliError::Other(format!(
            "{verb}: {} lint error(s) above ({}); fix the spec as each \
             error's fix says{after}",
            errors.len(),
            errors.join(", ")
        ));
    }
    let ids: Vec<&str> = lints.iter().map(|l| l.id).collect();
    CliError::Other(format!(
        "{verb} by --lint=deny: {} warning(s) above ({}); fix them \
         (docs/lints.md says how) or plan without --lint=deny{after}",
        ids.len(),
        ids.join(", ")
    ))
}

/// For apply and validate: prints the spec's lints (the memory table
/// from `HUBFORM_PRICES` or the built-in one) and refuses lint errors.
/// They have no `--lint`: warnings are shown, not refused. `verb` starts
/// the refusal (`refusing to apply`), `after` ends it.
pub fn show_lints(
    loaded: &Loaded,
    verb: &str,
    after: &str,
) -> Result<(), CliError> {
    let path = std::env::var_os("HUBFORM_PRICES").filter(|p| !p.is_empty());
    let table = price_table(path.as_deref().map(Path::new))?;
    let lints = lint::lint(&loaded.spec, &table);
    print_lints(&lints, &loaded.file(), false);
    if lint::refused(&lints, false) {
        return Err(refusal(&lints, verb, after));
    }
    Ok(())
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
