//! `hubform doctor`: each check against moto, the proxy and an sshd test
//! host, and what each line says compared with the world itself.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

use aws_sdk_ec2::types::Filter;

use crate::common::{self, spec_text, write_spec, Run, EXAMPLE};
use crate::tljh_double::TljhHost;
use crate::world::{World, ACCOUNT, REGION};

/// The example's key pair, whose file a test host lends.
const KEY_PAIR: &str = "workshop-central-asia";
/// The example's DNS name.
const DNS_NAME: &str = "jupyter.hydrosolutions.ch";

/// `hubform doctor ARGS…` with more environment.
fn doctor(world: &World, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd: Command = world.hubform();
    cmd.arg("doctor").args(args);
    for (key, value) in env {
        cmd.env(key, value);
    }
    common::run(cmd)
}

/// The report's line of check `name`, panicking with the report when
/// there is none.
fn line<'a>(run: &'a Run, name: &str) -> &'a str {
    run.stdout
        .lines()
        .find(|l| {
            l.split_once(' ').is_some_and(|(_, rest)| {
                rest.trim_start().starts_with(&format!("{name}:"))
            })
        })
        .unwrap_or_else(|| {
            panic!("no `{name}` line in:\n{}\n{}", run.stdout, run.stderr)
        })
}

/// Asserts the status word of check `name` and that its line holds every
/// one of `words`.
fn expect(run: &Run, status: &str, name: &str, words: &[&str]) {
    let text = line(run, name);
    assert!(
        text.starts_with(&format!("{status} ")),
        "`{name}` is not {status}: {text}\n{}",
        run.stdout
    );
    for word in words {
        assert!(text.contains(word), "`{word}` missing from: {text}");
    }
}

/// The default VPC's id in the Region, from moto.
async fn default_vpc(world: &World) -> String {
    let out = world
        .ec2()
        .await
        .describe_vpcs()
        .filters(Filter::builder().name("is-default").values("true").build())
        .send()
        .await
        .expect("DescribeVpcs");
    out.vpcs()
        .first()
        .and_then(|v| v.vpc_id())
        .expect("a default VPC")
        .to_owned()
}

/// The key file a test host lent the example, in the world's folder.
fn key_file(world: &World) -> PathBuf {
    world.dir().join("keys").join(format!("{KEY_PAIR}.pem"))
}

