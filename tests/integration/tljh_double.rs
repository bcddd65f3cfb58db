//! The TLJH test double (`tests/harness/tljh`) on real SSH test hosts.
//!
//! [`TljhHost`] is how other tests get a host ready for the double: a
//! [`TestHost`] whose provisioning installs the systemctl double, the
//! double's "download mirror", the tiny wheels and the test CA, with its
//! own two ports standing in for 80 and 443. The tests below check that the
//! double behaves as TLJH's source says (see tests/harness/tljh/README.md).

#![allow(dead_code)] // helpers for other test modules too

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::host::{describe, HostOptions, TestHost};
use crate::world::{venv, workspace_root};

/// Where provision.sh puts the bootstrap double inside a host.
pub const BOOTSTRAP: &str = "/usr/local/lib/hubform-double/bootstrap.py";
/// The probe of the installed TLJH version (works on real TLJH too).
pub const VERSION_PROBE: &str = "/opt/tljh/hub/bin/python3 -c \
    \"import importlib.metadata as m; \
    print(m.version('the-littlest-jupyterhub'))\"";

/// A test host provisioned for the TLJH double.
#[derive(Debug)]
pub struct TljhHost {
    pub host: TestHost,
    /// The host's stand-in for port 80 (default of `http.port`).
    pub http_port: u16,
    /// The host's stand-in for port 443 (default of `https.port`).
    pub https_port: u16,
}

impl TljhHost {
    /// A provisioned host without TLJH (run [`TljhHost::bootstrap`]).
    pub fn start() -> TljhHost {
        TljhHost::start_with("")
    }

    /// Like [`TljhHost::start`], with more provision.sh options (such as
    /// `--os ubuntu:20.04` or `--acme-delay 2`).
    pub fn start_with(provision_options: &str) -> TljhHost {
        let venv = venv();
        for needed in ["hubform-wheels", "hubform-ca"] {
            assert!(
                venv.join(needed).exists(),
                "{} is missing: run tests/harness/wheels.sh",
                venv.join(needed).display()
            );
        }
        let [http_port, https_port] = free_ports();
        let host = TestHost::start_with(HostOptions {
            provision: Some(provision_script(
                http_port,
                https_port,
                provision_options,
            )),
            files: provision_files(),
            ..HostOptions::default()
        });
        TljhHost {
            host,
            http_port,
            https_port,
        }
    }

    /// The start of a server's `tljh` block that reaches this host: its
    /// SSH endpoint, the double's bootstrap.py, `lecturer` as admin, and
    /// `config:` with `http.port`. More config keys may follow at eight
    /// spaces, other settings (`packages:`, `https:`) at six.
    pub fn spec_block(&self) -> String {
        let bootstrap =
            workspace_root().join("tests/harness/tljh/bootstrap.py");
        format!(
            "    tljh:\n      ssh_endpoint: {}\n      bootstrap: {}\n      \
             admins: [lecturer]\n      config:\n        http.port: {}\n",
            self.host.endpoint(),
            bootstrap.display(),
            self.http_port,
        )
    }

    /// Makes this host's login key the key pair's private key file
    /// `keys/NAME.pem` under `dir` (the host accepts only that key), so
    /// that hubform imports it instead of making one.
    pub fn lend_key(&self, dir: &std::path::Path, name: &str) {
        let keys = dir.join("keys");
        std::fs::create_dir_all(&keys).expect("keys folder");
        std::fs::copy(self.host.client_key(), keys.join(format!("{name}.pem")))
            .expect("copy the test host's key");
    }

    /// A provisioned host with TLJH installed by `bootstrap.py FLAGS`.
    pub fn installed(flags: &str) -> TljhHost {
        let tljh = TljhHost::start();
        tljh.bootstrap_ok(flags);
        tljh
    }

    /// `sudo -n python3 - FLAGS < bootstrap.py`, as over `curl | sudo`.
    pub fn bootstrap(&self, flags: &str) -> Output {
        self.host
            .ssh(&format!("sudo -n python3 - {flags} < {BOOTSTRAP}"))
    }

