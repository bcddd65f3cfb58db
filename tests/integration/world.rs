//! The test world: a fresh `moto_server` (AWS) per test, behind the fault
//! and fidelity proxy `tests/harness/proxy.py`, plus a temp dir to run
//! hubform in.
//!
//! Set up once with `tests/harness/setup.sh` (a venv with moto and the AMI
//! catalogue). Everything listens on 127.0.0.1 only.

#![allow(dead_code)] // not every test binary uses every helper

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{json, Value};

/// The region hubform's tests use.
pub const REGION: &str = "ap-south-1";
/// moto's fixed account id.
pub const ACCOUNT: &str = "123456789012";
/// Canonical's owner id; the catalogue's jammy images are published by it.
pub const CANONICAL: &str = "099720109477";

/// The AMI catalogue written by `tests/harness/amis.py`.
pub mod amis {
    pub const AMD64_NAME_PATTERN: &str =
        "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*";
    pub const ARM64_NAME_PATTERN: &str =
        "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-arm64-server-*";
    /// The right answer for "newest Canonical jammy amd64".
    pub const JAMMY_AMD64_NEWEST: &str = "ami-0a3c9e71d24f5b86e";
    /// Decoy: an older build (2026-09-01).
    pub const JAMMY_AMD64_OLDER: &str = "ami-04e1b7c2f9a3d5618";
    /// Decoy: last by name (…-20270115), created 2025-01-15.
    pub const JAMMY_AMD64_LATER_NAME_OLDER_DATE: &str = "ami-07d25f8e1a9c4b3d0";
    /// Decoy: the newest's name from another owner, created later.
    pub const JAMMY_AMD64_OTHER_OWNER: &str = "ami-0c61a4d8e7f2b9035";
    /// Decoy: arm64 under the amd64 name pattern, created 2026-11-30.
    pub const JAMMY_ARM64_MISNAMED: &str = "ami-05f8b2d6c3e1a7940";
    /// The right answer for "newest Canonical jammy arm64".
    pub const JAMMY_ARM64_NEWEST: &str = "ami-0e9d4a6b1c7f3e582";
    /// The Ubuntu 24.04 image the smaller example selects.
    pub const NOBLE_AMD64_NEWEST: &str = "ami-0b7e3c1d9f2a46058";
}

/// One AWS call as the proxy saw it (`status` is 0 while in flight).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Request {
    pub service: String,
    pub action: String,
    pub status: u16,
}

/// One attempt of an AWS call as the proxy saw it. The SDK numbers the
/// attempts of one call and sends the same invocation id on each retry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Attempt {
    pub service: String,
    pub action: String,
    pub status: u16,
    /// The AWS error code of the answer; empty on success.
    pub code: String,
    pub invocation: String,
    pub attempt: u32,
    /// Whether the call was about a workshop lock.
    pub lock: bool,
}

pub struct World {
    moto: Child,
    proxy: Child,
    moto_port: u16,
    proxy_port: u16,
    root: PathBuf,
    dir: PathBuf,
}

/// The workspace root (two levels above this crate's manifest).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The venv made by `tests/harness/setup.sh`.
pub fn venv() -> PathBuf {
    match std::env::var_os("HUBFORM_VENV") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => workspace_root().join(".venv"),
    }
}

impl World {
    /// A fresh moto on a free port and a proxy in front of it, both ready.
    pub async fn start() -> World {
        let venv = venv();
        let moto_server = venv.join("bin/moto_server");
        let catalogue = venv.join("hubform-amis.json");
        for needed in [&moto_server, &catalogue] {
            assert!(
                needed.exists(),
                "{} is missing: run tests/harness/setup.sh first \
                 (HUBFORM_VENV={})",
                needed.display(),
                venv.display()
            );
        }
        let root = make_temp_root();
        let dir = root.join("work");
        std::fs::create_dir_all(dir.join(".aws"))
            .expect("create the world's work dir");
        for f in ["config", "credentials"] {
            std::fs::write(dir.join(".aws").join(f), "")
                .expect("write an empty AWS config file");
        }

        let (moto, moto_port) =
            start_moto(&moto_server, &catalogue, &root).await;
        let (proxy, proxy_port) =
            start_proxy(&venv, moto_port, moto.id(), &root).await;
        World {
            moto,
            proxy,
            moto_port,
            proxy_port,
            root,
            dir,
        }
    }

