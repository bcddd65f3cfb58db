//! `hubform output SPEC`: what a lecturer needs to reach the server.

use std::process::ExitCode;

use hubform_core::model::{Kind, ResourceId};
use hubform_core::provider::Provider;

use crate::cli::AwsArgs;
use crate::commands::CliError;
use crate::session;

pub async fn run(args: &AwsArgs) -> Result<ExitCode, CliError> {
    let session = session::open(args).await?;
    let observed = session.stack.aws.observe(&session.desired).await?;

    let mut missing = Vec::new();
    for server in session.desired.of_kind(Kind::Instance) {
        let key = &server.id.key;
        let Some(instance) = observed.live.get(&server.id) else {
            missing.push(server.id.to_string());
            continue;
        };
        let eip = observed
            .live
            .get(&ResourceId::new(Kind::ElasticIp, key))
            .and_then(|l| l.get_extra("public_ip"))
            .filter(|ip| !ip.is_empty());
        let address = eip
            .or_else(|| instance.get_extra("public_ip"))
            .unwrap_or("");
        outln!("{key}.instance_id = {:?}", instance.cloud_id);
        outln!("{key}.elastic_ip  = {:?}", eip.unwrap_or(""));
        let key_file = server
            .text("key_pair")
            .and_then(|k| {
                session
                    .desired
                    .get(&ResourceId::new(Kind::KeyPair, k))
                    .and_then(|r| r.text("private_key_file"))
            })
            .unwrap_or("KEY.pem");
        if let Some(name) = server.text("dns_name") {
            outln!("{key}.dns_name    = {name:?}");
        }
        if !address.is_empty() {
            outln!(
                "{key}.ssh         = \"ssh -i {key_file} ubuntu@{address}\""
            );
        }
    }
    if !missing.is_empty() {
        return Err(CliError::Other(format!(
            "{} not found in AWS; run `hubform apply` first",
            missing.join(", ")
        )));
    }
    Ok(ExitCode::SUCCESS)
}
