//! `hubform init`, `hubform completions` and `--help`: the starter spec
//! as written (snapshots), checked by `hubform validate` and by a JSON
//! Schema validator, never written over an existing file without
//! `--force`, refused without a terminal unless `--yes`, and asked on a
//! real terminal (a pty made by `script`); completion scripts for bash,
//! zsh and fish; examples in every command's help.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::common::{run, Run};
use crate::world::{venv, workspace_root};

/// A fresh folder, removed when dropped.
struct Folder(PathBuf);

impl Folder {
    fn new() -> Folder {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "hubform-init-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path)
            .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        Folder(path)
    }

    fn read(&self, name: &str) -> String {
        read(&self.0.join(name))
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// hubform in `dir`, with no AWS or hubform settings of this machine and
/// no terminal on stdin.
fn hubform_in(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hubform"));
    cmd.current_dir(dir).stdin(Stdio::null());
    without_settings(&mut cmd);
    cmd
}

/// `cmd` without the AWS and hubform variables of this machine.
fn without_settings(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("AWS_") || key.starts_with("HUBFORM_") {
            cmd.env_remove(key);
        }
    }
}

fn init(dir: &Path, args: &[&str]) -> Run {
    let mut cmd = hubform_in(dir);
    cmd.arg("init").args(args);
    run(cmd)
}

/// Checks `spec` as `hubform validate` and as an editor's JSON Schema
/// check (Python's jsonschema, draft 7) against the schema written beside
/// it, which must be the committed one.
fn assert_valid(spec: &Path) {
    let dir = spec.parent().expect("the spec's folder");
    let mut cmd = hubform_in(dir);
    cmd.arg("validate").arg(spec);
    run(cmd).expect_code(0);

    let schema = read(&dir.join("hubform.schema.json"));
    let committed = std::fs::read_to_string(
        workspace_root().join("schema/hubform.schema.json"),
    )
    .expect("read schema/hubform.schema.json");
    assert!(
        schema == committed,
        "the schema beside the spec is not current"
    );

    let verdict = json_schema_verdict(spec, &schema);
    assert_eq!(verdict, "valid", "{} against the schema", spec.display());
}

/// What Python's jsonschema says of the YAML file `spec` against
/// `schema`: `valid` or its complaints.
fn json_schema_verdict(spec: &Path, schema: &str) -> String {
    const SCRIPT: &str = r#"
import json, sys, yaml, jsonschema
schema = json.loads(sys.stdin.read())
jsonschema.Draft7Validator.check_schema(schema)
spec = yaml.safe_load(open(sys.argv[1]))
errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(spec)]
print("; ".join(errors) if errors else "valid")
"#;
    let python = venv().join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run tests/harness/setup.sh first",
        python.display()
    );
    let mut child = Command::new(&python)
        .args(["-c", SCRIPT])
        .arg(spec)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(schema.as_bytes())
        .expect("write the schema");
    let out = child.wait_with_output().expect("wait for python");
    assert!(
        out.status.success(),
        "python jsonschema failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn init_yes_writes_the_default_starter() {
    let folder = Folder::new();

    let out = init(&folder.0, &["--yes"]).expect_code(0);

    assert!(out.stdout.contains("Wrote workshop.yaml"), "{}", out.stdout);
    assert!(out.stdout.contains("marked REPLACE"), "{}", out.stdout);
    let text = folder.read("workshop.yaml");
    insta::assert_snapshot!("init_yes", text);
    assert_valid(&folder.0.join("workshop.yaml"));
}

#[test]
fn init_with_answers_given_as_flags() {
    let folder = Folder::new();

    let out = init(
        &folder.0,
        &[
            "course/python-intro.yaml",
            "--workshop=python-intro-bishkek",
            "--region=eu-central-1",
            "--users=25",
            "--domain=hub.python-intro.example.edu",
            "--admin=teacher",
            "--email=teacher@uni.example.edu",
            "--ssh-from=198.51.100.4",
        ],
    )
    .expect_code(0);

    assert!(!out.stdout.contains("REPLACE"), "{}", out.stdout);
    let text = folder.read("course/python-intro.yaml");
    insta::assert_snapshot!("init_flags", text);
    assert!(
        text.contains("type: t3.xlarge"),
        "25 users want a t3.xlarge"
    );
    assert!(!text.contains("REPLACE"));
    assert_valid(&folder.0.join("course/python-intro.yaml"));
}

