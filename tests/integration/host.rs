//! Real OpenSSH test hosts: the EC2 instance a lecturer would SSH into, one
//! per test, made by `tests/harness/testhost.sh`.
//!
//! A host is `sshd` on 127.0.0.1 inside private mount, pid, UTS and IPC
//! namespaces. `/etc`, `/usr` and `/var` are copy-on-write overlays whose
//! changes land in the host's directory (`DIR/etc.upper`, ...); `/opt`,
//! `/home`, `/root` and `/tmp` are directories of their own (`DIR/opt`,
//! ...); `/run` is a fresh tmpfs per boot. Users, sudoers, `/opt/tljh` and
//! doubles in `/usr/bin` therefore stay private to the test. The network and
//! the kernel are the real machine's, and `sudo` inside is real root.
//!
//! Needs root and the packages from `tests/harness/setup-host.sh`.

#![allow(dead_code)] // not every test module uses every helper

use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::world::workspace_root;

/// Prefix of every host directory in the temp dir.
const DIR_PREFIX: &str = "hubform-host-";
/// `testhost.sh start` exits with this when the port is taken.
const PORT_IN_USE: i32 = 3;
const START_ATTEMPTS: usize = 10;

/// How to set up a [`TestHost`].
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// The login user (cloud-init's default user on Ubuntu: `ubuntu`).
    pub user: String,
    /// The user's `sudo` asks for a password (which it can never get), so
    /// `sudo -n` fails, as on an image without passwordless sudo.
    pub no_sudo: bool,
    /// A shell script run as root inside the host at every boot, after the
    /// user exists and before sshd starts (written to `DIR/provision.sh`;
    /// its output goes to `DIR/provision.log`). It sees `TESTHOST_DIR`
    /// (the host directory, as `/run/testhost`), `TESTHOST_USER` and
    /// `TESTHOST_PORT`, and must be safe to run again after a restart.
    ///
    /// Inside, the real `/opt`, `/home`, `/root` and `/tmp` are hidden
    /// (a checkout of this repository may well be under one of them): hand
    /// the script its files through [`HostOptions::files`].
    pub provision: Option<String>,
    /// Files and directories of the real machine copied into `DIR/files/`
    /// before the first boot; inside they are `$TESTHOST_DIR/files/NAME`.
    pub files: Vec<PathBuf>,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            user: "ubuntu".to_string(),
            no_sudo: false,
            provision: None,
            files: Vec::new(),
        }
    }
}

/// A running test host; dropping it powers it off and deletes its
/// directory (set `TESTHOST_KEEP=1` to keep the directory).
#[derive(Debug)]
pub struct TestHost {
    dir: PathBuf,
    port: u16,
    user: String,
}

impl TestHost {
    /// A host with user `ubuntu` and passwordless sudo on a free port.
    pub fn start() -> TestHost {
        TestHost::start_with(HostOptions::default())
    }

