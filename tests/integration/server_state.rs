//! `servers.*.state` is declared state: `stopped` stops the instance,
//! `running` starts it again, and the Elastic IP stays associated through
//! both. Checked through the EC2 API.

use crate::drift::{deployed, expect_line, Deployed};

/// The state EC2 reports for the workshop's instance.
async fn state(d: &Deployed) -> String {
    let instance = d.instance().await;
    instance
        .state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn stopped_stops_the_server_and_running_starts_it_with_its_elastic_ip() {
    let d = deployed().await;
    let address = d.address().await;
    let public_ip = address.public_ip().expect("an address").to_owned();

    d.edit_spec("    state: running\n", "    state: stopped\n");
    let plan = d.drift();
    expect_line(&plan, "~ state = \"running\" -> \"stopped\"");
    d.repair();
    assert_eq!(state(&d).await, "stopped");
    d.expect_address_on_instance().await;
    d.expect_in_sync();

    d.edit_spec("    state: stopped\n", "    state: running\n");
    let plan = d.drift();
    expect_line(&plan, "~ state = \"stopped\" -> \"running\"");
    d.repair();
    assert_eq!(state(&d).await, "running");
    d.expect_address_on_instance().await;
    let after = d.address().await;
    assert_eq!(after.public_ip(), Some(public_ip.as_str()), "same address");
    d.expect_in_sync();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_stopped_by_hand_is_drift_when_the_spec_says_running() {
    let d = deployed().await;
    d.expect_in_sync();

    let instance_id = d.instance().await.instance_id().expect("id").to_owned();
    d.ec2
        .stop_instances()
        .instance_ids(&instance_id)
        .send()
        .await
        .expect("StopInstances");
    d.wait_state(&instance_id, "stopped").await;

    let plan = d.drift();
    expect_line(&plan, "~ state = \"stopped\" -> \"running\"");
    d.repair();
    assert_eq!(state(&d).await, "running");
    d.expect_address_on_instance().await;
    d.expect_in_sync();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_state_is_a_spec_error_at_its_line() {
    let d = deployed().await;
    let text = d.edit_spec("    state: running\n", "    state: paused\n");
    let line = text
        .lines()
        .position(|l| l == "    state: paused")
        .expect("the line")
        + 1;
    d.world.reset_requests();
    let run = d.plan().expect_code(1);
    assert!(
        run.stderr.contains(&format!(":{line}:"))
            && run.stderr.contains("unknown state \"paused\""),
        "{}",
        run.stderr
    );
    assert!(d.mutating_calls().is_empty());
}

/// With the host layer: a server the spec stops is not verified. The
/// test host goes down when EC2 stops the instance (its connections
/// dropped, its sshd frozen, as a stopped instance answers nothing): a
/// verification would wait for SSH and fail the apply.
#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_servers_host_is_not_verified() {
    let world = crate::world::World::start().await;
    let tljh = crate::tljh_double::TljhHost::start();
    let keys = world.dir().join("keys");
    std::fs::create_dir_all(&keys).expect("keys folder");
    std::fs::copy(
        tljh.host.client_key(),
        keys.join("workshop-central-asia.pem"),
    )
    .expect("the test host's client key as the key pair's");
    let spec = world.dir().join("workshop.yaml");
    let text = crate::example_host::offline_example(&tljh);
    std::fs::write(&spec, &text).expect("write the spec");
    let apply = || {
        let mut cmd = world.hubform();
        cmd.args(["apply", "--auto-approve", "--ssh-endpoint"])
            .arg(tljh.host.endpoint())
            .arg(&spec)
            .env("HUBFORM_SSH_TIMEOUT_SECS", "2")
            .env("HUBFORM_SSH_RETRY_SECS", "6");
        cmd
    };
    let first = crate::common::run(apply());
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);

    let stopped = text.replace("    state: running\n", "    state: stopped\n");
    assert_ne!(stopped, text, "the example declares state: running");
    std::fs::write(&spec, stopped).expect("write the stopped spec");
    world.hold("StopInstances", "DescribeRegions", 120);
    let second = std::thread::spawn({
        let cmd = apply();
        move || crate::common::run(cmd)
    });
    let deadline =
        std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !world.holding("StopInstances") {
        assert!(
            !second.is_finished() && std::time::Instant::now() < deadline,
            "StopInstances never held: {}",
            world.holds()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    tljh.host.drop_connections();
    let frozen = tljh.host.freeze_listener();
    world
        .proxy_ec2()
        .await
        .describe_regions()
        .send()
        .await
        .expect("release StopInstances");
    let second = second.join().expect("the apply's thread");
    tljh.host.thaw(&frozen);

    assert_eq!(second.code, 0, "{}\n{}", second.stdout, second.stderr);
    let instances = crate::common::live_instances(
        &world.ec2().await,
        Some("groundwater-central-asia"),
    )
    .await;
    let state = instances[0].state().and_then(|s| s.name());
    assert_eq!(state.map(|n| n.as_str()), Some("stopped"));
}
