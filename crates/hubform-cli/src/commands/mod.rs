//! One module per command; each parses nothing and calls the engine.

use std::process::ExitCode;

use hubform_core::plan::PlanError;

use crate::cli::Command;

mod apply;
mod backup;
mod completions;
mod doctor;
mod drift;
mod import;
mod init;
mod man;
mod output;
mod plan;
mod status;
mod validate;

/// Why a command failed; the binary prints it once and exits 1.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The spec is invalid.
    #[error("{0}")]
    Spec(#[from] hubform_core::spec::SpecError),
    /// The spec's graph is invalid.
    #[error("{0}")]
    Graph(String),
    /// AWS could not be set up.
    #[error("{0}")]
    Aws(#[from] hubform_aws::AwsError),
    /// Discovery or an AWS call outside a change failed.
    #[error("{0}")]
    Provider(#[from] hubform_core::provider::Failure),
    /// The plan cannot be made.
    #[error("{}", plan_errors(.file, .errors))]
    Plan {
        /// The spec file.
        file: String,
        /// What cannot be planned.
        errors: Vec<PlanError>,
    },
    /// Anything else, already phrased.
    #[error("{0}")]
    Other(String),
}

fn plan_errors(file: &str, errors: &[PlanError]) -> String {
    errors
        .iter()
        .map(|e| format!("{file}:{e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs one command.
pub async fn run(command: Command) -> Result<ExitCode, CliError> {
    match command {
        Command::Validate(args) => validate::run(&args),
        Command::Plan(args) => plan::run(&args).await,
        Command::Apply(args) => apply::run(&args, false).await,
        Command::Destroy(args) => apply::run(&args.as_apply(), true).await,
        Command::Drift(args) => drift::run(&args).await,
        Command::Output(args) => output::run(&args).await,
        Command::Backup(args) => backup::run(&args).await,
        Command::Backups(args) => backup::list(&args).await,
        Command::Status(args) => status::run(&args).await,
        Command::Import(args) => import::run(&args).await,
        Command::Init(args) => init::run(&args),
        Command::Doctor(args) => doctor::run(&args).await,
        Command::Completions(args) => completions::run(&args),
        Command::Man(args) => man::run(&args),
        Command::Schema => {
            out!("{}", hubform_core::spec::json_schema());
            Ok(ExitCode::SUCCESS)
        }
    }
}
