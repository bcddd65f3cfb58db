//! `hubform apply SPEC` and `hubform destroy SPEC`.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use hubform_aws::backup;
use hubform_core::apply::{self, Outcome};
use hubform_core::graph::Desired;
use hubform_core::guard::{self, Allowed, Held};
use hubform_core::plan::render;
use hubform_core::provider::Provider;

use crate::cli::ApplyArgs;
use crate::commands::{plan, CliError};
use crate::saved::SavedPlan;
use crate::session::{self, Stderr};

pub async fn run(
    args: &ApplyArgs,
    destroy: bool,
) -> Result<ExitCode, CliError> {
    let verb = if destroy { "destroy" } else { "apply" };
    let saved = args.plan.as_deref().map(SavedPlan::read).transpose()?;
    if let (None, Some(spec)) = (&saved, &args.spec) {
        // A spec that cannot be read is the first thing to fix, before
        // any question of confirmation.
        session::load(spec, args.run.region.as_deref())?;
    }
    let aws_args = match (&saved, &args.spec) {
        (Some(saved), _) => {
            saved.check_spec()?;
            saved.aws_args(args.aws_args(saved.spec.clone()))
        }
        (None, Some(spec)) => args.aws_args(spec.clone()),
        (None, None) => {
            return Err(CliError::Other(format!(
                "{verb} needs a spec (or --plan FILE)"
            )))
        }
    };
    let session = session::open(&aws_args).await?;
    // A host that does not answer leaves its host layer out, noted:
    // the AWS changes (a security group opening SSH) still go through.
    session.stack.host.tolerate_unreachable();
    if args.run.no_backup {
        session.stack.aws.skip_backups();
    }
    let (account, arn) = session.stack.aws.identity().await?;
    let place = format!(
        "workshop {} in {}, account {account}",
        session.desired.workshop, session.desired.region
    );
    eprintln!("hubform: {place}, as {arn}");
    let lock = crate::lock::hold(&session, verb).await?;
    let result = act(args, destroy, &session, &place, saved.as_ref()).await;
    lock.release().await;
    result
}

