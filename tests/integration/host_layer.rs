//! The host layer end to end: the example workshop with a `tljh` section,
//! applied against moto and a real sshd test host running the TLJH double.
//! Results are checked on the host over SSH, not through hubform.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{self, spec_text, write_spec, Run, EXAMPLE};
use crate::host::{HostOptions, TestHost};
use crate::tljh_double::{
    config_value, hub_status, provision_files, provision_script, TljhHost,
    VERSION_PROBE,
};
use crate::world::World;

/// The example spec with a host layer that reaches `tljh`'s test host.
fn spec_with_host(world: &World, tljh: &TljhHost, extra: &str) -> PathBuf {
    let host = format!(
        "{}        limits.memory: 4G
        services.cull.timeout: 3600
      packages:
        pip: [hubform-tiny-a]
{extra}",
        tljh.spec_block()
    );
    tljh.lend_key(world.dir(), "workshop-central-asia");
    write_spec(
        world,
        "workshop.yaml",
        &format!("{}{host}", spec_text(EXAMPLE)),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn full_spec_converges_and_then_plans_no_changes() {
    let world = World::start().await;
    let tljh = TljhHost::start();
    let spec = spec_with_host(&world, &tljh, "");

    let run = common::apply(&world, &spec);
    assert!(run.stderr.contains("tljh.hub"), "{}", run.stderr);

    // TLJH, its keys and the package are on the host.
    let config = tljh.host.sudo_ok("/usr/bin/tljh-config show");
    assert!(config.contains("lecturer"), "{config}");
    assert!(config.contains("memory: 4G"), "{config}");
    assert!(config.contains("timeout: 3600"), "{config}");
    let imported = tljh
        .host
        .ssh_ok("/opt/tljh/user/bin/python -c 'import hubform_tiny_a'");
    assert_eq!(imported, "");

    // The next plan changes nothing and looks at the host once.
    let before = tljh.host.connections_accepted();
    let run = common::plan(&world, &spec).expect_code(0);
    assert!(run.stdout.contains("No changes."), "{}", run.stdout);
    assert_eq!(
        tljh.host.connections_accepted() - before,
        1,
        "one SSH login"
    );
}

/// The spec's HTTPS section (staging: the ACME double either way).
const HTTPS: &str = "      https:
        letsencrypt_email: it@example.org
        domains: [jupyter.hydrosolutions.ch]
        staging: true
";
/// The domain HTTPS certifies, which tests resolve to the Elastic IP.
const DOMAIN: &str = "jupyter.hydrosolutions.ch";

/// A workshop applied with its host layer: the world, the test host, the
/// spec and the environment hubform runs with.
struct Workshop {
    world: World,
    tljh: TljhHost,
    spec: PathBuf,
    env: Vec<(String, String)>,
}

impl Workshop {
    /// The example spec with `extra` in its `tljh` section, on a fresh
    /// world and `tljh`; nothing applied yet.
    async fn new(tljh: TljhHost, extra: &str) -> Workshop {
        let world = World::start().await;
        let spec = spec_with_host(&world, &tljh, extra);
        Workshop {
            world,
            tljh,
            spec,
            env: Vec::new(),
        }
    }

    /// [`Workshop::new`] on a fresh test host, applied.
    async fn applied(extra: &str) -> Workshop {
        let w = Workshop::new(TljhHost::start(), extra).await;
        w.apply();
        w
    }

    /// [`Workshop::applied`] with HTTPS on: the first apply makes the
    /// Elastic IP, then the domain resolves to it (`HUBFORM_RESOLVE`) and
    /// the second apply turns HTTPS on.
    async fn applied_with_https() -> Workshop {
        let mut w = Workshop::new(TljhHost::start(), HTTPS).await;
        // The host's stand-in for port 443, as http.port is for 80.
        let http = format!("http.port: {}", w.tljh.http_port);
        let https = format!("https.port: {}", w.tljh.https_port);
        w.edit(&http, &format!("{http}\n        {https}"));
        w.apply();
        let ec2 = w.world.ec2().await;
        let found = ec2
            .describe_addresses()
            .send()
            .await
            .expect("DescribeAddresses");
        let ip = found
            .addresses()
            .first()
            .and_then(|a| a.public_ip())
            .expect("the Elastic IP")
            .to_owned();
        w.env
            .push(("HUBFORM_RESOLVE".into(), format!("{DOMAIN}={ip}")));
        w.apply();
        assert_eq!(config_value(&w.tljh, "https.enabled"), json!(true));
        assert_eq!(
            config_value(&w.tljh, "https.letsencrypt.domains"),
            json!([DOMAIN])
        );
        w
    }

    /// `hubform ARGS…` with the workshop's environment.
    fn hubform(&self, args: &[&str]) -> Run {
        common::run(self.command(args))
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

    /// `hubform apply --auto-approve`, which must succeed.
    fn apply(&self) -> Run {
        self.hubform(&["apply", "--auto-approve", self.spec_arg()])
            .expect_code(0)
    }

    /// `hubform plan --detailed-exitcode`.
    fn plan(&self) -> Run {
        self.hubform(&["plan", "--detailed-exitcode", self.spec_arg()])
    }

    /// A plan that finds nothing to do.
    fn plan_no_changes(&self) {
        let run = self.plan().expect_code(0);
        assert!(run.stdout.contains("No changes."), "{}", run.stdout);
    }

    /// Replaces `from` (which must be there once) in the spec by `to`.
    fn edit(&self, from: &str, to: &str) {
        let text = std::fs::read_to_string(&self.spec).expect("read spec");
        assert_eq!(text.matches(from).count(), 1, "{from:?} in\n{text}");
        std::fs::write(&self.spec, text.replace(from, to)).expect("write spec");
    }
}

/// The `tljh-config` calls recorded on the host, as argument lists.
fn tljh_config_calls(tljh: &TljhHost) -> Vec<Vec<String>> {
    tljh.records("commands.jsonl")
        .iter()
        .filter(|c| c["tool"] == "tljh-config")
        .map(|c| {
            c["argv"]
                .as_array()
                .expect("argv")
                .iter()
                .map(|a| a.as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .collect()
}

/// The reloads recorded on the host, as `KIND STATUS`.
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

/// The plan's lines with runs of spaces made one, for exact matching of
/// `~ key = old -> new` lines whatever the column padding.
fn plan_lines(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// A plan that exits 2 with each of `lines` (spaces collapsed) and one
/// change in its summary.
fn plan_shows(w: &Workshop, lines: &[&str]) -> Run {
    let run = w.plan().expect_code(2);
    let seen = plan_lines(&run.stdout);
    for line in lines
        .iter()
        .chain(&["Plan: 0 to add, 1 to change, 0 to destroy."])
    {
        assert!(
            seen.iter().any(|l| l == line),
            "the plan shows {line:?}:\n{}",
            run.stdout
        );
    }
    run
}

/// Polls `check` for up to `secs` seconds.
fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn https_turned_off_by_hand_is_planned_and_repaired() {
    let w = Workshop::applied_with_https().await;
    w.tljh.tljh_config_ok("set https.enabled false");
    w.tljh.tljh_config_ok("reload proxy");
    eventually(10, "the proxy without HTTPS", || {
        w.tljh.state("proxy-loaded.json")["https"].is_null()
    });

    plan_shows(
        &w,
        &["~ tljh_config.hub {", "~ https.enabled = false -> true"],
    );
    let before = reloads(&w.tljh).len();
    w.apply();

    assert_eq!(config_value(&w.tljh, "https.enabled"), json!(true));
    let ran = &reloads(&w.tljh)[before..];
    assert_eq!(
        ran,
        [
            "proxy started",
            "proxy complete",
            "hub started",
            "hub complete"
        ]
    );
    // HTTPS answers again, with the staging certificate the spec asks
    // for (which no one trusts, hence -k).
    let port = w.tljh.https_port;
    let curl = format!(
        "curl -sSk --resolve {DOMAIN}:{port}:127.0.0.1 \
         https://{DOMAIN}:{port}/hub/api"
    );
    eventually(10, "the hub over HTTPS", || {
        w.tljh.host.ssh(&curl).status.success()
    });
    let issued = w.tljh.records("acme.jsonl");
    assert!(
        issued.iter().any(|r| r["status"] == "issued"
            && r["domains"] == json!([DOMAIN])
            && r["email"] == "it@example.org"
            && r["staging"] == true),
        "{issued:?}"
    );
    w.plan_no_changes();
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_removed_by_hand_is_planned_and_repaired() {
    let w = Workshop::applied("").await;
    w.tljh.tljh_config_ok("remove-item users.admin lecturer");
    assert_eq!(config_value(&w.tljh, "users.admin"), json!([]));

    plan_shows(
        &w,
        &[
            "~ tljh_config.hub {",
            "~ users.admin = [] -> [\"lecturer\"]",
        ],
    );
    w.apply();

    assert_eq!(config_value(&w.tljh, "users.admin"), json!(["lecturer"]));
    let loaded = w.tljh.state("hub-loaded.json");
    assert_eq!(loaded["config"]["users"]["admin"], json!(["lecturer"]));
    w.plan_no_changes();
}

#[tokio::test(flavor = "multi_thread")]
async fn domain_added_twice_by_hand_is_planned_and_repaired() {
    let w = Workshop::applied_with_https().await;
    w.tljh.tljh_config_ok(&format!(
        "add-item https.letsencrypt.domains {DOMAIN}"
    ));
    assert_eq!(
        config_value(&w.tljh, "https.letsencrypt.domains"),
        json!([DOMAIN, DOMAIN])
    );

    plan_shows(
        &w,
        &[
            "~ tljh_config.hub {",
            &format!(
                "~ https.letsencrypt.domains = [\"{DOMAIN}\", \"{DOMAIN}\"] \
                 -> [\"{DOMAIN}\"]"
            ),
        ],
    );
    let before = reloads(&w.tljh).len();
    w.apply();

    assert_eq!(
        config_value(&w.tljh, "https.letsencrypt.domains"),
        json!([DOMAIN])
    );
    assert_eq!(
        reloads(&w.tljh)[before..],
        ["proxy started", "proxy complete"]
    );
    w.plan_no_changes();
}

#[tokio::test(flavor = "multi_thread")]
async fn package_uninstalled_by_hand_is_planned_and_repaired() {
    let w = Workshop::applied("").await;
    let import = "/opt/tljh/user/bin/python -c 'import hubform_tiny_a'";
    w.tljh.host.sudo_ok(
        "/opt/tljh/user/bin/python -m pip uninstall -y hubform-tiny-a",
    );
    assert!(!w.tljh.host.ssh(import).status.success(), "uninstalled");

    plan_shows(
        &w,
        &["~ packages.hub {", "~ pip = [", "+ \"hubform-tiny-a\","],
    );
    w.apply();

    w.tljh.host.ssh_ok(import);
    w.plan_no_changes();
}

#[tokio::test(flavor = "multi_thread")]
async fn values_of_the_wrong_type_are_planned_and_repaired() {
    let w = Workshop::applied("").await;

    // A string where TLJH wants an integer (past validation).
    w.tljh
        .tljh_config_ok("--no-validate set services.cull.timeout abc");
    assert_eq!(config_value(&w.tljh, "services.cull.timeout"), json!("abc"));
    plan_shows(
        &w,
        &[
            "~ tljh_config.hub {",
            "~ services.cull.timeout = \"abc\" -> 3600",
        ],
    );
    w.apply();
    assert_eq!(config_value(&w.tljh, "services.cull.timeout"), json!(3600));
    let loaded = w.tljh.state("hub-loaded.json");
    assert_eq!(loaded["config"]["services"]["cull"]["timeout"], json!(3600));
    w.plan_no_changes();

    // An integer where the spec has a string: 4 is not "4G".
    w.tljh.tljh_config_ok("--no-validate set limits.memory 4");
    assert_eq!(config_value(&w.tljh, "limits.memory"), json!(4));
    plan_shows(
        &w,
        &["~ tljh_config.hub {", "~ limits.memory = 4 -> \"4G\""],
    );
    w.apply();
    assert_eq!(config_value(&w.tljh, "limits.memory"), json!("4G"));
    let loaded = w.tljh.state("hub-loaded.json");
    assert_eq!(loaded["config"]["limits"]["memory"], json!("4G"));
    w.plan_no_changes();
}

#[tokio::test(flavor = "multi_thread")]
async fn two_wrong_values_at_once_are_repaired_in_one_apply() {
    let w = Workshop::applied("").await;
    w.tljh
        .tljh_config_ok("--no-validate set services.cull.timeout abc");
    w.tljh.tljh_config_ok("--no-validate set limits.memory 4");

    // Each write alone would fail TLJH's whole-file validation on the
    // other wrong value.
    w.apply();
    assert_eq!(config_value(&w.tljh, "services.cull.timeout"), json!(3600));
    assert_eq!(config_value(&w.tljh, "limits.memory"), json!("4G"));
    w.plan_no_changes();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_key_sets_only_that_key_with_only_its_reload() {
    let w = Workshop::applied("").await;
    let calls = tljh_config_calls(&w.tljh).len();
    let done = reloads(&w.tljh).len();

    // A hub key: only `set` and `reload hub`.
    w.edit("limits.memory: 4G", "limits.memory: 2G");
    plan_shows(&w, &["~ limits.memory = \"4G\" -> \"2G\""]);
    w.apply();
    assert_eq!(
        tljh_config_calls(&w.tljh)[calls..],
        [
            argv(&["set", "limits.memory", "2G"]),
            argv(&["reload", "hub"])
        ]
    );
    assert_eq!(reloads(&w.tljh)[done..], ["hub started", "hub complete"]);
    assert_eq!(config_value(&w.tljh, "limits.memory"), json!("2G"));
    let loaded = w.tljh.state("hub-loaded.json");
    assert_eq!(loaded["config"]["limits"]["memory"], json!("2G"));

    // A proxy key: only `set` and `reload proxy`.
    let calls = tljh_config_calls(&w.tljh).len();
    let done = reloads(&w.tljh).len();
    let old = w.tljh.http_port;
    let [new] = free_ports();
    w.edit(&format!("http.port: {old}"), &format!("http.port: {new}"));
    plan_shows(&w, &[&format!("~ http.port = {old} -> {new}")]);
    w.apply();
    assert_eq!(
        tljh_config_calls(&w.tljh)[calls..],
        [
            argv(&["set", "http.port", &new.to_string()]),
            argv(&["reload", "proxy"])
        ]
    );
    assert_eq!(
        reloads(&w.tljh)[done..],
        ["proxy started", "proxy complete"]
    );
    eventually(10, "the hub on the new port", || {
        hub_status(new) == Some(200)
    });

    // Nothing left to do: no tljh-config command, no reload.
    let calls = tljh_config_calls(&w.tljh).len();
    let done = reloads(&w.tljh).len();
    w.apply();
    assert_eq!(tljh_config_calls(&w.tljh).len(), calls, "no tljh-config");
    assert_eq!(reloads(&w.tljh).len(), done, "no reload");
    w.plan_no_changes();
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

/// `N` distinct free ports on 127.0.0.1 (all bound while they are
/// picked, so none comes twice).
fn free_ports<const N: usize>() -> [u16; N] {
    let listeners = [(); N].map(|()| {
        std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0")
    });
    listeners.map(|l| l.local_addr().expect("local address").port())
}

#[tokio::test(flavor = "multi_thread")]
async fn upgrade_keeps_admins_added_after_the_install() {
    let w = Workshop::applied("      version: 1.0.0\n").await;
    assert_eq!(w.tljh.host.ssh_ok(VERSION_PROBE).trim(), "1.0.0");
    // An admin added after the install, by tljh-config.
    w.edit("admins: [lecturer]", "admins: [lecturer, assistant]");
    w.apply();
    let admins = json!(["assistant", "lecturer"]);
    assert_eq!(config_value(&w.tljh, "users.admin"), admins);
    let log = "cat /opt/tljh/installer.log";
    let before = w.tljh.host.sudo_ok(log).len();

    w.edit("version: 1.0.0", "version: 2.0.0");
    let run =
        plan_shows(&w, &["~ tljh.hub {", "~ version = \"1.0.0\" -> \"2.0.0\""]);
    assert!(!run.stdout.contains("tljh_config.hub"), "{}", run.stdout);
    let calls = tljh_config_calls(&w.tljh).len();
    w.apply();

    assert_eq!(w.tljh.host.ssh_ok(VERSION_PROBE).trim(), "2.0.0");
    let installer = w.tljh.host.sudo_ok(log);
    let upgrade = &installer[before..];
    assert!(
        upgrade.contains("Existing TLJH installation detected, upgrading..."),
        "{upgrade}"
    );
    // bootstrap never had --admin: the installer set up no admins.
    assert!(!installer.contains("Setting up admin users"), "{installer}");
    assert_eq!(config_value(&w.tljh, "users.admin"), admins);
    assert_eq!(tljh_config_calls(&w.tljh).len(), calls, "no tljh-config");
    w.plan_no_changes();
}

/// The instance's `hubform:host-key` tag.
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

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_host_key_is_refused() {
    let w = Workshop::applied("").await;
    let pinned = pinned_host_key(&w.world).await;
    assert_eq!(pinned.as_deref(), Some(&*w.tljh.host.host_public_key()));

    w.tljh.host.rekey();
    let logins = || {
        w.tljh
            .host
            .sshd_log()
            .lines()
            .filter(|l| l.starts_with("Accepted publickey"))
            .count()
    };
    let (accepted, commands) = (logins(), w.tljh.records("commands.jsonl"));

    let run = w.plan().expect_code(1);
    let apply = w
        .hubform(&["apply", "--auto-approve", w.spec_arg()])
        .expect_code(1);

    let endpoint = w.tljh.host.endpoint();
    for out in [&run, &apply] {
        let text = format!("{}{}", out.stdout, out.stderr);
        assert!(
            text.contains(&format!("the ssh host key of {endpoint} changed")),
            "{text}"
        );
        assert!(text.contains("refusing to connect"), "{text}");
    }
    assert_eq!(logins(), accepted, "no login: {}", w.tljh.host.sshd_log());
    assert_eq!(w.tljh.records("commands.jsonl"), commands, "no command");
    assert_eq!(pinned_host_key(&w.world).await, pinned, "the pin stays");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_key_lost_from_the_instance_is_pinned_again_by_apply() {
    let w = Workshop::applied("").await;
    let ec2 = w.world.ec2().await;
    let found = ec2
        .describe_instances()
        .send()
        .await
        .expect("DescribeInstances");
    let instance = found
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find(|i| i.tags().iter().any(|t| t.key() == Some("hubform:host-key")))
        .and_then(|i| i.instance_id())
        .expect("a pinned instance")
        .to_owned();
    ec2.delete_tags()
        .resources(&instance)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("hubform:host-key")
                .build(),
        )
        .send()
        .await
        .expect("DeleteTags");
    assert_eq!(pinned_host_key(&w.world).await, None);

    // A change on a running server: observation trusts the key on first
    // contact, and the apply that acts on it pins it.
    w.edit("limits.memory: 4G", "limits.memory: 2G");
    w.apply();
    assert_eq!(
        pinned_host_key(&w.world).await.as_deref(),
        Some(&*w.tljh.host.host_public_key())
    );
}

/// Site-packages of the user environment gets a hook that holds
/// `pip install hubform-tiny-b` at start while /tmp/hubform-hold exists
/// (and says so in /tmp/hubform-held). /tmp starts empty at a reboot.
const HOLD_HOOK: &str = "import os, time
argv = open('/proc/self/cmdline', 'rb').read().split(b'\\0')
if b'install' in argv and b'hubform-tiny-b' in argv:
    if os.path.exists('/tmp/hubform-hold'):
        open('/tmp/hubform-held', 'w').close()
    while os.path.exists('/tmp/hubform-hold'):
        time.sleep(0.1)
";

#[tokio::test(flavor = "multi_thread")]
async fn a_reboot_during_a_package_install_is_ridden_out() {
    let w = Workshop::applied("").await;
    let host = &w.tljh.host;
    let site = host
        .ssh_ok(
            "/opt/tljh/user/bin/python -c \
             'import sysconfig; print(sysconfig.get_paths()[\"purelib\"])'",
        )
        .trim()
        .to_owned();
    host.sudo_ok(&format!(
        "cat >{site}/hubform_test_hold.py <<'EOF'\n{HOLD_HOOK}EOF\n\
         echo 'import hubform_test_hold' >{site}/hubform_test_hold.pth\n\
         touch /tmp/hubform-hold"
    ));
    let import = "/opt/tljh/user/bin/python -c 'import hubform_tiny_b'";
    w.edit(
        "pip: [hubform-tiny-a]",
        "pip: [hubform-tiny-a, hubform-tiny-b]",
    );

    let mut child = w
        .command(&["apply", "--auto-approve", w.spec_arg()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hubform apply");
    let held = host.root_path("/tmp/hubform-held");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !held.exists() {
        if Instant::now() > deadline
            || child.try_wait().ok().flatten().is_some()
        {
            let _ = child.kill();
            let out = child.wait_with_output().expect("hubform apply ends");
            panic!(
                "pip install was never held on the host:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    host.restart();
    let out = child.wait_with_output().expect("hubform apply ends");

    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The reboot ended pip and freed the hold (/tmp starts empty): the
    // apply connected again, with the same pinned key, and installed.
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("pip install"), "{text}");
    assert!(
        text.contains(&format!(
            "the ssh connection to {} was lost",
            host.endpoint()
        )),
        "{text}"
    );
    assert!(text.contains("connecting again in"), "{text}");
    host.ssh_ok(import);
    w.plan_no_changes();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_hub_reload_times_out_with_a_clear_error() {
    let mut w = Workshop::applied("").await;
    w.tljh
        .host
        .sudo_ok("touch /etc/hubform-double/hang-reload-hub");
    w.edit("limits.memory: 4G", "limits.memory: 2G");
    w.env
        .push(("HUBFORM_RELOAD_TIMEOUT_SECS".into(), "3".into()));

    let started = Instant::now();
    let run = w
        .hubform(&["apply", "--auto-approve", w.spec_arg()])
        .expect_code(1);
    let took = started.elapsed();

    assert!(took < Duration::from_secs(40), "took {took:?}");
    let text = format!("{}{}", run.stdout, run.stderr);
    assert!(
        text.contains(&format!(
            "tljh-config reload hub on {}: did not finish in 3s",
            w.tljh.host.endpoint()
        )),
        "{text}"
    );
    assert_eq!(config_value(&w.tljh, "limits.memory"), json!("2G"));
    let last = reloads(&w.tljh).pop();
    assert_eq!(last.as_deref(), Some("hub started"), "and never complete");
    let call = w.tljh.records("commands.jsonl").pop().expect("a command");
    assert_eq!(call["argv"], json!(["reload", "hub"]));
    assert_eq!(call["rc"], -15, "stopped by the timeout");
}

impl TljhHost {
    /// Like [`TljhHost::start`], with other test host options.
    fn start_with_options(options: HostOptions) -> TljhHost {
        let [http_port, https_port] = free_ports();
        let host = TestHost::start_with(HostOptions {
            provision: Some(provision_script(http_port, https_port, "")),
            files: provision_files(),
            ..options
        });
        TljhHost {
            host,
            http_port,
            https_port,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_passwordless_sudo_fails_naming_host_and_command() {
    let tljh = TljhHost::start_with_options(HostOptions {
        no_sudo: true,
        ..HostOptions::default()
    });
    let w = Workshop::new(tljh, "").await;
    let endpoint = w.tljh.host.endpoint();

    let run = w
        .hubform(&["apply", "--auto-approve", w.spec_arg()])
        .expect_code(1);
    let text = format!("{}{}", run.stdout, run.stderr);
    assert!(
        text.contains(&format!(
            "{endpoint} has no passwordless sudo for this user"
        )),
        "{text}"
    );
    assert!(text.contains("`sudo -n python3 -`"), "{text}");
    w.tljh.host.ssh_ok("test ! -e /opt/tljh/hub");

    // The next plan probes the host, and fails the same way.
    let run = w.plan().expect_code(1);
    let text = format!("{}{}", run.stdout, run.stderr);
    assert!(
        text.contains(&format!(
            "{endpoint} has no passwordless sudo for this user"
        )),
        "{text}"
    );
    assert!(text.contains("`sudo -n sh -s`"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reboot_the_os_asks_for_is_noted() {
    let w = Workshop::applied("").await;
    w.tljh.host.sudo_ok("touch /var/run/reboot-required");
    let run = w.plan().expect_code(0);
    assert!(
        run.stdout
            .contains("instance.hub: the server's OS asks for a reboot"),
        "{}",
        run.stdout
    );
}

/// An `apt-get` double for the test host (its real apt-get would reach the
/// network): `-s upgrade` lists the upgrades pending in a state file,
/// `upgrade` applies them and asks for a reboot, every call is recorded.
const APT_GET: &str = r#"#!/bin/sh
state=/var/lib/hubform-apt
mkdir -p "$state"
echo "$*" >>"$state/calls"
case " $* " in
  *" -s "*) n=$(cat "$state/pending" 2>/dev/null || echo 0); i=0
    while [ "$i" -lt "$n" ]; do
      echo "Inst pkg$i [1.0] (1.1 Ubuntu:22.04/jammy-updates [amd64])"
      i=$((i + 1))
    done ;;
  *" upgrade "*) echo 0 >"$state/pending"; touch /var/run/reboot-required
    echo "2 upgraded, 0 newly installed" ;;
  *" update "*) echo "Reading package lists... Done" ;;
esac
"#;

#[tokio::test(flavor = "multi_thread")]
async fn opted_in_upgrades_run_when_pending_and_the_reboot_is_noted() {
    let w =
        Workshop::new(TljhHost::start(), "      system: { upgrade: true }\n")
            .await;
    w.tljh.host.sudo_ok(&format!(
        "cat >/usr/bin/apt-get <<'EOF'\n{APT_GET}EOF\nchmod 0755 /usr/bin/apt-get"
    ));
    w.tljh.host.sudo_ok(
        "mkdir -p /var/lib/hubform-apt && echo 2 >/var/lib/hubform-apt/pending",
    );

    let run = w.apply();
    assert!(run.stdout.contains("+ system.hub"), "{}", run.stdout);
    let calls = w.tljh.host.sudo_ok("cat /var/lib/hubform-apt/calls");
    assert!(
        calls.contains("update") && calls.contains("upgrade"),
        "{calls}"
    );
    assert_eq!(
        w.tljh.host.sudo_ok("cat /var/lib/hubform-apt/pending"),
        "0\n"
    );

    let after = w.plan().expect_code(0);
    assert!(after.stdout.contains("No changes."), "{}", after.stdout);
    assert!(
        after.stdout.contains("asks for a reboot"),
        "{}",
        after.stdout
    );

    // New upgrades pending: planned again.
    w.tljh.host.sudo_ok("echo 1 >/var/lib/hubform-apt/pending");
    let pending = w.plan().expect_code(2);
    assert!(
        pending.stdout.contains("~ system.hub")
            && pending.stdout.contains("upgraded = false -> true"),
        "{}",
        pending.stdout
    );
}

const GIB: u64 = 1 << 30;

#[tokio::test(flavor = "multi_thread")]
async fn a_grown_volume_grows_the_root_file_system() {
    let w = Workshop::applied("").await;
    w.tljh.host.sudo_ok(&crate::tljh_double::disk_tools(""));
    w.tljh.host.sudo_ok(&format!(
        "echo {} >/var/lib/hubform-disk/disk; echo {} >/var/lib/hubform-disk/fs",
        30 * GIB,
        20 * GIB
    ));

    // The disk is larger than its file system: the plan says so.
    let noted = w.plan().expect_code(0);
    assert!(
        noted
            .stdout
            .contains("the root file system uses 20.0 of the disk's 30.0 GiB"),
        "{}",
        noted.stdout
    );

    // The spec grows the volume: the file system follows in one apply.
    w.edit("size_gb: 20", "size_gb: 30");
    let run = w.apply();
    assert!(
        run.stderr.contains("root file system grown to 30.0 GiB"),
        "{}",
        run.stderr
    );
    let calls = w.tljh.host.sudo_ok("cat /var/lib/hubform-disk/calls");
    assert!(
        calls.contains("growpart /dev/nvme0n1 1")
            && calls.contains("resize2fs /dev/nvme0n1p1"),
        "{calls}"
    );
    let after = w.plan().expect_code(0);
    assert!(!after.stdout.contains("root file system uses"));
}
