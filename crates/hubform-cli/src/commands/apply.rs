//! `hubform apply SPEC` and `hubform destroy SPEC`.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use hubform_core::apply::{self, Outcome};
use hubform_core::graph::Desired;
use hubform_core::plan::render;
use hubform_core::provider::Provider;

use crate::cli::ApplyArgs;
use crate::commands::{plan, CliError};
use crate::session::{self, Stderr};

pub async fn run(
    args: &ApplyArgs,
    destroy: bool,
) -> Result<ExitCode, CliError> {
    let verb = if destroy { "destroy" } else { "apply" };
    let interactive = std::io::stdin().is_terminal();
    if !args.auto_approve && !interactive {
        return Err(CliError::Other(format!(
            "{verb} needs confirmation and there is no terminal to ask \
             on; run `hubform {verb}` in a terminal to review the plan and \
             confirm, or pass --auto-approve"
        )));
    }

    let Some(spec) = args.spec.clone() else {
        return Err(CliError::Other(
            "`apply --plan` is not built yet".to_owned(),
        ));
    };
    let session = session::open(&args.aws_args(spec)).await?;
    let (account, arn) = session.stack.aws.identity().await?;
    let place = format!(
        "workshop {} in {}, account {account}",
        session.desired.workshop, session.desired.region
    );
    eprintln!("hubform: {place}, as {arn}");
    let lock = crate::lock::hold(&session, verb).await?;
    let result = act(args, destroy, &session, &place).await;
    lock.release().await;
    result
}

async fn act(
    args: &ApplyArgs,
    destroy: bool,
    session: &session::Session,
    place: &str,
) -> Result<ExitCode, CliError> {
    let verb = if destroy { "destroy" } else { "apply" };

    let desired = if destroy {
        Desired::empty(
            session.desired.workshop.clone(),
            session.desired.region.clone(),
        )
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
        plan::make(session, &desired).await?
    };
    if destroy && plan.is_empty() {
        println!(
            "No changes. No object of workshop {} exists.",
            desired.workshop
        );
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", render::render(&plan));
    if plan.is_empty() {
        return Ok(ExitCode::SUCCESS);
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

    if !args.auto_approve && !confirm(verb, place)? {
        return Err(CliError::Other(format!("{verb} cancelled")));
    }

    let report = apply::apply(&session.stack, &plan, &Stderr).await;
    let (added, changed, destroyed) = report.counts();
    println!();
    if report.failed() {
        println!("Errors:");
        for (id, _, outcome) in &report.outcomes {
            match outcome {
                Outcome::Failed(msg) => println!("  {id}: {msg}"),
                Outcome::Skipped(by) => {
                    println!("  {id}: not attempted, it waits for {by}")
                }
                Outcome::Done(_) => {}
            }
        }
        println!(
            "\n{verb} failed: {added} added, {changed} changed, \
             {destroyed} destroyed. Fix the errors above and run {verb} \
             again; it continues where this run stopped."
        );
        return Ok(ExitCode::from(1));
    }
    if !destroy && !verify(session).await {
        println!(
            "\nApply finished: {added} added, {changed} changed, \
             {destroyed} destroyed, but the verification failed (above)."
        );
        return Ok(ExitCode::from(1));
    }
    let done = if destroy { "Destroy" } else { "Apply" };
    println!(
        "{done} complete! Resources: {added} added, {changed} changed, \
         {destroyed} destroyed."
    );
    Ok(ExitCode::SUCCESS)
}

fn confirm(verb: &str, place: &str) -> Result<bool, CliError> {
    print!(
        "\nDo you want to {verb} these changes ({place})?\n  Only 'yes' \
         will be accepted: "
    );
    let _ = std::io::stdout().flush();
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
            Ok(what) => println!("{id}: verified: {what}"),
            Err(problem) => {
                ok = false;
                println!("{id}: verification failed: {problem}");
            }
        }
    }
    ok
}
