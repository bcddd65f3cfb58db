//! The AWS half of `hubform doctor`: whether the credentials work and
//! whose they are, whether the Region is there, whether it has the
//! default VPC hubform puts security groups in, and the quotas a
//! workshop runs into (Elastic IPs, instance types, vCPUs).
//!
//! Each check is one [`Check`]: ok, warn, fail or skip, with what to do
//! next. The requests go through the provider's own clients
//! ([`Aws::connect`]): the loopback guard and the retries are the same as
//! for every other command. Nothing here prints a secret.

use std::fmt;

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{AccountAttributeName, LocationType};
use aws_smithy_runtime_api::client::result::SdkError;

use crate::{error, tags, Aws};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// All is well.
    Ok,
    /// It works now, but something will get in the way soon.
    Warn,
    /// Broken: hubform will fail here.
    Fail,
    /// Not checked, and why (something it needs failed, or it cannot be).
    Skip,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
        })
    }
}

/// One line of the doctor's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// How it came out.
    pub status: Status,
    /// What was checked (`credentials`, `ssh hub`).
    pub name: String,
    /// What was found, a lowercase phrase.
    pub text: String,
    /// What to do about it, when anything.
    pub fix: Option<String>,
}

impl Check {
    /// A check that passed.
    pub fn ok(name: &str, text: impl Into<String>) -> Check {
        Check::new(Status::Ok, name, text.into(), None)
    }

    /// A warning and what to do about it.
    pub fn warn(name: &str, text: impl Into<String>, fix: &str) -> Check {
        Check::new(Status::Warn, name, text.into(), Some(fix.to_owned()))
    }

    /// A failure and how to fix it.
    pub fn fail(name: &str, text: impl Into<String>, fix: &str) -> Check {
        Check::new(Status::Fail, name, text.into(), Some(fix.to_owned()))
    }

    /// A check not made, and why.
    pub fn skip(name: &str, why: impl Into<String>) -> Check {
        Check::new(Status::Skip, name, why.into(), None)
    }

    fn new(
        status: Status,
        name: &str,
        text: String,
        fix: Option<String>,
    ) -> Check {
        Check {
            status,
            name: name.to_owned(),
            text,
            fix,
        }
    }
}

impl fmt::Display for Check {
    /// `fail  NAME: TEXT; fix: FIX`, one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<5} {}: {}", self.status, self.name, self.text)?;
        match &self.fix {
            Some(fix) => write!(f, "; fix: {fix}"),
            None => Ok(()),
        }
    }
}

/// The Region the AWS config chain gives (`AWS_REGION`, the profile's
/// `region`), for a doctor run without a spec or `--region`.
pub async fn configured_region(profile: Option<&str>) -> Option<String> {
    let mut chain =
        aws_config::default_provider::region::DefaultRegionChain::builder();
    if let Some(profile) = profile {
        chain = chain.profile_name(profile);
    }
    chain.build().region().await.map(|r| r.to_string())
}

/// Where the credentials come from, in the order the AWS config chain
/// looks (`--profile` first, as in [`crate::connect::load`]).
pub fn credential_source(profile: Option<&str>) -> String {
    let set =
        |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if let Some(profile) = profile {
        return format!("profile {profile} (--profile)");
    }
    if set("AWS_ACCESS_KEY_ID").is_some() {
        return "the environment (AWS_ACCESS_KEY_ID)".to_owned();
    }
    if let Some(profile) = set("AWS_PROFILE") {
        return format!("profile {profile} (AWS_PROFILE)");
    }
    if set("AWS_WEB_IDENTITY_TOKEN_FILE").is_some() {
        return "web identity (AWS_WEB_IDENTITY_TOKEN_FILE)".to_owned();
    }
    "profile default, else the container or instance role".to_owned()
}

/// The fix for credentials that cannot be loaded at all.
pub fn credentials_fix(profile: Option<&str>) -> String {
    match profile {
        Some(p) => format!(
            "add profile {p} with `aws configure --profile {p}` (access \
             keys) or `aws configure sso --profile {p}`, then `aws sso \
             login --profile {p}`; or name another profile with --profile"
        ),
        None => "run `aws configure` (access keys) or `aws configure sso` \
                 and `aws sso login`, or name a profile with --profile"
            .to_owned(),
    }
}

