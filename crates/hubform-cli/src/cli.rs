//! The command line, as clap derives it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Turn a teaching JupyterHub on AWS into a file in git.
#[derive(Debug, Parser)]
#[command(name = "hubform", version, long_about = None)]
#[command(about = "Turn a teaching JupyterHub on AWS into a file in git")]
#[command(after_help = "Examples:
  hubform validate specs/groundwater-workshop.yaml
  hubform plan specs/groundwater-workshop.yaml --profile work
  hubform apply specs/groundwater-workshop.yaml
  hubform output specs/groundwater-workshop.yaml
  hubform destroy specs/groundwater-workshop.yaml")]
pub struct Cli {
    /// More output on stderr: -v info, -vv debug, -vvv trace.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a spec without contacting AWS.
    Validate(SpecArg),
    /// Show what apply would change.
    Plan(PlanArgs),
    /// Make AWS match the spec.
    Apply(ApplyArgs),
    /// Delete everything the spec's workshop owns in AWS.
    Destroy(ApplyArgs),
    /// Print the instance id, the Elastic IP and the ssh command.
    Output(AwsArgs),
    /// Print the JSON Schema of specs.
    Schema,
}

/// A spec file.
#[derive(Debug, Args)]
pub struct SpecArg {
    /// The workshop spec (YAML).
    pub spec: PathBuf,
}

/// How to reach AWS.
#[derive(Debug, Args)]
pub struct AwsArgs {
    /// The workshop spec (YAML).
    pub spec: PathBuf,

    /// A named profile of your AWS config (else AWS_PROFILE or default).
    #[arg(long)]
    pub profile: Option<String>,

    /// The spec's Region, as a check: a different one is an error.
    #[arg(long)]
    pub region: Option<String>,

    /// Send every AWS request to this endpoint (a local stand-in).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,

    /// SSH to HOST:PORT instead of the server's address (a jump host's
    /// forward, a test host).
    #[arg(long, value_name = "HOST:PORT")]
    pub ssh_endpoint: Option<String>,
}

/// Options of plan.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub aws: AwsArgs,

    /// Exit 2 when there are changes, 0 when there are none, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
}

/// Options of apply and destroy.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub aws: AwsArgs,

    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
}
