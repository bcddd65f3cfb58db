//! `hubform drift [SPEC|DIR]…`: where AWS and the hosts moved away from
//! many specs at once, for nightly CI.
//!
//! Drift is exactly what apply would change: each workshop is observed as
//! `plan` observes it and planned by the same pure planner. Workshops are
//! checked together: the specs of one Region share one connection and one
//! describe call per kind ([`hubform_aws::fleet`]), their hosts are probed
//! in parallel, and Regions run side by side. One workshop's failure
//! leaves the others' results standing. Exit 0: all in sync; 2: some
//! drift; 1: any error.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use futures::future::join_all;
use hubform_aws::{fleet, Aws, Options, Settings};
use hubform_core::graph::Desired;
use hubform_core::plan::{self, Plan};
use hubform_core::spec::Loaded;
use hubform_host::provider::{Host, HostSettings};
use hubform_host::waits::Resolver;

use crate::cli::DriftArgs;
use crate::commands::CliError;
use crate::session;
use crate::stack::Stack;

mod report;

use report::{Outcome, Report};

pub async fn run(args: &DriftArgs) -> Result<ExitCode, CliError> {
    let loopback_only = hubform_aws::connect::loopback_only_from_env()?;
    let (specs, mut reports) = load_all(&spec_files(&args.paths));

    let mut regions: BTreeMap<String, Vec<Spec>> = BTreeMap::new();
    for spec in specs {
        regions
            .entry(spec.desired.region.clone())
            .or_default()
            .push(spec);
    }
    // Specs that did not load already have their report; the summary
    // counts them too.
    let unloadable = match reports.len() {
        0 => String::new(),
        n => format!(", and {n} spec(s) that do not load"),
    };
    eprintln!(
        "hubform: drift of {} workshop(s) in {} Region(s){unloadable}",
        regions.values().map(Vec::len).sum::<usize>(),
        regions.len()
    );
    let checks = regions.into_iter().map(|(region, specs)| {
        check_region(args, region, specs, loopback_only)
    });
    reports.extend(join_all(checks).await.into_iter().flatten());
    reports.sort_by_key(|r| r.order);

    for r in &reports {
        if let Outcome::Failed(message) = &r.outcome {
            eprintln!("error: {}: {message}", r.spec);
        }
    }
    if args.json {
        outln!("{}", report::json(&reports));
    } else {
        out!("{}", report::text(&reports));
    }
    Ok(ExitCode::from(report::exit_code(&reports)))
}

/// A spec that loaded, with its place among the arguments.
struct Spec {
    order: usize,
    loaded: Loaded,
    desired: Desired,
}

/// The spec files the arguments name, in order, each once: a file as
/// given, a folder's `*.yaml` and `*.yml` files sorted by name (not its
/// subfolders). A path that names neither is an error in its place.
fn spec_files(paths: &[PathBuf]) -> Vec<Result<PathBuf, (String, String)>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for path in paths {
        let files = if path.is_dir() {
            folder_specs(path)
        } else if path.exists() {
            Ok(vec![path.clone()])
        } else {
            Err("no such spec file or folder".to_owned())
        };
        match files {
            Ok(files) => {
                let canonical = |f: &PathBuf| f.canonicalize().ok();
                out.extend(
                    files
                        .into_iter()
                        .filter(|f| {
                            seen.insert(canonical(f).unwrap_or(f.clone()))
                        })
                        .map(Ok),
                );
            }
            Err(e) => out.push(Err((path.display().to_string(), e))),
        }
    }
    out
}

/// The `*.yaml` and `*.yml` files directly in `dir`, sorted by name.
fn folder_specs(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read the folder: {e}"))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(
            "no *.yaml or *.yml spec in this folder (subfolders are not \
             searched: name them too)"
                .to_owned(),
        );
    }
    Ok(files)
}