    /// A host set up as `opts` says, on a free 127.0.0.1 port.
    pub fn start_with(opts: HostOptions) -> TestHost {
        preflight();
        clean_up_stale_hosts();
        for _ in 0..START_ATTEMPTS {
            let dir = make_host_dir();
            if let Some(script) = &opts.provision {
                std::fs::write(dir.join("provision.sh"), script)
                    .expect("write provision.sh into the host directory");
            }
            if let Err(e) = copy_files(&opts.files, &dir.join("files")) {
                stop_dir(&dir);
                panic!("{e}");
            }
            let port = free_port();
            let out = testhost()
                .arg("start")
                .arg(&dir)
                .arg(port.to_string())
                .arg(&opts.user)
                .env("TESTHOST_NO_SUDO", if opts.no_sudo { "1" } else { "0" })
                .output()
                .expect("run tests/harness/testhost.sh start");
            if out.status.success() {
                return TestHost {
                    dir,
                    port,
                    user: opts.user,
                };
            }
            let logs = logs(&dir);
            stop_dir(&dir);
            if out.status.code() == Some(PORT_IN_USE) {
                continue; // someone took the port meanwhile: another one
            }
            panic!(
                "the test host did not start on port {port}: {}\n{logs}",
                describe(&out)
            );
        }
        panic!("no free port for a test host after {START_ATTEMPTS} tries");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// The host's directory on the real disk (see [`TestHost::root_path`]).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `127.0.0.1:PORT`, where sshd listens.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The private key (OpenSSH format, ed25519) that logs in as
    /// [`TestHost::user`].
    pub fn client_key(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }

    /// The host's public key as `ssh-ed25519 AAAA...` (no comment). It
    /// changes only with [`TestHost::rekey`].
    pub fn host_public_key(&self) -> String {
        let path = self.dir.join("hostkey.pub");
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
            .trim()
            .to_string()
    }

    /// `known_hosts` holding the current host key for `[127.0.0.1]:PORT`.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }

    /// Runs `command` as the user with the system `ssh` client (batch
    /// mode, strict host key checking against [`TestHost::known_hosts`],
    /// no user or system ssh configuration). For test checks, not for
    /// hubform.
    pub fn ssh(&self, command: &str) -> Output {
        Command::new("ssh")
            .arg("-F")
            .arg("/dev/null")
            .arg("-i")
            .arg(self.client_key())
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-o", "BatchMode=yes"])
            .args(["-o", "StrictHostKeyChecking=yes"])
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                self.known_hosts().display()
            ))
            .args(["-o", "GlobalKnownHostsFile=/dev/null"])
            .args(["-o", "IdentitiesOnly=yes"])
            .args(["-o", "IdentityAgent=none"])
            .args(["-o", "ConnectTimeout=10"])
            .args(["-o", "LogLevel=ERROR"])
            .arg(format!("{}@127.0.0.1", self.user))
            .arg("--")
            .arg(command)
            .stdin(Stdio::null())
            .output()
            .expect("run the ssh client")
    }

    /// Runs `command` as root: `ssh` + `sudo -n sh -c 'COMMAND'`.
    pub fn sudo(&self, command: &str) -> Output {
        self.ssh(&format!("sudo -n sh -c {}", shell_quote(command)))
    }

    /// [`TestHost::ssh`] that must succeed; returns its stdout.
    pub fn ssh_ok(&self, command: &str) -> String {
        let out = self.ssh(command);
        assert!(
            out.status.success(),
            "ssh {command:?} on {} failed: {}",
            self.endpoint(),
            describe(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// [`TestHost::sudo`] that must succeed; returns its stdout.
    pub fn sudo_ok(&self, command: &str) -> String {
        let out = self.sudo(command);
        assert!(
            out.status.success(),
            "sudo {command:?} on {} failed: {}",
            self.endpoint(),
            describe(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Where the host's absolute path `inside` is on the real disk, for
    /// reading results without SSH: `/opt`, `/home`, `/root` and `/tmp`
    /// map to `DIR/opt/...` etc.; `/etc`, `/usr` and `/var` to their
    /// overlay's upper dir `DIR/etc.upper/...`, which holds only what the
    /// host created or changed (a file deleted inside shows there as a
    /// character device 0:0, an overlay "whiteout").
    pub fn root_path(&self, inside: &str) -> PathBuf {
        let path = Path::new(inside);
        let mut parts = path.components();
        assert_eq!(
            parts.next(),
            Some(Component::RootDir),
            "root_path({inside:?}): not an absolute path"
        );
        let top = match parts.next() {
            Some(Component::Normal(top)) => top.to_string_lossy(),
            _ => panic!("root_path({inside:?}): no top-level directory"),
        };
        let rest = parts.as_path();
        assert!(
            rest.components().all(|c| matches!(c, Component::Normal(_))),
            "root_path({inside:?}): use a path without . or .."
        );
        let base = match &*top {
            "opt" | "home" | "root" | "tmp" => self.dir.join(&*top),
            "etc" | "usr" | "var" => self.dir.join(format!("{top}.upper")),
            _ => panic!(
                "root_path({inside:?}): /{top} is not on the test host's \
                 own disk (only /etc, /usr, /var, /opt, /home, /root and \
                 /tmp are)"
            ),
        };
        base.join(rest)
    }

    /// Reboots the host: every process inside ends, sshd comes back on the
    /// same port with the same host key; disks are kept, `/tmp` and `/run`
    /// start empty, and the provision script runs again.
    pub fn restart(&self) {
        self.run_script("restart");
    }

    /// Like [`TestHost::restart`], with a new host key (written to
    /// [`TestHost::host_public_key`] and [`TestHost::known_hosts`]).
    pub fn rekey(&self) {
        self.run_script("rekey");
    }

    /// Live SSH connections to the host: sshd's per-connection processes,
    /// counting connections still authenticating. Settles a few
    /// milliseconds after a client disconnects.
    pub fn sshd_connections(&self) -> usize {
        let Some(pids) = self.pids() else { return 0 };
        if process_start_time(pids.sshd) != Some(pids.sshd_start) {
            return 0;
        }
        children(pids.sshd)
            .into_iter()
            .filter(|&pid| proc_comm(pid).as_deref() == Some("sshd"))
            .filter(|&pid| process_start_time(pid).is_some())
            .count()
    }

    /// Host PIDs of sshd's per-connection processes (the privileged
    /// monitor and the user's process of each connection), not the
    /// listener: ending them drops the connections, nothing else.
    pub fn session_processes(&self) -> Vec<u32> {
        let Some(pids) = self.pids() else {
            return Vec::new();
        };
        namespace_members(pids.namespace)
            .into_iter()
            .filter(|&pid| pid != pids.sshd)
            .filter(|&pid| {
                matches!(
                    proc_comm(pid).as_deref(),
                    Some("sshd") | Some("sshd-session")
                )
            })
            .collect()
    }

    /// Drops every SSH connection to the host, as a network failure
    /// would: SIGKILL to its [`TestHost::session_processes`], by PID.
    /// Commands those connections started go on running. Returns how
    /// many processes were signalled.
    pub fn drop_connections(&self) -> usize {
        let pids = self.session_processes();
        signal(&pids, "KILL");
        pids.len()
    }

    /// Freezes every SSH connection to the host (SIGSTOP to its session
    /// processes): TCP stays up and nothing answers, as with a hung
    /// server. Give the result to [`TestHost::thaw`].
    pub fn freeze_connections(&self) -> Vec<u32> {
        let pids = self.session_processes();
        signal(&pids, "STOP");
        pids
    }

    /// Freezes the listening sshd (SIGSTOP): new connections are taken
    /// by the kernel and never answered, as by a host that hangs while
    /// booting. Give the result to [`TestHost::thaw`].
    pub fn freeze_listener(&self) -> Vec<u32> {
        let pids: Vec<u32> = self.pids().map(|p| p.sshd).into_iter().collect();
        signal(&pids, "STOP");
        pids
    }

    /// Lets frozen processes run again (SIGCONT).
    pub fn thaw(&self, pids: &[u32]) {
        signal(pids, "CONT");
    }

    /// Connections sshd accepted since the host was first booted (one
    /// `Connection from` line each in `DIR/sshd.log`; restarts included).
    pub fn connections_accepted(&self) -> usize {
        self.sshd_log()
            .lines()
            .filter(|l| l.starts_with("Connection from "))
            .count()
    }

    /// sshd's log (`sshd -e`, LogLevel VERBOSE), all boots.
    pub fn sshd_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    /// The inode of the host's pid namespace (as in `/proc/PID/ns/pid`),
    /// while it runs: once a namespace is gone the kernel reuses its inode
    /// number for new ones.
    pub fn pid_namespace(&self) -> u64 {
        self.pids()
            .expect("the host's testhost.pids (is it running?)")
            .namespace
    }

    /// Host PIDs of the live processes inside the running host (with
    /// [`process_start_time`] they name a process for good).
    pub fn processes(&self) -> Vec<u32> {
        namespace_members(self.pid_namespace())
    }

    fn pids(&self) -> Option<Pids> {
        let text =
            std::fs::read_to_string(self.dir.join("testhost.pids")).ok()?;
        let n: Vec<u64> = text
            .split_whitespace()
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        let [_, _, _, _, sshd, sshd_start, namespace] = n[..] else {
            return None;
        };
        Some(Pids {
            sshd: u32::try_from(sshd).ok()?,
            sshd_start,
            namespace,
        })
    }

    fn run_script(&self, command: &str) {
        let out = testhost()
            .arg(command)
            .arg(&self.dir)
            .output()
            .unwrap_or_else(|e| panic!("run testhost.sh {command}: {e}"));
        assert!(
            out.status.success(),
            "testhost.sh {command} {} failed: {}\n{}",
            self.dir.display(),
            describe(&out),
            logs(&self.dir)
        );
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "test host {} ({}):\n{}",
                self.endpoint(),
                self.dir.display(),
                logs(&self.dir)
            );
        }
        stop_dir(&self.dir);
    }
}

/// Sends signal `name` to each of `pids` (best effort: a process may
/// have ended meanwhile).
fn signal(pids: &[u32], name: &str) {
    for pid in pids {
        let _ = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .stderr(Stdio::null())
            .status();
    }
}

/// Host PIDs of the live (not zombie) processes in pid namespace `ns`.
fn namespace_members(ns: u64) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::metadata(format!("/proc/{pid}/ns/pid"))
                .is_ok_and(|m| m.ino() == ns)
        })
        .filter(|&pid| process_start_time(pid).is_some())
        .collect()
}

