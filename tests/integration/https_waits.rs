//! HTTPS waits for its conditions: the DNS name resolves to the Elastic
//! IP and port 443 is open to the world. Until then the plan says which
//! condition waits and the HTTPS keys stay off the host.

use std::path::PathBuf;

use crate::common::{self, elastic_ip, run, spec_text, write_spec, EXAMPLE};
use crate::tljh_double::TljhHost;
use crate::world::World;

const DOMAIN: &str = "jupyter.hydrosolutions.ch";

/// The example with a host layer and HTTPS; `spec_edit` changes the text.
fn spec(world: &World, tljh: &TljhHost, spec_edit: (&str, &str)) -> PathBuf {
    let host = format!(
        "{}        https.port: {https}
      https: {{ letsencrypt_email: it@example.org, staging: true }}
      packages: {{ pip: [hubform-tiny-a] }}
",
        tljh.spec_block(),
        https = tljh.https_port,
    );
    let text = format!("{}{host}", spec_text(EXAMPLE))
        .replace(spec_edit.0, spec_edit.1);
    tljh.lend_key(world.dir(), "workshop-central-asia");
    write_spec(world, "workshop.yaml", &text)
}

/// `hubform ARGS` with `HUBFORM_RESOLVE` answering for the domain.
fn hubform_resolving(
    world: &World,
    args: &[&str],
    resolve: Option<&str>,
) -> common::Run {
    let mut cmd = world.hubform();
    cmd.args(args);
    if let Some(ip) = resolve {
        cmd.env("HUBFORM_RESOLVE", format!("{DOMAIN}={ip}"));
    }
    run(cmd)
}

fn https_enabled(tljh: &TljhHost) -> bool {
    let config = tljh.host.sudo_ok("/usr/bin/tljh-config show");
    config.contains("enabled: true")
}

#[tokio::test(flavor = "multi_thread")]
async fn https_waits_until_the_name_resolves_to_the_elastic_ip() {
    let world = World::start().await;
    let tljh = TljhHost::start();
    let spec = spec(&world, &tljh, ("", ""));
    let spec_arg = spec.to_str().expect("a UTF-8 path");

    // From nothing: the address does not exist when planning, so HTTPS
    // waits; everything else converges.
    let first =
        hubform_resolving(&world, &["apply", "--auto-approve", spec_arg], None)
            .expect_code(0);
    assert!(first.stdout.contains("the Elastic IP does not exist yet"));
    assert!(!https_enabled(&tljh), "no HTTPS before DNS is right");

    // The name does not resolve (to anything, here): still waiting.
    let waiting = hubform_resolving(
        &world,
        &["plan", "--detailed-exitcode", spec_arg],
        None,
    )
    .expect_code(0);
    assert!(
        waiting.stdout.contains("https.enabled")
            && waiting.stdout.contains(DOMAIN)
            && waiting.stdout.contains("No changes."),
        "{}",
        waiting.stdout
    );

    // It resolves elsewhere: the plan says where it points.
    let elsewhere = hubform_resolving(
        &world,
        &["plan", "--detailed-exitcode", spec_arg],
        Some("192.0.2.7"),
    )
    .expect_code(0);
    assert!(elsewhere.stdout.contains("resolves to 192.0.2.7"));

    // It resolves to the Elastic IP: HTTPS is planned and applied.
    let ip = elastic_ip(&world).await;
    let ready = hubform_resolving(
        &world,
        &["plan", "--detailed-exitcode", spec_arg],
        Some(&ip),
    )
    .expect_code(2);
    assert!(ready.stdout.contains("https.enabled"), "{}", ready.stdout);
    hubform_resolving(
        &world,
        &["apply", "--auto-approve", spec_arg],
        Some(&ip),
    )
    .expect_code(0);
    assert!(https_enabled(&tljh), "HTTPS on once DNS is right");
    let config = tljh.host.sudo_ok("/usr/bin/tljh-config show");
    assert!(config.contains("it@example.org"), "{config}");
    assert!(config.contains(DOMAIN), "{config}");
}

#[tokio::test(flavor = "multi_thread")]
async fn https_waits_while_443_is_closed_to_the_world() {
    let world = World::start().await;
    let tljh = TljhHost::start();
    let spec = spec(&world, &tljh, ("ports: [22, 80, 443]", "ports: [22, 80]"));
    let spec_arg = spec.to_str().expect("a UTF-8 path");

    common::apply(&world, &spec);
    let ip = elastic_ip(&world).await;
    let run = hubform_resolving(
        &world,
        &["plan", "--detailed-exitcode", spec_arg],
        Some(&ip),
    )
    .expect_code(0);
    assert!(
        run.stdout.contains("port 443 is not open to 0.0.0.0/0"),
        "{}",
        run.stdout
    );
    assert!(!https_enabled(&tljh));
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_verifies_the_hub_and_its_trusted_certificate() {
    let world = World::start().await;
    let tljh = TljhHost::start();
    let spec = spec(&world, &tljh, ("staging: true", "staging: false"));
    let spec_arg = spec.to_str().expect("a UTF-8 path");

    let first = common::apply(&world, &spec);
    assert!(
        first.stdout.contains("tljh.hub: verified: the hub answers")
            && first
                .stdout
                .contains("the user Python imports hubform-tiny-a"),
        "{}",
        first.stdout
    );
    let ip = elastic_ip(&world).await;
    let second = hubform_resolving(
        &world,
        &["apply", "--auto-approve", spec_arg],
        Some(&ip),
    )
    .expect_code(0);
    assert!(
        second
            .stdout
            .contains(&format!("trusted certificate for {DOMAIN}")),
        "{}",
        second.stdout
    );
}
