//! Saved plans: `hubform plan --out FILE` writes one, `hubform apply
//! --plan FILE` applies exactly it, and refuses when the spec or the live
//! state it was made from has moved since.
//!
//! A saved plan is JSON: the spec's path and digest, the connection it
//! was made with, a digest of every live object it saw, and the plan in
//! the `plan --json` format. It holds no secret.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hubform_core::model::Observed;
use hubform_core::plan::json::{fingerprint, hex, moved, plan_json};
use hubform_core::plan::Plan;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cli::AwsArgs;
use crate::commands::CliError;

/// What marks a file as a hubform saved plan.
const KIND: &str = "hubform saved plan";
/// The version of the saved-plan format.
const VERSION: u32 = 1;

/// A plan saved to apply later.
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedPlan {
    /// Always [`KIND`].
    pub kind: String,
    /// The format's version.
    pub format_version: u32,
    /// The hubform that made it.
    pub hubform_version: String,
    /// The spec, as an absolute path.
    pub spec: PathBuf,
    /// SHA-256 of the spec file's bytes.
    pub spec_sha256: String,
    /// The connection the plan was made with.
    pub profile: Option<String>,
    /// The endpoint the plan was made against.
    pub endpoint_url: Option<String>,
    /// The SSH endpoint the plan was made with.
    pub ssh_endpoint: Option<String>,
    /// A digest per live object the plan was made from.
    pub observed: BTreeMap<String, String>,
    /// The plan, as `plan --json` prints it.
    pub plan: serde_json::Value,
}

impl SavedPlan {
    /// A saved plan of `plan`, made from `observed` with `args`.
    pub fn new(
        args: &AwsArgs,
        workshop: &str,
        region: &str,
        plan: &Plan,
        observed: &Observed,
    ) -> Result<SavedPlan, CliError> {
        let spec = std::path::absolute(&args.spec).map_err(|e| {
            CliError::Other(format!("{}: {e}", args.spec.display()))
        })?;
        Ok(SavedPlan {
            kind: KIND.to_owned(),
            format_version: VERSION,
            hubform_version: env!("CARGO_PKG_VERSION").to_owned(),
            spec_sha256: digest_of(&spec)?,
            spec,
            profile: args.profile.clone(),
            endpoint_url: args.endpoint_url.clone(),
            ssh_endpoint: args.ssh_endpoint.clone(),
            observed: fingerprint(observed),
            plan: plan_json(plan, workshop, region),
        })
    }

    /// Writes the plan to `path` (whole or not at all).
    pub fn write(&self, path: &Path) -> Result<(), CliError> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| CliError::Other(format!("cannot encode: {e}")))?;
        let name = path.file_name().map_or_else(
            || "plan".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
        let tmp = path.with_file_name(format!(".{name}.tmp"));
        std::fs::write(&tmp, text + "\n")
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| {
                CliError::Other(format!(
                    "cannot write the plan to {}: {e}",
                    path.display()
                ))
            })
    }

    /// Reads a saved plan, checking that it is one this hubform applies.
    pub fn read(path: &Path) -> Result<SavedPlan, CliError> {
        let file = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| {
            let why = match e.kind() {
                std::io::ErrorKind::NotFound => "no such file".to_owned(),
                _ => e.to_string(),
            };
            CliError::Other(format!(
                "{file}: cannot read the saved plan: {why}; save one with \
                 `hubform plan SPEC --out {file}`, or apply the spec \
                 itself with `hubform apply SPEC`"
            ))
        })?;
        let not_a_plan = || {
            CliError::Other(format!(
                "{file} is not a plan saved by `hubform plan --out`; give \
                 `--plan` a file written by `hubform plan SPEC --out FILE`, \
                 or apply a spec with `hubform apply SPEC`"
            ))
        };
        let saved: SavedPlan =
            serde_json::from_str(&text).map_err(|_| not_a_plan())?;
        if saved.kind != KIND {
            return Err(not_a_plan());
        }
        if saved.format_version != VERSION {
            return Err(CliError::Other(format!(
                "{file} is a saved plan of format {} (hubform {}); this \
                 hubform applies format {VERSION}: run `hubform plan --out` \
                 again",
                saved.format_version, saved.hubform_version
            )));
        }
        Ok(saved)
    }

    /// The AWS options of the plan, with any given on the command line
    /// taking their place.
    pub fn aws_args(&self, given: AwsArgs) -> AwsArgs {
        AwsArgs {
            spec: self.spec.clone(),
            profile: given.profile.or_else(|| self.profile.clone()),
            region: given.region,
            endpoint_url: given
                .endpoint_url
                .or_else(|| self.endpoint_url.clone()),
            ssh_endpoint: given
                .ssh_endpoint
                .or_else(|| self.ssh_endpoint.clone()),
        }
    }

    /// Refuses when the spec file changed since the plan was made.
    pub fn check_spec(&self) -> Result<(), CliError> {
        if digest_of(&self.spec)? == self.spec_sha256 {
            return Ok(());
        }
        Err(CliError::Other(format!(
            "{} changed since this plan was made; nothing was changed. Run \
             `hubform plan --out` again and review the new plan",
            self.spec.display()
        )))
    }

    /// Refuses when the live state moved since the plan was made, or the
    /// same spec and state would now plan something else.
    pub fn check_now(
        &self,
        observed: &Observed,
        plan: &Plan,
        workshop: &str,
        region: &str,
    ) -> Result<(), CliError> {
        let moved = moved(&self.observed, &fingerprint(observed));
        if !moved.is_empty() {
            return Err(CliError::Other(format!(
                "the live state moved since this plan was made ({} changed, \
                 appeared or went); nothing was changed. Run `hubform plan \
                 --out` again and review the new plan",
                moved.join(", ")
            )));
        }
        if plan_json(plan, workshop, region) != self.plan {
            return Err(CliError::Other(
                "the same spec and live state now plan other changes (a \
                 wait ended or a lookalike appeared); nothing was changed. \
                 Run `hubform plan --out` again and review the new plan"
                    .to_owned(),
            ));
        }
        Ok(())
    }
}

/// SHA-256 of a file, in hex.
fn digest_of(path: &Path) -> Result<String, CliError> {
    let bytes = std::fs::read(path).map_err(|e| {
        CliError::Other(format!(
            "{}: cannot read the spec the plan was made from: {e}; nothing \
             was changed. Put the spec back, or run `hubform plan --out` \
             again",
            path.display()
        ))
    })?;
    Ok(hex(&Sha256::digest(&bytes)))
}
