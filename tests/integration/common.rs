//! Shared steps of the integration tests: the example spec in a world's
//! folder, running hubform and reading its result.

#![allow(dead_code)] // not every test module uses every helper

use std::path::PathBuf;
use std::process::Command;

use crate::world::{workspace_root, World};

/// The manual's workshop, as committed in `specs/`.
pub const EXAMPLE: &str = "specs/groundwater-workshop.yaml";
/// The smaller example.
pub const SMALL: &str = "specs/small-workshop.yaml";

/// The text of a committed spec without its host layer: the AWS tests
/// start no SSH host, and the host-layer tests append their own `tljh`
/// block (the last block of the example's server).
pub fn spec_text(relative: &str) -> String {
    without_host_layer(&full_spec_text(relative))
}

/// The text of a committed spec, host layer included.
pub fn full_spec_text(relative: &str) -> String {
    std::fs::read_to_string(workspace_root().join(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

/// `text` without the server's `    tljh:` block and the comment lines
/// right above it.
fn without_host_layer(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let Some(start) = lines.iter().position(|l| *l == "    tljh:") else {
        return text.to_owned();
    };
    let mut from = start;
    while from > 0 && lines[from - 1].starts_with("    #") {
        from -= 1;
    }
    // The block goes on while lines are blank or indented deeper.
    let end = lines[start + 1..]
        .iter()
        .position(|l| !l.trim().is_empty() && !l.starts_with("     "))
        .map_or(lines.len(), |n| start + 1 + n);
    let mut out = String::new();
    for line in lines[..from].iter().chain(&lines[end..]) {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Writes `text` as `name` into the world's folder and returns its path.
pub fn write_spec(world: &World, name: &str, text: &str) -> PathBuf {
    let path = world.dir().join(name);
    std::fs::write(&path, text).expect("write the spec");
    path
}

/// Copies the example spec into the world's folder as `workshop.yaml`.
pub fn example(world: &World) -> PathBuf {
    write_spec(world, "workshop.yaml", &spec_text(EXAMPLE))
}

/// What a finished hubform run printed and returned.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics with both streams unless the exit code is `code`.
    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "expected exit {code}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Runs a command to the end. A hubform run is checked for secrets: its
/// output must not hold any private key or access-key secret found in
/// its world's folder.
pub fn run(mut cmd: Command) -> Run {
    let out = cmd.output().expect("run hubform");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    let is_hubform = cmd.get_program() == env!("CARGO_BIN_EXE_hubform");
    if let (true, Some(dir)) = (is_hubform, cmd.get_current_dir()) {
        crate::secrets::check_run(dir, &run);
    }
    run
}

/// `hubform ARGS…` in the world, run to the end.
pub fn hubform(world: &World, args: &[&str]) -> Run {
    let mut cmd = world.hubform();
    cmd.args(args);
    run(cmd)
}

/// `hubform apply --auto-approve SPEC`, which must succeed.
pub fn apply(world: &World, spec: &std::path::Path) -> Run {
    let spec = spec.to_str().expect("a UTF-8 path");
    hubform(world, &["apply", "--auto-approve", spec]).expect_code(0)
}

/// `hubform plan --detailed-exitcode SPEC`.
pub fn plan(world: &World, spec: &std::path::Path) -> Run {
    let spec = spec.to_str().expect("a UTF-8 path");
    hubform(world, &["plan", "--detailed-exitcode", spec])
}

/// Actions that change something (not Describe/Get/List).
pub fn is_mutating(action: &str) -> bool {
    !["Describe", "Get", "List"]
        .iter()
        .any(|p| action.starts_with(p))
}

/// The public address of the example workshop's Elastic IP, read from
/// moto directly.
pub async fn elastic_ip(world: &World) -> String {
    let out = world
        .ec2()
        .await
        .describe_addresses()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:hubform:workshop")
                .values("groundwater-central-asia")
                .build(),
        )
        .send()
        .await
        .expect("DescribeAddresses");
    out.addresses()
        .first()
        .and_then(|a| a.public_ip())
        .expect("an Elastic IP")
        .to_owned()
}

/// The first ports of the ingress rules of the security groups named
/// `group` in moto, sorted.
pub async fn ingress_ports(ec2: &aws_sdk_ec2::Client, group: &str) -> Vec<i32> {
    let out = ec2
        .describe_security_groups()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("group-name")
                .values(group)
                .build(),
        )
        .send()
        .await
        .expect("DescribeSecurityGroups");
    let mut ports: Vec<i32> = out
        .security_groups()
        .iter()
        .flat_map(|g| g.ip_permissions())
        .filter_map(|p| p.from_port())
        .collect();
    ports.sort();
    ports
}

/// The instances moto holds that are not terminated: those of `workshop`
/// (by its tag), or every one with `None`.
pub async fn live_instances(
    ec2: &aws_sdk_ec2::Client,
    workshop: Option<&str>,
) -> Vec<aws_sdk_ec2::types::Instance> {
    let filters = workshop.map(|w| {
        vec![aws_sdk_ec2::types::Filter::builder()
            .name("tag:hubform:workshop")
            .values(w)
            .build()]
    });
    let out = ec2
        .describe_instances()
        .set_filters(filters)
        .send()
        .await
        .expect("DescribeInstances");
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| {
            i.state().and_then(|s| s.name()).map(|n| n.as_str())
                != Some("terminated")
        })
        .cloned()
        .collect()
}
