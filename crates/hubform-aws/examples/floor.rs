//! The bench's floor: the least a program can do to observe workshops
//! with the AWS SDK hubform uses. It makes the describe calls of a no-op
//! `hubform plan` (IAM account details, each user's access keys, key
//! pairs, security groups, the image lookup, instances, volumes, Elastic
//! IPs; EC2 filtered by the workshops' tag) all at once, prints how many
//! objects each found and exits: no spec, no planner, no retries beyond
//! the SDK's defaults. For one workshop with one user that is eight calls.
//!
//! ```text
//! AWS_ENDPOINT_URL=http://127.0.0.1:PORT floor REGION \
//!     WORKSHOP[,WORKSHOP…] IAM_USER[,IAM_USER…] \
//!     IMAGE_OWNER IMAGE_NAME_PATTERN
//! ```
//!
//! It only talks to a loopback endpoint, named by `AWS_ENDPOINT_URL`: it
//! exists for `scripts/bench` and refuses real AWS.

use std::process::ExitCode;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::types::Filter;
use aws_sdk_iam::types::EntityType;
use aws_smithy_types::error::display::DisplayErrorContext;
use futures::future::join_all;

/// The tag hubform puts on every EC2 object of a workshop.
const WORKSHOP_TAG: &str = "tag:hubform:workshop";

/// The states in which an instance still exists.
const LIVE_STATES: [&str; 5] =
    ["pending", "running", "stopping", "stopped", "shutting-down"];

/// What to observe, from the command line.
struct Target {
    region: String,
    workshops: Vec<String>,
    users: Vec<String>,
    owner: String,
    pattern: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let target = match target(std::env::args().skip(1).collect()) {
        Ok(target) => target,
        Err(e) => {
            eprintln!("floor: {e}");
            return ExitCode::FAILURE;
        }
    };
    match observe(&target).await {
        Ok(counts) => {
            println!("{counts}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("floor: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The target named by the arguments, once the endpoint is known to be
/// loopback.
fn target(args: Vec<String>) -> Result<Target, String> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    let loopback = ["http://127.0.0.1:", "http://localhost:"];
    if !loopback.iter().any(|p| endpoint.starts_with(p)) {
        return Err(format!(
            "AWS_ENDPOINT_URL must be http://127.0.0.1:PORT, not \
             {endpoint:?}: the floor only talks to a local stand-in"
        ));
    }
    let [region, workshops, users, owner, pattern] =
        <[String; 5]>::try_from(args).map_err(|_| {
            "usage: floor REGION WORKSHOP[,WORKSHOP…] IAM_USER[,IAM_USER…] \
             IMAGE_OWNER IMAGE_NAME_PATTERN"
                .to_owned()
        })?;
    let list = |s: String| s.split(',').map(str::to_owned).collect();
    Ok(Target {
        region,
        workshops: list(workshops),
        users: list(users),
        owner,
        pattern,
    })
}

fn filter(name: &str, values: &[String]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.to_vec()))
        .build()
}

fn one(value: &str) -> Vec<String> {
    vec![value.to_owned()]
}

/// All calls at once; a line of what they found.
async fn observe(t: &Target) -> Result<String, String> {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(t.region.clone()))
        .load()
        .await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let iam = aws_sdk_iam::Client::new(&config);
    let ours = || filter(WORKSHOP_TAG, &t.workshops);
    let live = LIVE_STATES.map(str::to_owned);

    let calls = tokio::join!(
        iam.get_account_authorization_details()
            .filter(EntityType::Group)
            .filter(EntityType::User)
            .send(),
        join_all(
            t.users
                .iter()
                .map(|u| iam.list_access_keys().user_name(u).send())
        ),
        ec2.describe_key_pairs()
            .filters(ours())
            .include_public_key(true)
            .send(),
        ec2.describe_security_groups().filters(ours()).send(),
        ec2.describe_images()
            .owners(&t.owner)
            .filters(filter("name", &one(&t.pattern)))
            .filters(filter("architecture", &one("x86_64")))
            .filters(filter("state", &one("available")))
            .send(),
        ec2.describe_instances()
            .filters(ours())
            .filters(filter("instance-state-name", &live))
            .send(),
        ec2.describe_volumes().filters(ours()).send(),
        ec2.describe_addresses().filters(ours()).send(),
    );

    let (details, keys, pairs, groups, images, instances, volumes, eips) =
        calls;
    let details = answer("GetAccountAuthorizationDetails", details)?;
    let mut access_keys = 0;
    for listed in keys {
        access_keys += answer("ListAccessKeys", listed)?
            .access_key_metadata()
            .len();
    }
    let pairs = answer("DescribeKeyPairs", pairs)?;
    let groups = answer("DescribeSecurityGroups", groups)?;
    let images = answer("DescribeImages", images)?;
    let instances = answer("DescribeInstances", instances)?;
    let volumes = answer("DescribeVolumes", volumes)?;
    let eips = answer("DescribeAddresses", eips)?;

    let servers: usize = instances
        .reservations()
        .iter()
        .map(|r| r.instances().len())
        .sum();
    Ok(format!(
        "groups {} users {} access_keys {access_keys} key_pairs {} \
         security_groups {} images {} instances {servers} volumes {} \
         addresses {}",
        details.group_detail_list().len(),
        details.user_detail_list().len(),
        pairs.key_pairs().len(),
        groups.security_groups().len(),
        images.images().len(),
        volumes.volumes().len(),
        eips.addresses().len(),
    ))
}

/// A call's answer, or its error with the call's name and every cause.
fn answer<T, E: std::error::Error>(
    call: &str,
    result: Result<T, E>,
) -> Result<T, String> {
    result.map_err(|e| format!("{call} failed: {}", DisplayErrorContext(e)))
}
