//! Interruption: `apply` killed (SIGKILL) at each pause point, then run
//! again. The re-run must converge without duplicates and without losing
//! or overwriting the private key.

use std::path::{Path, PathBuf};
use std::process::Child;

use aws_sdk_ec2::types::Filter;

use crate::common::{apply, example};
use crate::world::World;

/// The example spec's workshop, key pair and key file.
const WORKSHOP: &str = "groundwater-central-asia";
const KEY_PAIR: &str = "workshop-central-asia";
const KEY_FILE: &str = "keys/workshop-central-asia.pem";

fn workshop_filter() -> Filter {
    Filter::builder()
        .name("tag:hubform:workshop")
        .values(WORKSHOP)
        .build()
}

/// `(instance id, state)` of every non-terminated instance of the
/// workshop, as moto itself shows them (no proxy, nothing hidden).
async fn workshop_instances(world: &World) -> Vec<(String, String)> {
    let out = world
        .ec2()
        .await
        .describe_instances()
        .filters(workshop_filter())
        .send()
        .await
        .expect("DescribeInstances");
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .map(|i| {
            (
                i.instance_id().unwrap_or_default().to_owned(),
                i.state()
                    .and_then(|s| s.name())
                    .map(|n| n.as_str().to_owned())
                    .unwrap_or_default(),
            )
        })
        .filter(|(_, state)| state != "terminated")
        .collect()
}

/// `(allocation id, tagged with the workshop)` of every Elastic IP.
async fn addresses(world: &World) -> Vec<(String, bool)> {
    let out = world
        .ec2()
        .await
        .describe_addresses()
        .send()
        .await
        .expect("DescribeAddresses");
    out.addresses()
        .iter()
        .map(|a| {
            let tagged = a.tags().iter().any(|t| {
                t.key() == Some("hubform:workshop")
                    && t.value() == Some(WORKSHOP)
            });
            (a.allocation_id().unwrap_or_default().to_owned(), tagged)
        })
        .collect()
}

/// The public keys (OpenSSH text) of the key pairs named `name`.
async fn key_pairs_named(world: &World, name: &str) -> Vec<String> {
    let out = world
        .ec2()
        .await
        .describe_key_pairs()
        .include_public_key(true)
        .send()
        .await
        .expect("DescribeKeyPairs");
    out.key_pairs()
        .iter()
        .filter(|k| k.key_name() == Some(name))
        .map(|k| k.public_key().unwrap_or_default().to_owned())
        .collect()
}

/// Decodes standard base64 (padding optional, whitespace ignored).
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b' ' | b'\n' | b'\r' | b'\t' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

/// Reads one SSH wire-format string at `*at`.
fn ssh_string<'a>(data: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let len = data.get(*at..*at + 4)?;
    let len = u32::from_be_bytes(len.try_into().ok()?) as usize;
    let s = data.get(*at + 4..*at + 4 + len)?;
    *at += 4 + len;
    Some(s)
}

/// The public key blob stored (unencrypted) in an OpenSSH private key
/// file: enough to compare it with a key pair's public key in AWS.
fn public_blob_of_private_key(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .join("");
    let data = base64_decode(&body)?;
    let magic = b"openssh-key-v1\0";
    if !data.starts_with(magic) {
        return None;
    }
    let mut at = magic.len();
    ssh_string(&data, &mut at)?; // cipher
    ssh_string(&data, &mut at)?; // kdf
    ssh_string(&data, &mut at)?; // kdf options
    let count = data.get(at..at + 4)?;
    if u32::from_be_bytes(count.try_into().ok()?) != 1 {
        return None;
    }
    at += 4;
    ssh_string(&data, &mut at).map(<[u8]>::to_vec)
}

/// The key blob of an OpenSSH public key line (`TYPE BASE64 [COMMENT]`).
fn public_blob_of_public_key(line: &str) -> Option<Vec<u8>> {
    base64_decode(line.split_whitespace().nth(1)?)
}

/// The open entries of the workshop's create journal.
fn journal_entries(dir: &Path) -> serde_json::Map<String, serde_json::Value> {
    let path = dir
        .join(".hubform")
        .join(format!("{WORKSHOP}.journal.json"));
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!("{}: not a JSON object: {e}: {text}", path.display())
        }),
        Err(_) => serde_json::Map::new(),
    }
}

