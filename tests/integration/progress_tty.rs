//! The progress display in a real terminal: `hubform apply` of the
//! example's AWS part runs in a tmux pane (its own tmux server, on a
//! socket in the world's folder) while the test reads the screen with `capture-pane`. The
//! instance stays `pending` for a while (the proxy's pending phase) so
//! that its wait is on screen long enough to be read. Off a terminal the
//! same apply prints plain lines.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::Filter;

use crate::common::{self, example, Run};
use crate::drift::{INSTANCE, WORKSHOP};
use crate::world::World;

/// The spinner's frames (see crates/hubform-cli/src/progress.rs).
const FRAMES: &[char] = &['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// The changes of the example's AWS part, each of which must end in a
/// `✓` line.
const CHANGED: &[&str] = &[
    "iam_group.EC2Admins",
    "iam_user.ec2-admin",
    "key_pair.workshop-central-asia",
    "security_group.workshop-sg",
    "instance.hub",
    "volume.hub",
    "elastic_ip.hub",
];

/// How the instance's wait is stretched: DescribeInstances answers
/// `pending` this many times, polled this often (ms): about 4 s.
const PENDING_DESCRIBES: u32 = 16;
const POLL_MS: &str = "250";

/// A tmux server of this test alone, with one pane running a command.
/// Dropping it ends that server (by its socket, never by name).
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// Starts a server on a socket in `dir` with a pane of `width`
    /// columns running `cmd` (its program, arguments, directory and
    /// environment) through a shell script in `dir`. The pane stays open
    /// after the command ends and shows `[hubform exited N]`.
    fn start(cmd: &Command, dir: &Path, width: u32) -> Tmux {
        let script = dir.join("progress-tty.sh");
        std::fs::write(&script, shell_script(cmd)).expect("write the script");

        let tmux = Tmux {
            socket: dir.join("tmux.socket"),
        };
        let out = tmux.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "progress",
            "-x",
            &width.to_string(),
            "-y",
            "50",
            "sh",
            script.to_str().expect("a UTF-8 path"),
        ]);
        assert!(
            out.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux")
    }

    /// The pane's visible text.
    fn screen(&self) -> String {
        self.capture(&["-p"])
    }

    /// The pane's whole text, scrolled-off lines included, with its
    /// colours and attributes as escape sequences when `escapes`.
    fn everything(&self, escapes: bool) -> String {
        let flags = if escapes { "-pe" } else { "-p" };
        self.capture(&[flags, "-S", "-"])
    }

    fn capture(&self, flags: &[&str]) -> String {
        let mut args = vec!["capture-pane", "-t", "progress"];
        args.extend_from_slice(flags);
        let out = self.run(&args);
        assert!(
            out.status.success(),
            "tmux capture-pane failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Reads the screen until `done` says it is complete; panics with
    /// the screen after `limit`.
    fn wait_for(&self, limit: Duration, done: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + limit;
        loop {
            if done(&self.everything(false)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out; the pane shows:\n{}",
                self.everything(false)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// A shell script running `cmd` as `Command::spawn` would: its
/// environment changes, directory, program and arguments.
fn shell_script(cmd: &Command) -> String {
    let mut script = String::from("#!/bin/sh\n");
    for (key, value) in cmd.get_envs() {
        let key = key.to_str().expect("a UTF-8 variable name");
        match value {
            Some(value) => script.push_str(&format!(
                "export {key}={}\n",
                quote(value.to_str().expect("a UTF-8 value"))
            )),
            None => script.push_str(&format!("unset {key}\n")),
        }
    }
    if let Some(dir) = cmd.get_current_dir() {
        let dir = dir.to_str().expect("a UTF-8 path");
        script.push_str(&format!("cd {}\n", quote(dir)));
    }
    let mut line = vec![quote(
        cmd.get_program().to_str().expect("a UTF-8 program path"),
    )];
    for arg in cmd.get_args() {
        line.push(quote(arg.to_str().expect("a UTF-8 argument")));
    }
    script.push_str(&line.join(" "));
    script.push_str("\necho \"[hubform exited $?]\"\nexec sleep 600\n");
    script
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Panics, saying how to install it, unless tmux runs.
fn require_tmux() {
    let runs = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|out| out.status.success());
    assert!(
        runs,
        "tmux is missing: run tests/harness/setup-host.sh (as root) to \
         install it"
    );
}

/// `hubform apply --auto-approve` of the example in `world`, its
/// instance's wait stretched, and with `NO_COLOR` only when `no_color`.
fn slow_apply(world: &World, spec: &Path, no_color: bool) -> Command {
    world.set_pending(PENDING_DESCRIBES);
    let mut cmd = world.hubform();
    cmd.env("HUBFORM_POLL_MS", POLL_MS).args([
        "apply",
        "--auto-approve",
        spec.to_str().expect("a UTF-8 path"),
    ]);
    if no_color {
        cmd.env("NO_COLOR", "1");
    } else {
        cmd.env_remove("NO_COLOR");
    }
    cmd
}

/// The live line of instance.hub's wait on `screen`: `(frame, elapsed)`.
fn instance_wait_line(screen: &str) -> Option<(char, String)> {
    screen.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        let frame = words.next()?.chars().next()?;
        let elapsed = words.next()?;
        let id = words.next()?;
        let waiting = line.contains("launched, waiting for running");
        let is_elapsed = elapsed.ends_with('s')
            && elapsed[..elapsed.len() - 1].parse::<u32>().is_ok();
        (FRAMES.contains(&frame)
            && is_elapsed
            && id == format!("{INSTANCE}:")
            && waiting)
            .then(|| (frame, elapsed.to_owned()))
    })
}

/// Reads the screen while the instance waits; returns the distinct
/// `(frame, elapsed)` pairs seen on its live line.
fn watch_instance_wait(tmux: &Tmux) -> Vec<(char, String)> {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut seen: Vec<(char, String)> = Vec::new();
    let mut gone_after_seen = false;
    while Instant::now() < deadline && !gone_after_seen {
        let screen = tmux.screen();
        match instance_wait_line(&screen) {
            Some(pair) if !seen.contains(&pair) => seen.push(pair),
            Some(_) => {}
            None => gone_after_seen = !seen.is_empty(),
        }
        if screen.contains("[hubform exited") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !seen.is_empty(),
        "no spinner line for {INSTANCE}'s wait was on screen; the pane \
         shows:\n{}",
        tmux.everything(false)
    );
    seen
}

/// Starts the example's apply in a terminal.
fn start_apply(world: &World, no_color: bool) -> Tmux {
    require_tmux();
    let spec = example(world);
    Tmux::start(&slow_apply(world, &spec, no_color), world.dir(), 200)
}

/// Waits for the apply in `tmux` to end; returns the pane's text, plain
/// and with escapes.
fn ended(tmux: &Tmux) -> (String, String) {
    tmux.wait_for(Duration::from_secs(120), |text| {
        text.contains("[hubform exited")
    });
    (tmux.everything(false), tmux.everything(true))
}

/// The lines of the finished screen that end the changes: `✓ <id>: …`.
fn done_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with("✓ ")).collect()
}

/// Checks the finished screen: the run succeeded, each change has its
/// `✓` line with the applier's outcome, no live line is left, no
/// failure was marked, and no secret shows.
fn check_finished(world: &World, text: &str) {
    assert!(
        text.contains("[hubform exited 0]"),
        "the apply failed; the pane shows:\n{text}"
    );
    let done = done_lines(text);
    for id in CHANGED {
        let prefix = format!("✓ {id}: created");
        assert!(
            done.iter().any(|l| l.starts_with(&prefix)),
            "no line {prefix:?}…; the pane shows:\n{text}"
        );
    }
    assert_eq!(done.len(), CHANGED.len(), "one ✓ per change:\n{text}");
    assert!(
        !text.lines().any(|l| l.starts_with('✗')),
        "no change failed:\n{text}"
    );
    assert!(
        !text.lines().any(|l| l.starts_with(FRAMES)),
        "no spinner is left once the apply ended:\n{text}"
    );
    assert!(text.contains("Apply complete!"), "{text}");
    let run = Run {
        code: 0,
        stdout: text.to_owned(),
        stderr: String::new(),
    };
    crate::secrets::check_run(world.dir(), &run);
}

/// The instance the apply made, by its workshop tag, is running.
async fn check_instance_running(world: &World) {
    let out = world
        .ec2()
        .await
        .describe_instances()
        .filters(
            Filter::builder()
                .name("tag:hubform:workshop")
                .values(WORKSHOP)
                .build(),
        )
        .send()
        .await
        .expect("DescribeInstances");
    let states: Vec<String> = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| i.state()?.name().map(|n| n.as_str().to_owned()))
        .collect();
    assert_eq!(states, ["running"], "one running instance in moto");
}