    /// A fresh temp dir for spec files and keys; hubform runs in it.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The proxy URL: what hubform talks to.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.proxy_port)
    }

    /// moto's own URL (no proxy rules): for direct checks only.
    pub fn moto_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.moto_port)
    }

    /// The hubform binary, set up to talk to this world and nothing else.
    pub fn hubform(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hubform"));
        cmd.current_dir(&self.dir);
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            if key.starts_with("AWS_") || key.starts_with("HUBFORM_") {
                cmd.env_remove(key);
            }
        }
        let aws = self.dir.join(".aws");
        cmd.env("AWS_ENDPOINT_URL", self.endpoint())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", aws.join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", aws.join("credentials"))
            .env("HOME", &self.dir)
            .env("HUBFORM_LOOPBACK_ONLY", "1")
            .env("HUBFORM_RETRY_MAX_ATTEMPTS", "4")
            .env("HUBFORM_RETRY_BASE_MS", "20")
            .env("HUBFORM_WAIT_TIMEOUT_SECS", "30")
            .env("HUBFORM_POLL_MS", "50")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        cmd
    }

    /// Spawn `cmd` (usually from [`World::hubform`]) with
    /// `HUBFORM_PAUSE_AT=step` and return once its stderr shows
    /// `hubform: paused at STEP`. Kill the child with [`Child::kill`]
    /// (SIGKILL). Its stdout is discarded; stderr is drained in the
    /// background.
    pub fn spawn_paused(&self, mut cmd: Command, step: &str) -> Child {
        cmd.env("HUBFORM_PAUSE_AT", step)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn the command to pause");
        let stderr = child.stderr.take().expect("piped stderr");
        let wanted = format!("hubform: paused at {step}");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // After the pause line nobody listens: keep draining.
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.trim_end() == wanted => return child,
                Ok(line) => seen.push(line),
                Err(e) => {
                    let _ = child.kill();
                    let status = child.wait();
                    panic!(
                        "never saw {wanted:?} ({}); exit: {status:?}; \
                         stderr so far:\n{}",
                        match e {
                            mpsc::RecvTimeoutError::Timeout => "timed out",
                            mpsc::RecvTimeoutError::Disconnected =>
                                "stderr closed",
                        },
                        seen.join("\n")
                    );
                }
            }
        }
    }

    /// An EC2 client talking to moto directly (not via the proxy).
    pub async fn ec2(&self) -> aws_sdk_ec2::Client {
        ec2_client(&self.moto_endpoint())
    }

    /// An IAM client talking to moto directly (not via the proxy).
    pub async fn iam(&self) -> aws_sdk_iam::Client {
        iam_client(&self.moto_endpoint())
    }

    /// An EC2 client going through the proxy, without SDK retries (so an
    /// injected fault is seen as it is).
    pub async fn proxy_ec2(&self) -> aws_sdk_ec2::Client {
        ec2_client(&self.endpoint())
    }

    /// An IAM client going through the proxy, without SDK retries.
    pub async fn proxy_iam(&self) -> aws_sdk_iam::Client {
        iam_client(&self.endpoint())
    }

    // ---- proxy controls ------------------------------------------------

    /// Every AWS call the proxy saw about the workshops, in arrival order.
    /// The calls of the workshop lock (`hubform-lock-<workshop>`, taken by
    /// every apply and destroy) are left out: see [`World::lock_requests`].
    pub fn requests(&self) -> Vec<Request> {
        self.recorded(false)
    }

    /// The calls the proxy saw about workshop locks, in arrival order.
    pub fn lock_requests(&self) -> Vec<Request> {
        self.recorded(true)
    }

    fn recorded(&self, lock: bool) -> Vec<Request> {
        #[derive(Deserialize)]
        struct Recorded {
            service: String,
            action: String,
            status: u16,
            #[serde(default)]
            lock: bool,
        }
        let value = self.control("GET", "/_proxy/requests", None);
        let all: Vec<Recorded> =
            serde_json::from_value(value).expect("the proxy's request list");
        all.into_iter()
            .filter(|r| r.lock == lock)
            .map(|r| Request {
                service: r.service,
                action: r.action,
                status: r.status,
            })
            .collect()
    }

    /// How many calls of `action` the proxy saw.
    pub fn count(&self, action: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.action == action)
            .count()
    }

    pub fn reset_requests(&self) {
        self.control("POST", "/_proxy/requests/reset", Some(json!({})));
    }

    /// Answer the next `count` calls of `action` (`"*"`: any call) with
    /// the error `code` and HTTP `status`.
    pub fn fault(&self, action: &str, code: &str, status: u16, count: u32) {
        self.fault_skip(action, code, status, count, 0);
    }

    /// Like [`World::fault`], letting `skip` calls through first.
    pub fn fault_skip(
        &self,
        action: &str,
        code: &str,
        status: u16,
        count: u32,
        skip: u32,
    ) {
        self.fault_spec(json!({
            "action": action, "code": code, "status": status,
            "count": count, "skip": skip,
        }));
    }

    /// Let moto perform the next `count` calls of `action` but answer them
    /// with an error: the caller never learns that they succeeded.
    pub fn fault_lost_answer(
        &self,
        action: &str,
        code: &str,
        status: u16,
        count: u32,
    ) {
        self.fault_spec(json!({
            "action": action, "code": code, "status": status,
            "count": count, "forward": true,
        }));
    }

    /// The full form: keys action, code, message, status, count, skip,
    /// forward.
    pub fn fault_spec(&self, spec: Value) {
        self.control("POST", "/_proxy/fault", Some(spec));
    }

    /// Hold the first call of `action` until a call of `until` arrives
    /// while it is held; after `timeout_secs` answer it `HoldTimeout`.
    pub fn hold(&self, action: &str, until: &str, timeout_secs: u64) {
        self.control(
            "POST",
            "/_proxy/hold",
            Some(json!({
                "action": action, "until": until, "timeout": timeout_secs,
            })),
        );
    }

    /// `[{"action", "until", "outcome"}]`; outcome is `released`,
    /// `timed_out`, `never_triggered` or `holding`.
    pub fn holds(&self) -> Value {
        self.control("GET", "/_proxy/holds", None)
    }

    /// Whether a call of `action` is held right now.
    pub fn holding(&self, action: &str) -> bool {
        self.holds().as_array().is_some_and(|all| {
            all.iter()
                .any(|h| h["action"] == action && h["outcome"] == "holding")
        })
    }

    /// Leave instances launched from now on out of their next `describes`
    /// DescribeInstances answers (naming one: `InvalidInstanceID.NotFound`).
    pub fn hide_new_instances(&self, describes: u32) {
        self.control(
            "POST",
            "/_proxy/hide",
            Some(json!({ "describes": describes })),
        );
    }

    /// How many DescribeInstances answers show `pending`/`stopping` after
    /// a launch, start or stop (default 2; 0 turns the phase off).
    pub fn set_pending(&self, describes: u32) {
        self.control(
            "POST",
            "/_proxy/pending",
            Some(json!({ "describes": describes })),
        );
    }

    /// Show an extra Canonical x86_64 image in matching DescribeImages
    /// answers (a launch from it uses a catalogue image underneath).
    pub fn add_image(&self, image_id: &str, name: &str, creation_date: &str) {
        self.add_image_spec(json!({
            "image_id": image_id, "name": name, "owner_id": CANONICAL,
            "architecture": "x86_64", "creation_date": creation_date,
        }));
    }

    /// The full form: keys image_id, name, owner_id, architecture,
    /// creation_date, description.
    pub fn add_image_spec(&self, spec: Value) {
        self.control("POST", "/_proxy/image", Some(spec));
    }

    /// Every attempt of every AWS call the proxy saw, lock calls
    /// included, in arrival order.
    pub fn attempts(&self) -> Vec<Attempt> {
        let value = self.control("GET", "/_proxy/requests", None);
        serde_json::from_value(value).expect("the proxy's request list")
    }

    /// Throttle `service` (`ec2`, `iam`, `sts`) as AWS does: the first
    /// `attempts` attempts of each of its next `invocations` calls answer
    /// `RequestLimitExceeded` (EC2, HTTP 503) or `Throttling` (IAM and
    /// STS, HTTP 400).
    pub fn throttle(&self, service: &str, attempts: u32, invocations: u32) {
        let (code, status) = match service {
            "ec2" => ("RequestLimitExceeded", 503),
            _ => ("Throttling", 400),
        };
        self.burst(json!({
            "service": service, "code": code, "status": status,
            "attempts": attempts, "invocations": invocations,
        }));
    }

    /// Like [`World::throttle`] with server errors: HTTP 500
    /// (`InternalError`, IAM `ServiceFailure`) or 503 (`Unavailable`, IAM
    /// `ServiceUnavailable`).
    pub fn server_errors(
        &self,
        service: &str,
        status: u16,
        attempts: u32,
        invocations: u32,
    ) {
        let code = match (service, status) {
            ("ec2", 500) => "InternalError",
            ("ec2", _) => "Unavailable",
            (_, 500) => "ServiceFailure",
            _ => "ServiceUnavailable",
        };
        self.burst(json!({
            "service": service, "code": code, "status": status,
            "attempts": attempts, "invocations": invocations,
        }));
    }

    /// The full form of a burst: keys code, status, service, action,
    /// except (actions spared), message, attempts, invocations.
    pub fn burst(&self, spec: Value) {
        self.control("POST", "/_proxy/burst", Some(spec));
    }

    /// Objects of `kind` (`instance`, `security_group`, `iam_user`,
    /// `iam_group`) created from now on answer NotFound
    /// (`InvalidInstanceID.NotFound`, `InvalidGroup.NotFound`,
    /// `NoSuchEntity`) to the next `calls` calls that name them by
    /// parameter, as AWS does right after a create.
    pub fn unseen_after_create(&self, kind: &str, calls: u32) {
        self.control(
            "POST",
            "/_proxy/unseen",
            Some(json!({ "kind": kind, "calls": calls })),
        );
    }

    /// The Region's Elastic IP quota: `AllocateAddress` answers
    /// `AddressLimitExceeded` once this many addresses exist (5 by
    /// default, as AWS; `None`: no limit).
    pub fn set_address_limit(&self, limit: Option<u32>) {
        self.control(
            "POST",
            "/_proxy/address-limit",
            Some(json!({ "limit": limit })),
        );
    }

    /// The credentials expire once `calls` more calls of `action` (`"*"`:
    /// any) got through: every later call answers `ExpiredToken`, until
    /// [`World::refresh_credentials`].
    pub fn expire_credentials_after(&self, action: &str, calls: u32) {
        self.control(
            "POST",
            "/_proxy/expire",
            Some(json!({ "action": action, "after": calls })),
        );
    }

    /// Fresh credentials again (as after `aws sso login`).
    pub fn refresh_credentials(&self) {
        self.control("POST", "/_proxy/refresh", Some(json!({})));
    }

    /// Clear faults, holds, hiding, injected images, bursts, unseen
    /// objects and expired credentials; pending back to 2, the Elastic IP
    /// limit back to 5.
    pub fn reset_controls(&self) {
        self.control("POST", "/_proxy/reset", Some(json!({})));
    }

    /// The tail of the proxy's log (one line per AWS call).
    pub fn proxy_log(&self) -> String {
        std::fs::read_to_string(self.root.join("proxy.log")).unwrap_or_default()
    }

    /// One control call (HTTP/1.0 over a plain socket); panics on errors.
    pub fn control(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let (status, text) =
            http(self.proxy_port, method, path, body.map(|b| b.to_string()))
                .unwrap_or_else(|e| {
                    panic!("proxy control {method} {path} failed: {e}")
                });
        assert_eq!(
            status, 200,
            "proxy control {method} {path} answered {status}: {text}"
        );
        serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!("proxy control {method} {path}: bad JSON {text:?}: {e}")
        })
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.proxy.kill();
        let _ = self.proxy.wait();
        let _ = self.moto.kill();
        let _ = self.moto.wait();
        if std::thread::panicking() {
            eprintln!(
                "world: proxy log ({}):\n{}",
                self.root.join("proxy.log").display(),
                tail(&self.proxy_log(), 40)
            );
        }
        if std::env::var_os("HUBFORM_KEEP_WORLD").is_some() {
            eprintln!("world: kept {}", self.root.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn ec2_client(endpoint: &str) -> aws_sdk_ec2::Client {
    use aws_sdk_ec2::config::{
        retry::RetryConfig, BehaviorVersion, Credentials, Region,
    };
    let conf = aws_sdk_ec2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            "testing", "testing", None, None, "world",
        ))
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_ec2::Client::from_conf(conf)
}

