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