struct Pids {
    sshd: u32,
    sshd_start: u64,
    namespace: u64,
}

fn testhost() -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(workspace_root().join("tests/harness/testhost.sh"))
        .stdin(Stdio::null());
    cmd
}

/// Powers off the host in `dir` and deletes `dir` (best effort: Drop
/// must not panic).
fn stop_dir(dir: &Path) {
    match testhost().arg("stop").arg(dir).output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => eprintln!(
            "testhost.sh stop {} failed: {}",
            dir.display(),
            describe(&out)
        ),
        Err(e) => eprintln!("cannot run testhost.sh stop: {e}"),
    }
    let keep = std::env::var_os("TESTHOST_KEEP").is_some_and(|v| v == "1");
    if !keep && dir.exists() {
        if let Err(e) = std::fs::remove_dir_all(dir) {
            eprintln!("cannot remove {}: {e}", dir.display());
        }
    }
}

/// Refuses, with the fix, to go on without root or the packages.
fn preflight() {
    let status = std::fs::read_to_string("/proc/self/status")
        .expect("read /proc/self/status");
    // "Uid: real effective saved fs"
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .unwrap_or("?");
    assert!(
        euid == "0",
        "test hosts need root (this process has uid {euid}): run the \
         tests as root after `tests/harness/setup-host.sh`"
    );
    for needed in ["/usr/sbin/sshd", "/usr/bin/sudo", "/usr/bin/ssh"] {
        assert!(
            Path::new(needed).exists(),
            "{needed} is missing: run tests/harness/setup-host.sh (as root) \
             to install openssh-server, sudo and python3-venv"
        );
    }
}

