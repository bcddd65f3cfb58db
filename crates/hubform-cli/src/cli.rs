//! The command line, as clap derives it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Turn a teaching JupyterHub on AWS into a file in git.
#[derive(Debug, Parser)]
#[command(name = "hubform", version, long_about = None)]
#[command(about = "Turn a teaching JupyterHub on AWS into a file in git")]
#[command(after_help = "Examples:
  hubform init workshop.yaml
  hubform validate specs/groundwater-workshop.yaml
  hubform plan specs/groundwater-workshop.yaml --profile work
  hubform apply specs/groundwater-workshop.yaml
  hubform output specs/groundwater-workshop.yaml
  hubform drift specs/ --json
  hubform plan specs/groundwater-workshop.yaml --out workshop.plan
  hubform apply --plan workshop.plan
  hubform backup specs/groundwater-workshop.yaml
  hubform destroy specs/groundwater-workshop.yaml --allow-destroy")]
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
    #[command(after_help = "Examples:
  hubform validate specs/groundwater-workshop.yaml
  hubform validate workshop.yaml && git commit workshop.yaml")]
    Validate(SpecArg),
    /// Show what apply would change.
    #[command(after_help = "Examples:
  hubform plan specs/groundwater-workshop.yaml --profile work
  hubform plan workshop.yaml --detailed-exitcode
  hubform plan workshop.yaml --lint=deny
  hubform plan workshop.yaml --json > plan.json
  hubform plan workshop.yaml --out workshop.plan")]
    Plan(PlanArgs),
    /// Make AWS match the spec.
    #[command(after_help = "Examples:
  hubform apply specs/groundwater-workshop.yaml --profile work
  hubform apply workshop.yaml --auto-approve
  hubform apply --plan workshop.plan
  hubform apply workshop.yaml --ssh-endpoint 127.0.0.1:2222")]
    Apply(ApplyArgs),
    /// Delete everything the spec's workshop owns in AWS (backups stay).
    #[command(after_help = "Examples:
  hubform destroy workshop.yaml --allow-destroy
  hubform destroy workshop.yaml --allow-destroy --no-backup --auto-approve")]
    Destroy(DestroyArgs),
    /// Report where AWS and the hosts moved away from specs (nightly CI).
    #[command(after_help = "Examples:
  hubform drift specs/groundwater-workshop.yaml
  hubform drift specs/ --json
  hubform drift specs/ --profile drift-reader")]
    Drift(DriftArgs),
    /// Print the instance id, the Elastic IP and the ssh command.
    #[command(after_help = "Examples:
  hubform output specs/groundwater-workshop.yaml
  hubform output workshop.yaml --profile work")]
    Output(AwsArgs),
    /// Take an AMI backup of the workshop's servers now.
    #[command(after_help = "Examples:
  hubform backup specs/groundwater-workshop.yaml
  hubform backup workshop.yaml --server hub")]
    Backup(BackupArgs),
    /// List the workshop's AMI backups; --prune N keeps the newest N.
    #[command(after_help = "Examples:
  hubform backups specs/groundwater-workshop.yaml
  hubform backups workshop.yaml --prune 3")]
    Backups(BackupsArgs),
    /// Show the servers' state, disk, memory, services and hub logs.
    #[command(after_help = "Examples:
  hubform status specs/groundwater-workshop.yaml
  hubform status workshop.yaml --profile work")]
    Status(AwsArgs),
    /// Adopt an object made outside hubform (tag it as the spec's KIND.KEY).
    #[command(after_help = "Examples:
  hubform import workshop.yaml security_group.workshop-sg sg-0123456789abcdef0
  hubform import workshop.yaml key_pair.workshop-central-asia workshop-central-asia
  hubform import workshop.yaml instance.hub i-0123456789abcdef0
  hubform import workshop.yaml iam_user.ec2-admin ec2-admin")]
    Import(ImportArgs),
    /// Print the JSON Schema of specs.
    #[command(after_help = "Examples:
  hubform schema > schema/hubform.schema.json")]
    Schema,
    /// Write a commented starter spec (asks, or --yes for defaults).
    #[command(after_help = "Examples:
  hubform init
  hubform init python-intro.yaml --yes
  hubform init workshop.yaml --workshop python-intro --region eu-central-1 --users 25
  hubform init workshop.yaml --yes --domain jupyter.example.edu --ssh-from 198.51.100.4
  hubform init workshop.yaml --force")]
    Init(InitArgs),
    /// Check credentials, Region, VPC, quotas, SSH and DNS, with fixes.
    #[command(after_help = "Examples:
  hubform doctor
  hubform doctor --profile work --region ap-south-1
  hubform doctor specs/groundwater-workshop.yaml")]
    Doctor(DoctorArgs),
    /// Print a shell completion script (bash, zsh or fish).
    #[command(after_help = "Examples:
  hubform completions bash > ~/.local/share/bash-completion/completions/hubform
  hubform completions zsh > ~/.zfunc/_hubform
  hubform completions fish > ~/.config/fish/completions/hubform.fish")]
    Completions(CompletionsArgs),
    /// Write the manual pages (hubform.1 and one per command) into DIR.
    #[command(hide = true)]
    Man(ManArgs),
}

