//! Smoke tests of the SSH test hosts themselves (`host.rs`): login and
//! sudo, what stays private to a host, reboots, host keys, the options and
//! that nothing is left behind.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::host::{describe, process_start_time, HostOptions, TestHost};
use crate::world::workspace_root;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Polls `check` for up to five seconds.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn login_with_the_key_and_passwordless_sudo() {
    let host = TestHost::start();
    assert_eq!(host.user(), "ubuntu");
    assert_eq!(host.endpoint(), format!("127.0.0.1:{}", host.port()));
    assert!(host.host_public_key().starts_with("ssh-ed25519 AAAA"));
    assert_eq!(host.ssh_ok("id -un").trim(), "ubuntu");
    assert_eq!(host.ssh_ok("sudo -n id -u").trim(), "0");
    assert_eq!(host.sudo_ok("id -u").trim(), "0");
    // Quoting survives the trip through ssh and sh -c.
    assert_eq!(host.sudo_ok("echo \"it's $((6 * 7))\"").trim(), "it's 42");
    // What Ubuntu's pam_env would give a session.
    let env = host.ssh_ok("echo $PATH; echo $LANG");
    assert!(env.contains("/usr/sbin:"), "PATH without /usr/sbin: {env}");
    assert!(env.contains("C.UTF-8"), "no LANG: {env}");
    // Inside, the host key is where Ubuntu keeps it, and the only one.
    let keys = host.sudo_ok("cat /etc/ssh/ssh_host_*_key.pub");
    assert_eq!(keys.lines().count(), 1, "host keys inside: {keys}");
    assert!(keys.starts_with(&host.host_public_key()));
}

#[test]
fn writes_inside_land_in_the_host_dir_not_on_the_machine() {
    let host = TestHost::start();
    let name = format!("hubform-smoke-{}", host.port());
    let files = [
        format!("/opt/{name}/x"),
        format!("/usr/bin/{name}"),
        format!("/etc/{name}"),
        format!("/var/lib/{name}"),
        format!("/root/{name}"),
        format!("/tmp/{name}"),
    ];
    for file in &files {
        host.sudo_ok(&format!(
            "mkdir -p \"$(dirname {file})\" && echo inside > {file}"
        ));
    }
    let home_file = format!("/home/ubuntu/{name}");
    host.ssh_ok(&format!("echo inside > {home_file}"));
    for file in files.iter().chain([&home_file]) {
        assert_eq!(read(&host.root_path(file)).trim(), "inside", "{file}");
        assert!(!Path::new(file).exists(), "{file} leaked onto the machine");
    }
    assert!(!Path::new(&format!("/opt/{name}")).exists());
}

#[test]
fn two_hosts_in_parallel_are_isolated() {
    let starts: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(TestHost::start))
        .collect();
    let hosts: Vec<TestHost> = starts
        .into_iter()
        .map(|t| t.join().expect("start a host in a thread"))
        .collect();
    let (a, b) = (&hosts[0], &hosts[1]);
    assert_ne!(a.port(), b.port());
    assert_ne!(a.host_public_key(), b.host_public_key());
    assert_ne!(a.pid_namespace(), b.pid_namespace());
    for host in &hosts {
        host.sudo_ok(&format!(
            "mkdir -p /opt/tljh && echo {} > /opt/tljh/who && \
             useradd jupyter-{}",
            host.port(),
            host.port()
        ));
    }
    for (me, other) in [(a, b), (b, a)] {
        assert_eq!(
            me.ssh_ok("cat /opt/tljh/who").trim(),
            me.port().to_string()
        );
        let user = format!("jupyter-{}", other.port());
        let out = me.ssh(&format!("getent passwd {user}"));
        assert!(!out.status.success(), "{user} seen on the other host");
    }
}

