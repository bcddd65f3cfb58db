//! The SSH client layer (`hubform_host::ssh`) against real OpenSSH test
//! hosts: login, host key pinning, commands, stdin, streaming, timeouts,
//! signals, lost connections and the loopback guard.

use std::net::TcpListener;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hubform_host::ssh::{
    Exit, HostKeyPolicy, RunOptions, Session, SshError, SshSettings, Target,
};

use crate::host::TestHost;

fn target(host: &TestHost) -> Target {
    Target {
        host: "127.0.0.1".into(),
        port: host.port(),
        user: host.user().into(),
        key_file: host.client_key(),
    }
}

/// Test settings: loopback only, short timeouts.
fn settings() -> SshSettings {
    SshSettings {
        connect_timeout: Duration::from_secs(5),
        connect_retries_for: Duration::from_secs(5),
        loopback_only: true,
        ..SshSettings::default()
    }
}

async fn connect(host: &TestHost) -> Session {
    let pin = HostKeyPolicy::Pin(host.host_public_key());
    Session::connect(&target(host), pin, &settings())
        .await
        .expect("connect to the test host")
}

fn within(seconds: u64) -> RunOptions<'static> {
    RunOptions::new(Duration::from_secs(seconds))
}

/// A port on which nothing listens (there is a small race with other
/// tests binding it meanwhile).
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::test]
async fn commands_return_exit_code_and_separate_streams() {
    let host = TestHost::start();

    let started = Instant::now();
    let session = Session::connect(
        &target(&host),
        HostKeyPolicy::TrustOnFirstUse,
        &settings(),
    )
    .await
    .unwrap();
    let connected = started.elapsed();
    assert_eq!(session.host_key(), host.host_public_key());

    let started = Instant::now();
    let out = session
        .run("echo out; echo err >&2; exit 7", within(10))
        .await
        .unwrap();
    let first = started.elapsed();
    assert_eq!(out.status, Exit::Code(7));
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");

    let started = Instant::now();
    let out = session.run("sudo -n id -u", within(10)).await.unwrap();
    let sudo = started.elapsed();
    assert_eq!(out.status, Exit::Code(0));
    assert_eq!(out.stdout, "0\n");
    assert_eq!(out.stderr, "");

    let started = Instant::now();
    let out = session.run("true", within(10)).await.unwrap();
    let again = started.elapsed();
    assert!(out.status.success());

    eprintln!(
        "connect+auth {:.1} ms, first command {:.1} ms, sudo -n id -u {:.1} \
         ms, true {:.1} ms",
        ms(connected),
        ms(first),
        ms(sudo),
        ms(again)
    );
    session.close().await;
}

