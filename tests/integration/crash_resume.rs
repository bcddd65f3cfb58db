//! Crash-resume of the whole example, host layer included: `apply` is
//! killed (SIGKILL) at each named step, AWS and host, then run again. The
//! re-run must converge: one instance, one Elastic IP, one key pair, one
//! security group, the private key kept and matching its key pair, the
//! access key's secret file there (or the lost secret reported), TLJH
//! installed and configured on the host, and then nothing left to do.
//!
//! The steps are `hubform_core::pause` points; `docs/reliability.md`
//! ("Crashes and resuming") lists them with what the re-run does.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use aws_sdk_ec2::types::{Filter, Instance};
use serde_json::Value;

use crate::common::{run, Run};
use crate::example_host::offline_example;
use crate::host::{describe, shell_quote};
use crate::tljh_double::{config_value, TljhHost, VERSION_PROBE};
use crate::world::{workspace_root, World};

const WORKSHOP: &str = "groundwater-central-asia";
const KEY_PAIR: &str = "workshop-central-asia";
const KEY_FILE: &str = "keys/workshop-central-asia.pem";
const GROUP: &str = "workshop-sg";
const USER: &str = "ec2-admin";
const CREDENTIALS: &str = "keys/ec2-admin.credentials";
/// What the re-run says when the kill lost an access key's secret.
const LOST_SECRET: &str = "the access key exists but its secret file \
                           keys/ec2-admin.credentials is missing";