/// Whether `text` holds an SGR sequence that sets a colour (foreground
/// or background, 8, 16, 256 or true colours).
fn has_colour(text: &str) -> bool {
    text.split("\x1b[").skip(1).any(|rest| {
        let Some(end) = rest.find('m') else {
            return false;
        };
        let params = &rest[..end];
        params.chars().all(|c| c.is_ascii_digit() || c == ';')
            && params.split(';').any(|p| {
                matches!(p.parse::<u32>(), Ok(30..=38 | 40..=48 | 90..=107))
            })
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn terminal_shows_a_spinner_for_the_wait_then_summary_lines() {
    let world = World::start().await;

    let tmux = start_apply(&world, false);
    let seen = watch_instance_wait(&tmux);
    let (text, escaped) = ended(&tmux);

    let elapsed: std::collections::BTreeSet<&String> =
        seen.iter().map(|(_, e)| e).collect();
    let frames: std::collections::BTreeSet<char> =
        seen.iter().map(|(f, _)| *f).collect();
    assert!(
        elapsed.len() >= 2 && frames.len() >= 2,
        "the wait's line turned and counted the time: {seen:?}"
    );
    check_finished(&world, &text);
    assert!(
        escaped.contains("\x1b[32m✓"),
        "✓ is green on a terminal without NO_COLOR:\n{escaped}"
    );
    check_instance_running(&world).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_color_on_a_terminal_keeps_the_spinner_without_colours() {
    let world = World::start().await;

    let tmux = start_apply(&world, true);
    watch_instance_wait(&tmux);
    let (text, escaped) = ended(&tmux);

    check_finished(&world, &text);
    assert!(
        !has_colour(&escaped),
        "NO_COLOR=1: no colour on screen:\n{escaped:?}"
    );
    check_instance_running(&world).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn terminal_marks_failed_and_skipped_changes_with_a_red_cross() {
    let world = World::start().await;
    // More server errors than hubform's attempts: the launch fails, and
    // the volume and the address, which wait for it, are skipped.
    world.fault("RunInstances", "InsufficientInstanceCapacity", 500, 10);

    let (text, escaped) = ended(&start_apply(&world, false));

    assert!(text.contains("[hubform exited 1]"), "{text}");
    let crossed: Vec<&str> =
        text.lines().filter(|l| l.starts_with("✗ ")).collect();
    assert!(
        crossed
            .iter()
            .any(|l| l.starts_with("✗ instance.hub: failed: ")
                && l.contains("InsufficientInstanceCapacity")),
        "instance.hub's failure is crossed:\n{text}"
    );
    for id in ["volume.hub", "elastic_ip.hub"] {
        let line = format!("✗ {id}: skipped: it waits for instance.hub");
        assert!(
            crossed.iter().any(|l| l.starts_with(&line)),
            "no line {line:?}…:\n{text}"
        );
    }
    assert_eq!(crossed.len(), 3, "three changes crossed:\n{text}");
    assert_eq!(done_lines(&text).len(), CHANGED.len() - 3, "{text}");
    assert!(
        !text.lines().any(|l| l.starts_with(FRAMES)),
        "no spinner is left once the apply ended:\n{text}"
    );
    assert!(escaped.contains("\x1b[31m✗"), "✗ is red:\n{escaped}");

    let out = world
        .ec2()
        .await
        .describe_instances()
        .send()
        .await
        .expect("DescribeInstances");
    assert!(out.reservations().is_empty(), "no instance was launched");
    assert_eq!(world.count("AllocateAddress"), 0, "no address allocated");
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_lines_when_stderr_is_not_a_terminal() {
    let world = World::start().await;
    let spec = example(&world);

    // No NO_COLOR: off a terminal there is no colour anyway.
    let run = common::run(slow_apply(&world, &spec, false)).expect_code(0);

    for id in CHANGED {
        for line in [format!("{id}: creating…"), format!("{id}: created")] {
            assert!(
                run.stderr.lines().any(|l| l.starts_with(&line)),
                "no line {line:?}; stderr:\n{}",
                run.stderr
            );
        }
    }
    assert!(
        run.stderr
            .lines()
            .any(|l| l.starts_with(&format!("{INSTANCE}: "))
                && l.ends_with("launched, waiting for running")),
        "the instance's wait is one plain line; stderr:\n{}",
        run.stderr
    );
    for (name, out) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        assert!(!out.contains('\x1b'), "no escape on {name}:\n{out:?}");
        assert!(!out.contains(FRAMES), "no spinner on {name}:\n{out}");
        assert!(!out.contains('✓'), "no ✓ mark on {name}:\n{out}");
    }
    check_instance_running(&world).await;
}

#[test]
fn has_colour_tells_colours_from_other_attributes() {
    assert!(has_colour("a \x1b[32m✓\x1b[0m"));
    assert!(has_colour("\x1b[1;38;5;4mx"));
    assert!(!has_colour("\x1b[0m\x1b[1mbold\x1b[22m"));
    assert!(!has_colour("plain"));
}
