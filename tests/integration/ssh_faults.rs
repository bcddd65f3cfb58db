//! SSH faults during apply: the connection dropped in the middle of each
//! kind of host action, a host that never answers, a frozen connection
//! and a reboot. hubform connects again and repeats the action (each is
//! safe to repeat), or fails naming the server, the action and what to do;
//! a re-apply always converges. The host is checked over SSH, the AWS side
//! through moto.
//!
//! A fault strikes at a known moment: a one-shot "hold" keeps the action's
//! process waiting on the host (a `.pth` hook in a Python environment, or
//! a line in a shell double) and says so in `/tmp/hubform-held`; the test
//! then drops the connections, and lets the held process go on.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{self, spec_text, write_spec, Run, EXAMPLE};
use crate::host::TestHost;
use crate::tljh_double::{config_value, TljhHost};
use crate::world::{workspace_root, World};

/// Holds a Python process whose argv has the word in /tmp/hubform-hold,
/// once: the first such process renames the file to /tmp/hubform-held and
/// waits while that exists.
const HOLD_HOOK: &str = "import os, time
try:
    word = open('/tmp/hubform-hold').read().strip()
except OSError:
    word = ''
if word:
    argv = open('/proc/self/cmdline', 'rb').read().decode('utf-8', 'replace')
    if word in argv.split('\\0'):
        try:
            os.rename('/tmp/hubform-hold', '/tmp/hubform-held')
        except OSError:
            word = ''
        while word and os.path.exists('/tmp/hubform-held'):
            time.sleep(0.05)
";

/// The same hold for shell doubles: `hold WORD`.
const HOLD_SH: &str = r#"hold() {
  [ "$(cat /tmp/hubform-hold 2>/dev/null)" = "$1" ] || return 0
  mv /tmp/hubform-hold /tmp/hubform-held 2>/dev/null || return 0
  while [ -e /tmp/hubform-held ]; do sleep 0.05; done
}
"#;

/// The user environment's and the hub environment's Python.
const USER_PYTHON: &str = "/opt/tljh/user/bin/python";
const HUB_PYTHON: &str = "/opt/tljh/hub/bin/python3";

/// A workshop whose server's host is a TLJH test host.
struct Faulty {
    world: World,
    tljh: TljhHost,
    spec: PathBuf,
    env: Vec<(String, String)>,
}

impl Faulty {
    /// The example spec with a `tljh` section for a fresh test host plus
    /// `extra`; nothing applied.
    async fn new(extra: &str) -> Faulty {
        let world = World::start().await;
        let tljh = TljhHost::start();
        let bootstrap =
            workspace_root().join("tests/harness/tljh/bootstrap.py");
        let block = format!(
            "    tljh:
      ssh_endpoint: {endpoint}
      bootstrap: {bootstrap}
      admins: [lecturer]
      config:
        http.port: {http}
        limits.memory: 4G
      packages:
        pip: [hubform-tiny-a]
{extra}",
            endpoint = tljh.host.endpoint(),
            bootstrap = bootstrap.display(),
            http = tljh.http_port,
        );
        // The host accepts only its own client key: it stands in for the
        // key pair's private key, which hubform then imports.
        let keys = world.dir().join("keys");
        std::fs::create_dir_all(&keys).expect("keys folder");
        std::fs::copy(
            tljh.host.client_key(),
            keys.join("workshop-central-asia.pem"),
        )
        .expect("copy the key");
        let text = format!("{}{block}", spec_text(EXAMPLE));
        let spec = write_spec(&world, "workshop.yaml", &text);
        Faulty {
            world,
            tljh,
            spec,
            env: vec![("HUBFORM_SSH_RETRY_SECS".into(), "20".into())],
        }
    }

    /// [`Faulty::new`], applied, with the hold hook in both Python
    /// environments.
    async fn applied(extra: &str) -> Faulty {
        let w = Faulty::new(extra).await;
        w.apply();
        hook(&w.tljh.host, USER_PYTHON);
        hook(&w.tljh.host, HUB_PYTHON);
        w
    }