/// The credentials check: whose they are (STS `GetCallerIdentity`), from
/// which `source`.
pub async fn identity(aws: &Aws, source: &str) -> Check {
    let name = "credentials";
    let out = aws.sts.get_caller_identity().send().await;
    match out {
        Ok(out) => Check::ok(
            name,
            format!(
                "{source}: account {}, {}",
                out.account().unwrap_or("?"),
                out.arn().unwrap_or("?")
            ),
        ),
        Err(e) => {
            let fix = match error::code(&e).unwrap_or_default() {
                "ExpiredToken" | "ExpiredTokenException" => {
                    "the credentials have expired: `aws sso login` (SSO \
                     profiles), or get new session credentials"
                }
                "RequestExpired" | "RequestTimeTooSkewed" => {
                    "this computer's clock is off: set it right (NTP)"
                }
                _ => {
                    "check the keys with `aws configure` (or `aws \
                     configure --profile NAME`), or name another profile \
                     with --profile"
                }
            };
            Check::fail(
                name,
                format!("{source}: {}", said("GetCallerIdentity", &e)),
                fix,
            )
        }
    }
}

/// Whether the Region exists and is enabled for the account.
pub async fn region(aws: &Aws, region: &str, from: &str) -> Check {
    let name = "region";
    let out = aws
        .ec2
        .describe_regions()
        .region_names(region)
        .all_regions(true)
        .send()
        .await;
    let fix_name = "give the Region's code, such as ap-south-1 (`aws ec2 \
                    describe-regions --all-regions` lists them)";
    let out = match out {
        Ok(out) => out,
        Err(e) if error::code(&e) == Some("InvalidParameterValue") => {
            return Check::fail(
                name,
                format!(
                    "{region} ({from}) is no AWS Region: {}",
                    said("DescribeRegions", &e)
                ),
                fix_name,
            )
        }
        Err(e) => {
            return Check::fail(
                name,
                format!("{region} ({from}): {}", said("DescribeRegions", &e)),
                "check the Region's name and the network",
            )
        }
    };
    let Some(found) = out.regions().first() else {
        return Check::fail(
            name,
            format!("{region} ({from}) is no AWS Region"),
            fix_name,
        );
    };
    match found.opt_in_status().unwrap_or("opt-in-not-required") {
        "not-opted-in" => Check::fail(
            name,
            format!("{region} ({from}) is not enabled for this account"),
            "enable it in the AWS console (Account, AWS Regions), wait a \
             few minutes, and run doctor again",
        ),
        status => Check::ok(name, format!("{region} ({from}), {status}")),
    }
}

/// Whether the Region has a default VPC: hubform makes its security
/// groups there and launches into its default subnets.
pub async fn default_vpc(aws: &Aws, region: &str) -> Check {
    let name = "default vpc";
    let out = aws
        .ec2
        .describe_vpcs()
        .filters(tags::filter("is-default", &["true"]))
        .send()
        .await;
    match out {
        Ok(out) => match out.vpcs().first().and_then(|v| v.vpc_id()) {
            Some(id) => Check::ok(name, format!("{id} in {region}")),
            None => Check::fail(
                name,
                format!(
                    "{region} has no default VPC; hubform makes security \
                     groups and launches servers there"
                ),
                &format!("aws ec2 create-default-vpc --region {region}"),
            ),
        },
        Err(e) => Check::fail(name, said("DescribeVpcs", &e), "see the error"),
    }
}

/// The Elastic IP quota: addresses held in the Region against the
/// account's limit, and whether `needed` more (the spec's servers whose
/// address does not exist yet) fit.
pub async fn elastic_ips(aws: &Aws, region: &str, needed: usize) -> Check {
    let name = "elastic ips";
    let held = match aws.ec2.describe_addresses().send().await {
        Ok(out) => out.addresses().len(),
        Err(e) => {
            return Check::fail(
                name,
                said("DescribeAddresses", &e),
                "see the error",
            )
        }
    };
    let (limit, limit_known) = match address_limit(aws).await {
        Some(limit) => (limit, true),
        // AWS's default quota.
        None => (5, false),
    };
    let of = if limit_known {
        format!("{limit}")
    } else {
        format!("{limit} (AWS's default; the account's limit was not read)")
    };
    let raise = "release addresses nobody uses (`aws ec2 \
                 describe-addresses`, then `aws ec2 release-address`), or \
                 ask for more in Service Quotas (EC2, \"EC2-VPC Elastic \
                 IPs\", L-0263D0A3)";
    let free = limit.saturating_sub(held);
    let text = format!("{held} of {of} in use in {region}");
    if needed > free {
        Check::fail(
            name,
            format!("{text}; this workshop needs {needed} more"),
            raise,
        )
    } else if free == 0 {
        Check::warn(
            name,
            format!("{text}; a new workshop cannot get one"),
            raise,
        )
    } else {
        Check::ok(name, text)
    }
}