#[tokio::test(flavor = "multi_thread")]
async fn fresh_world_without_a_spec_passes_the_account_checks() {
    let world = World::start().await;

    let run = doctor(&world, &[], &[("AWS_REGION", REGION)]).expect_code(0);

    expect(&run, "ok", "credentials", &[ACCOUNT, "AWS_ACCESS_KEY_ID"]);
    expect(&run, "ok", "region", &[REGION, "from the AWS config"]);
    let vpc = default_vpc(&world).await;
    expect(&run, "ok", "default vpc", &[&vpc]);
    expect(&run, "ok", "elastic ips", &["0 of 5 in use"]);
    assert!(!run.stdout.contains("instance types"), "{}", run.stdout);
    let sts = world.count("GetCallerIdentity");
    assert_eq!(sts, 1, "one identity check: {:?}", world.requests());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_region_that_does_not_exist_fails_and_skips_its_checks() {
    let world = World::start().await;

    let run = doctor(&world, &["--region", "xx-nowhere-1"], &[]);

    assert_eq!(run.code, 1, "{run:?}");
    expect(&run, "ok", "credentials", &[ACCOUNT]);
    expect(&run, "fail", "region", &["xx-nowhere-1", "fix:"]);
    expect(&run, "skip", "default vpc", &["needs the Region"]);
    expect(&run, "skip", "elastic ips", &["needs the Region"]);
    assert_eq!(world.count("DescribeVpcs"), 0, "{:?}", world.requests());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_region_other_than_the_specs_is_an_error() {
    let world = World::start().await;
    let spec = common::example(&world);

    let run = doctor(
        &world,
        &[spec.to_str().expect("UTF-8"), "--region", "eu-west-1"],
        &[],
    );

    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("does not match"), "{}", run.stderr);
    assert!(world.requests().is_empty(), "{:?}", world.requests());
}

/// The example applied (AWS part) with a test host's login key as its key
/// pair's file, and the spec doctor reads: the example with a `tljh`
/// section that reaches the test host.
struct Applied {
    world: World,
    tljh: TljhHost,
    spec: PathBuf,
    address: String,
}

impl Applied {
    async fn new() -> Applied {
        let world = World::start().await;
        let tljh = TljhHost::start();
        tljh.lend_key(world.dir(), KEY_PAIR);
        std::fs::set_permissions(
            key_file(&world),
            std::fs::Permissions::from_mode(0o400),
        )
        .expect("chmod the key file");
        let aws_only = write_spec(&world, "aws.yaml", &spec_text(EXAMPLE));
        common::apply(&world, &aws_only);
        let text = format!("{}{}", spec_text(EXAMPLE), tljh.spec_block());
        let spec = write_spec(&world, "workshop.yaml", &text);
        let address = common::elastic_ip(&world).await;
        Applied {
            world,
            tljh,
            spec,
            address,
        }
    }

    /// `hubform doctor SPEC` with `DNS_NAME` resolving to `ip`.
    fn doctor(&self, ip: &str) -> Run {
        let resolve = format!("{DNS_NAME}={ip}");
        doctor(
            &self.world,
            &[self.spec.to_str().expect("UTF-8")],
            &[("HUBFORM_RESOLVE", &resolve)],
        )
    }

    /// The example's instance id, from moto.
    async fn instance_id(&self) -> String {
        let out = self
            .world
            .ec2()
            .await
            .describe_instances()
            .filters(
                Filter::builder()
                    .name("tag:hubform:id")
                    .values("instance.hub")
                    .build(),
            )
            .send()
            .await
            .expect("DescribeInstances");
        out.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find_map(|i| i.instance_id())
            .expect("the instance")
            .to_owned()
    }

    /// Pins `key` on the instance, as apply does on first contact.
    async fn pin(&self, key: &str) {
        self.world
            .ec2()
            .await
            .create_tags()
            .resources(self.instance_id().await)
            .tags(
                aws_sdk_ec2::types::Tag::builder()
                    .key("hubform:host-key")
                    .value(key)
                    .build(),
            )
            .send()
            .await
            .expect("CreateTags");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn applied_example_passes_and_ssh_checks_the_pinned_host_key() {
    let w = Applied::new().await;

    let run = w.doctor(&w.address).expect_code(0);
    expect(&run, "ok", "workshop groundwater-central-asia", &["exist"]);
    expect(&run, "ok", "elastic ips", &["1 of 5 in use"]);
    expect(&run, "ok", "instance types", &["t3.xlarge"]);
    expect(&run, "skip", "vcpu quota", &["4 vCPUs", "Service Quotas"]);
    expect(&run, "ok", &format!("key file {KEY_PAIR}"), &["mode 0400"]);
    expect(
        &run,
        "ok",
        "web ports hub",
        &["80 and 443", "workshop-sg in AWS"],
    );
    expect(&run, "ok", "dns hub", &[DNS_NAME, &w.address]);
    let endpoint = w.tljh.host.endpoint();
    expect(&run, "ok", "ssh hub", &[&endpoint, "not pinned yet"]);

    w.pin(&w.tljh.host.host_public_key()).await;
    let run = w.doctor(&w.address).expect_code(0);
    expect(&run, "ok", "ssh hub", &[&endpoint, "matches the pin"]);

    // A new host key behind the same address is what a stolen address
    // looks like: doctor must refuse it as apply does.
    w.tljh.host.rekey();
    let run = w.doctor(&w.address).expect_code(1);
    expect(&run, "fail", "ssh hub", &["changed", "fix:"]);
    expect(&run, "ok", "dns hub", &[&w.address]);
}

#[tokio::test(flavor = "multi_thread")]
async fn dns_elsewhere_and_an_open_key_file_fail_with_their_fixes() {
    let w = Applied::new().await;

    let run = w.doctor("127.9.9.9").expect_code(1);
    expect(
        &run,
        "fail",
        "dns hub",
        &[
            "resolves to 127.9.9.9",
            &w.address,
            "fix: point the A record",
        ],
    );
    expect(&run, "ok", "ssh hub", &["answers"]);

    let key = key_file(&w.world);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644))
        .expect("chmod 644");
    let run = w.doctor(&w.address).expect_code(1);
    let chmod = format!("fix: chmod 400 {}", key.display());
    expect(
        &run,
        "fail",
        &format!("key file {KEY_PAIR}"),
        &["mode 0644", &chmod],
    );
    expect(&run, "ok", "dns hub", &[&w.address]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_profile_fails_credentials_and_skips_what_needs_them() {
    let world = World::start().await;
    let spec = common::example(&world);

    let run = doctor(
        &world,
        &[spec.to_str().expect("UTF-8"), "--profile", "nosuch"],
        &[("HUBFORM_RESOLVE", &format!("{DNS_NAME}=127.8.8.8"))],
    )
    .expect_code(1);

    expect(
        &run,
        "fail",
        "credentials",
        &[
            "profile nosuch",
            "aws configure --profile nosuch",
            "aws sso login",
        ],
    );
    for name in ["region", "default vpc", "elastic ips", "instance types"] {
        expect(&run, "skip", name, &["needs credentials"]);
    }
    expect(&run, "skip", "ssh hub", &["no tljh section"]);
    // The checks that need no AWS still run.
    expect(&run, "warn", &format!("key file {KEY_PAIR}"), &["missing"]);
    expect(&run, "ok", "web ports hub", &["workshop-sg in the spec"]);
    expect(&run, "warn", "dns hub", &["127.8.8.8", "needs credentials"]);
    assert!(world.requests().is_empty(), "{:?}", world.requests());
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_credentials_fail_with_the_fix_and_the_rest_is_skipped() {
    let world = World::start().await;
    // The first call after this still gets through; the next do not.
    world.expire_credentials_after("*", 0);
    let _ = world.proxy_ec2().await.describe_regions().send().await;

    let run = doctor(&world, &["--region", REGION], &[]).expect_code(1);

    expect(
        &run,
        "fail",
        "credentials",
        &["ExpiredToken", "aws sso login"],
    );
    for name in ["region", "default vpc", "elastic ips"] {
        expect(&run, "skip", name, &["needs credentials"]);
    }
    let calls: Vec<_> = world
        .requests()
        .into_iter()
        .filter(|r| r.action != "DescribeRegions")
        .collect();
    assert_eq!(calls.len(), 1, "only the identity check: {calls:?}");
    assert_eq!(calls[0].action, "GetCallerIdentity");
    assert_eq!(calls[0].status, 403, "{calls:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn five_elastic_ips_held_warn_and_fail_a_workshop_that_needs_one() {
    let world = World::start().await;
    let ec2 = world.ec2().await;
    for _ in 0..5 {
        ec2.allocate_address()
            .domain(aws_sdk_ec2::types::DomainType::Vpc)
            .send()
            .await
            .expect("AllocateAddress");
    }
    let held = ec2
        .describe_addresses()
        .send()
        .await
        .expect("DescribeAddresses");
    assert_eq!(held.addresses().len(), 5);

    let run = doctor(&world, &["--region", REGION], &[]).expect_code(0);
    expect(
        &run,
        "warn",
        "elastic ips",
        &["5 of 5 in use", "Service Quotas", "release-address"],
    );

    let spec = common::example(&world);
    let run =
        doctor(&world, &[spec.to_str().expect("UTF-8")], &[]).expect_code(1);
    expect(
        &run,
        "fail",
        "elastic ips",
        &["5 of 5 in use", "needs 1 more", "Service Quotas"],
    );

    // The proxy holds AWS's quota: the apply doctor warned of fails there.
    let apply = common::hubform(
        &world,
        &["apply", "--auto-approve", spec.to_str().expect("UTF-8")],
    );
    assert_eq!(apply.code, 1, "{apply:?}");
    assert!(
        apply.stderr.contains("AddressLimitExceeded")
            || apply.stdout.contains("AddressLimitExceeded"),
        "{apply:?}"
    );
}
