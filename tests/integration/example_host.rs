//! The manual's workshop as committed, host layer included, applied
//! against moto and a test host running the TLJH double: the first apply
//! builds everything but HTTPS, which waits for DNS; once the name
//! resolves to the Elastic IP the second apply turns HTTPS on; then there
//! is nothing left to do. Results are checked on the host and through the
//! AWS API.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::elastic_ip;
use crate::common::{self, full_spec_text, spec_text, Run, EXAMPLE, SMALL};
use crate::host::describe;
use crate::tljh_double::{config_value, TljhHost};
use crate::world::{workspace_root, World};

/// The example's DNS name, which `HUBFORM_RESOLVE` answers for.
const DOMAIN: &str = "jupyter.hydrosolutions.ch";
/// The example's pip packages, by import name.
const PIP: [&str; 8] = [
    "pandas",
    "numpy",
    "matplotlib",
    "scipy",
    "flopy",
    "geopandas",
    "jupyter",
    "ipywidgets",
];
/// The example's conda packages.
const CONDA: [&str; 2] = ["geopandas", "rasterio"];

/// `text` with `line` (a whole line) followed by `added` lines; panics
/// when the spec no longer has that line.
fn insert_after(text: &str, line: &str, added: &[String]) -> String {
    let anchor = format!("\n{line}\n");
    assert!(
        text.matches(&anchor).count() == 1,
        "the example has no single line {line:?}"
    );
    let mut with = anchor.clone();
    for a in added {
        with.push_str(a);
        with.push('\n');
    }
    text.replacen(&anchor, &with, 1)
}

/// The committed example, edited only where the offline world differs:
/// bootstrap.py is the double's, the test host's stand-ins for ports 80
/// and 443, and Let's Encrypt's staging service (the ACME double's
/// certificates are not trusted by browsers either).
pub(crate) fn offline_example(tljh: &TljhHost) -> String {
    let bootstrap = workspace_root().join("tests/harness/tljh/bootstrap.py");
    let text = full_spec_text(EXAMPLE);
    let text = insert_after(
        &text,
        "    tljh:",
        &[format!("      bootstrap: {}", bootstrap.display())],
    );
    let text = insert_after(
        &text,
        "      config:",
        &[
            format!("        http.port: {}", tljh.http_port),
            format!("        https.port: {}", tljh.https_port),
        ],
    );
    insert_after(
        &text,
        "        letsencrypt_email: it@example.org",
        &["        staging: true".to_owned()],
    )
}

/// `hubform ARGS… --ssh-endpoint HOST:PORT SPEC`, with `HUBFORM_RESOLVE`
/// answering for the domain when `resolve` is given.
fn hubform(
    world: &World,
    tljh: &TljhHost,
    spec: &Path,
    args: &[&str],
    resolve: Option<&str>,
) -> Run {
    let mut cmd = world.hubform();
    cmd.args(args)
        .arg("--ssh-endpoint")
        .arg(tljh.host.endpoint())
        .arg(spec);
    if let Some(ip) = resolve {
        cmd.env("HUBFORM_RESOLVE", format!("{DOMAIN}={ip}"));
    }
    common::run(cmd)
}

#[test]
fn spec_text_leaves_out_only_the_host_layer() {
    for relative in [EXAMPLE, SMALL] {
        let full = full_spec_text(relative);
        let aws = spec_text(relative);
        assert!(
            full.contains("\n    tljh:\n"),
            "{relative} has a host layer"
        );
        assert!(!aws.contains("tljh"), "{relative}:\n{aws}");
        assert!(full.starts_with(&aws), "{relative}: only its end is cut");
        let last = aws.lines().last().unwrap_or("");
        assert!(last.starts_with("    dns: "), "{relative} ends: {last}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_example_converges_with_https_once_dns_is_right() {
    let world = World::start().await;
    let tljh = TljhHost::start();
    let keys = world.dir().join("keys");
    std::fs::create_dir_all(&keys).expect("keys folder");
    // The test host's client key stands in for the key pair's private key:
    // hubform imports it instead of generating one.
    std::fs::copy(
        tljh.host.client_key(),
        keys.join("workshop-central-asia.pem"),
    )
    .expect("copy the key");
    let spec: PathBuf = world.dir().join("workshop.yaml");
    std::fs::write(&spec, offline_example(&tljh)).expect("write the spec");

    // From nothing: the address does not exist when planning, so HTTPS
    // waits and says why; everything else converges and is verified.
    let first =
        hubform(&world, &tljh, &spec, &["apply", "--auto-approve"], None)
            .expect_code(0);
    assert!(
        first.stdout.contains("the Elastic IP does not exist yet"),
        "{}",
        first.stdout
    );
    assert!(
        first.stdout.contains("tljh.hub: verified: the hub answers"),
        "{}",
        first.stdout
    );
    assert_eq!(config_value(&tljh, "https.enabled"), Value::Null);
    assert_eq!(
        config_value(&tljh, "users.admin"),
        serde_json::json!(["lecturer"])
    );
    assert_eq!(config_value(&tljh, "limits.memory"), "4G");
    assert_eq!(config_value(&tljh, "services.cull.timeout"), 3600);

    // The course's packages: importable by the users' Python, and the
    // conda ones recorded by the conda double.
    let imports =
        format!("/opt/tljh/user/bin/python -c 'import {}'", PIP.join(", "));
    let out = tljh.host.ssh(&imports);
    assert!(out.status.success(), "{}", describe(&out));
    let listed: Value = serde_json::from_str(
        &tljh.host.ssh_ok("/opt/tljh/user/bin/conda list --json"),
    )
    .expect("conda list JSON");
    for name in CONDA {
        let found = listed
            .as_array()
            .expect("a list")
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {listed}"));
        assert_eq!(found["channel"], "conda-forge", "{found}");
    }

    // The name resolves to the Elastic IP: HTTPS goes on and the host
    // serves the (staging) certificate for it.
    let ip = elastic_ip(&world).await;
    let second = hubform(
        &world,
        &tljh,
        &spec,
        &["apply", "--auto-approve"],
        Some(&ip),
    )
    .expect_code(0);
    assert!(second.stdout.contains("https.enabled"), "{}", second.stdout);
    assert!(
        second
            .stdout
            .contains("tljh.hub: verified: the hub answers"),
        "{}",
        second.stdout
    );
    assert_eq!(config_value(&tljh, "https.enabled"), true);
    assert_eq!(
        config_value(&tljh, "https.letsencrypt.domains"),
        serde_json::json!([DOMAIN])
    );
    assert_eq!(
        config_value(&tljh, "https.letsencrypt.email"),
        "it@example.org"
    );
    let issued = tljh
        .records("acme.jsonl")
        .into_iter()
        .any(|r| r["status"] == "issued" && r["domains"][0] == DOMAIN);
    assert!(issued, "{:?}", tljh.records("acme.jsonl"));

    // Nothing left to do.
    let third = hubform(
        &world,
        &tljh,
        &spec,
        &["plan", "--detailed-exitcode"],
        Some(&ip),
    )
    .expect_code(0);
    assert!(third.stdout.contains("No changes."), "{}", third.stdout);
}
