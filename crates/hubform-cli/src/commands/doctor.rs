//! `hubform doctor [SPEC]`: checks what a workshop needs before `plan`
//! and `apply` run into it, one line each (ok, warn, fail, skip) with
//! what to do next: the credentials and whose they are, the Region, its
//! default VPC, the Elastic IP and instance quotas, and with a spec the
//! key files, the security groups' web ports, each server's DNS name and
//! SSH. Every check runs; one that needs what failed says so and is
//! skipped. Exit 1 when any check failed.

use std::path::PathBuf;
use std::process::ExitCode;

use hubform_aws::doctor::{self, Check, Status};
use hubform_aws::{Aws, AwsError, Options, Settings};
use hubform_core::graph::Desired;
use hubform_core::model::{Kind, Observed};
use hubform_core::provider::Provider;
use hubform_core::spec::Loaded;

use crate::cli::DoctorArgs;
use crate::commands::CliError;
use crate::session;

mod workshop;

/// The Region when no spec, `--region` or profile gives one: only the
/// credentials are checked, and STS answers there for every account.
const FALLBACK_REGION: &str = "us-east-1";

pub async fn run(args: &DoctorArgs) -> Result<ExitCode, CliError> {
    let spec = match &args.spec {
        Some(path) => Some(session::load(path, args.region.as_deref())?),
        None => None,
    };
    let loopback_only = hubform_aws::connect::loopback_only_from_env()?;
    let mut report = Report::default();

    let region = region(args, spec.as_ref().map(|(_, d)| d)).await;
    let aws = connect(args, spec.as_ref(), &region, loopback_only).await?;
    let aws = match aws {
        Ok(aws) => {
            let source = doctor::credential_source(profile(args));
            let check = doctor::identity(&aws, &source).await;
            let works = check.status == Status::Ok;
            report.add(check);
            works.then_some(aws)
        }
        Err(check) => {
            report.add(check);
            None
        }
    };

    let desired = spec.as_ref().map(|(_, d)| d);
    let observed = match (&aws, desired) {
        (Some(aws), Some(desired)) => observe(aws, desired, &mut report).await,
        _ => None,
    };
    account(
        aws.as_ref(),
        &region,
        desired,
        observed.as_ref(),
        &mut report,
    )
    .await;
    if let Some((loaded, desired)) = &spec {
        let found = workshop::Found {
            aws: aws.as_ref(),
            observed: observed.as_ref(),
            dir: &loaded.dir,
            loopback_only,
        };
        for check in workshop::checks(args, desired, &found).await {
            report.add(check);
        }
    }
    Ok(report.finish())
}

/// The `--profile` given.
fn profile(args: &DoctorArgs) -> Option<&str> {
    args.connection.profile.as_deref()
}

/// The Region to check and where it came from, or the failed check.
async fn region(
    args: &DoctorArgs,
    desired: Option<&Desired>,
) -> Result<(String, &'static str), Check> {
    if let Some(desired) = desired {
        return Ok((desired.region.clone(), "from the spec"));
    }
    if let Some(region) = &args.region {
        return Ok((region.clone(), "from --region"));
    }
    match doctor::configured_region(profile(args)).await {
        Some(region) => Ok((region, "from the AWS config")),
        None => Err(Check::fail(
            "region",
            "none given: no spec, no --region, and no region in the AWS \
             config",
            "pass --region REGION or a spec, or set one with `aws \
             configure` (or AWS_REGION)",
        )),
    }
}