/// `vpc-max-elastic-ips` of DescribeAccountAttributes, when it answers.
async fn address_limit(aws: &Aws) -> Option<usize> {
    let out = aws
        .ec2
        .describe_account_attributes()
        .attribute_names(AccountAttributeName::from("vpc-max-elastic-ips"))
        .send()
        .await
        .map_err(|e| {
            let said = said("DescribeAccountAttributes", &e);
            tracing::debug!(error = %said, "no address limit");
        })
        .ok()?;
    out.account_attributes()
        .iter()
        .filter(|a| a.attribute_name() == Some("vpc-max-elastic-ips"))
        .flat_map(|a| a.attribute_values())
        .find_map(|v| v.attribute_value()?.parse().ok())
}

/// Whether the instance types are offered in the Region, and the vCPUs
/// they take together (the quota itself lives in Service Quotas, which
/// hubform does not read).
pub async fn instance_types(
    aws: &Aws,
    region: &str,
    types: &[String],
) -> Vec<Check> {
    let offered = aws
        .ec2
        .describe_instance_type_offerings()
        .location_type(LocationType::Region)
        .filters(tags::filter(
            "instance-type",
            &types.iter().map(String::as_str).collect::<Vec<_>>(),
        ))
        .send()
        .await;
    let offered: Vec<String> = match offered {
        Ok(out) => out
            .instance_type_offerings()
            .iter()
            .filter_map(|o| o.instance_type().map(|t| t.as_str().to_owned()))
            .collect(),
        Err(e) => {
            return vec![Check::fail(
                "instance types",
                said("DescribeInstanceTypeOfferings", &e),
                "see the error",
            )]
        }
    };
    let missing: Vec<&str> = types
        .iter()
        .filter(|t| !offered.contains(t))
        .map(String::as_str)
        .collect();
    let check = if missing.is_empty() {
        Check::ok(
            "instance types",
            format!("{} offered in {region}", types.join(", ")),
        )
    } else {
        Check::fail(
            "instance types",
            format!("{} not offered in {region}", missing.join(", ")),
            "pick a type the Region offers (`aws ec2 \
             describe-instance-type-offerings --region REGION`) or \
             another Region",
        )
    };
    vec![check, vcpus(aws, types).await]
}

/// The vCPUs the types take together; the quota is not checked.
async fn vcpus(aws: &Aws, types: &[String]) -> Check {
    let name = "vcpu quota";
    let mut total = 0;
    for t in types {
        let out = aws
            .ec2
            .describe_instance_types()
            .instance_types(t.as_str().into())
            .send()
            .await;
        let count = out.ok().and_then(|o| {
            o.instance_types()
                .first()
                .and_then(|i| i.v_cpu_info())
                .and_then(|v| v.default_v_cpus())
        });
        match count {
            Some(n) => total += n,
            None => return Check::skip(name, format!("{t}'s vCPUs unknown")),
        }
    }
    Check::skip(
        name,
        format!(
            "cannot be checked: the servers take {total} vCPUs of the \
             \"Running On-Demand Standard instances\" quota (L-1216C47A), \
             which only Service Quotas shows"
        ),
    )
}

/// What AWS said about a failed `call`: its code and message (never the
/// raw response), or why there was no answer.
fn said<E, R>(call: &str, err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    match err {
        SdkError::ServiceError(e) => {
            match (e.err().code(), e.err().message()) {
                (Some(code), Some(msg)) => {
                    format!("AWS answered {call} with {code}: {msg}")
                }
                (Some(code), None) => {
                    format!("AWS answered {call} with {code}")
                }
                _ => error::failure(call, err).message,
            }
        }
        _ => error::failure(call, err).message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_is_one_line_with_its_fix() {
        let fail = Check::fail("key file", "mode 0644", "chmod 400 k.pem");
        assert_eq!(
            fail.to_string(),
            "fail  key file: mode 0644; fix: chmod 400 k.pem"
        );
        let skip = Check::skip("ssh hub", "needs credentials");
        assert_eq!(skip.to_string(), "skip  ssh hub: needs credentials");
        assert_eq!(Check::ok("region", "x").to_string(), "ok    region: x");
    }

    #[test]
    fn a_named_profile_is_the_credentials_source() {
        let source = credential_source(Some("work"));
        assert_eq!(source, "profile work (--profile)");
    }
}