#[test]
fn init_asks_on_a_terminal() {
    let folder = Folder::new();
    let answers = "Kurs\nkurs-2025\nap-south-1\n5\nhub.kurs.example.edu\n\
                   \nt@uni.example.edu\n198.51.100.0/24\n";

    // `script` gives hubform a pty as stdin: the terminal it asks on.
    let command = format!("{} init kurs.yaml", env!("CARGO_BIN_EXE_hubform"));
    let mut cmd = Command::new("script");
    without_settings(&mut cmd);
    cmd.current_dir(&folder.0)
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run script (util-linux)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(answers.as_bytes())
        .expect("type the answers");
    let out = child.wait_with_output().expect("wait for script");
    let shown = String::from_utf8_lossy(&out.stdout);

    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("Workshop name"), "{shown}");
    assert!(shown.contains("[kurs]: "), "{shown}");
    assert!(shown.contains("invalid workshop name \"Kurs\""), "{shown}");
    let text = folder.read("kurs.yaml");
    assert!(text.contains("\nworkshop: kurs-2025\n"), "{text}");
    assert!(text.contains("\nregion: ap-south-1\n"), "{text}");
    assert!(text.contains("type: t3.small"), "{text}");
    assert!(text.contains("admins: [lecturer]"), "{text}");
    assert!(text.contains("from: 198.51.100.0/24,"), "{text}");
    assert_valid(&folder.0.join("kurs.yaml"));
}

#[test]
fn init_never_overwrites_an_existing_file() {
    let folder = Folder::new();
    let spec = folder.0.join("workshop.yaml");
    std::fs::write(&spec, "workshop: mine\n").expect("write a spec");

    let out = init(&folder.0, &["--yes"]).expect_code(1);

    assert!(out.stderr.contains("already exists"), "{}", out.stderr);
    assert!(out.stderr.contains("--force"), "{}", out.stderr);
    assert_eq!(folder.read("workshop.yaml"), "workshop: mine\n");
    assert!(!folder.0.join("hubform.schema.json").exists());
}

#[test]
fn init_force_overwrites() {
    let folder = Folder::new();
    let spec = folder.0.join("workshop.yaml");
    std::fs::write(&spec, "workshop: mine\n").expect("write a spec");
    std::fs::write(folder.0.join("hubform.schema.json"), "{}\n")
        .expect("write an old schema");

    init(&folder.0, &["--yes", "--force"]).expect_code(0);

    let text = folder.read("workshop.yaml");
    assert!(
        text.starts_with("# yaml-language-server: $schema="),
        "{text}"
    );
    assert_valid(&folder.0.join("workshop.yaml"));
}

#[test]
fn init_without_a_terminal_refuses_unless_yes() {
    let folder = Folder::new();

    let out = init(&folder.0, &["kurs.yaml"]).expect_code(1);

    assert!(out.stderr.contains("no terminal"), "{}", out.stderr);
    assert!(out.stderr.contains("pass --yes"), "{}", out.stderr);
    assert!(!folder.0.join("kurs.yaml").exists());
}

#[test]
fn init_refuses_a_bad_answer_given_as_a_flag() {
    let folder = Folder::new();

    let out = init(&folder.0, &["--yes", "--workshop=Kurs 2025"]);

    let out = out.expect_code(1);
    assert!(
        out.stderr.contains("--workshop: invalid workshop name"),
        "{}",
        out.stderr
    );
    assert!(!folder.0.join("workshop.yaml").exists());
}

#[test]
fn init_schema_flag_names_the_schema_and_writes_no_copy() {
    let folder = Folder::new();
    let url = "https://example.org/hubform.schema.json";

    init(&folder.0, &["--yes", "--schema", url]).expect_code(0);

    let text = folder.read("workshop.yaml");
    let first = text.lines().next().unwrap_or_default();
    assert_eq!(first, format!("# yaml-language-server: $schema={url}"));
    assert!(!folder.0.join("hubform.schema.json").exists());
}

/// The visible commands, from `hubform --help`.
fn commands() -> Vec<String> {
    let folder = Folder::new();
    let mut cmd = hubform_in(&folder.0);
    cmd.arg("--help");
    let help = run(cmd).expect_code(0).stdout;
    let list = help
        .split("Commands:\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .unwrap_or_default();
    list.lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    let folder = Folder::new();
    let commands = commands();
    assert!(commands.len() >= 14, "{commands:?}");
    for shell in ["bash", "zsh", "fish"] {
        let mut cmd = hubform_in(&folder.0);
        cmd.args(["completions", shell]);
        let script = run(cmd).expect_code(0).stdout;
        for command in &commands {
            assert!(script.contains(command.as_str()), "{shell}: {command}");
        }
        let path = folder.0.join(format!("hubform.{shell}"));
        std::fs::write(&path, &script).expect("write the script");
    }

    let bash = Command::new("bash")
        .arg("-n")
        .arg(folder.0.join("hubform.bash"))
        .output()
        .expect("run bash -n");
    assert!(
        bash.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&bash.stderr)
    );
    assert!(folder.read("hubform.zsh").starts_with("#compdef hubform"));
    assert!(folder.read("hubform.fish").contains("complete -c hubform"));
}

#[test]
fn every_command_shows_examples_in_its_help() {
    let folder = Folder::new();
    for command in commands() {
        let mut cmd = hubform_in(&folder.0);
        cmd.args([command.as_str(), "--help"]);
        let help = run(cmd).expect_code(0).stdout;
        assert!(help.contains("Examples:"), "{command}:\n{help}");
        assert!(
            help.contains(&format!("  hubform {command}")),
            "{command}'s examples do not run it:\n{help}"
        );
    }
}
