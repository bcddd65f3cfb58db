//! Secrets never appear in hubform's output: not an access key's secret,
//! not a private key's body. Every hubform run through `common::run` is
//! checked against the secrets in its world's folder (the key pair files
//! and access-key files the applies wrote there), and the tests below
//! run the commands at every verbosity, with trace logs, and read the
//! plan files and JSON too.

use std::path::{Path, PathBuf};

use crate::common::{
    self, full_spec_text, hubform, spec_text, write_spec, Run, EXAMPLE,
};
use crate::drift::deployed;
use crate::tljh_double::TljhHost;
use crate::world::World;

/// The secrets hubform wrote under `dir`: the body lines of private keys
/// (`*.pem`) and the secret of access keys (`*.credentials*`).
pub fn secrets_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for file in files_under(dir, 4) {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        let Some(name) = name else { continue };
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        if name.ends_with(".pem") {
            found.extend(
                text.lines()
                    .filter(|l| !l.starts_with("-----") && l.len() >= 16)
                    .map(str::to_owned),
            );
        } else if name.contains(".credentials") {
            found.extend(text.lines().filter_map(|l| {
                let (key, value) = l.split_once('=')?;
                let value = value.trim();
                (key.trim() == "aws_secret_access_key" && value.len() >= 16)
                    .then(|| value.to_owned())
            }));
        }
    }
    found
}

fn files_under(dir: &Path, depth: usize) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() && depth > 0 {
            files.extend(files_under(&path, depth - 1));
        } else if kind.is_file() {
            files.push(path);
        }
    }
    files
}

/// Panics when any of `texts` holds a secret found under `dir`, or any
/// private key at all.
pub fn assert_no_secret(dir: &Path, texts: &[(&str, &str)]) {
    let secrets = secrets_under(dir);
    for (what, text) in texts {
        assert!(
            !text.contains("PRIVATE KEY-----"),
            "{what} holds a private key"
        );
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{what} holds a secret of {} (a key body line or an access \
                 key's secret)",
                dir.display()
            );
        }
    }
}

/// Checks a finished hubform run in `dir`.
pub fn check_run(dir: &Path, run: &Run) {
    assert_no_secret(dir, &[("stdout", &run.stdout), ("stderr", &run.stderr)]);
}

/// The commands of a workshop's life, each at every verbosity.
fn every_verbosity(world: &World, args: &[&str]) -> Vec<Run> {
    let mut runs = Vec::new();
    for verbosity in [None, Some("-v"), Some("-vv"), Some("-vvv")] {
        let mut cmd = world.hubform();
        cmd.args(verbosity).args(args);
        runs.push(common::run(cmd));
    }
    let mut cmd = world.hubform();
    cmd.env("RUST_LOG", "trace").args(args);
    runs.push(common::run(cmd));
    runs
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_in_any_output_at_any_verbosity() {
    let d = deployed().await;
    let dir = d.world.dir().to_owned();
    let spec = d.spec.to_str().expect("UTF-8").to_owned();
    assert!(
        secrets_under(&dir).len() >= 2,
        "the apply wrote a private key and an access key's secret"
    );

    // A change to plan and apply, so that every path runs.
    d.edit_spec("type: t3.xlarge", "type: t3.large");
    let plan_file = dir.join("workshop.plan");
    let plan_arg = plan_file.to_str().expect("UTF-8").to_owned();
    let mut runs = Vec::new();
    for args in [
        vec!["validate", &spec],
        vec!["plan", &spec],
        vec!["plan", "--json", &spec],
        vec!["plan", "--out", &plan_arg, &spec],
        vec!["drift", "--json", &spec],
        vec!["output", &spec],
        vec!["backups", &spec],
    ] {
        runs.extend(every_verbosity(&d.world, &args));
    }
    runs.push(
        hubform(&d.world, &["-vvv", "apply", "--plan", &plan_arg])
            .expect_code(0),
    );
    runs.push(
        hubform(
            &d.world,
            &[
                "-vvv",
                "destroy",
                "--auto-approve",
                "--allow-destroy",
                &spec,
            ],
        )
        .expect_code(0),
    );
    // `common::run` checked each run already; check once more here so
    // that this test fails on its own even if that hook goes away.
    for run in &runs {
        check_run(&dir, run);
    }
    let saved = std::fs::read_to_string(&plan_file).expect("the plan file");
    assert_no_secret(&dir, &[("the plan file", &saved)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_secret_check_finds_a_leak() {
    let world = World::start().await;
    let keys = world.dir().join("keys");
    std::fs::create_dir_all(&keys).expect("keys folder");
    std::fs::write(
        keys.join("k.pem"),
        format!(
            "{}\nAAAAB3NzaC1lZDI1NTE5AAAAIexample\n{}\n",
            key_marker("BEGIN", "OPENSSH"),
            key_marker("END", "OPENSSH")
        ),
    )
    .expect("write");
    std::fs::write(
        keys.join("u.credentials"),
        "[u]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = wJalrXUtnFEMIexampleSECRET\n",
    )
    .expect("write");
    let leaks = [
        "log: AAAAB3NzaC1lZDI1NTE5AAAAIexample",
        "secret wJalrXUtnFEMIexampleSECRET",
        &key_marker("BEGIN", "RSA"),
    ];
    for leak in leaks {
        let caught = std::panic::catch_unwind(|| {
            assert_no_secret(world.dir(), &[("stdout", leak)]);
        });
        assert!(caught.is_err(), "not caught: {leak}");
    }
    assert_no_secret(world.dir(), &[("stdout", "nothing to see")]);
    // The host layer's spec text names key files but holds no secret.
    assert_no_secret(world.dir(), &[("spec", &full_spec_text(EXAMPLE))]);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_in_host_layer_output_at_trace_level() {
    let world = World::start().await;
    let tljh = TljhHost::start();
    let text = format!(
        "{}{}      packages:\n        pip: [hubform-tiny-a]\n",
        spec_text(EXAMPLE),
        tljh.spec_block()
    );
    // The test host's login key stands in for the key pair's, which
    // hubform imports: it is a secret the outputs must not show.
    tljh.lend_key(world.dir(), "workshop-central-asia");
    let spec = write_spec(&world, "workshop.yaml", &text);
    let spec = spec.to_str().expect("UTF-8");

    let mut cmd = world.hubform();
    cmd.env("RUST_LOG", "trace")
        .args(["apply", "--auto-approve", spec]);
    let applied = common::run(cmd).expect_code(0);
    let mut runs = vec![applied];
    runs.extend(every_verbosity(&world, &["plan", spec]));
    runs.extend(every_verbosity(&world, &["status", spec]));
    runs.extend(every_verbosity(&world, &["drift", "--json", spec]));
    assert!(secrets_under(world.dir()).len() >= 2);
    for run in &runs {
        check_run(world.dir(), run);
    }
}

/// A PEM private key's armour line, made at run time so that no key-like
/// text is committed.
fn key_marker(edge: &str, kind: &str) -> String {
    format!("-----{edge} {kind} {} KEY-----", "PRIVATE")
}
