//! The command line: spec errors with positions, usage errors, the
//! confirmation rule, profiles, secrets, a missing key file and the
//! loopback guard.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{
    apply, example, hubform, is_mutating, plan, run, Run, EXAMPLE, SMALL,
};
use crate::world::{workspace_root, World};

const KEY_FILE: &str = "keys/workshop-central-asia.pem";
const CREDENTIALS_FILE: &str = "keys/ec2-admin.credentials";
/// A documentation address (RFC 5737): never reachable, never real AWS.
const FAR_ENDPOINT: &str = "http://203.0.113.10:4566";

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

fn assert_no_panic(what: &str, run: &Run) {
    assert!(
        !run.stdout.contains("panicked") && !run.stderr.contains("panicked"),
        "{what} panicked\n--- stdout\n{}\n--- stderr\n{}",
        run.stdout,
        run.stderr
    );
}

fn mutating(world: &World) -> Vec<String> {
    world
        .requests()
        .into_iter()
        .filter(|r| is_mutating(&r.action))
        .map(|r| r.action)
        .collect()
}

// ---- validate ----------------------------------------------------------

/// `(LINE:COLUMN, message substring)` of a corpus file: from its sidecar
/// `NAME.expect` (`LINE:COLUMN MESSAGE-SUBSTRING`, for files that cannot
/// hold a comment) or its first line,
/// `# expect: LINE:COLUMN MESSAGE-SUBSTRING`.
fn expectation(path: &Path) -> (String, String) {
    let mut sidecar = path.as_os_str().to_owned();
    sidecar.push(".expect");
    let line = match std::fs::read_to_string(&sidecar) {
        Ok(text) => text.lines().next().unwrap_or_default().to_owned(),
        Err(_) => {
            let bytes = std::fs::read(path)
                .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            let first = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
            let first = String::from_utf8_lossy(first);
            first
                .trim_start_matches('\u{feff}')
                .strip_prefix("# expect: ")
                .unwrap_or_else(|| {
                    panic!("{}: no `# expect:` first line", path.display())
                })
                .to_owned()
        }
    };
    let (at, message) = line.trim_end().split_once(' ').unwrap_or_else(|| {
        panic!("{}: `# expect: L:C MESSAGE`", path.display())
    });
    (at.to_owned(), message.to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_invalid_specs_fail_at_their_position() {
    let world = World::start().await;
    let corpus = workspace_root().join("tests/bad-specs");
    let mut files: Vec<_> = std::fs::read_dir(&corpus)
        .unwrap_or_else(|e| panic!("read {}: {e}", corpus.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !name.ends_with(".expect")
                && !name.starts_with('.')
                && name != "README.md"
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no specs in {}", corpus.display());

    let mut wrong = Vec::new();
    for file in &files {
        let (at, message) = expectation(file);
        let run = hubform(&world, &["validate", path_str(file)]);
        let located = format!("{}:{at}", file.display());
        let mut problems = Vec::new();
        if run.code != 1 {
            problems.push(format!("exit {} instead of 1", run.code));
        }
        if !run.stderr.contains(&located) {
            problems.push(format!("stderr does not name {located}"));
        }
        if !run.stderr.contains(&message) {
            problems.push(format!("stderr does not say {message:?}"));
        }
        if run.stdout.contains("panicked") || run.stderr.contains("panicked") {
            problems.push("panicked".to_owned());
        }
        if !problems.is_empty() {
            wrong.push(format!(
                "{}: {}\n  stderr: {}",
                file.display(),
                problems.join("; "),
                run.stderr.trim_end().replace('\n', "\n          ")
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} invalid specs are not reported as expected:\n{}",
        wrong.len(),
        files.len(),
        wrong.join("\n")
    );
    assert_eq!(world.requests(), vec![], "validate sends no request");
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_a_path_that_is_no_spec_file_says_why() {
    let world = World::start().await;
    let big = world.dir().join("big.yaml");
    std::fs::write(&big, "#".repeat(2 << 20)).expect("write big.yaml");
    let corpus = workspace_root().join("tests/bad-specs");
    let missing = world.dir().join("missing.yaml");

    for (path, says) in [
        (big.as_path(), ":1:1: the file is larger than 1 MiB"),
        (
            Path::new("/dev/zero"),
            ":1:1: the file is larger than 1 MiB",
        ),
        (
            corpus.as_path(),
            ": cannot read the spec: it is a directory",
        ),
        (missing.as_path(), ": cannot read the spec: no such file"),
    ] {
        let run = hubform(&world, &["validate", path_str(path)]);
        assert_no_panic("validate", &run);
        assert_eq!(run.code, 1, "{}: {}", path.display(), run.stderr);
        let expected = format!("{}{says}", path.display());
        assert!(run.stderr.contains(&expected), "{}", run.stderr);
    }
    assert_eq!(world.requests(), vec![], "validate sends no request");
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_example_specs_validate() {
    let world = World::start().await;
    for spec in [EXAMPLE, SMALL] {
        let path = workspace_root().join(spec);
        let run =
            hubform(&world, &["validate", path_str(&path)]).expect_code(0);
        assert_no_panic("validate", &run);
    }
    // A copy in the world's folder, by a relative path.
    let copy = example(&world);
    let name = copy.file_name().and_then(|n| n.to_str()).expect("a name");
    hubform(&world, &["validate", name]).expect_code(0);
    assert_eq!(world.requests(), vec![], "validate sends no request");
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_region_flag_must_match_the_spec() {
    let world = World::start().await;
    let spec = example(&world);
    let spec = path_str(&spec);
    for args in [
        vec!["plan", "--region", "eu-west-1", spec],
        vec!["apply", "--auto-approve", "--region", "eu-west-1", spec],
    ] {
        let run = hubform(&world, &args).expect_code(1);
        assert!(
            run.stderr.contains("eu-west-1")
                && run.stderr.contains("ap-south-1"),
            "{args:?}: the error names both regions: {}",
            run.stderr
        );
        assert_no_panic("--region", &run);
    }
    assert_eq!(world.requests(), vec![], "nothing sent");
}

// ---- usage -------------------------------------------------------------

/// The binary without a world: nothing here reaches AWS, and the guard
/// is on in case something tried.
fn bare(args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hubform"));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("AWS_") || key.starts_with("HUBFORM_") {
            cmd.env_remove(key);
        }
    }
    cmd.args(args)
        .env("HUBFORM_LOOPBACK_ONLY", "1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    run(cmd)
}

#[test]
fn cli_usage_errors_exit_1() {
    for args in [
        vec!["plan"],
        vec!["frobnicate"],
        vec!["plan", "--no-such-flag", "x"],
        vec![],
    ] {
        let run = bare(&args);
        assert_eq!(
            run.code, 1,
            "hubform {args:?}: a usage error exits 1, not 2\n{}",
            run.stderr
        );
        assert!(
            run.stderr.to_lowercase().contains("usage"),
            "hubform {args:?}: the usage on stderr: {}",
            run.stderr
        );
        assert_no_panic("a usage error", &run);
    }
    for args in [vec!["--help"], vec!["plan", "--help"], vec!["--version"]] {
        let run = bare(&args);
        assert_eq!(run.code, 0, "hubform {args:?}\n{}", run.stderr);
        assert!(!run.stdout.is_empty(), "hubform {args:?} prints to stdout");
    }
}

/// The first mistakes of a new user, without AWS: each message says what
/// is wrong, where, and what to do next.
#[test]
fn cli_first_mistakes_say_what_to_do_next() {
    let dir = std::env::temp_dir()
        .join(format!("hubform-first-mistakes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    let missing = dir.join("workshop.yaml");
    let not_a_plan = dir.join("notes.txt");
    std::fs::write(&not_a_plan, "buy milk\n").expect("write notes.txt");
    let no_plan = dir.join("workshop.plan");

    let cases: [(Vec<&str>, Vec<String>); 4] = [
        (
            vec!["validate", path_str(&missing)],
            vec![
                format!(
                    "{}: cannot read the spec: no such file",
                    missing.display()
                ),
                format!("`hubform init {}`", missing.display()),
            ],
        ),
        (
            vec!["apply", "--plan", path_str(&no_plan)],
            vec![
                format!(
                    "{}: cannot read the saved plan: no such file",
                    no_plan.display()
                ),
                format!("`hubform plan SPEC --out {}`", no_plan.display()),
            ],
        ),
        (
            vec!["apply", "--plan", path_str(&not_a_plan)],
            vec![
                "is not a plan saved by `hubform plan --out`".to_owned(),
                "`hubform plan SPEC --out FILE`".to_owned(),
            ],
        ),
        (
            vec!["valdate", path_str(&missing)],
            vec!["a similar subcommand exists: 'validate'".to_owned()],
        ),
    ];
    for (args, says) in cases {
        let run = bare(&args);
        assert_no_panic("a first mistake", &run);
        assert_eq!(run.code, 1, "hubform {args:?}\n{}", run.stderr);
        for text in says {
            assert!(
                run.stderr.contains(&text),
                "hubform {args:?} says {text:?}:\n{}",
                run.stderr
            );
        }
    }
    std::fs::remove_dir_all(&dir).expect("remove the scratch folder");
}

// ---- confirmation ------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn cli_apply_and_destroy_without_terminal_need_auto_approve() {
    let world = World::start().await;
    let spec = example(&world);
    let spec_arg = path_str(&spec);

    let run = hubform(&world, &["apply", spec_arg]).expect_code(1);
    assert!(
        run.stderr.contains("--auto-approve"),
        "the refusal says how to go on: {}",
        run.stderr
    );
    assert_eq!(mutating(&world), Vec::<String>::new(), "apply changed AWS");
    let instances = world
        .ec2()
        .await
        .describe_instances()
        .send()
        .await
        .expect("DescribeInstances");
    assert!(instances.reservations().is_empty(), "no instance launched");

    apply(&world, &spec);
    world.reset_requests();
    let run = hubform(&world, &["destroy", "--allow-destroy", spec_arg])
        .expect_code(1);
    assert!(run.stderr.contains("--auto-approve"), "{}", run.stderr);
    assert_eq!(
        mutating(&world),
        Vec::<String>::new(),
        "destroy changed AWS"
    );
    assert_eq!(plan(&world, &spec).code, 0, "the workshop is still whole");

    // Nothing to change: nothing to confirm, as with Terraform.
    let run = hubform(&world, &["apply", spec_arg]).expect_code(0);
    assert!(run.stdout.contains("No changes."), "{}", run.stdout);
}

// ---- profiles ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn cli_profile_with_endpoint_url() {
    let world = World::start().await;
    let spec = example(&world);
    let aws = world.dir().join(".aws");
    std::fs::write(
        aws.join("config"),
        format!(
            "[profile moto]\nregion = ap-south-1\nendpoint_url = {}\n",
            world.endpoint()
        ),
    )
    .expect("write the AWS config");
    std::fs::write(
        aws.join("credentials"),
        "[moto]\naws_access_key_id = testing\n\
         aws_secret_access_key = testing\n",
    )
    .expect("write the AWS credentials");

    let mut cmd = world.hubform();
    cmd.env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .args(["plan", "--profile", "moto", path_str(&spec)]);
    let run = run(cmd).expect_code(0);
    assert_no_panic("plan --profile", &run);
    assert!(
        world.count("DescribeInstances") > 0,
        "the profile's endpoint_url took the calls to the proxy: {:?}",
        world.requests()
    );
}

// ---- secrets -----------------------------------------------------------

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_secrets_are_never_printed() {
    let world = World::start().await;
    let spec = example(&world);
    let spec_arg = path_str(&spec);

    let mut runs = Vec::new();
    for args in [
        vec!["apply", "-vvv", "--auto-approve", spec_arg],
        vec!["plan", "-vvv", spec_arg],
        vec!["output", "-vvv", spec_arg],
    ] {
        let mut cmd = world.hubform();
        cmd.env("RUST_LOG", "trace").args(&args);
        let run = run(cmd);
        assert_eq!(
            run.code, 0,
            "{args:?}\n--- stdout\n{}\n--- stderr\n{}",
            run.stdout, run.stderr
        );
        assert!(
            run.stderr.contains("DEBUG") || run.stderr.contains("TRACE"),
            "{args:?}: -vvv with RUST_LOG=trace logs in detail: {}",
            run.stderr
        );
        runs.push((args.join(" "), run));
    }

    let credentials = world.dir().join(CREDENTIALS_FILE);
    let text = std::fs::read_to_string(&credentials)
        .unwrap_or_else(|e| panic!("{}: {e}", credentials.display()));
    let secret = text
        .lines()
        .find_map(|l| {
            let (key, value) = l.split_once('=')?;
            (key.trim() == "aws_secret_access_key").then(|| value.trim())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| panic!("no secret in {text:?}"))
        .to_owned();
    let key_file = world.dir().join(KEY_FILE);
    let pem = std::fs::read_to_string(&key_file)
        .unwrap_or_else(|e| panic!("{}: {e}", key_file.display()));
    let body: Vec<&str> = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        .collect();
    assert!(!body.is_empty(), "a private key body in {pem:?}");

    for (what, run) in &runs {
        for (stream, out) in [("stdout", &run.stdout), ("stderr", &run.stderr)]
        {
            assert!(
                !out.contains(&secret),
                "`hubform {what}` printed the access key secret on {stream}"
            );
            for line in &body {
                assert!(
                    !out.contains(line),
                    "`hubform {what}` printed a line of the private key on \
                     {stream}"
                );
            }
        }
    }
    assert_eq!(mode(&key_file), 0o400, "{}", key_file.display());
    assert_eq!(mode(&credentials), 0o600, "{}", credentials.display());
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_missing_key_file_is_a_note() {
    let world = World::start().await;
    let spec = example(&world);
    apply(&world, &spec);
    world.reset_requests();
    let key_file = world.dir().join(KEY_FILE);
    std::fs::rename(&key_file, world.dir().join("moved-away.pem"))
        .expect("move the key file away");

    let run = plan(&world, &spec);
    assert_eq!(
        run.code, 0,
        "a missing key file plans no change\n--- stdout\n{}\n--- stderr\n{}",
        run.stdout, run.stderr
    );
    assert!(
        run.stdout.contains(KEY_FILE) || run.stderr.contains(KEY_FILE),
        "a note names {KEY_FILE}\n--- stdout\n{}\n--- stderr\n{}",
        run.stdout,
        run.stderr
    );
    assert!(!key_file.exists(), "plan wrote no key file");
    assert_eq!(mutating(&world), Vec::<String>::new(), "plan changed AWS");
}

// ---- loopback guard ----------------------------------------------------

/// Runs plan, apply, destroy and output with `setup` applied to the
/// command and `extra` arguments after the spec, and checks that each is
/// refused quickly, names the guard and `names`, and sends nothing.
async fn refused(
    setup: impl Fn(&World, &mut Command),
    extra: &[&str],
    names: &str,
) {
    let world = World::start().await;
    let spec = example(&world);
    let spec_arg = path_str(&spec);
    for args in [
        vec!["plan", spec_arg],
        vec!["apply", "--auto-approve", spec_arg],
        vec!["destroy", "--auto-approve", spec_arg],
        vec!["output", spec_arg],
    ] {
        let mut cmd = world.hubform();
        cmd.env("AWS_EC2_METADATA_DISABLED", "true");
        setup(&world, &mut cmd);
        cmd.args(&args).args(extra);
        let started = Instant::now();
        let run = run(cmd);
        let took = started.elapsed();
        assert_eq!(
            run.code, 1,
            "{args:?} is refused\n--- stdout\n{}\n--- stderr\n{}",
            run.stdout, run.stderr
        );
        assert!(
            run.stderr.contains("HUBFORM_LOOPBACK_ONLY")
                && run.stderr.contains(names),
            "{args:?}: the refusal names HUBFORM_LOOPBACK_ONLY and {names}: \
             {}",
            run.stderr
        );
        assert!(
            took < Duration::from_secs(4),
            "{args:?} took {took:?}: it tried to connect somewhere"
        );
        assert_no_panic("a refused endpoint", &run);
        assert_eq!(world.requests(), vec![], "{args:?} sent nothing");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_loopback_only_refuses_endpoint_url_flag() {
    refused(|_, _| {}, &["--endpoint-url", FAR_ENDPOINT], "203.0.113.10").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_loopback_only_refuses_aws_endpoint_url() {
    refused(
        |_, cmd| {
            cmd.env("AWS_ENDPOINT_URL", FAR_ENDPOINT);
        },
        &[],
        "203.0.113.10",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_loopback_only_refuses_aws_endpoint_url_ec2() {
    refused(
        |world, cmd| {
            cmd.env("AWS_ENDPOINT_URL", world.endpoint())
                .env("AWS_ENDPOINT_URL_EC2", FAR_ENDPOINT);
        },
        &[],
        "203.0.113.10",
    )
    .await;
}

/// A `services` block names EC2's endpoint. `AWS_ENDPOINT_URL` is
/// removed: the SDK ranks it above a profile's services block.
#[tokio::test(flavor = "multi_thread")]
async fn cli_loopback_only_refuses_profile_services_block() {
    refused(
        |world, cmd| {
            std::fs::write(
                world.dir().join(".aws/config"),
                format!(
                    "[profile x]\nservices = s\n[services s]\nec2 =\n  \
                     endpoint_url = {FAR_ENDPOINT}\n"
                ),
            )
            .expect("write the AWS config");
            cmd.env_remove("AWS_ENDPOINT_URL");
        },
        &["--profile", "x"],
        "203.0.113.10",
    )
    .await;
}

/// The same with the profile's own endpoint at the proxy, so that only
/// EC2 (from the services block) is not loopback.
#[tokio::test(flavor = "multi_thread")]
async fn cli_loopback_only_refuses_services_block_beside_loopback() {
    refused(
        |world, cmd| {
            std::fs::write(
                world.dir().join(".aws/config"),
                format!(
                    "[profile x]\nendpoint_url = {}\nservices = s\n\
                     [services s]\nec2 =\n  endpoint_url = {FAR_ENDPOINT}\n",
                    world.endpoint()
                ),
            )
            .expect("write the AWS config");
            cmd.env_remove("AWS_ENDPOINT_URL");
        },
        &["--profile", "x"],
        "203.0.113.10",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_loopback_only_refuses_real_aws() {
    refused(
        |_, cmd| {
            cmd.env_remove("AWS_ENDPOINT_URL");
        },
        &[],
        "real AWS",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_loopback_only_never_asks_the_instance_metadata_service() {
    let world = World::start().await;
    let spec = example(&world);
    let mut cmd = world.hubform();
    // No credentials anywhere, and the metadata service not turned off:
    // the default chain would ask 169.254.169.254 next.
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_EC2_METADATA_DISABLED")
        .env("RUST_LOG", "trace")
        .args(["plan", path_str(&spec)]);
    let run = crate::common::run(cmd).expect_code(1);
    assert!(
        run.stderr.contains("cannot load AWS credentials"),
        "{}",
        run.stderr
    );
    let said = run.stderr.to_lowercase();
    assert!(
        !said.contains("imds") && !said.contains("169.254"),
        "asked the metadata service:\n{}",
        run.stderr
    );
    assert!(world.requests().is_empty(), "{:?}", world.requests());
}

/// Output into a closed pipe (`hubform plan | head`, quitting `less`) or
/// onto a full disk ends the run with exit 1 and no panic; a closed pipe
/// quietly, a full disk with what went wrong.
#[test]
fn cli_a_closed_pipe_or_a_full_disk_ends_without_a_panic() {
    let spec = workspace_root().join(EXAMPLE);
    let validate = |stdout: Stdio| {
        let out = Command::new(env!("CARGO_BIN_EXE_hubform"))
            .arg("validate")
            .arg(&spec)
            .stdin(Stdio::null())
            .stdout(stdout)
            .output()
            .expect("run hubform validate");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::new(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };

    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let closed = validate(Stdio::from(writer));
    assert_no_panic("a closed pipe", &closed);
    assert_eq!(closed.code, 1, "{}", closed.stderr);
    assert_eq!(closed.stderr, "", "a closed pipe ends quietly");

    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("open /dev/full");
    let full = validate(Stdio::from(full));
    assert_no_panic("a full disk", &full);
    assert_eq!(full.code, 1, "{}", full.stderr);
    assert!(
        full.stderr
            .contains("error: cannot write to standard output: No space left"),
        "{}",
        full.stderr
    );
}

/// destroy offers only what it takes: no saved plan, nothing to replace.
#[test]
fn cli_destroy_offers_no_plan_file_and_no_replace() {
    let help = bare(&["destroy", "--help"]);
    assert_eq!(help.code, 0, "{}", help.stderr);
    for flag in ["--allow-destroy", "--no-backup", "--auto-approve"] {
        assert!(help.stdout.contains(flag), "{flag}:\n{}", help.stdout);
    }
    for flag in ["--plan", "--allow-replace"] {
        assert!(!help.stdout.contains(flag), "{flag}:\n{}", help.stdout);
    }
    let saved = bare(&["destroy", "--plan", "workshop.plan"]);
    assert_eq!(saved.code, 1, "a usage error:\n{}", saved.stderr);
    assert!(
        saved.stderr.contains("unexpected argument '--plan'"),
        "{}",
        saved.stderr
    );
}