    /// [`TljhHost::bootstrap`] that must succeed; returns its stderr.
    pub fn bootstrap_ok(&self, flags: &str) -> String {
        let out = self.bootstrap(flags);
        assert!(out.status.success(), "bootstrap failed: {}", describe(&out));
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `sudo -n tljh-config ARGS`.
    pub fn tljh_config(&self, args: &str) -> Output {
        self.host.ssh(&format!("sudo -n tljh-config {args}"))
    }

    /// [`TljhHost::tljh_config`] that must succeed; returns its stdout.
    pub fn tljh_config_ok(&self, args: &str) -> String {
        let out = self.tljh_config(args);
        assert!(
            out.status.success(),
            "tljh-config {args} failed: {}",
            describe(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The JSON lines of a record in /var/lib/hubform-double
    /// (`commands.jsonl`, `reloads.jsonl`, `acme.jsonl`).
    pub fn records(&self, name: &str) -> Vec<Value> {
        let path = self
            .host
            .root_path(&format!("/var/lib/hubform-double/{name}"));
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON record line"))
            .collect()
    }

    /// A JSON state file in /var/lib/hubform-double (`hub-loaded.json`,
    /// `proxy-loaded.json`, `systemd/traefik.service.json`).
    pub fn state(&self, name: &str) -> Value {
        let path = self
            .host
            .root_path(&format!("/var/lib/hubform-double/{name}"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        serde_json::from_str(&text).expect("a JSON state file")
    }
}

/// provision.sh for a TestHost: ports, the files it needs, extra options.
pub fn provision_script(http: u16, https: u16, options: &str) -> String {
    format!(
        "exec bash \"$TESTHOST_DIR/files/tljh/provision.sh\" \
         --venv \"$TESTHOST_DIR/files\" \
         --http-port {http} --https-port {https} {options}\n"
    )
}

/// What [`provision_script`] needs copied into the host.
pub fn provision_files() -> Vec<PathBuf> {
    let venv = venv();
    vec![
        workspace_root().join("tests/harness/tljh"),
        venv.join("hubform-wheels"),
        venv.join("hubform-ca"),
    ]
}

/// The test CA's certificate, which the ACME double signs with.
pub fn test_ca() -> PathBuf {
    venv().join("hubform-ca/ca.pem")
}

fn free_ports() -> [u16; 2] {
    let a = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let b = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    [a, b].map(|l| l.local_addr().expect("local address").port())
}

/// `GET path` over plain HTTP on 127.0.0.1: (status, head, body).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, head.to_string(), body.to_string()))
}

/// Status of `GET /hub/api` on `port`, None if nothing listens.
pub fn hub_status(port: u16) -> Option<u16> {
    http_get(port, "/hub/api").map(|(status, _, _)| status)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Polls `check` for up to `secs` seconds.
fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

const VALIDATION_HINTS: &str = "You can still apply this change without \
    validation by re-running your command with the --no-validate flag.\n\
    If you think this validation error is incorrect, please report it to \
    https://github.com/jupyterhub/the-littlest-jupyterhub/issues.\n";

#[test]
fn fresh_bootstrap_installs_tljh_and_ends_with_done() {
    let tljh = TljhHost::start();

    let out = tljh.bootstrap("--admin alice");

    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(stdout(&out), "", "progress goes to stderr only");
    let progress: Vec<String> = stderr(&out)
        .lines()
        .filter(|l| !l.starts_with("Created symlink"))
        .map(str::to_string)
        .collect();
    let expected = [
        "Existing TLJH installation not detected, installing...",
        "Setting up hub environment...",
        "Installing Python, venv, pip, and git via apt-get...",
        "Setting up virtual environment at /opt/tljh/hub",
        "Upgrading pip...",
        "Installing TLJH installer...",
        "Running TLJH installer...",
        "Setting up admin users",
        "Granting passwordless sudo to JupyterHub admins...",
        "Setting up user environment...",
        "Downloading & setting up user environment...",
    ];
    assert_eq!(&progress[..expected.len()], expected, "{progress:#?}");
    assert!(progress.iter().any(|l| l == "Setting up JupyterHub..."));
    assert!(progress
        .iter()
        .any(|l| l == "Waiting for JupyterHub to come up (1/20 tries)"));
    assert_eq!(progress.last().map(String::as_str), Some("Done!"));

    let host = &tljh.host;
    assert_eq!(host.ssh_ok(VERSION_PROBE).trim(), "2.0.0");
    assert_eq!(
        host.sudo_ok("cat /opt/tljh/config/config.yaml"),
        "users:\n  admin:\n  - alice\n"
    );
    assert_eq!(
        host.ssh_ok("readlink /usr/bin/tljh-config").trim(),
        "/opt/tljh/hub/bin/tljh-config"
    );
    host.ssh_ok("getent group jupyterhub-admins jupyterhub-users");
    assert!(host
        .sudo_ok("cat /etc/sudoers.d/jupyterhub-admins")
        .contains("%jupyterhub-admins ALL = (ALL) NOPASSWD: ALL"));
    assert_eq!(
        host.ssh_ok("systemctl is-active jupyterhub traefik"),
        "active\nactive\n"
    );
    assert_eq!(
        host.ssh_ok("systemctl is-enabled jupyterhub traefik"),
        "enabled\nenabled\n"
    );
    host.sudo_ok(
        "test -d /opt/tljh/state && test -x /opt/tljh/user/bin/conda && \
         test -x /opt/tljh/user/bin/mamba && test -s /opt/tljh/installer.log",
    );
    // The installer waited for any answer; the hub may still be starting.
    let port = tljh.http_port;
    eventually(10, "the hub", || hub_status(port) == Some(200));
    let (_, _, body) = http_get(port, "/hub/api").expect("the hub answers");
    assert_eq!(body, "{\"version\": \"5.2.1\"}");
}

#[test]
fn bootstrap_refuses_unsupported_hosts_and_flags() {
    let tljh = TljhHost::start();
    let host = &tljh.host;
    let cases = [
        ("ubuntu", "20.04", "requires Ubuntu 22.04 or higher"),
        ("debian", "10", "requires Debian 11 or higher"),
        ("centos", "9", "supports Ubuntu or Debian Linux only"),
    ];
    host.sudo_ok("cp /etc/os-release /etc/os-release.real");
    for (id, version, message) in cases {
        host.sudo_ok(&format!(
            "rm -f /etc/os-release && \
             printf 'ID={id}\\nVERSION_ID=\"{version}\"\\n' >/etc/os-release"
        ));
        let out = tljh.bootstrap("");
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        assert!(stdout(&out).contains(message), "{}", describe(&out));
    }
    host.sudo_ok("mv /etc/os-release.real /etc/os-release");

    // No root check of its own: the first file it creates fails.
    let out = host.ssh(&format!("python3 - < {BOOTSTRAP}"));
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("PermissionError: [Errno 13] Permission denied"),
        "{}",
        describe(&out)
    );

    // Unknown flags reach the installer, which refuses them.
    let out = tljh.bootstrap("--no-such-flag");
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        stderr(&out).contains(
            "installer.py: error: unrecognized arguments: --no-such-flag"
        ),
        "{}",
        describe(&out)
    );
}

#[test]
fn tljh_config_parses_values_like_tljh_and_never_deduplicates() {
    let tljh = TljhHost::installed("");
    assert_eq!(tljh.tljh_config_ok("show"), "{}\n");
    for args in [
        "set limits.memory 4G",
        "set limits.cpu 2",
        "set services.cull.timeout 60.",
        "set extra.ratio 1.25",
        "set extra.flag TRUE",
        "set extra.negative -1",
        "set extra.half .5",
        "set extra.octal 007",
        "set extra.answer yes",
        "set extra.nothing none",
        "add-item users.admin alice",
        "add-item users.admin alice",
    ] {
        let out = tljh.tljh_config(args);
        assert!(out.status.success(), "{args}: {}", describe(&out));
        assert_eq!(stdout(&out), "", "{args} prints nothing");
    }

    // 2.0.0 (the default) keeps "none" a string; main makes it null.
    assert_eq!(
        tljh.tljh_config_ok("show"),
        "limits:\n  memory: 4G\n  cpu: 2\nservices:\n  cull:\n    \
         timeout: 60.0\nextra:\n  ratio: 1.25\n  flag: true\n  \
         negative: '-1'\n  half: '.5'\n  octal: 7\n  answer: 'yes'\n  \
         nothing: none\nusers:\n  admin:\n  - alice\n  - alice\n"
    );

    // remove-item drops the first match only; unset prunes empty parents.
    tljh.tljh_config_ok("remove-item users.admin alice");
    tljh.tljh_config_ok("unset extra.nothing");
    for key in ["ratio", "flag", "negative", "half", "octal", "answer"] {
        tljh.tljh_config_ok(&format!("unset extra.{key}"));
    }
    let shown = tljh.tljh_config_ok("show");
    assert!(!shown.contains("extra"), "{shown}");
    assert!(shown.ends_with("users:\n  admin:\n  - alice\n"), "{shown}");

    let out = tljh.tljh_config("unset extra.ratio");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out)
            .ends_with("ValueError: extra.ratio does not exist in config!\n"),
        "{}",
        describe(&out)
    );
    let out = tljh.tljh_config("remove-item users.admin bob");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).ends_with("\nValueError\n"),
        "{}",
        describe(&out)
    );
    let out = tljh.tljh_config("remove-item users.nobody bob");
    assert!(
        stderr(&out).ends_with("ValueError: users.nobody is not a list\n"),
        "{}",
        describe(&out)
    );

