//! `hubform import SPEC KIND.KEY AWS_ID`: adopt an object made outside
//! hubform (by hand, or by the manual's AWS CLI script) as the spec's
//! resource, so that the next plan manages it instead of refusing to
//! create its twin.

use std::process::ExitCode;

use hubform_aws::import::{self, Imported};

use crate::cli::ImportArgs;
use crate::commands::CliError;
use crate::session;

pub async fn run(args: &ImportArgs) -> Result<ExitCode, CliError> {
    // A mistyped id is found offline, before any AWS request.
    let (_, desired) =
        session::load(&args.aws.spec, args.aws.region.as_deref())?;
    let id = import::resource(&desired, &args.resource).map_err(|mut e| {
        e.message = format!("{}: {}", args.aws.spec.display(), e.message);
        e
    })?;

    let session = session::open(&args.aws).await?;
    let (account, arn) = session.stack.aws.identity().await?;
    eprintln!(
        "hubform: workshop {} in {}, account {account}, as {arn}",
        session.desired.workshop, session.desired.region
    );
    // An apply running meanwhile could act on the object half-imported.
    let lock = crate::lock::hold(&session, "import").await?;
    let result = session
        .stack
        .aws
        .import(&session.desired, &id, &args.aws_id)
        .await;
    lock.release().await;
    let imported = result?;

    let spec = args.aws.spec.display().to_string();
    out!("{}", report(&id.to_string(), &spec, &imported));
    Ok(ExitCode::SUCCESS)
}

/// What was imported and what to do next, as printed.
fn report(id: &str, spec: &str, imported: &Imported) -> String {
    let mut out = String::new();
    if imported.marks.is_empty() {
        out.push_str(&format!(
            "{id} is already {}; nothing to do.\n",
            imported.object
        ));
    } else {
        out.push_str(&format!("Imported {} as {id}:\n", imported.object));
        for mark in &imported.marks {
            out.push_str(&format!("  + {mark}\n"));
        }
    }
    for note in &imported.notes {
        out.push_str(&format!("Note: {note}\n"));
    }
    if !imported.next.is_empty() {
        out.push_str("Not imported yet, and belonging with it:\n");
        for (next, aws_id) in &imported.next {
            out.push_str(&format!("  hubform import {spec} {next} {aws_id}\n"));
        }
    }
    out.push_str(&format!(
        "Run `hubform plan {spec}` to see how it differs from the spec.\n"
    ));
    out
}

#[cfg(test)]
mod tests {
    use hubform_core::model::{Kind, ResourceId};

    use super::*;

    #[test]
    fn the_report_names_tags_notes_and_next_imports() {
        let imported = Imported {
            object: "instance hub (i-1)".into(),
            marks: vec!["hubform:workshop=w".into()],
            notes: vec!["a note".into()],
            next: vec![(ResourceId::new(Kind::Volume, "hub"), "vol-1".into())],
        };
        let text = report("instance.hub", "w.yaml", &imported);
        assert!(text.contains("Imported instance hub (i-1) as instance.hub:"));
        assert!(text.contains("  + hubform:workshop=w\n"));
        assert!(text.contains("Note: a note\n"));
        assert!(text.contains("  hubform import w.yaml volume.hub vol-1\n"));
        assert!(text.contains("`hubform plan w.yaml`"));
    }

    #[test]
    fn an_object_already_imported_changes_nothing() {
        let imported = Imported {
            object: "security group sg (sg-1)".into(),
            marks: Vec::new(),
            notes: Vec::new(),
            next: Vec::new(),
        };
        let text = report("security_group.sg", "w.yaml", &imported);
        assert!(text.starts_with("security_group.sg is already security"));
    }
}