#[test]
fn restart_keeps_disks_and_host_key_but_not_processes() {
    let host = TestHost::start();
    let key = host.host_public_key();
    host.sudo_ok(
        "mkdir -p /opt/tljh && echo kept > /opt/tljh/state && \
         echo kept > /usr/bin/hubform-kept && echo gone > /tmp/scratch && \
         nohup sleep 1000 >/dev/null 2>&1 &",
    );
    host.ssh_ok("echo kept > ~/note");
    assert!(host.sudo_ok("ps -e -o comm").contains("sleep"));
    let before = host.processes();

    host.restart();

    assert_eq!(host.host_public_key(), key);
    assert_eq!(host.ssh_ok("cat /opt/tljh/state").trim(), "kept");
    assert_eq!(host.ssh_ok("cat /usr/bin/hubform-kept").trim(), "kept");
    assert_eq!(host.ssh_ok("cat ~/note").trim(), "kept");
    assert_eq!(host.ssh_ok("ls -A /tmp").trim(), "", "/tmp after a reboot");
    assert!(!host.sudo_ok("ps -e -o comm").contains("sleep"));
    for pid in before {
        assert!(!host.processes().contains(&pid), "pid {pid} survived");
    }
    assert_eq!(host.sudo_ok("id -u").trim(), "0");
}

