//! A Route 53 A record for the server's DNS name, when the spec gives its
//! hosted zone: created pointing at the Elastic IP, repaired when changed
//! by hand, deleted by destroy. Checked through Route 53's API.

use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet,
    RrType,
};

use crate::common::{self, elastic_ip, spec_text, write_spec, EXAMPLE};
use crate::world::{World, REGION};

const NAME: &str = "jupyter.hydrosolutions.ch";

fn route53(world: &World) -> aws_sdk_route53::Client {
    use aws_sdk_route53::config::{BehaviorVersion, Credentials, Region};
    let conf = aws_sdk_route53::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(world.moto_endpoint())
        .credentials_provider(Credentials::new(
            "testing", "testing", None, None, "world",
        ))
        .build();
    aws_sdk_route53::Client::from_conf(conf)
}

/// The A record's values for the name, if there is one.
async fn record(r53: &aws_sdk_route53::Client, zone: &str) -> Vec<String> {
    let out = r53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await
        .expect("ListResourceRecordSets");
    out.resource_record_sets()
        .iter()
        .filter(|r| r.name() == format!("{NAME}.") && *r.r#type() == RrType::A)
        .flat_map(|r| r.resource_records().iter().map(|v| v.value().to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn record_points_at_the_elastic_ip_is_repaired_and_destroyed() {
    let world = World::start().await;
    let r53 = route53(&world);
    let zone = r53
        .create_hosted_zone()
        .name("hydrosolutions.ch")
        .caller_reference("hubform-test")
        .send()
        .await
        .expect("CreateHostedZone");
    let zone_id = zone
        .hosted_zone()
        .expect("a zone")
        .id()
        .trim_start_matches("/hostedzone/")
        .to_owned();
    let text = spec_text(EXAMPLE).replace(
        &format!("dns: {{ name: {NAME} }}"),
        &format!("dns: {{ name: {NAME}, zone: hydrosolutions.ch }}"),
    );
    assert!(text.contains("zone: hydrosolutions.ch"), "{text}");
    let spec = write_spec(&world, "workshop.yaml", &text);
    let spec_arg = spec.to_str().expect("a UTF-8 path");

    let run = common::apply(&world, &spec);
    assert!(run.stdout.contains("+ dns_record.hub"), "{}", run.stdout);
    let ip = elastic_ip(&world).await;
    assert_eq!(record(&r53, &zone_id).await, std::slice::from_ref(&ip));
    let again = common::plan(&world, &spec).expect_code(0);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);

    // Pointed elsewhere by hand: planned and repaired.
    let by_hand = ResourceRecordSet::builder()
        .name(format!("{NAME}."))
        .r#type(RrType::A)
        .ttl(60)
        .resource_records(
            ResourceRecord::builder()
                .value("192.0.2.9")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    r53.change_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .change_batch(
            ChangeBatch::builder()
                .changes(
                    Change::builder()
                        .action(ChangeAction::Upsert)
                        .resource_record_set(by_hand)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("UPSERT by hand");
    let drift = common::plan(&world, &spec).expect_code(2);
    assert!(
        drift.stdout.contains("~ dns_record.hub")
            && drift.stdout.contains("\"192.0.2.9\" -> elastic_ip.hub"),
        "{}",
        drift.stdout
    );
    common::apply(&world, &spec);
    assert_eq!(record(&r53, &zone_id).await, [ip]);

    // Destroy takes the record with the rest.
    common::hubform(
        &world,
        &["destroy", "--auto-approve", "--allow-destroy", spec_arg],
    )
    .expect_code(0);
    assert_eq!(record(&r53, &zone_id).await, Vec::<String>::new());
}