    fn host(&self) -> &TestHost {
        &self.tljh.host
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.world.hubform();
        cmd.args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd
    }

    fn spec_arg(&self) -> &str {
        self.spec.to_str().expect("a UTF-8 path")
    }

    fn apply(&self) -> Run {
        let args = ["apply", "--auto-approve", self.spec_arg()];
        common::run(self.command(&args)).expect_code(0)
    }

    fn plan_no_changes(&self) {
        let args = ["plan", "--detailed-exitcode", self.spec_arg()];
        let run = common::run(self.command(&args)).expect_code(0);
        assert!(run.stdout.contains("No changes."), "{}", run.stdout);
    }

    /// Replaces `from` (there once) in the spec by `to`.
    fn edit(&self, from: &str, to: &str) {
        let text = std::fs::read_to_string(&self.spec).expect("read spec");
        assert_eq!(text.matches(from).count(), 1, "{from:?} in\n{text}");
        std::fs::write(&self.spec, text.replace(from, to)).expect("write spec");
    }

    /// Starts `hubform ARGS…` with both streams piped.
    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hubform")
    }

    /// Starts `hubform apply` (or `plan` with `["plan"]`), waits until
    /// the hold on `word` holds, runs `fault`, lets the held process go
    /// on and returns hubform's result.
    fn fault_during(
        &self,
        command: &str,
        word: &str,
        fault: impl FnOnce(&TestHost),
    ) -> Run {
        set_hold(self.host(), word);
        let args = match command {
            "apply" => vec!["apply", "--auto-approve", self.spec_arg()],
            _ => vec![command, self.spec_arg()],
        };
        let mut child = self.spawn(&args);
        wait_until_held(self.host(), &mut child, word);
        fault(self.host());
        release(self.host());
        finish(child)
    }
}

/// Puts [`HOLD_HOOK`] into the site-packages of `python`'s environment.
fn hook(host: &TestHost, python: &str) {
    let site = host
        .ssh_ok(&format!(
            "{python} -c 'import sysconfig; \
             print(sysconfig.get_paths()[\"purelib\"])'"
        ))
        .trim()
        .to_owned();
    host.sudo_ok(&format!(
        "cat >{site}/hubform_test_hold.py <<'EOF'\n{HOLD_HOOK}EOF\n\
         echo 'import hubform_test_hold' >{site}/hubform_test_hold.pth"
    ));
}

fn set_hold(host: &TestHost, word: &str) {
    std::fs::write(host.root_path("/tmp/hubform-hold"), word)
        .expect("write the hold file");
}

