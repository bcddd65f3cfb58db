//! The bench's floor: the least a program can do to observe one workshop
//! with the AWS SDK hubform uses. It makes the eight describe calls of a
//! no-op `hubform plan` (IAM account details, the user's access keys, key
//! pairs, security groups, the image lookup, instances, volumes, Elastic
//! IPs) all at once, prints how many objects each found and exits: no
//! spec, no planner, no retries beyond the SDK's defaults.
//!
//! ```text
//! AWS_ENDPOINT_URL=http://127.0.0.1:PORT \
//!     floor REGION WORKSHOP IAM_USER IMAGE_OWNER IMAGE_NAME_PATTERN
//! ```
//!
//! It only talks to a loopback endpoint, named by `AWS_ENDPOINT_URL`: it
//! exists for `scripts/bench` and refuses real AWS.

use std::process::ExitCode;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::types::Filter;
use aws_sdk_iam::types::EntityType;
use aws_smithy_types::error::display::DisplayErrorContext;

/// The tag hubform puts on every EC2 object of a workshop.
const WORKSHOP_TAG: &str = "tag:hubform:workshop";

/// The states in which an instance still exists.
const LIVE_STATES: [&str; 5] =
    ["pending", "running", "stopping", "stopped", "shutting-down"];

/// What to observe, from the command line.
struct Target {
    region: String,
    workshop: String,
    user: String,
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
    let [region, workshop, user, owner, pattern] =
        <[String; 5]>::try_from(args).map_err(|_| {
            "usage: floor REGION WORKSHOP IAM_USER IMAGE_OWNER \
             IMAGE_NAME_PATTERN"
                .to_owned()
        })?;
    Ok(Target {
        region,
        workshop,
        user,
        owner,
        pattern,
    })
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// The eight calls at once; a line of what each found.
async fn observe(t: &Target) -> Result<String, String> {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(t.region.clone()))
        .load()
        .await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let iam = aws_sdk_iam::Client::new(&config);
    let ours = || filter(WORKSHOP_TAG, &t.workshop);

    let calls = tokio::join!(
        iam.get_account_authorization_details()
            .filter(EntityType::Group)
            .filter(EntityType::User)
            .send(),
        iam.list_access_keys().user_name(&t.user).send(),
        ec2.describe_key_pairs()
            .filters(ours())
            .include_public_key(true)
            .send(),
        ec2.describe_security_groups().filters(ours()).send(),
        ec2.describe_images()
            .owners(&t.owner)
            .filters(filter("name", &t.pattern))
            .filters(filter("architecture", "x86_64"))
            .filters(filter("state", "available"))
            .send(),
        ec2.describe_instances()
            .filters(ours())
            .filters(
                Filter::builder()
                    .name("instance-state-name")
                    .set_values(Some(LIVE_STATES.map(str::to_owned).to_vec()))
                    .build()
            )
            .send(),
        ec2.describe_volumes().filters(ours()).send(),
        ec2.describe_addresses().filters(ours()).send(),
    );

    let (details, keys, pairs, groups, images, instances, volumes, eips) =
        calls;
    let details = answer("GetAccountAuthorizationDetails", details)?;
    let keys = answer("ListAccessKeys", keys)?;
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
        "groups {} users {} access_keys {} key_pairs {} security_groups {} \
         images {} instances {servers} volumes {} addresses {}",
        details.group_detail_list().len(),
        details.user_detail_list().len(),
        keys.access_key_metadata().len(),
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