#[test]
fn rekey_changes_the_host_key_and_the_old_one_is_refused() {
    let host = TestHost::start();
    let old_key = host.host_public_key();
    let old_known = host.dir().join("known_hosts.old");
    std::fs::copy(host.known_hosts(), &old_known).expect("copy known_hosts");

    host.rekey();

    let new_key = host.host_public_key();
    assert!(new_key.starts_with("ssh-ed25519 "));
    assert_ne!(new_key, old_key);
    assert_eq!(host.ssh_ok("id -un").trim(), "ubuntu");
    assert!(read(&host.known_hosts()).contains(&new_key));
    // A client that pinned the old key refuses the host.
    let out = std::process::Command::new("ssh")
        .args(["-F", "/dev/null", "-p", &host.port().to_string()])
        .arg("-i")
        .arg(host.client_key())
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", old_known.display()))
        .args(["-o", "GlobalKnownHostsFile=/dev/null"])
        .args(["ubuntu@127.0.0.1", "true"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run ssh");
    assert!(
        !out.status.success(),
        "old key accepted: {}",
        describe(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{stderr}"
    );
}

#[test]
fn no_sudo_makes_sudo_ask_for_a_password() {
    let host = TestHost::start_with(HostOptions {
        no_sudo: true,
        ..HostOptions::default()
    });
    assert_eq!(host.ssh_ok("id -un").trim(), "ubuntu");
    let out = host.sudo("true");
    assert!(!out.status.success(), "sudo -n worked: {}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("a password is required"), "{stderr}");
}

#[test]
fn other_user_name() {
    let host = TestHost::start_with(HostOptions {
        user: "admin".to_string(),
        ..HostOptions::default()
    });
    assert_eq!(host.ssh_ok("id -un; echo ~").trim(), "admin\n/home/admin");
    assert_eq!(host.sudo_ok("id -u").trim(), "0");
}

#[test]
fn provision_script_runs_as_root_at_every_boot() {
    let host = TestHost::start_with(HostOptions {
        provision: Some(
            "set -eu\n\
             id -u >> /opt/provisioned\n\
             printf '#!/bin/sh\\necho double \"$@\"\\n' > /usr/bin/systemctl\n\
             chmod 0755 /usr/bin/systemctl\n\
             printf '[global]\\nno-index = true\\n' > /etc/pip.conf\n\
             echo \"# testhost $TESTHOST_PORT\" >> /etc/pip.conf\n\
             echo \"$TESTHOST_USER $TESTHOST_PORT\" > /opt/env\n\
             install -m 0755 \"$TESTHOST_DIR/files/setup-host.sh\" \
                 /usr/local/bin/copied\n"
                .to_string(),
        ),
        files: vec![workspace_root().join("tests/harness/setup-host.sh")],
        ..HostOptions::default()
    });
    assert_eq!(read(&host.root_path("/opt/provisioned")), "0\n");
    assert_eq!(
        read(&host.root_path("/opt/env")).trim(),
        format!("ubuntu {}", host.port())
    );
    assert_eq!(
        host.ssh_ok("systemctl restart jupyterhub").trim(),
        "double restart jupyterhub"
    );
    let marker = format!("# testhost {}", host.port());
    assert!(host.ssh_ok("cat /etc/pip.conf").contains(&marker));
    assert!(host
        .ssh_ok("cat /usr/local/bin/copied")
        .contains("setup-host"));
    if let Ok(real) = std::fs::read_to_string("/etc/pip.conf") {
        assert!(!real.contains(&marker), "provision wrote the real pip.conf");
    }
    host.restart();
    assert_eq!(read(&host.root_path("/opt/provisioned")), "0\n0\n");
}

#[test]
fn users_created_inside_stay_inside() {
    let host = TestHost::start();
    let user = format!("jupyter-smoke{}", host.port());
    host.sudo_ok(&format!("useradd --create-home {user}"));
    assert!(host
        .ssh_ok(&format!("getent passwd {user}"))
        .contains(&user));
    let real = read(Path::new("/etc/passwd"));
    assert!(!real.contains(&user), "{user} is in the real /etc/passwd");
    assert!(read(&host.root_path("/etc/passwd")).contains(&user));
    assert!(host.root_path(&format!("/home/{user}")).is_dir());
    assert!(!Path::new(&format!("/home/{user}")).exists());
}

#[test]
fn live_and_accepted_connections_are_counted() {
    let host = TestHost::start();
    let accepted = host.connections_accepted();
    eventually("no live connection", || host.sshd_connections() == 0);
    let mut cmd = std::process::Command::new("ssh");
    cmd.args(["-F", "/dev/null", "-p", &host.port().to_string()])
        .arg("-i")
        .arg(host.client_key())
        .args(["-o", "BatchMode=yes"])
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            host.known_hosts().display()
        ))
        .args(["ubuntu@127.0.0.1", "sleep 3"])
        .stdin(std::process::Stdio::null());
    let mut session = cmd.spawn().expect("spawn ssh");
    eventually("one live connection", || host.sshd_connections() == 1);
    session.kill().expect("kill the ssh client");
    session.wait().expect("reap the ssh client");
    eventually("no live connection", || host.sshd_connections() == 0);
    host.ssh_ok("true");
    assert_eq!(host.connections_accepted(), accepted + 2);
}

#[test]
fn drop_leaves_no_process_mount_port_or_dir() {
    let host = TestHost::start();
    host.sudo_ok("nohup sleep 1000 >/dev/null 2>&1 & mkdir -p /opt/x");
    let dir = host.dir().to_path_buf();
    let port = host.port();
    let inside: Vec<(u32, u64)> = host
        .processes()
        .into_iter()
        // A process that ended between the listing and this read (a
        // session's shell) has no start time: nothing to check for it.
        .filter_map(|pid| Some((pid, process_start_time(pid)?)))
        .collect();
    // init, sshd, sleep at least
    assert!(inside.len() >= 3, "processes inside: {inside:?}");

    drop(host);

    for (pid, start) in inside {
        assert_ne!(
            process_start_time(pid),
            Some(start),
            "process {pid} survived"
        );
    }
    assert!(!dir.exists(), "{} left behind", dir.display());
    let dir = dir.to_string_lossy().into_owned();
    for entry in std::fs::read_dir("/proc").expect("list /proc").flatten() {
        let mounts = entry.path().join("mountinfo");
        if let Ok(text) = std::fs::read_to_string(&mounts) {
            assert!(
                !text.contains(&dir),
                "{} still sees a mount of {dir}",
                mounts.display()
            );
        }
    }
    let listening =
        read(Path::new("/proc/net/tcp"))
            .lines()
            .skip(1)
            .any(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                f.len() > 3
                    && f[1] == format!("0100007F:{port:04X}")
                    && f[3] == "0A"
            });
    assert!(!listening, "something still listens on 127.0.0.1:{port}");
}