    // Only root may use it.
    let out = tljh.host.ssh("tljh-config show");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "tljh-config needs root privileges to run\nTry using sudo before \
         the tljh-config command you wanted to run\n"
    );
}

#[test]
fn invalid_values_are_refused_and_the_file_is_left_alone() {
    let tljh = TljhHost::installed("--admin alice");
    let before = tljh.host.sudo_ok("cat /opt/tljh/config/config.yaml");

    for (args, message) in [
        ("set https.enabled yes", "'yes' is not of type 'boolean'"),
        ("set users.admin alice", "'alice' is not of type 'array'"),
        ("set http.port eighty", "'eighty' is not of type 'integer'"),
        (
            "set user_environment.default_app notebook",
            "'notebook' is not one of ['jupyterlab', 'classic']",
        ),
        (
            "set users.foo 1",
            "Additional properties are not allowed ('foo' was unexpected)",
        ),
    ] {
        let out = tljh.tljh_config(args);
        assert_eq!(out.status.code(), Some(1), "{args}: {}", describe(&out));
        assert_eq!(
            stderr(&out),
            format!("Config validation error: {message}.\n{VALIDATION_HINTS}"),
            "{args}"
        );
    }
    assert_eq!(
        tljh.host.sudo_ok("cat /opt/tljh/config/config.yaml"),
        before
    );

    // --no-validate belongs before the subcommand.
    let out = tljh.tljh_config("set https.enabled yes --no-validate");
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    tljh.tljh_config_ok("--no-validate set https.enabled yes");
    // Now the whole file is invalid: every validated edit fails.
    let out = tljh.tljh_config("set limits.memory 1G");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("'yes' is not of type 'boolean'"));
}

