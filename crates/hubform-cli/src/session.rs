//! What every AWS command does first: load the spec, check the Region,
//! connect (loopback guard, credentials), build the graph.

use hubform_aws::{Aws, Options, Settings};
use hubform_core::graph::Desired;
use hubform_core::spec::{self, Loaded};
use hubform_host::provider::{Host, HostSettings};
use hubform_host::waits::Resolver;

use crate::cli::AwsArgs;
use crate::commands::CliError;
use crate::stack::Stack;

/// A loaded spec, its graph and the connected providers.
pub struct Session {
    /// The spec.
    pub loaded: Loaded,
    /// Its graph.
    pub desired: Desired,
    /// AWS and the host layer.
    pub stack: Stack,
}

/// Loads and checks the spec, offline.
pub fn load(
    path: &std::path::Path,
    region: Option<&str>,
) -> Result<(Loaded, Desired), CliError> {
    let loaded = spec::load(path)?;
    loaded.check_region(region)?;
    let desired = Desired::from_spec(&loaded.spec).map_err(|errors| {
        CliError::Graph(
            errors
                .iter()
                .map(|e| format!("{}: {e}", loaded.file()))
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    Ok((loaded, desired))
}

/// Loads the spec and connects to AWS.
pub async fn open(args: &AwsArgs) -> Result<Session, CliError> {
    let (loaded, desired) = load(&args.spec, args.region.as_deref())?;
    let options = Options {
        profile: args.profile.clone(),
        endpoint_url: args.endpoint_url.clone(),
        region: desired.region.clone(),
        loopback_only: hubform_aws::connect::loopback_only_from_env()?,
    };
    let aws = Aws::connect(
        &options,
        Settings::from_env(),
        &desired.workshop,
        &loaded.dir,
    )
    .await?;
    let host = Host::new(
        loaded.dir.clone(),
        args.ssh_endpoint.clone(),
        HostSettings::from_env(options.loopback_only),
    );
    let stack = Stack {
        aws,
        host,
        desired: desired.clone(),
        resolver: Resolver::from_env(options.loopback_only),
    };
    Ok(Session {
        loaded,
        desired,
        stack,
    })
}

/// Progress on stderr: live lines on a terminal, plain lines elsewhere.
pub use crate::progress::Stderr;