/// Options of init.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write the spec.
    #[arg(default_value = "workshop.yaml")]
    pub spec: PathBuf,

    /// Ask nothing: take the defaults (and any answer given as a flag).
    #[arg(long)]
    pub yes: bool,

    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,

    /// The workshop's name (lowercase letters, digits and '-').
    #[arg(long, value_name = "NAME")]
    pub workshop: Option<String>,

    /// The AWS Region, for example eu-central-1.
    #[arg(long)]
    pub region: Option<String>,

    /// How many participants to expect; picks the instance type.
    #[arg(long, value_name = "N")]
    pub users: Option<String>,

    /// The DNS name participants open, for example jupyter.example.org.
    #[arg(long, value_name = "NAME")]
    pub domain: Option<String>,

    /// The JupyterHub admin's user name.
    #[arg(long, value_name = "NAME")]
    pub admin: Option<String>,

    /// The contact address for Let's Encrypt.
    #[arg(long, value_name = "ADDRESS")]
    pub email: Option<String>,

    /// Your public address (or CIDR block) that may SSH to the server.
    #[arg(long, value_name = "CIDR")]
    pub ssh_from: Option<String>,

    /// The `$schema` of the editor comment (a URL or a path); by default
    /// hubform.schema.json is written beside the spec and named.
    #[arg(long, value_name = "URL|PATH")]
    pub schema: Option<String>,
}

/// Options of doctor.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// A workshop spec: also check its Region, SSH and DNS.
    pub spec: Option<PathBuf>,

    #[command(flatten)]
    pub connection: Connection,

    /// The Region to check when no spec is given.
    #[arg(long)]
    pub region: Option<String>,

    /// SSH to HOST:PORT instead of the server's address.
    #[arg(long, value_name = "HOST:PORT", env = "HUBFORM_SSH_ENDPOINT")]
    pub ssh_endpoint: Option<String>,
}

/// Options of completions.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_parser = ["bash", "zsh", "fish"])]
    pub shell: String,
}

/// Options of man.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// The folder to write the pages into, for example docs/man.
    pub dir: PathBuf,
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
    #[arg(long, value_name = "HOST:PORT", env = "HUBFORM_SSH_ENDPOINT")]
    pub ssh_endpoint: Option<String>,
}

/// How to reach AWS, without a spec (the spec comes from elsewhere).
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// A named profile of your AWS config (else AWS_PROFILE or default).
    #[arg(long)]
    pub profile: Option<String>,

    /// Send every AWS request to this endpoint (a local stand-in).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
}