#[tokio::test]
async fn stdin_reaches_sudo_tee_byte_for_byte() {
    let host = TestHost::start();
    let session = connect(&host).await;
    let content: Vec<u8> =
        (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();

    let options = RunOptions {
        stdin: Some(&content),
        ..within(10)
    };
    let out = session
        .run("sudo -n tee /opt/uploaded >/dev/null", options)
        .await
        .unwrap();
    assert_eq!(out.status, Exit::Code(0), "{}", out.stderr);

    let on_disk = std::fs::read(host.root_path("/opt/uploaded")).unwrap();
    assert!(on_disk == content, "the uploaded file differs");
    let owner = session
        .run("stat -c %U /opt/uploaded", within(10))
        .await
        .unwrap();
    assert_eq!(owner.stdout, "root\n");
}

#[tokio::test]
async fn large_stdin_and_stdout_flow_at_once() {
    // More than the channel window and russh's channel buffer each way:
    // stdin must go out while stdout comes in.
    let host = TestHost::start();
    let session = connect(&host).await;
    let line = "0123456789abcdef".repeat(4) + "\n";
    let content = line.repeat(8 * 1024 * 1024 / line.len());

    let started = Instant::now();
    let options = RunOptions {
        stdin: Some(content.as_bytes()),
        ..within(60)
    };
    let out = session.run("cat", options).await.unwrap();
    eprintln!(
        "{:.1} MB through cat in {:.0} ms",
        content.len() as f64 / 1e6,
        ms(started.elapsed())
    );
    assert!(out.status.success());
    assert!(out.stdout == content, "cat gave back other bytes");
}

#[tokio::test]
async fn without_stdin_a_command_reads_end_of_file() {
    let host = TestHost::start();
    let session = connect(&host).await;
    let out = session.run("wc -c", within(10)).await.unwrap();
    assert_eq!(out.stdout.trim(), "0");
}

#[tokio::test]
async fn lines_arrive_while_the_command_runs() {
    let host = TestHost::start();
    let session = connect(&host).await;
    let seen = Mutex::new(Vec::new());
    let started = Instant::now();
    let record = |line: &str| {
        seen.lock()
            .unwrap()
            .push((line.to_owned(), started.elapsed()));
    };

    let options = RunOptions {
        on_line: Some(&record),
        ..within(10)
    };
    let out = session
        .run(
            "for i in 1 2 3; do echo $i; sleep 0.3; done; echo done >&2",
            options,
        )
        .await
        .unwrap();
    let finished = started.elapsed();

    let seen = seen.into_inner().unwrap();
    let lines: Vec<&str> = seen.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(lines, ["1", "2", "3", "done"]);
    assert_eq!(out.stdout, "1\n2\n3\n");
    assert_eq!(out.stderr, "done\n");
    let at = |i: usize| seen[i].1;
    // Each line came as it was printed, not all at the end.
    assert!(at(1) - at(0) >= Duration::from_millis(250), "{seen:?}");
    assert!(at(2) - at(1) >= Duration::from_millis(250), "{seen:?}");
    assert!(finished - at(0) >= Duration::from_millis(500), "{seen:?}");
}

#[tokio::test]
async fn timeout_stops_the_command_and_the_session_stays_usable() {
    let host = TestHost::start();
    let session = connect(&host).await;

    for command in ["sleep 30", "sudo -n sleep 31"] {
        let started = Instant::now();
        let err = session.run(command, within(1)).await.unwrap_err();
        let took = started.elapsed();
        match &err {
            SshError::Timeout {
                host: h,
                command: c,
                after,
            } => {
                assert_eq!(h, &host.endpoint());
                assert_eq!(c, command);
                assert_eq!(*after, Duration::from_secs(1));
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(took < Duration::from_secs(3), "took {took:?}");
        assert!(err.to_string().contains(command), "{err}");
    }

    let out = session.run("echo still here", within(10)).await.unwrap();
    assert_eq!(out.stdout, "still here\n");

    // TERM reached the commands, sudo's included.
    let mut left = String::new();
    for _ in 0..50 {
        let out = session
            .run("pgrep -a sleep || true", within(10))
            .await
            .unwrap();
        left = out.stdout;
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, "", "the timed-out commands still run");
}

#[tokio::test]
async fn a_command_killed_by_a_signal_has_no_exit_code() {
    let host = TestHost::start();
    let session = connect(&host).await;
    let out = session.run("kill -TERM $$", within(10)).await.unwrap();
    assert_eq!(out.status, Exit::Signal("TERM".into()));
    assert!(!out.status.success());
}

#[tokio::test]
async fn commands_run_concurrently_on_one_session() {
    let host = TestHost::start();
    let session = connect(&host).await;
    let run = |i: u32| {
        let session = &session;
        async move {
            let command = format!("sleep 1; echo {i}");
            session.run(&command, within(10)).await.unwrap().stdout
        }
    };
    let started = Instant::now();
    let (a, b, c, d, e) = tokio::join!(run(0), run(1), run(2), run(3), run(4));
    let took = started.elapsed();
    assert_eq!([a, b, c, d, e], ["0\n", "1\n", "2\n", "3\n", "4\n"]);
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_mid_command_is_dropped_and_can_be_redone() {
    let host = TestHost::start();
    let session = connect(&host).await;

    let running = session.run("echo started; sleep 30", within(60));
    let reboot = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        tokio::task::block_in_place(|| host.restart());
    };
    let started = Instant::now();
    let (result, ()) = tokio::join!(running, reboot);
    let took = started.elapsed();

    match result {
        Err(SshError::Dropped {
            host: h,
            command,
            reason,
        }) => {
            assert_eq!(h, host.endpoint());
            assert_eq!(command, "echo started; sleep 30");
            assert!(!reason.is_empty());
        }
        other => panic!("expected Dropped, got {other:?}"),
    }
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(session.is_closed());
    match session.run("true", within(5)).await {
        Err(SshError::Closed { .. }) => {}
        other => panic!("expected Closed, got {other:?}"),
    }

    // The rebooted host has the same key: reconnect and run again.
    let session = connect(&host).await;
    let out = session.run("echo again", within(10)).await.unwrap();
    assert_eq!(out.stdout, "again\n");
}

#[tokio::test]
async fn a_frozen_server_is_noticed_by_keepalive() {
    let host = TestHost::start();
    let settings = SshSettings {
        keepalive_interval: Duration::from_secs(1),
        keepalive_max: 2,
        ..settings()
    };
    let pin = HostKeyPolicy::Pin(host.host_public_key());
    let session = Session::connect(&target(&host), pin, &settings)
        .await
        .unwrap();

    let sshds = || -> Vec<u32> {
        host.processes()
            .into_iter()
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim() == "sshd")
            })
            .collect()
    };
    let signal = |name: &str, pids: &[u32]| {
        for pid in pids {
            Command::new("kill")
                .arg(format!("-{name}"))
                .arg(pid.to_string())
                .status()
                .expect("run kill");
        }
    };

    let running = session.run("sleep 30", within(60));
    let freeze = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let pids = sshds();
        assert!(!pids.is_empty());
        signal("STOP", &pids);
        pids
    };
    let started = Instant::now();
    let (result, frozen) = tokio::join!(running, freeze);
    let took = started.elapsed();
    signal("CONT", &frozen);

    assert!(
        matches!(result, Err(SshError::Dropped { .. })),
        "expected Dropped, got {result:?}"
    );
    // interval × (max + 1) = 3 s after the freeze, with some slack.
    assert!(took < Duration::from_secs(8), "took {took:?}");
    eprintln!("frozen server noticed after {:.1} s", took.as_secs_f64());
}