/// Connects as every AWS command does (loopback guard, credentials
/// resolved once); credentials that cannot be loaded are a failed check.
async fn connect(
    args: &DoctorArgs,
    spec: Option<&(Loaded, Desired)>,
    region: &Result<(String, &'static str), Check>,
    loopback_only: bool,
) -> Result<Result<Aws, Check>, CliError> {
    let options = Options {
        profile: args.connection.profile.clone(),
        endpoint_url: args.connection.endpoint_url.clone(),
        region: match region {
            Ok((region, _)) => region.clone(),
            Err(_) => FALLBACK_REGION.to_owned(),
        },
        loopback_only,
    };
    let (workshop, dir) = match spec {
        Some((loaded, desired)) => {
            (desired.workshop.as_str(), loaded.dir.clone())
        }
        None => ("doctor", PathBuf::from(".")),
    };
    let connected =
        Aws::connect(&options, Settings::from_env(), workshop, &dir).await;
    match connected {
        Ok(aws) => Ok(Ok(aws)),
        Err(AwsError::Credentials(why)) => Ok(Err(Check::fail(
            "credentials",
            format!(
                "{}: cannot be loaded: {why}",
                doctor::credential_source(profile(args))
            ),
            &doctor::credentials_fix(profile(args)),
        ))),
        // The loopback guard refuses before anything is sent: no check
        // can run, as with every other command.
        Err(other) => Err(other.into()),
    }
}

/// The workshop's objects in AWS, as plan finds them; a failure is a
/// check of its own.
async fn observe(
    aws: &Aws,
    desired: &Desired,
    report: &mut Report,
) -> Option<Observed> {
    let name = format!("workshop {}", desired.workshop);
    match aws.observe(desired).await {
        Ok(observed) => {
            let made = desired
                .order
                .iter()
                .filter(|id| id.kind != Kind::Image)
                .filter(|id| !id.kind.on_host())
                .filter(|id| observed.live.contains_key(id))
                .count();
            let wanted = desired
                .order
                .iter()
                .filter(|id| id.kind != Kind::Image && !id.kind.on_host())
                .count();
            let rest = if made < wanted {
                " (`hubform plan` shows the rest)"
            } else {
                ""
            };
            report.add(Check::ok(
                &name,
                format!(
                    "{made} of its {wanted} AWS objects exist in {}{rest}",
                    desired.region
                ),
            ));
            Some(observed)
        }
        Err(e) => {
            report.add(Check::fail(
                &name,
                format!("cannot be read from AWS: {}", e.message),
                "see the error; `hubform plan` needs the same reads",
            ));
            None
        }
    }
}

/// The account's checks in the Region: the Region itself, its default
/// VPC, the Elastic IP quota, and with a spec its instance types.
async fn account(
    aws: Option<&Aws>,
    region: &Result<(String, &'static str), Check>,
    desired: Option<&Desired>,
    observed: Option<&Observed>,
    report: &mut Report,
) {
    let mut names = vec!["region", "default vpc", "elastic ips"];
    if desired.is_some() {
        names.extend(["instance types", "vcpu quota"]);
    }
    let (region, from) = match region {
        Ok(found) => found,
        Err(check) => {
            report.add(check.clone());
            skip_all(&names[1..], "needs a Region", report);
            return;
        }
    };
    let Some(aws) = aws else {
        skip_all(&names, "needs credentials", report);
        return;
    };

    let check = doctor::region(aws, region, from).await;
    let exists = check.status == Status::Ok;
    report.add(check);
    if !exists {
        skip_all(&names[1..], "needs the Region", report);
        return;
    }
    report.add(doctor::default_vpc(aws, region).await);
    let needed = desired.map_or(0, |d| missing_addresses(d, observed));
    report.add(doctor::elastic_ips(aws, region, needed).await);
    if let Some(desired) = desired {
        for check in doctor::instance_types(aws, region, &types(desired)).await
        {
            report.add(check);
        }
    }
}

/// How many Elastic IPs the spec wants that do not exist yet (all of
/// them when the workshop could not be read).
fn missing_addresses(desired: &Desired, observed: Option<&Observed>) -> usize {
    desired
        .of_kind(Kind::ElasticIp)
        .filter(|r| observed.is_none_or(|o| !o.live.contains_key(&r.id)))
        .count()
}

/// The spec's instance types, each once.
fn types(desired: &Desired) -> Vec<String> {
    let mut types: Vec<String> = desired
        .of_kind(Kind::Instance)
        .filter_map(|r| r.text("type"))
        .map(str::to_owned)
        .collect();
    types.sort();
    types.dedup();
    types
}

fn skip_all(names: &[&str], why: &str, report: &mut Report) {
    for name in names {
        report.add(Check::skip(name, why));
    }
}

/// The lines printed so far and how they came out.
#[derive(Default)]
struct Report {
    counts: [usize; 4],
}

impl Report {
    /// Prints one check, as soon as it is known.
    fn add(&mut self, check: Check) {
        outln!("{check}");
        self.counts[check.status as usize] += 1;
    }

    /// Prints the summary and returns the exit code: 1 when any failed.
    fn finish(self) -> ExitCode {
        let [ok, warn, fail, skip] = self.counts;
        outln!("\n{ok} ok, {warn} warning(s), {fail} failed, {skip} skipped.");
        if fail > 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    }
}