/// Stops hosts left behind by test processes that were killed before
/// their Drop ran (their directory names carry the dead process's PID).
fn clean_up_stale_hosts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_prefix(DIR_PREFIX)
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok())
            else {
                continue;
            };
            let dir = entry.path();
            if !Path::new(&format!("/proc/{pid}")).exists()
                && dir.join("testhost.conf").exists()
            {
                stop_dir(&dir);
            }
        }
    });
}

/// Copies `files` (files or whole directories) into `into`.
fn copy_files(files: &[PathBuf], into: &Path) -> Result<(), String> {
    if files.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(into)
        .map_err(|e| format!("create {}: {e}", into.display()))?;
    for file in files {
        let out = Command::new("cp")
            .arg("-a")
            .arg("--")
            .arg(file)
            .arg(into)
            .output()
            .map_err(|e| format!("run cp: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "copy {} into the test host: {}",
                file.display(),
                describe(&out)
            ));
        }
    }
    Ok(())
}

fn make_host_dir() -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = format!(
        "{DIR_PREFIX}{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let dir = std::env::temp_dir().join(name);
    std::fs::create_dir(&dir)
        .unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

fn free_port() -> u16 {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// `'text'` for a POSIX shell.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Exit status and both streams, for panic messages.
pub fn describe(out: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The ends of the host's logs, for panic messages.
fn logs(dir: &Path) -> String {
    let mut text = String::new();
    for name in ["sshd.log", "provision.log"] {
        if let Ok(log) = std::fs::read_to_string(dir.join(name)) {
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            text.push_str(&format!("--- {name}\n{}\n", tail.join("\n")));
        }
    }
    text
}

/// Start time (clock ticks since boot) of a live, non-zombie process; a
/// PID that is reused gets another start time.
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and ")": the fields start after the last ")".
    let fields: Vec<&str> =
        stat.get(stat.rfind(") ")? + 2..)?.split(' ').collect();
    if matches!(fields.first(), Some(&"Z") | Some(&"X")) {
        return None;
    }
    fields.get(19)?.parse().ok()
}

fn proc_comm(pid: u32) -> Option<String> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(comm.trim_end().to_string())
}

fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}