#[tokio::test]
async fn a_changed_host_key_is_refused_and_named() {
    let host = TestHost::start();
    let pinned = host.host_public_key();
    host.rekey();
    let new_key = host.host_public_key();
    assert_ne!(pinned, new_key);

    let err = Session::connect(
        &target(&host),
        HostKeyPolicy::Pin(format!("{pinned} old comment")),
        &settings(),
    )
    .await
    .unwrap_err();
    let SshError::HostKeyChanged {
        host: h,
        expected,
        offered,
    } = &err
    else {
        panic!("expected HostKeyChanged, got {err:?}");
    };
    assert_eq!(h, &host.endpoint());
    assert_eq!(expected, &fingerprint(&host, &pinned));
    assert_eq!(offered, &fingerprint(&host, &new_key));
    let text = err.to_string();
    assert!(text.contains(expected.as_str()), "{text}");
    assert!(text.contains(offered.as_str()), "{text}");
    assert!(text.contains("hubform:host-key"), "{text}");

    // Trusting on first use sees the new key, and pinning it works.
    let session = Session::connect(
        &target(&host),
        HostKeyPolicy::TrustOnFirstUse,
        &settings(),
    )
    .await
    .unwrap();
    assert_eq!(session.host_key(), new_key);
    session.close().await;
    connect(&host).await.close().await;
}

/// `ssh-ed25519 SHA256:…` as ssh-keygen computes it.
fn fingerprint(host: &TestHost, public_key: &str) -> String {
    let file = host.dir().join("fingerprint.pub");
    std::fs::write(&file, format!("{public_key}\n")).expect("write a key");
    let out = Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(&file)
        .output()
        .expect("run ssh-keygen");
    // "256 SHA256:… comment (ED25519)"
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let hash = text.split_whitespace().nth(1).expect("a fingerprint");
    format!("ssh-ed25519 {hash}")
}