fn iam_client(endpoint: &str) -> aws_sdk_iam::Client {
    use aws_sdk_iam::config::{
        retry::RetryConfig, BehaviorVersion, Credentials, Region,
    };
    let conf = aws_sdk_iam::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            "testing", "testing", None, None, "world",
        ))
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_iam::Client::from_conf(conf)
}

fn make_temp_root() -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = format!(
        "hubform-world-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let root = std::env::temp_dir().join(name);
    std::fs::create_dir(&root)
        .unwrap_or_else(|e| panic!("create temp dir {}: {e}", root.display()));
    root
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// Environment shared by moto and the proxy: dummy credentials and no
/// inherited AWS settings.
fn clean_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("AWS_") || key.starts_with("MOTO_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", REGION)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .stdin(Stdio::null());
}

fn log_file(root: &Path, name: &str) -> std::fs::File {
    std::fs::File::create(root.join(name))
        .unwrap_or_else(|e| panic!("create {name}: {e}"))
}

async fn start_moto(
    moto_server: &Path,
    catalogue: &Path,
    root: &Path,
) -> (Child, u16) {
    let mut last_error = String::new();
    for _attempt in 0..5 {
        let port = free_port();
        let log = log_file(root, "moto.log");
        let mut cmd = Command::new(moto_server);
        clean_env(&mut cmd);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(root)
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .env("MOTO_AMIS_PATH", catalogue)
            .env("MOTO_ENABLE_AMI_VALIDATION", "true")
            .env("MOTO_ENABLE_KEYPAIR_VALIDATION", "true")
            .env("MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION", "true")
            .stdout(log.try_clone().expect("dup log file"))
            .stderr(log);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", moto_server.display()));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                last_error = format!(
                    "moto_server on port {port} exited ({status}): {}",
                    tail(
                        &std::fs::read_to_string(root.join("moto.log"))
                            .unwrap_or_default(),
                        10
                    )
                );
                break;
            }
            if matches!(
                http(port, "GET", "/moto-api/data.json", None),
                Ok((200, _))
            ) {
                return (child, port);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                last_error = format!("moto_server on port {port} not ready");
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("could not start moto_server: {last_error}");
}