/// Options of plan.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub aws: AwsArgs,

    /// Exit 2 when there are changes, 0 when there are none, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,

    /// Print the plan as JSON (format in docs/json-formats.md).
    #[arg(long)]
    pub json: bool,

    /// Save the plan to FILE for `hubform apply --plan FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// `deny` makes lint warnings errors (exit 1).
    #[arg(long, value_name = "LEVEL", default_value = "warn", value_parser = ["warn", "deny"])]
    pub lint: String,

    /// A price table to use instead of the built-in one.
    #[arg(long, value_name = "FILE", env = "HUBFORM_PRICES")]
    pub prices: Option<PathBuf>,
}

/// Options of apply.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The workshop spec (YAML); not given with --plan.
    #[arg(required_unless_present = "plan")]
    pub spec: Option<PathBuf>,

    /// Apply exactly this saved plan (`hubform plan --out FILE`).
    #[arg(long, value_name = "FILE", conflicts_with = "spec")]
    pub plan: Option<PathBuf>,

    #[command(flatten)]
    pub run: RunArgs,

    /// Allow replacing a protected instance or volume.
    #[arg(long)]
    pub allow_replace: bool,
}

/// Options of destroy: those of apply without a saved plan or replacing.
#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// The workshop spec (YAML).
    pub spec: PathBuf,

    #[command(flatten)]
    pub run: RunArgs,
}

/// What apply and destroy share: how to reach AWS and the server, and
/// what they may do without asking.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub connection: Connection,

    /// The spec's Region, as a check: a different one is an error.
    #[arg(long)]
    pub region: Option<String>,

    /// SSH to HOST:PORT instead of the server's address.
    #[arg(long, value_name = "HOST:PORT", env = "HUBFORM_SSH_ENDPOINT")]
    pub ssh_endpoint: Option<String>,

    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,

    /// Allow deleting a protected instance or volume.
    #[arg(long)]
    pub allow_destroy: bool,

    /// Do not take an AMI backup of an instance before it is deleted (or
    /// replaced).
    #[arg(long)]
    pub no_backup: bool,
}

impl DestroyArgs {
    /// The same options in apply's terms, which destroy runs through.
    pub fn as_apply(&self) -> ApplyArgs {
        ApplyArgs {
            spec: Some(self.spec.clone()),
            plan: None,
            run: self.run.clone(),
            allow_replace: false,
        }
    }
}

/// Options of drift.
#[derive(Debug, Args)]
pub struct DriftArgs {
    /// Spec files, or folders whose *.yaml and *.yml files are specs.
    #[arg(required = true, value_name = "SPEC|DIR")]
    pub paths: Vec<PathBuf>,

    /// Print the report as JSON (format in docs/json-formats.md).
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub connection: Connection,
}

/// Options of backup.
#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub aws: AwsArgs,

    /// Back up only this server (its key in `servers`).
    #[arg(long, value_name = "KEY")]
    pub server: Option<String>,
}

/// Options of backups.
#[derive(Debug, Args)]
pub struct BackupsArgs {
    #[command(flatten)]
    pub aws: AwsArgs,

    /// Delete all but the newest N backups of each server (and their
    /// snapshots).
    #[arg(long, value_name = "N")]
    pub prune: Option<usize>,
}

/// Options of import.
#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub aws: AwsArgs,

    /// The spec's resource, for example `security_group.workshop-sg`.
    #[arg(value_name = "KIND.KEY")]
    pub resource: String,

    /// The AWS id of the object to adopt, for example `sg-0123…`.
    #[arg(value_name = "AWS_ID")]
    pub aws_id: String,
}

impl ApplyArgs {
    /// The AWS options of this command for `spec`.
    pub fn aws_args(&self, spec: PathBuf) -> AwsArgs {
        AwsArgs {
            spec,
            profile: self.run.connection.profile.clone(),
            region: self.run.region.clone(),
            endpoint_url: self.run.connection.endpoint_url.clone(),
            ssh_endpoint: self.run.ssh_endpoint.clone(),
        }
    }
}