/// Waits until a process on the host holds, failing if hubform ends
/// first or nothing holds within two minutes.
fn wait_until_held(host: &TestHost, child: &mut Child, word: &str) {
    let held = host.root_path("/tmp/hubform-held");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !held.exists() {
        let ended = child.try_wait().ok().flatten().is_some();
        if ended || Instant::now() > deadline {
            panic!("nothing held on {word:?}:\n{}", stop(child));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Ends hubform (SIGKILL) and returns what it wrote to stderr.
fn stop(child: &mut Child) -> String {
    let _ = child.kill();
    let _ = child.wait();
    let mut text = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut text);
    }
    text
}

/// Lets the held process go on (it may be an orphan by now).
fn release(host: &TestHost) {
    let _ = std::fs::remove_file(host.root_path("/tmp/hubform-held"));
}

fn finish(child: Child) -> Run {
    let out = child.wait_with_output().expect("hubform ends");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Drops the host's connections; there must have been one.
fn drop_all(host: &TestHost) {
    assert!(host.drop_connections() > 0, "no connection to drop");
}

/// The run rode out a lost connection: it succeeded and said that it
/// connected again.
fn rode_out(run: Run, endpoint: &str) -> Run {
    let run = run.expect_code(0);
    let lost = format!("the ssh connection to {endpoint} was lost");
    assert!(run.stderr.contains(&lost), "{}", run.stderr);
    assert!(run.stderr.contains("connecting again in"), "{}", run.stderr);
    run
}

/// The `hubform:host-key` tag of the instance, read from moto.
async fn pinned_host_key(world: &World) -> Option<String> {
    let found = world
        .ec2()
        .await
        .describe_instances()
        .send()
        .await
        .expect("DescribeInstances");
    found
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .flat_map(|i| i.tags())
        .find(|t| t.key() == Some("hubform:host-key"))
        .and_then(|t| t.value())
        .map(str::to_owned)
}

/// The instances moto holds that are not terminated (the world holds one
/// workshop).
async fn instances(world: &World) -> usize {
    crate::common::live_instances(&world.ec2().await, None)
        .await
        .len()
}

/// `KIND STATUS` of each recorded `tljh-config reload`.
fn reloads(tljh: &TljhHost) -> Vec<String> {
    tljh.records("reloads.jsonl")
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["kind"].as_str().unwrap_or_default(),
                r["status"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

/// How often the installer set up the user environment from scratch.
fn fresh_installs(host: &TestHost) -> usize {
    host.sudo_ok("cat /opt/tljh/installer.log")
        .matches("Downloading & setting up user environment")
        .count()
}

/// TLJH is installed, complete and configured, once.
fn installed_once(w: &Faulty) {
    let host = w.host();
    assert_eq!(fresh_installs(host), 1, "one fresh install");
    host.ssh_ok("test -L /usr/bin/tljh-config");
    let config = host.sudo_ok("/usr/bin/tljh-config show");
    assert!(config.contains("lecturer"), "{config}");
    assert!(config.contains("memory: 4G"), "{config}");
    host.ssh_ok(&format!("{USER_PYTHON} -c 'import hubform_tiny_a'"));
}

#[tokio::test(flavor = "multi_thread")]
async fn probe_connection_dropped_is_retried() {
    let w = Faulty::applied("").await;
    let before = w.host().connections_accepted();

    let run = w.fault_during("plan", "list", drop_all);

    let run = rode_out(run, &w.host().endpoint());
    assert!(run.stdout.contains("No changes."), "{}", run.stdout);
    assert!(run.stderr.contains("the host probe"), "{}", run.stderr);
    assert_eq!(w.host().connections_accepted() - before, 2, "one reconnect");
}

#[tokio::test(flavor = "multi_thread")]
async fn bootstrap_connection_dropped_installs_tljh_once() {
    let w = Faulty::new("").await;
    // Slow steps, so the drop comes while the installer runs.
    w.host()
        .sudo_ok("echo STEP_DELAY=0.3 >>/etc/hubform-double/host.env");
    let log = w.host().root_path("/opt/tljh/installer.log");
    let mut child = w.spawn(&["apply", "--auto-approve", w.spec_arg()]);
    wait_for_log(&log, "Setting up JupyterHub...", &mut child);
    drop_all(w.host());

    rode_out(finish(child), &w.host().endpoint());
    installed_once(&w);
    assert_eq!(instances(&w.world).await, 1);
    w.plan_no_changes();
}

/// Waits until the file at `path` holds `text`.
fn wait_for_log(path: &std::path::Path, text: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        if log.contains(text) {
            return;
        }
        let ended = child.try_wait().ok().flatten().is_some();
        if ended || Instant::now() > deadline {
            panic!(
                "never saw {text:?} in {}:\n{log}\n{}",
                path.display(),
                stop(child)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reboot_during_bootstrap_reconnects_and_completes_the_install() {
    let w = Faulty::new("").await;
    w.host()
        .sudo_ok("echo STEP_DELAY=0.3 >>/etc/hubform-double/host.env");
    let log = w.host().root_path("/opt/tljh/installer.log");
    let mut child = w.spawn(&["apply", "--auto-approve", w.spec_arg()]);
    wait_for_log(&log, "Setting up JupyterHub...", &mut child);
    w.host().restart();

    let run = rode_out(finish(child), &w.host().endpoint());
    assert!(run.stderr.contains("the TLJH bootstrap"), "{}", run.stderr);
    installed_once(&w);
    // The same host key after the reboot: the pin stands.
    assert_eq!(
        pinned_host_key(&w.world).await.as_deref(),
        Some(&*w.host().host_public_key())
    );
    w.plan_no_changes();
}

#[tokio::test(flavor = "multi_thread")]
async fn config_set_connection_dropped_is_retried() {
    let w = Faulty::applied("").await;
    w.edit("limits.memory: 4G", "limits.memory: 2G");

    let run = w.fault_during("apply", "set", drop_all);

    rode_out(run, &w.host().endpoint());
    assert_eq!(config_value(&w.tljh, "limits.memory"), json!("2G"));
    assert_eq!(
        reloads(&w.tljh).last().map(String::as_str),
        Some("hub complete")
    );
    w.plan_no_changes();
}

#[tokio::test(flavor = "multi_thread")]
async fn config_reload_connection_dropped_is_retried() {
    let mut w = Faulty::applied("").await;
    // The lost reload spins on the host until its timeout (its output
    // goes to a dead pipe); the repeat waits for it on the host's lock.
    w.env
        .push(("HUBFORM_RELOAD_TIMEOUT_SECS".into(), "5".into()));
    w.edit("limits.memory: 4G", "limits.memory: 2G");
    let before = reloads(&w.tljh).len();

    let run = w.fault_during("apply", "reload", drop_all);

    rode_out(run, &w.host().endpoint());
    assert_eq!(config_value(&w.tljh, "limits.memory"), json!("2G"));
    // The held reload went on after the drop, then the repeat ran; the
    // hub loaded the new value.
    let done = reloads(&w.tljh);
    assert_eq!(done.last().map(String::as_str), Some("hub complete"));
    assert!(done.len() >= before + 2, "{done:?}");
    let loaded = w.tljh.state("hub-loaded.json");
    assert_eq!(loaded["file"]["limits"]["memory"], json!("2G"), "{loaded}");
    w.plan_no_changes();
}

#[tokio::test(flavor = "multi_thread")]
async fn pip_install_connection_dropped_is_retried() {
    let w = Faulty::applied("").await;
    w.edit(
        "pip: [hubform-tiny-a]",
        "pip: [hubform-tiny-a, hubform-tiny-b]",
    );

    let run = w.fault_during("apply", "hubform-tiny-b", drop_all);

    rode_out(run, &w.host().endpoint());
    w.host()
        .ssh_ok(&format!("{USER_PYTHON} -c 'import hubform_tiny_b'"));
    w.plan_no_changes();
}

#[tokio::test(flavor = "multi_thread")]
async fn conda_install_connection_dropped_is_retried() {
    let w = Faulty::applied("").await;
    w.edit(
        "pip: [hubform-tiny-a]",
        "pip: [hubform-tiny-a]\n        conda: [hubform-tiny-conda]",
    );

    let run = w.fault_during("apply", "hubform-tiny-conda", drop_all);

    rode_out(run, &w.host().endpoint());
    let listed = w.host().ssh_ok("/opt/tljh/user/bin/conda list --json");
    assert!(listed.contains("\"hubform-tiny-conda\""), "{listed}");
    w.plan_no_changes();
}

#[tokio::test(flavor = "multi_thread")]
async fn verification_connection_dropped_is_retried() {
    let w = Faulty::applied("").await;
    w.edit("limits.memory: 4G", "limits.memory: 2G");

    // The verification's import check is the one `python -`.
    let run = w.fault_during("apply", "-", drop_all);

    let run = rode_out(run, &w.host().endpoint());
    assert!(run.stderr.contains("the verification"), "{}", run.stderr);
    assert_eq!(config_value(&w.tljh, "limits.memory"), json!("2G"));
}

/// An `apt-get` double that holds on `apt-upgrade` during a real
/// upgrade: `-s upgrade` lists the pending upgrades, `upgrade` applies
/// them; every call is recorded.
fn apt_get() -> String {
    format!(
        r#"#!/bin/sh
{HOLD_SH}state=/var/lib/hubform-apt
mkdir -p "$state"
echo "$*" >>"$state/calls"
case " $* " in
  *" -s "*) n=$(cat "$state/pending" 2>/dev/null || echo 0); i=0
    while [ "$i" -lt "$n" ]; do
      echo "Inst pkg$i [1.0] (1.1 Ubuntu:22.04/jammy-updates [amd64])"
      i=$((i + 1))
    done ;;
  *" upgrade "*) hold apt-upgrade; echo 0 >"$state/pending"
    echo "2 upgraded, 0 newly installed" ;;
  *" update "*) echo "Reading package lists... Done" ;;
esac
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn system_upgrade_connection_dropped_is_retried() {
    let w = Faulty::applied("").await;
    w.host().sudo_ok(&format!(
        "cat >/usr/bin/apt-get <<'EOF'\n{}EOF\nchmod 0755 /usr/bin/apt-get\n\
         mkdir -p /var/lib/hubform-apt && echo 2 >/var/lib/hubform-apt/pending",
        apt_get()
    ));
    w.edit(
        "pip: [hubform-tiny-a]",
        "pip: [hubform-tiny-a]\n      system: { upgrade: true }",
    );

    let run = w.fault_during("apply", "apt-upgrade", drop_all);

    rode_out(run, &w.host().endpoint());
    assert_eq!(w.host().sudo_ok("cat /var/lib/hubform-apt/pending"), "0\n");
    w.plan_no_changes();
}

/// The disk tool doubles, with `growpart` holding on `growpart`, and a
/// 30 GiB disk under a 20 GiB file system.
fn disk_tools() -> String {
    format!(
        "{}echo {} >/var/lib/hubform-disk/disk; echo {} >/var/lib/hubform-disk/fs\n",
        crate::tljh_double::disk_tools(&format!("{HOLD_SH}hold growpart\n")),
        30u64 << 30,
        20u64 << 30,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn root_grow_connection_dropped_is_retried() {
    let w = Faulty::applied("").await;
    w.host().sudo_ok(&disk_tools());
    w.edit("size_gb: 20", "size_gb: 30");

    let run = w.fault_during("apply", "growpart", drop_all);

    let run = rode_out(run, &w.host().endpoint());
    assert!(
        run.stderr.contains("root file system grown to 30.0 GiB"),
        "{}",
        run.stderr
    );
    let fs = w.host().sudo_ok("cat /var/lib/hubform-disk/fs");
    assert_eq!(fs.trim(), (30u64 << 30).to_string());
    let volumes = w
        .world
        .ec2()
        .await
        .describe_volumes()
        .send()
        .await
        .expect("DescribeVolumes");
    let sizes: Vec<i32> =
        volumes.volumes().iter().filter_map(|v| v.size()).collect();
    assert!(sizes.contains(&30), "{sizes:?}");
    w.plan_no_changes();
}

#[tokio::test(flavor = "multi_thread")]
async fn frozen_connection_is_noticed_by_keepalive_and_retried() {
    let mut w = Faulty::applied("").await;
    w.env
        .push(("HUBFORM_SSH_KEEPALIVE_SECS".into(), "1".into()));
    w.edit(
        "pip: [hubform-tiny-a]",
        "pip: [hubform-tiny-a, hubform-tiny-b]",
    );

    let mut frozen = Vec::new();
    let started = Instant::now();
    let run = w.fault_during("apply", "hubform-tiny-b", |host: &TestHost| {
        frozen = host.freeze_connections();
        assert!(!frozen.is_empty(), "no connection to freeze");
    });
    let took = started.elapsed();
    w.host().thaw(&frozen);

    let run = rode_out(run, &w.host().endpoint());
    assert!(run.stderr.contains("keepalive"), "{}", run.stderr);
    assert!(took < Duration::from_secs(60), "took {took:?}");
    w.host()
        .ssh_ok(&format!("{USER_PYTHON} -c 'import hubform_tiny_b'"));
    w.plan_no_changes();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_that_never_answers_ssh_is_left_out_of_plan_and_apply() {
    let mut w = Faulty::applied("").await;
    // Connections are accepted by the kernel and never answered.
    let silent =
        std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let endpoint = silent.local_addr().expect("address").to_string();
    w.env = vec![
        ("HUBFORM_SSH_ENDPOINT".into(), endpoint.clone()),
        ("HUBFORM_SSH_TIMEOUT_SECS".into(), "1".into()),
        ("HUBFORM_SSH_RETRY_SECS".into(), "2".into()),
    ];
    let no_answer = format!("server hub: no ssh answer from {endpoint}");

    // plan shows the AWS part and leaves the host out, saying why.
    let started = Instant::now();
    let args = ["plan", w.spec_arg()];
    let run = common::run(w.command(&args)).expect_code(0);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let text = format!("{}{}", run.stdout, run.stderr);
    assert!(text.contains(&no_answer), "{text}");
    assert!(text.contains("security group allows ssh"), "{text}");
    assert!(text.contains("its host layer is not checked"), "{text}");
    assert!(text.contains("No changes."), "{text}");

    // apply still makes the AWS change (here a rule for port 8080), then
    // fails: the host layer was not checked.
    w.edit(
        "{ ports: [22, 80, 443], from: 0.0.0.0/0 }",
        "{ ports: [22, 80, 443, 8080], from: 0.0.0.0/0 }",
    );
    let args = ["apply", "--auto-approve", w.spec_arg()];
    let run = common::run(w.command(&args)).expect_code(1);
    let text = format!("{}{}", run.stdout, run.stderr);
    assert!(
        text.contains("did not answer SSH before the changes"),
        "{text}"
    );
    let ports =
        common::ingress_ports(&w.world.ec2().await, "workshop-sg").await;
    assert!(ports.contains(&8080), "the AWS change was made: {ports:?}");

    // drift (which takes the endpoint from the spec) cannot leave a host
    // out: it is an error there.
    w.edit(
        &format!("ssh_endpoint: {}", w.host().endpoint()),
        &format!("ssh_endpoint: {endpoint}"),
    );
    let args = ["drift", w.spec_arg()];
    let run = common::run(w.command(&args)).expect_code(1);
    let text = format!("{}{}", run.stdout, run.stderr);
    assert!(text.contains(&no_answer), "{text}");
    drop(silent);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_gone_after_a_drop_fails_honestly_and_reapply_converges() {
    let mut w = Faulty::applied("").await;
    w.env = vec![
        ("HUBFORM_SSH_TIMEOUT_SECS".into(), "1".into()),
        ("HUBFORM_SSH_RETRY_SECS".into(), "2".into()),
    ];
    w.edit(
        "pip: [hubform-tiny-a]",
        "pip: [hubform-tiny-a, hubform-tiny-b]",
    );

    let mut listener = Vec::new();
    let run = w.fault_during("apply", "hubform-tiny-b", |host: &TestHost| {
        listener = host.freeze_listener();
        drop_all(host);
    });
    w.host().thaw(&listener);

    let run = run.expect_code(1);
    let text = format!("{}{}", run.stdout, run.stderr);
    let endpoint = w.host().endpoint();
    for said in [
        format!("server hub: no ssh answer from {endpoint}"),
        "after the ssh connection was lost during the package install"
            .to_owned(),
        "run hubform again: the package install is safe to repeat".to_owned(),
    ] {
        assert!(text.contains(&said), "{said:?} in\n{text}");
    }

    w.apply();
    w.host()
        .ssh_ok(&format!("{USER_PYTHON} -c 'import hubform_tiny_b'"));
    assert_eq!(instances(&w.world).await, 1);
    w.plan_no_changes();
}