async fn start_proxy(
    venv: &Path,
    moto_port: u16,
    moto_pid: u32,
    root: &Path,
) -> (Child, u16) {
    let script = workspace_root().join("tests/harness/proxy.py");
    let port_file = root.join("proxy.port");
    let mut cmd = Command::new(venv.join("bin/python"));
    clean_env(&mut cmd);
    cmd.arg(&script)
        .arg("--upstream")
        .arg(format!("http://127.0.0.1:{moto_port}"))
        .arg("--port-file")
        .arg(&port_file)
        .arg("--exit-with-parent")
        .arg("--moto-pid")
        .arg(moto_pid.to_string())
        .current_dir(root)
        .stdout(log_file(root, "proxy.out"))
        .stderr(log_file(root, "proxy.log"));
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", script.display()));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(&port_file) {
            if let Ok(port) = text.trim().parse::<u16>() {
                return (child, port);
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the proxy exited ({status}): {}",
                std::fs::read_to_string(root.join("proxy.log"))
                    .unwrap_or_default()
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the proxy did not write {}", port_file.display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A minimal HTTP/1.0 exchange with 127.0.0.1:`port`: (status, body).
fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<String>,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let body = body.unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text.split_once("\r\n\r\n").ok_or_else(|| {
        std::io::Error::other(format!("no HTTP header in {text:?}"))
    })?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            std::io::Error::other(format!("bad status line in {head:?}"))
        })?;
    Ok((status, rest.to_string()))
}