/// Loads every spec offline. A spec that does not load, or that names a
/// workshop an earlier spec named, is reported as failed.
fn load_all(
    files: &[Result<PathBuf, (String, String)>],
) -> (Vec<Spec>, Vec<Report>) {
    let mut specs = Vec::new();
    let mut failed = Vec::new();
    let mut workshops: BTreeMap<String, String> = BTreeMap::new();
    for (order, file) in files.iter().enumerate() {
        let path = match file {
            Ok(path) => path,
            Err((path, message)) => {
                failed.push(Report::failed(order, path, message));
                continue;
            }
        };
        let (loaded, desired) = match session::load(path, None) {
            Ok(found) => found,
            Err(e) => {
                let spec = path.display().to_string();
                failed.push(Report::failed(order, &spec, &e.to_string()));
                continue;
            }
        };
        if let Some(first) = workshops.get(&desired.workshop) {
            let message = format!(
                "workshop {} is also the workshop of {first}; each workshop \
                 needs its own name (it is written into tags and IAM paths)",
                desired.workshop
            );
            let spec = Spec {
                order,
                loaded,
                desired,
            };
            failed.push(Report::failed_spec(&spec, &message));
            continue;
        }
        workshops.insert(desired.workshop.clone(), loaded.file());
        specs.push(Spec {
            order,
            loaded,
            desired,
        });
    }
    (specs, failed)
}

/// Checks the workshops of one Region: one connection, one batched
/// discovery, then each workshop's host probe and plan in parallel.
async fn check_region(
    args: &DriftArgs,
    region: String,
    specs: Vec<Spec>,
    loopback_only: bool,
) -> Vec<Report> {
    let Some(first) = specs.first() else {
        return Vec::new();
    };
    let options = Options {
        profile: args.connection.profile.clone(),
        endpoint_url: args.connection.endpoint_url.clone(),
        region,
        loopback_only,
    };
    let settings = Settings::from_env();
    let connected = Aws::connect(
        &options,
        settings,
        &first.desired.workshop,
        &first.loaded.dir,
    )
    .await;
    let aws = match connected {
        Ok(aws) => aws,
        Err(e) => {
            let message = e.to_string();
            return specs
                .iter()
                .map(|s| Report::failed_spec(s, &message))
                .collect();
        }
    };

    let stacks: Vec<Stack> = specs
        .iter()
        .map(|s| stack(&aws, s, loopback_only))
        .collect();
    let members: Vec<(&Aws, &Desired)> =
        stacks.iter().map(|s| (&s.aws, &s.desired)).collect();
    let observed = fleet::observe(&members).await;

    let plans = stacks.iter().zip(&specs).zip(observed).map(
        |((stack, spec), observed)| async move {
            let outcome = match drift_of(stack, spec, observed).await {
                Ok(plan) => Outcome::Checked(plan),
                Err(e) => Outcome::Failed(e.to_string()),
            };
            Report::new(spec, outcome)
        },
    );
    join_all(plans).await
}

/// The providers of one workshop on the Region's shared connection. No
/// `--ssh-endpoint` here: each server is reached at its own address or
/// its spec's `tljh.ssh_endpoint`.
fn stack(aws: &Aws, spec: &Spec, loopback_only: bool) -> Stack {
    let dir = &spec.loaded.dir;
    Stack {
        aws: aws.for_workshop(&spec.desired.workshop, dir),
        host: Host::new(
            dir.clone(),
            None,
            HostSettings::from_env(loopback_only),
        ),
        desired: spec.desired.clone(),
        resolver: Resolver::from_env(loopback_only),
    }
}

/// What apply would change in one workshop, from its share of the fleet's
/// discovery, completed by its hosts.
async fn drift_of(
    stack: &Stack,
    spec: &Spec,
    observed: Result<
        hubform_core::model::Observed,
        hubform_core::provider::Failure,
    >,
) -> Result<Plan, CliError> {
    let observed = stack.complete(&stack.desired, observed?).await?;
    plan::plan(&stack.desired, &observed).map_err(|errors| CliError::Plan {
        file: spec.loaded.file(),
        errors,
    })
}