fn kill(mut child: Child) {
    child.kill().expect("SIGKILL the paused hubform");
    let status = child.wait().expect("wait for the killed hubform");
    assert!(!status.success(), "killed, not finished: {status}");
}

/// Starts `apply --auto-approve` of the example, pauses it at `step`,
/// lets `confirm` check the step's effect, kills it, applies again and
/// checks that the world converged without duplicates.
async fn crash_and_reapply(
    step: &str,
    hide_new_instances: Option<u32>,
) -> (World, PathBuf) {
    let world = World::start().await;
    let spec = example(&world);
    let key_file: PathBuf = world.dir().join(KEY_FILE);
    if let Some(describes) = hide_new_instances {
        world.hide_new_instances(describes);
    }

    let mut cmd = world.hubform();
    cmd.arg("apply").arg("--auto-approve").arg(&spec);
    let child = world.spawn_paused(cmd, step);

    // The step's effect is there before the kill.
    match step {
        "after-key-file-written" => {
            let meta = std::fs::metadata(&key_file);
            assert!(
                meta.as_ref().is_ok_and(|m| m.len() > 0),
                "paused after writing the key file, but {}: {meta:?}",
                key_file.display()
            );
        }
        "after-import-key-pair" => {
            assert_eq!(
                key_pairs_named(&world, KEY_PAIR).await.len(),
                1,
                "paused after ImportKeyPair, the key pair is in AWS"
            );
        }
        "after-run-instances" => {
            assert_eq!(
                workshop_instances(&world).await.len(),
                1,
                "paused after RunInstances, the instance is in AWS"
            );
        }
        "after-allocate-address" => {
            let tagged: Vec<_> = addresses(&world)
                .await
                .into_iter()
                .filter(|(_, tagged)| *tagged)
                .collect();
            assert_eq!(tagged.len(), 1, "a tagged address: {tagged:?}");
        }
        other => panic!("unknown step {other}"),
    }
    let key_before = std::fs::read(&key_file).ok();
    kill(child);
    crate::lock::free_dead_runs_lock(&world).await;

    world.reset_requests();
    let run = apply(&world, &spec);
    if hide_new_instances.is_some() {
        assert_eq!(
            world.count("RunInstances"),
            1,
            "the re-run's discovery must miss the hidden instance and call \
             RunInstances again (with the journal's token)\n{}",
            run.stderr
        );
    }

    let instances = workshop_instances(&world).await;
    assert_eq!(
        instances.len(),
        1,
        "exactly one instance of the workshop after the re-run: \
         {instances:?}\n--- re-run stdout\n{}\n--- stderr\n{}",
        run.stdout,
        run.stderr
    );
    let eips = addresses(&world).await;
    assert_eq!(eips.len(), 1, "exactly one Elastic IP: {eips:?}");
    let pairs = key_pairs_named(&world, KEY_PAIR).await;
    assert_eq!(pairs.len(), 1, "exactly one key pair {KEY_PAIR}");

    let key_after = std::fs::read(&key_file).unwrap_or_else(|e| {
        panic!("the key file {} after the re-run: {e}", key_file.display())
    });
    if let Some(before) = &key_before {
        assert!(
            before == &key_after,
            "the key file was rewritten by the re-run"
        );
    }
    let private = public_blob_of_private_key(
        std::str::from_utf8(&key_after).expect("a text key file"),
    )
    .expect("an OpenSSH private key file");
    let public = public_blob_of_public_key(&pairs[0])
        .unwrap_or_else(|| panic!("a public key in AWS: {:?}", pairs[0]));
    assert!(
        private == public,
        "the key file does not match the key pair in AWS ({})",
        pairs[0]
    );

    let journal = journal_entries(world.dir());
    assert!(
        journal.is_empty(),
        "the create journal still holds entries after a converged run: \
         {journal:?}"
    );

    let again = crate::common::plan(&world, &spec);
    assert_eq!(
        again.code, 0,
        "a plan after the re-run finds nothing to do\n--- stdout\n{}\n\
         --- stderr\n{}",
        again.stdout, again.stderr
    );
    (world, spec)
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_after_key_file_written() {
    crash_and_reapply("after-key-file-written", None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_after_import_key_pair() {
    crash_and_reapply("after-import-key-pair", None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_after_run_instances() {
    crash_and_reapply("after-run-instances", None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_after_allocate_address() {
    crash_and_reapply("after-allocate-address", None).await;
}

/// The instance stays invisible to describes after the kill, so that the
/// re-run's discovery misses it: only the journal's client token (EC2
/// returns the first instance for it) prevents a second one.
#[tokio::test(flavor = "multi_thread")]
async fn crash_after_run_instances_while_instance_hidden() {
    crash_and_reapply("after-run-instances", Some(8)).await;
}

/// After a crash and a converging re-run, the workshop is destroyed and
/// applied again: nothing of the interrupted create may linger (a spent
/// client token would bring back the terminated instance).
#[tokio::test(flavor = "multi_thread")]
async fn crash_after_run_instances_then_destroy_and_apply() {
    let (world, spec) = crash_and_reapply("after-run-instances", None).await;
    let spec_arg = spec.to_str().expect("a UTF-8 path");
    // The kill may have come between CreateAccessKey and writing its
    // file (the secret is then lost): only a written file is kept aside.
    let credentials = world.dir().join("keys/ec2-admin.credentials");
    let had_file = credentials.exists();
    crate::common::hubform(
        &world,
        &["destroy", "--auto-approve", "--allow-destroy", spec_arg],
    )
    .expect_code(0);
    assert_eq!(workshop_instances(&world).await, vec![], "destroyed");
    apply(&world, &spec);
    let instances = workshop_instances(&world).await;
    assert_eq!(instances.len(), 1, "one new instance: {instances:?}");
    assert_eq!(addresses(&world).await.len(), 1, "one Elastic IP");
    // destroy deleted the access key; its dead secret file is kept aside.
    let old = world.dir().join("keys/ec2-admin.credentials.old");
    assert_eq!(old.exists(), had_file, "the old file is kept aside");
    assert!(credentials.exists(), "a new access key file");
}

/// The instance of an interrupted launch terminated by hand before the
/// re-run: the journal's token is spent, and apply launches anew.
#[tokio::test(flavor = "multi_thread")]
async fn crash_after_run_instances_then_instance_terminated_by_hand() {
    let world = World::start().await;
    let spec = example(&world);
    let spec_arg = spec.to_str().expect("a UTF-8 path");
    let mut cmd = world.hubform();
    cmd.args(["apply", "--auto-approve", spec_arg]);
    kill(world.spawn_paused(cmd, "after-run-instances"));
    crate::lock::free_dead_runs_lock(&world).await;

    let launched = workshop_instances(&world).await;
    assert_eq!(launched.len(), 1, "the launch happened: {launched:?}");
    let ec2 = world.ec2().await;
    ec2.terminate_instances()
        .instance_ids(&launched[0].0)
        .send()
        .await
        .expect("terminate by hand");

    apply(&world, &spec);
    let instances = workshop_instances(&world).await;
    assert_eq!(instances.len(), 1, "one live instance: {instances:?}");
    assert_ne!(instances[0].0, launched[0].0, "a new instance");
    assert!(journal_entries(world.dir()).is_empty(), "journal closed");
}

/// The same for the Elastic IP: the new apply must not wait for the
/// address the interrupted run allocated (and destroy released).
#[tokio::test(flavor = "multi_thread")]
async fn crash_after_allocate_address_then_destroy_and_apply() {
    let (world, spec) = crash_and_reapply("after-allocate-address", None).await;
    let spec_arg = spec.to_str().expect("a UTF-8 path");
    crate::common::hubform(
        &world,
        &["destroy", "--auto-approve", "--allow-destroy", spec_arg],
    )
    .expect_code(0);
    assert_eq!(addresses(&world).await, vec![], "released");
    let started = std::time::Instant::now();
    apply(&world, &spec);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "apply took {:?}: it waited for an address that was gone",
        started.elapsed()
    );
    assert_eq!(workshop_instances(&world).await.len(), 1, "one instance");
    assert_eq!(addresses(&world).await.len(), 1, "one Elastic IP");
}