async fn act(
    args: &ApplyArgs,
    destroy: bool,
    session: &session::Session,
    place: &str,
    saved: Option<&SavedPlan>,
) -> Result<ExitCode, CliError> {
    let verb = if destroy { "destroy" } else { "apply" };
    let (workshop, region) =
        (&session.desired.workshop, &session.desired.region);

    let desired = if destroy {
        Desired::empty(workshop.clone(), region.clone())
    } else {
        session.desired.clone()
    };
    let plan = if destroy {
        // Observed with the spec: untaggable objects (DNS records) are
        // found by the names the spec gives them.
        let observed = session.stack.aws.observe(&session.desired).await?;
        hubform_core::plan::plan(&desired, &observed).map_err(|errors| {
            CliError::Plan {
                file: session.loaded.file(),
                errors,
            }
        })?
    } else {
        let (plan, observed) =
            plan::observe_and_plan(session, &desired).await?;
        if let Some(saved) = saved {
            saved.check_now(&observed, &plan, workshop, region)?;
        }
        plan
    };
    if destroy && plan.is_empty() {
        outln!("No changes. No object of workshop {workshop} exists.");
        print_backups(session).await;
        return Ok(ExitCode::SUCCESS);
    }
    out!("{}", render::render(&plan));
    if plan.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    if !destroy {
        let refused = ("refusing to apply", "; nothing was changed");
        plan::show_lints(&session.loaded, refused.0, refused.1)?;
    }
    if !plan.blocked.is_empty() {
        let ids: Vec<String> =
            plan.blocked.iter().map(|n| n.id.to_string()).collect();
        return Err(CliError::Other(format!(
            "refusing to {verb}: creating {} would twin an object made \
             outside hubform (see the warnings above); nothing was changed",
            ids.join(", ")
        )));
    }

    let allowed = Allowed {
        replace: args.allow_replace,
        destroy: args.run.allow_destroy,
    };
    let held = guard::held(&plan, &session.desired, allowed);
    if !held.is_empty() {
        let messages: Vec<String> = held.iter().map(Held::message).collect();
        return Err(CliError::Other(format!(
            "refusing to {verb}; nothing was changed:\n  {}",
            messages.join("\n  ")
        )));
    }

    // A saved plan was reviewed when it was made: apply it without asking.
    // Without a terminal to ask on, the plan above is all this run does
    // (and with nothing to change it ended there, as a success).
    if saved.is_none() && !args.run.auto_approve {
        if !std::io::stdin().is_terminal() {
            return Err(CliError::Other(format!(
                "{verb} needs confirmation and there is no terminal to ask \
                 on; nothing was changed: run `hubform {verb}` in a terminal \
                 to review the plan and confirm, or pass --auto-approve"
            )));
        }
        if !confirm(verb, place)? {
            return Err(CliError::Other(format!("{verb} cancelled")));
        }
    }

    let report = apply::apply(&session.stack, &plan, &Stderr::open()).await;
    let (added, changed, destroyed) = report.counts();
    outln!();
    if report.failed() {
        outln!("Errors:");
        for (id, _, outcome) in &report.outcomes {
            match outcome {
                Outcome::Failed(msg) => outln!("  {id}: {msg}"),
                Outcome::Skipped(by) => {
                    outln!("  {id}: not attempted, it waits for {by}")
                }
                Outcome::Done(_) => {}
            }
        }
        outln!(
            "\n{verb} failed: {added} added, {changed} changed, \
             {destroyed} destroyed. Fix the errors above and run {verb} \
             again; it continues where this run stopped."
        );
        return Ok(ExitCode::from(1));
    }
    if !destroy && !verify(session).await {
        outln!(
            "\nApply finished: {added} added, {changed} changed, \
             {destroyed} destroyed, but the verification failed (above)."
        );
        return Ok(ExitCode::from(1));
    }
    let done = if destroy { "Destroy" } else { "Apply" };
    outln!(
        "{done} complete! Resources: {added} added, {changed} changed, \
         {destroyed} destroyed."
    );
    if destroy {
        print_backups(session).await;
    }
    Ok(ExitCode::SUCCESS)
}

/// Destroy keeps the workshop's backups: say which, and how to remove
/// them.
async fn print_backups(session: &session::Session) {
    let backups = match backup::list(&session.stack.aws).await {
        Ok(backups) => backups,
        Err(e) => {
            outln!("Cannot list the workshop's backups: {e}");
            return;
        }
    };
    if backups.is_empty() {
        return;
    }
    outln!(
        "\nKept {} backup(s) of workshop {} (AMIs, not destroyed):",
        backups.len(),
        session.desired.workshop
    );
    for b in &backups {
        outln!(
            "  {}  {}  server {}  {}",
            b.image_id,
            b.name,
            b.server,
            b.created
        );
    }
    outln!(
        "They cost storage until deregistered: `hubform backups SPEC \
         --prune N` keeps the newest N."
    );
}

fn confirm(verb: &str, place: &str) -> Result<bool, CliError> {
    out!(
        "\nDo you want to {verb} these changes ({place})?\n  Only 'yes' \
         will be accepted: "
    );
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::Other(format!("cannot read the answer: {e}")))?;
    Ok(answer.trim() == "yes")
}

/// Checks each server's hub after an apply; prints what it found.
async fn verify(session: &session::Session) -> bool {
    let stack = &session.stack;
    let results = stack.host.verify_all(&stack.aws, &session.desired).await;
    let mut ok = true;
    for (id, result) in results {
        match result {
            Ok(what) => outln!("{id}: verified: {what}"),
            Err(problem) => {
                ok = false;
                outln!("{id}: verification failed: {problem}");
            }
        }
    }
    ok
}