/// One test per step, in the order a first apply reaches them (the
/// applier may run independent steps at the same time).
macro_rules! crash_at_each_step {
    ($($(#[$meta:meta])* $test:ident: $step:literal,)+) => {
        /// Every step the crash tests kill `apply` at, and its test.
        const STEPS: &[(&str, &str)] = &[$(($step, stringify!($test))),+];
        $(
            $(#[$meta])*
            #[tokio::test(flavor = "multi_thread")]
            async fn $test() {
                crash_and_resume($step).await;
            }
        )+
    };
}

crash_at_each_step! {
    crash_after_create_user: "after-create-user",
    crash_after_create_access_key: "after-create-access-key",
    crash_after_key_file_written: "after-key-file-written",
    crash_after_import_key_pair: "after-import-key-pair",
    crash_after_create_security_group: "after-create-security-group",
    crash_after_run_instances: "after-run-instances",
    crash_after_allocate_address: "after-allocate-address",
    crash_after_associate_address: "after-associate-address",
    crash_after_pin_host_key: "after-pin-host-key",
    crash_during_tljh_install: "during-tljh",
    crash_after_tljh_install: "after-tljh-install",
    // The killed run wrote config.yaml but never reloaded: the note of
    // unloaded keys makes the re-run set and reload them.
    crash_after_tljh_config_set: "after-tljh-config-set",
    // The killed run's tljh-config script may still run on the host while
    // the re-run probes: the probe waits for the server's lock.
    crash_during_package_install: "during-packages",
    crash_after_pip_install: "after-pip-install",
    crash_before_verify: "before-verify",
}

/// The reliability page names every step and its test.
#[test]
fn every_step_is_documented() {
    let path = workspace_root().join("docs/reliability.md");
    let page = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let section = page
        .split("## Crashes and resuming")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a section on crashes");
    for (step, test) in STEPS {
        assert!(
            section.contains(&format!("`{step}`")) && section.contains(test),
            "docs/reliability.md does not list step {step} with {test}"
        );
    }
}

/// A world, a test host for the TLJH double and the full example spec.
struct Workshop {
    world: World,
    tljh: TljhHost,
    spec: PathBuf,
}

impl Workshop {
    /// The key pair's private key file is the test host's client key
    /// (hubform imports it), unless hubform is to generate it.
    async fn start(generate_key: bool) -> Workshop {
        let world = World::start().await;
        let tljh = TljhHost::start();
        let keys = world.dir().join("keys");
        std::fs::create_dir_all(&keys).expect("keys folder");
        if !generate_key {
            std::fs::copy(tljh.host.client_key(), world.dir().join(KEY_FILE))
                .expect("copy the test host's client key");
        }
        let spec = world.dir().join("workshop.yaml");
        std::fs::write(&spec, offline_example(&tljh)).expect("write the spec");
        Workshop { world, tljh, spec }
    }

    /// `hubform ARGS… --ssh-endpoint HOST:PORT SPEC`. A reload left
    /// running on the host by the killed run (its output channel gone)
    /// holds the server's lock until its timeout, which the re-run's probe
    /// waits out: a short one keeps the tests quick.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.world.hubform();
        cmd.env("HUBFORM_RELOAD_TIMEOUT_SECS", "15")
            .args(args)
            .arg("--ssh-endpoint")
            .arg(self.tljh.host.endpoint())
            .arg(&self.spec);
        cmd
    }

    fn apply(&self) -> Run {
        run(self.command(&["apply", "--auto-approve"]))
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.world.dir().join(relative)
    }
}

/// Applies the full example, kills it at `step`, applies again and checks
/// that the world converged.
async fn crash_and_resume(step: &str) {
    let generate_key = step == "after-key-file-written";
    let w = Workshop::start(generate_key).await;

    let child = w
        .world
        .spawn_paused(w.command(&["apply", "--auto-approve"]), step);
    let key_before = std::fs::read(w.path(KEY_FILE)).ok();
    kill(child);
    crate::lock::free_dead_runs_lock(&w.world).await;
    if generate_key {
        // As cloud-init would put the key pair's public key on the new
        // instance: the test host knows only its own client key.
        authorize(&w.tljh, &public_key_of(&w.path(KEY_FILE)));
    }

    let resumed = w.apply();
    assert_eq!(
        resumed.code, 0,
        "the re-run after a kill at {step} failed\n--- stdout\n{}\n\
         --- stderr\n{}",
        resumed.stdout, resumed.stderr
    );
    let said = format!("{}\n{}", resumed.stdout, resumed.stderr);
    // Shown when a later check fails.
    eprintln!("--- the re-run after {step}\n{said}");
    let lost = said.contains(LOST_SECRET);
    if step == "after-create-access-key" {
        assert!(lost, "the lost secret is reported:\n{said}");
    }
    if lost {
        // The secret died with the killed run: at after-create-access-key
        // always, at another step when the IAM steps, which run beside
        // the EC2 ones, had the key made but not yet written (a loaded
        // machine). The re-run says so and what to do; doing it gives a
        // new key and its file.
        assert!(!w.path(CREDENTIALS).exists(), "no secret to write");
        delete_access_keys(&w.world).await;
        let again = w.apply();
        assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    }

    expect_one_of_each(&w, &said).await;
    expect_private_key(&w, key_before.as_deref()).await;
    expect_access_key(&w).await;
    expect_host_pinned(&w).await;
    expect_tljh(&w.tljh);
    expect_journal_closed(&w);
    expect_no_changes(&w);
}

fn kill(mut child: Child) {
    child.kill().expect("SIGKILL the paused hubform");
    let status = child.wait().expect("wait for the killed hubform");
    assert!(!status.success(), "killed, not finished: {status}");
}

/// The workshop's instances that are not terminated, as moto shows them.
async fn instances(world: &World) -> Vec<Instance> {
    crate::common::live_instances(&world.ec2().await, Some(WORKSHOP)).await
}

/// Exactly one instance, Elastic IP (on that instance), key pair and
/// security group: a kill never leads to a second one.
async fn expect_one_of_each(w: &Workshop, said: &str) {
    let ec2 = w.world.ec2().await;

    let found = instances(&w.world).await;
    assert_eq!(found.len(), 1, "instances: {found:?}\n{said}");
    let instance = found[0].instance_id().unwrap_or_default();

    let addresses = ec2
        .describe_addresses()
        .send()
        .await
        .expect("DescribeAddresses");
    let addresses = addresses.addresses();
    assert_eq!(addresses.len(), 1, "Elastic IPs: {addresses:?}\n{said}");
    assert_eq!(
        addresses[0].instance_id(),
        Some(instance),
        "the Elastic IP is on the instance"
    );

    let pairs = key_pairs(&w.world).await;
    assert_eq!(pairs.len(), 1, "key pairs {KEY_PAIR}: {pairs:?}");

    let groups = ec2
        .describe_security_groups()
        .filters(Filter::builder().name("group-name").values(GROUP).build())
        .send()
        .await
        .expect("DescribeSecurityGroups");
    let groups = groups.security_groups();
    assert_eq!(groups.len(), 1, "security groups {GROUP}: {groups:?}");
    let ingress: Vec<_> = groups[0]
        .ip_permissions()
        .iter()
        .filter_map(|p| p.from_port())
        .collect();
    assert_eq!(ingress.len(), 3, "ports 22, 80 and 443: {ingress:?}");
}

/// The public keys (OpenSSH text) of the key pairs named [`KEY_PAIR`].
async fn key_pairs(world: &World) -> Vec<String> {
    let out = world
        .ec2()
        .await
        .describe_key_pairs()
        .include_public_key(true)
        .send()
        .await
        .expect("DescribeKeyPairs");
    out.key_pairs()
        .iter()
        .filter(|k| k.key_name() == Some(KEY_PAIR))
        .map(|k| k.public_key().unwrap_or_default().to_owned())
        .collect()
}

/// `TYPE BASE64` of an OpenSSH public key line, without its comment.
fn key_words(line: &str) -> String {
    line.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The public key of a private key file, by `ssh-keygen -y`.
fn public_key_of(private: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-y")
        .arg("-f")
        .arg(private)
        .output()
        .expect("run ssh-keygen");
    assert!(
        out.status.success(),
        "{} is not a usable private key: {}",
        private.display(),
        describe(&out)
    );
    key_words(&String::from_utf8_lossy(&out.stdout))
}

/// Adds `public` to the login user's authorized keys on the host.
fn authorize(tljh: &TljhHost, public: &str) {
    let command =
        format!("echo {} >> ~/.ssh/authorized_keys", shell_quote(public));
    tljh.host.ssh_ok(&command);
}

/// The private key file is there, unchanged by the re-run, and belongs
/// to the key pair in EC2.
async fn expect_private_key(w: &Workshop, before: Option<&[u8]>) {
    let path = w.path(KEY_FILE);
    let after = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("the key file {}: {e}", path.display()));
    if let Some(before) = before {
        assert!(before == after, "the re-run rewrote the key file");
    }
    let pairs = key_pairs(&w.world).await;
    assert_eq!(
        public_key_of(&path),
        key_words(&pairs[0]),
        "the key file does not belong to the key pair in EC2"
    );
}

/// The user's access keys in IAM.
async fn access_keys(world: &World) -> Vec<String> {
    let out = world
        .iam()
        .await
        .list_access_keys()
        .user_name(USER)
        .send()
        .await
        .expect("ListAccessKeys");
    out.access_key_metadata()
        .iter()
        .filter_map(|k| k.access_key_id().map(str::to_owned))
        .collect()
}

async fn delete_access_keys(world: &World) {
    let iam = world.iam().await;
    for id in access_keys(world).await {
        iam.delete_access_key()
            .user_name(USER)
            .access_key_id(id)
            .send()
            .await
            .expect("DeleteAccessKey");
    }
}

/// One access key, and its file holds that key's id.
async fn expect_access_key(w: &Workshop) {
    let keys = access_keys(&w.world).await;
    assert_eq!(keys.len(), 1, "access keys of {USER}: {keys:?}");
    let path = w.path(CREDENTIALS);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("aws_access_key_id = "))
        .unwrap_or_default();
    assert_eq!(id, keys[0], "the credentials file holds the live key");
}

/// The instance carries the test host's key as its pinned host key.
async fn expect_host_pinned(w: &Workshop) {
    let found = instances(&w.world).await;
    let pin = found[0]
        .tags()
        .iter()
        .find(|t| t.key() == Some("hubform:host-key"))
        .and_then(|t| t.value())
        .unwrap_or_default();
    let host_key = w.tljh.host.host_public_key();
    let blob = host_key.split_whitespace().nth(1).unwrap_or_default();
    assert!(
        !blob.is_empty() && pin.contains(blob),
        "pinned {pin:?}, the host has {host_key}"
    );
}

/// TLJH installed, configured as the spec says, the packages there.
fn expect_tljh(tljh: &TljhHost) {
    assert_eq!(tljh.host.ssh_ok(VERSION_PROBE).trim(), "2.0.0");
    assert_eq!(
        config_value(tljh, "users.admin"),
        serde_json::json!(["lecturer"])
    );
    assert_eq!(config_value(tljh, "limits.memory"), "4G");
    assert_eq!(config_value(tljh, "services.cull.timeout"), 3600);
    assert_eq!(config_value(tljh, "https.enabled"), Value::Null);

    // The running hub read that configuration: a reload was not lost.
    let loaded = tljh.state("hub-loaded.json");
    let config = &loaded["config"];
    assert_eq!(config["limits"]["memory"], "4G", "hub loaded {loaded}");
    assert_eq!(config["services"]["cull"]["timeout"], 3600, "{loaded}");
    assert_eq!(config["users"]["admin"], serde_json::json!(["lecturer"]));

    let imports = "/opt/tljh/user/bin/python -c 'import pandas, numpy, \
                   matplotlib, scipy, flopy, geopandas, jupyter, ipywidgets'";
    let out = tljh.host.ssh(imports);
    assert!(out.status.success(), "{}", describe(&out));
    let listed: Value = serde_json::from_str(
        &tljh.host.ssh_ok("/opt/tljh/user/bin/conda list --json"),
    )
    .expect("conda list JSON");
    for name in ["geopandas", "rasterio"] {
        let found = listed
            .as_array()
            .is_some_and(|all| all.iter().any(|r| r["name"] == name));
        assert!(found, "conda has no {name}: {listed}");
    }
}

/// No create is left open in the journal.
fn expect_journal_closed(w: &Workshop) {
    let path = w.path(&format!(".hubform/{WORKSHOP}.journal.json"));
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    let entries: serde_json::Map<String, Value> = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: {e}: {text}", path.display()));
    assert!(entries.is_empty(), "open journal entries: {entries:?}");
}

/// A last plan finds nothing to do (HTTPS waits for DNS, as on a first
/// apply without the name).
fn expect_no_changes(w: &Workshop) {
    let plan = run(w.command(&["plan", "--detailed-exitcode"]));
    assert!(
        plan.code == 0 && plan.stdout.contains("No changes."),
        "a plan after the re-run (exit {})\n--- stdout\n{}\n--- stderr\n{}",
        plan.code,
        plan.stdout,
        plan.stderr
    );
}