#[test]
fn proxy_reload_refuses_https_without_letsencrypt_email_and_domains() {
    let tljh = TljhHost::installed("");
    tljh.tljh_config_ok("set https.enabled true");

    let out = tljh.tljh_config("reload proxy");
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).ends_with(
            "ValueError: To enable https, you must set tls.cert+key or \
             letsencrypt.email+domains\n"
        ),
        "{}",
        describe(&out)
    );

    tljh.tljh_config_ok("set https.letsencrypt.email admin@example.org");
    let out = tljh.tljh_config("reload proxy");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).ends_with(
            "ValueError: Both email and domains must be set for letsencrypt\n"
        ),
        "{}",
        describe(&out)
    );

    let reloads = tljh.records("reloads.jsonl");
    let statuses: Vec<&str> = reloads
        .iter()
        .map(|r| r["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(statuses, ["started", "failed", "started", "failed"]);
    assert!(reloads.iter().all(|r| r["kind"] == "proxy"));
    // The running proxy never saw HTTPS.
    assert_eq!(tljh.state("proxy-loaded.json")["https"], Value::Null);
}

#[test]
fn reloads_are_recorded_and_apply_the_new_port() {
    let tljh = TljhHost::installed("");
    let [new_port, _] = free_ports();
    tljh.tljh_config_ok(&format!("set http.port {new_port}"));
    // Editing restarts nothing: the old port still answers.
    let old_port = tljh.http_port;
    eventually(10, "the hub", || hub_status(old_port) == Some(200));

    assert_eq!(
        tljh.tljh_config_ok("reload proxy"),
        "active\nProxy reload with new configuration complete\n"
    );
    // "active" means started, not listening yet (systemd's Type=simple).
    eventually(10, "the new port", || hub_status(new_port) == Some(200));
    assert_eq!(hub_status(old_port), None);
    assert!(tljh
        .tljh_config_ok("reload hub")
        .ends_with("Hub reload with new configuration complete\n"));

    let reloads = tljh.records("reloads.jsonl");
    let seen: Vec<String> = reloads
        .iter()
        .map(|r| format!("{} {}", text(&r["kind"]), text(&r["status"])))
        .collect();
    assert_eq!(
        seen,
        [
            "proxy started",
            "proxy complete",
            "hub started",
            "hub complete"
        ]
    );
    assert_eq!(reloads[1]["config"]["http"]["port"], new_port);
    assert_eq!(
        tljh.state("hub-loaded.json")["config"]["http"]["port"],
        new_port
    );
    let calls: Vec<String> = tljh
        .records("commands.jsonl")
        .iter()
        .filter(|c| c["tool"] == "tljh-config")
        .map(|c| c["argv"].to_string())
        .collect();
    assert_eq!(
        calls,
        [
            format!("[\"set\",\"http.port\",\"{new_port}\"]"),
            "[\"reload\",\"proxy\"]".to_string(),
            "[\"reload\",\"hub\"]".to_string(),
        ]
    );
}

#[test]
fn reload_hub_hangs_while_the_switch_is_on() {
    let tljh = TljhHost::installed("");
    tljh.host
        .sudo_ok("touch /etc/hubform-double/hang-reload-hub");

    let out = tljh.host.ssh("sudo -n timeout 3 tljh-config reload hub");

    assert_eq!(out.status.code(), Some(124), "{}", describe(&out));
    let last = tljh.records("reloads.jsonl").pop().expect("a reload");
    assert_eq!(last["kind"], "hub");
    assert_eq!(last["status"], "started", "and never complete");
    let call = tljh.records("commands.jsonl").pop().expect("a command");
    assert_eq!(call["argv"], serde_json::json!(["reload", "hub"]));
    assert_eq!(call["rc"], -15, "killed by timeout's SIGTERM");
    // The hub itself is fine: only the poll never reaches it.
    let port = tljh.http_port;
    eventually(10, "the hub", || hub_status(port) == Some(200));

    tljh.host.sudo_ok("rm /etc/hubform-double/hang-reload-hub");
    tljh.tljh_config_ok("reload hub");
}

#[test]
fn pip_installs_tiny_wheels_offline_into_the_user_environment() {
    let tljh = TljhHost::installed("");
    let pip = "sudo -n /opt/tljh/user/bin/python -m pip";
    let list = || -> Vec<(String, String)> {
        let out = tljh.host.ssh_ok(&format!("{pip} list --format=json"));
        let rows: Value = serde_json::from_str(&out).expect("pip list JSON");
        rows.as_array()
            .expect("a list")
            .iter()
            .map(|r| (r["name"].to_string(), r["version"].to_string()))
            .collect()
    };

    tljh.host
        .ssh_ok(&format!("{pip} install hubform-tiny-a==1.0"));
    assert!(list().contains(&("\"hubform-tiny-a\"".into(), "\"1.0\"".into())));
    // A dependency pulls the newer release of another tiny package.
    tljh.host.ssh_ok(&format!("{pip} install hubform-tiny-c"));
    let listed = list();
    assert!(listed.contains(&("\"hubform-tiny-a\"".into(), "\"1.1\"".into())));
    assert!(listed.contains(&("\"hubform-tiny-c\"".into(), "\"1.0\"".into())));
    assert_eq!(
        tljh.host.ssh_ok(
            "/opt/tljh/user/bin/python -c \
             'import hubform_tiny_a as a; print(a.__version__)'"
        ),
        "1.1\n"
    );

    let out = tljh.host.ssh(&format!("{pip} install nosuchpackage"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "ERROR: No matching distribution found for nosuchpackage"
        ),
        "{}",
        describe(&out)
    );
}

#[test]
fn conda_double_records_installs_and_lists_pip_packages_too() {
    let tljh = TljhHost::installed("");
    let host = &tljh.host;
    host.ssh_ok(
        "sudo -n /opt/tljh/user/bin/mamba install --yes -c conda-forge \
         --prefix /opt/tljh/user numpy=1.26.4 gdal </dev/null",
    );
    host.ssh_ok(
        "sudo -n /opt/tljh/user/bin/python -m pip install hubform-tiny-b",
    );

    let listed: Value = serde_json::from_str(
        &host.ssh_ok("/opt/tljh/user/bin/conda list --json"),
    )
    .expect("conda list JSON");
    let find = |name: &str| {
        listed
            .as_array()
            .expect("a list")
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not listed: {listed}"))
    };
    assert_eq!(find("numpy")["version"], "1.26.4");
    assert_eq!(find("numpy")["channel"], "conda-forge");
    assert_eq!(find("gdal")["channel"], "conda-forge");
    assert_eq!(find("hubform-tiny-b")["channel"], "pypi");
    assert_eq!(find("hubform-tiny-b")["version"], "1.1");

    let out = host.ssh(
        "sudo -n /opt/tljh/user/bin/conda install --yes nosuchpackage \
         </dev/null",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("PackagesNotFoundError"));
    assert!(stderr(&out).contains("  - nosuchpackage"));
    let out = host.ssh(
        "sudo -n /opt/tljh/user/bin/mamba install --yes nosuchpackage \
         </dev/null",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("nosuchpackage does not exist"));
    let calls: Vec<Value> = tljh
        .records("commands.jsonl")
        .into_iter()
        .filter(|c| c["tool"] == "mamba" || c["tool"] == "conda")
        .collect();
    assert_eq!(calls.len(), 4, "{calls:?}");
}

#[test]
fn upgrade_keeps_config_and_packages_and_restarts_both_services() {
    let tljh = TljhHost::installed("--admin alice");
    tljh.tljh_config_ok("add-item users.admin bob");
    tljh.host.ssh_ok(
        "sudo -n /opt/tljh/user/bin/python -m pip install hubform-tiny-a",
    );
    let restarts = |unit: &str| {
        tljh.state(&format!("systemd/{unit}.service.json"))["restarts"]
            .as_u64()
            .expect("a restart count")
    };
    let (hub, proxy) = (restarts("jupyterhub"), restarts("traefik"));

    let progress = tljh.bootstrap_ok("--version main");

    assert!(progress
        .starts_with("Existing TLJH installation detected, upgrading...\n"));
    assert!(progress.contains("Upgrading TLJH installer...\n"));
    assert!(progress.ends_with("Done!\n"), "{progress}");
    assert_eq!(tljh.host.ssh_ok(VERSION_PROBE).trim(), "2.0.1.dev0");
    assert_eq!(
        tljh.tljh_config_ok("show"),
        "users:\n  admin:\n  - alice\n  - bob\n"
    );
    assert!(tljh
        .host
        .ssh_ok("/opt/tljh/user/bin/python -m pip list")
        .contains("hubform-tiny-a"));
    assert!(restarts("jupyterhub") > hub);
    assert!(restarts("traefik") > proxy);

    // main turns "none" into null.
    tljh.tljh_config_ok("set limits.memory none");
    assert!(tljh.tljh_config_ok("show").contains("limits:\n  memory:\n"));

    // --admin on a re-run REPLACES the admins.
    tljh.bootstrap_ok("--admin carol");
    assert!(tljh
        .tljh_config_ok("show")
        .starts_with("users:\n  admin:\n  - carol\n"));
}

#[test]
fn services_come_back_after_a_reboot() {
    let tljh = TljhHost::installed("");
    tljh.host.restart();
    let port = tljh.http_port;
    eventually(10, "the hub after a reboot", || {
        hub_status(port) == Some(200)
    });
}

#[test]
fn https_serves_the_test_ca_certificate_once_letsencrypt_succeeds() {
    let tljh = TljhHost::installed("");
    let host = &tljh.host;
    let https = tljh.https_port;
    // The served certificate's subject and issuer ("" while nothing
    // listens: reload proxy returns before traefik does).
    let served = || {
        stdout(&host.ssh(&format!(
            "openssl s_client -connect 127.0.0.1:{https} \
             -servername hub.example.org </dev/null 2>/dev/null \
             | openssl x509 -noout -subject -issuer"
        )))
    };
    let curl_on_host = format!(
        "curl -sS --resolve hub.example.org:{https}:127.0.0.1 \
         https://hub.example.org:{https}/hub/api"
    );

    // Let's Encrypt fails (say DNS is not there yet): reload proxy still
    // succeeds, traefik serves its default certificate, its log says why.
    host.sudo_ok("touch /etc/hubform-double/acme-fails");
    tljh.tljh_config_ok("set https.enabled true");
    tljh.tljh_config_ok("set https.letsencrypt.email admin@example.org");
    tljh.tljh_config_ok("add-item https.letsencrypt.domains hub.example.org");
    tljh.tljh_config_ok("reload proxy");
    eventually(10, "the ACME failure", || {
        !tljh.records("acme.jsonl").is_empty()
    });
    eventually(10, "the default certificate", || {
        served().contains("subject=CN = TRAEFIK DEFAULT CERT")
    });
    assert!(!host.ssh(&curl_on_host).status.success());
    assert!(host
        .sudo_ok("journalctl -u traefik")
        .contains("Unable to obtain ACME certificate for domains"));

    // It works: the certificate is the test CA's, which the host trusts.
    host.sudo_ok("rm /etc/hubform-double/acme-fails");
    tljh.tljh_config_ok("reload proxy");
    eventually(10, "the issued certificate", || {
        served().contains("subject=CN = hub.example.org")
    });
    assert!(
        served().contains("CN = hubform test ACME CA"),
        "{}",
        served()
    );
    eventually(10, "the hub over HTTPS", || {
        host.ssh(&curl_on_host).status.success()
    });
    assert_eq!(host.ssh_ok(&curl_on_host), "{\"version\": \"5.2.1\"}");
    // And so do tests, with the CA from the set-up.
    let out = Command::new("curl")
        .args(["-sS", "--noproxy", "*", "--cacert"])
        .arg(test_ca())
        .arg("--resolve")
        .arg(format!("hub.example.org:{https}:127.0.0.1"))
        .arg(format!("https://hub.example.org:{https}/hub/api"))
        .output()
        .expect("run curl");
    assert!(out.status.success(), "{}", describe(&out));
    // Plain HTTP now redirects to HTTPS.
    let (status, head, _) =
        http_get(tljh.http_port, "/hub/api").expect("an HTTP answer");
    assert_eq!(status, 301);
    let location = format!("Location: https://127.0.0.1:{https}/hub/api");
    assert!(head.contains(&location), "{head}");

    // A restart reuses the stored certificate instead of issuing again.
    tljh.tljh_config_ok("reload proxy");
    eventually(10, "the certificate after a restart", || {
        served().contains("subject=CN = hub.example.org")
    });
    let issued: Vec<Value> = tljh
        .records("acme.jsonl")
        .into_iter()
        .filter(|r| r["status"] == "issued")
        .collect();
    assert_eq!(issued.len(), 1, "{issued:?}");
    assert_eq!(issued[0]["domains"], serde_json::json!(["hub.example.org"]));
}

#[test]
fn validator_and_yaml_writer_agree_with_jsonschema_and_pyyaml() {
    let out = Command::new(venv().join("bin/python"))
        .arg(workspace_root().join("tests/harness/tljh/selfcheck.py"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run selfcheck.py with the test venv's python");
    assert!(out.status.success(), "{}", describe(&out));
}

/// The host's config.yaml, read over SSH and parsed by the test venv's
/// PyYAML (not by hubform), as JSON.
pub fn config_yaml(tljh: &TljhHost) -> serde_json::Value {
    let yaml = tljh.host.sudo_ok("cat /opt/tljh/config/config.yaml");
    let mut child = Command::new(venv().join("bin/python"))
        .args([
            "-c",
            "import json, sys, yaml; \
             print(json.dumps(yaml.safe_load(sys.stdin) or {}))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run the test venv's python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(yaml.as_bytes())
        .expect("write config.yaml to python");
    let out = child.wait_with_output().expect("python's output");
    assert!(out.status.success(), "cannot parse config.yaml:\n{yaml}");
    serde_json::from_slice(&out.stdout).expect("JSON from python")
}

/// The value of dotted `key` in the host's config.yaml (null if unset).
pub fn config_value(tljh: &TljhHost, key: &str) -> serde_json::Value {
    let config = config_yaml(tljh);
    let mut node = &config;
    for part in key.split('.') {
        node = node.get(part).unwrap_or(&serde_json::Value::Null);
    }
    node.clone()
}

/// Doubles of the disk tools for a test host (its root is the machine's
/// own disk): the root file system is /dev/nvme0n1p1 on /dev/nvme0n1,
/// their sizes in /var/lib/hubform-disk; growpart and resize2fs record
/// their calls and resize2fs fills the disk. `before_growpart` is shell
/// run first by the growpart double (a hold, for fault tests).
pub fn disk_tools(before_growpart: &str) -> String {
    format!(
        r#"d=/var/lib/hubform-disk
mkdir -p $d /usr/local/bin
cat >/usr/local/bin/findmnt <<'X'
#!/bin/sh
d=/var/lib/hubform-disk
case "$*" in
  *SOURCE*) echo /dev/nvme0n1p1 ;; *FSTYPE*) echo ext4 ;; *SIZE*) cat $d/fs ;;
esac
X
cat >/usr/local/bin/lsblk <<'X'
#!/bin/sh
d=/var/lib/hubform-disk
case "$*" in
  *PKNAME*) echo nvme0n1 ;; *PARTN*) echo 1 ;; *SIZE*) cat $d/disk ;;
esac
X
cat >/usr/local/bin/growpart <<'X'
#!/bin/sh
{before_growpart}echo "growpart $*" >>/var/lib/hubform-disk/calls
X
cat >/usr/local/bin/resize2fs <<'X'
#!/bin/sh
d=/var/lib/hubform-disk
echo "resize2fs $*" >>$d/calls; cp $d/disk $d/fs
X
chmod 0755 /usr/local/bin/findmnt /usr/local/bin/lsblk \
  /usr/local/bin/growpart /usr/local/bin/resize2fs
"#
    )
}