#[tokio::test]
async fn a_key_the_server_does_not_know_is_an_auth_error() {
    let host = TestHost::start();
    let wrong = host.dir().join("wrong_key");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&wrong)
        .status()
        .expect("run ssh-keygen");
    assert!(made.success());

    let target = Target {
        key_file: wrong.clone(),
        ..target(&host)
    };
    let pin = HostKeyPolicy::Pin(host.host_public_key());
    let err = Session::connect(&target, pin, &settings())
        .await
        .unwrap_err();
    match &err {
        SshError::Auth {
            host: h,
            user,
            key_file,
        } => {
            assert_eq!(h, &host.endpoint());
            assert_eq!(user, "ubuntu");
            assert_eq!(key_file, &wrong);
        }
        other => panic!("expected Auth, got {other:?}"),
    }
    let private = std::fs::read_to_string(&wrong).unwrap();
    let secret_line = private.lines().nth(1).unwrap();
    assert!(!format!("{err} {err:?}").contains(secret_line));
}

#[tokio::test]
async fn a_closed_port_is_retried_then_refused() {
    let host = TestHost::start(); // for its client key
    let port = closed_port();
    let target = Target {
        port,
        ..target(&host)
    };
    let settings = SshSettings {
        connect_retries_for: Duration::from_millis(1500),
        ..settings()
    };

    let started = Instant::now();
    let err =
        Session::connect(&target, HostKeyPolicy::TrustOnFirstUse, &settings)
            .await
            .unwrap_err();
    let took = started.elapsed();

    match &err {
        SshError::Refused {
            host: h,
            attempts,
            source,
            ..
        } => {
            assert_eq!(h, &format!("127.0.0.1:{port}"));
            assert!(*attempts >= 4, "{attempts} attempts");
            assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    assert!(took >= Duration::from_millis(1500), "took {took:?}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
}

#[tokio::test]
async fn a_server_that_comes_up_late_is_reached() {
    // Connection refused until a forwarder to the test host starts
    // listening on the port, as while an instance boots.
    let host = TestHost::start();
    let port = closed_port();
    let upstream = host.endpoint();
    let forwarder = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(800)).await;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the forwarder");
        let (mut inbound, _) = listener.accept().await.expect("accept");
        let mut outbound = tokio::net::TcpStream::connect(upstream)
            .await
            .expect("connect to the test host");
        let _ =
            tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
    });

    let target = Target {
        port,
        ..target(&host)
    };
    let pin = HostKeyPolicy::Pin(host.host_public_key());
    let started = Instant::now();
    let session = Session::connect(&target, pin, &settings()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(800));
    let out = session.run("echo up", within(10)).await.unwrap();
    assert_eq!(out.stdout, "up\n");
    session.close().await;
    forwarder.abort();
}

#[tokio::test]
async fn loopback_only_refuses_other_targets_without_a_packet() {
    let target = Target {
        host: "203.0.113.10".into(), // TEST-NET-3, never routed
        port: 22,
        user: "ubuntu".into(),
        // Not read either: the guard comes first.
        key_file: "/nonexistent/id_ed25519".into(),
    };
    let started = Instant::now();
    let err =
        Session::connect(&target, HostKeyPolicy::TrustOnFirstUse, &settings())
            .await
            .unwrap_err();
    // No connection was tried: that would take the connect timeout.
    assert!(started.elapsed() < Duration::from_millis(50));
    let SshError::NotLoopback { host } = &err else {
        panic!("expected NotLoopback, got {err:?}");
    };
    assert_eq!(host, "203.0.113.10:22");
    assert!(err.to_string().contains("HUBFORM_LOOPBACK_ONLY"), "{err}");
}

#[tokio::test]
async fn localhost_passes_the_loopback_guard() {
    let host = TestHost::start();
    let target = Target {
        host: "localhost".into(),
        ..target(&host)
    };
    let pin = HostKeyPolicy::Pin(host.host_public_key());
    let session = Session::connect(&target, pin, &settings()).await.unwrap();
    let out = session.run("echo ok", within(10)).await.unwrap();
    assert_eq!(out.stdout, "ok\n");
}
