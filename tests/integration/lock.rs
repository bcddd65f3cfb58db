//! The workshop lock: two applies (or an apply and a destroy) of one
//! workshop never act at the same time; a killed run's lock expires and is
//! taken over; a long step keeps its lock alive; plan never sees the lock.
//!
//! A run is held in the middle of its work by the proxy (`World::hold`):
//! its `RunInstances` (or `TerminateInstances`) waits until the test sends
//! a `DescribeRegions`, which hubform itself never calls.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_ec2::primitives::Blob;
use aws_sdk_ec2::types::{
    Filter, KeyPairInfo, ResourceType, Tag, TagSpecification,
};

use crate::common::{apply, example, hubform, is_mutating, plan, Run};
use crate::world::World;

const WORKSHOP: &str = "groundwater-central-asia";
const LOCK: &str = "hubform-lock-groundwater-central-asia";
const KEY_NAME: &str = "workshop-central-asia";
const GROUP_NAME: &str = "workshop-sg";
/// What a run refused for the lock says.
const LOCKED: &str = "is locked by another run";
/// The call the proxy releases a held call on.
const RELEASE: &str = "DescribeRegions";
/// The tag naming the lock's holding process.
const PROCESS: &str = "hubform:lock-process";

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

fn tag<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs()
}

/// The lock key pairs as moto shows them.
async fn locks(world: &World) -> Vec<KeyPairInfo> {
    world
        .ec2()
        .await
        .describe_key_pairs()
        .filters(filter("key-name", LOCK))
        .send()
        .await
        .expect("DescribeKeyPairs")
        .key_pairs()
        .to_vec()
}

/// The one lock key pair; panics unless there is exactly one.
async fn the_lock(world: &World) -> KeyPairInfo {
    let found = locks(world).await;
    assert_eq!(found.len(), 1, "exactly one lock: {found:?}");
    found[0].clone()
}

/// Deletes the lock a killed run left behind, as its operator would (the
/// refusal says how), so that the next run need not wait for it to
/// expire. For tests that kill a run to check something else.
pub async fn free_dead_runs_lock(world: &World) {
    world
        .ec2()
        .await
        .delete_key_pair()
        .key_name(LOCK)
        .send()
        .await
        .expect("delete the dead run's lock");
}

/// The mutating calls the proxy saw, the lock's included.
fn mutating_calls(world: &World) -> Vec<String> {
    world
        .requests()
        .into_iter()
        .chain(world.lock_requests())
        .map(|r| r.action)
        .filter(|a| is_mutating(a))
        .collect()
}

/// The lock's expiry tag, Unix seconds.
fn expiry(lock: &KeyPairInfo) -> u64 {
    tag(lock.tags(), "hubform:lock-expires")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("the lock has an expiry: {lock:?}"))
}

/// How many of the workshop's objects exist: live instances, key pairs
/// named like the spec's, security groups named like the spec's.
async fn objects(world: &World) -> (usize, usize, usize) {
    let ec2 = world.ec2().await;
    let instances = crate::common::live_instances(&ec2, Some(WORKSHOP))
        .await
        .len();
    let keys = ec2
        .describe_key_pairs()
        .filters(filter("key-name", KEY_NAME))
        .send()
        .await
        .expect("DescribeKeyPairs")
        .key_pairs()
        .len();
    let groups = ec2
        .describe_security_groups()
        .filters(filter("group-name", GROUP_NAME))
        .send()
        .await
        .expect("DescribeSecurityGroups")
        .security_groups()
        .len();
    (instances, keys, groups)
}

/// A hubform run in the background, killed (SIGKILL) if the test ends
/// before it does.
struct Background(Option<Child>);

impl Background {
    /// Starts `cmd` with its output captured.
    fn spawn(mut cmd: Command) -> Background {
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hubform");
        Background(Some(child))
    }

    /// Wraps a run started elsewhere (`World::spawn_paused`).
    fn of(child: Child) -> Background {
        Background(Some(child))
    }

    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("a running child")
    }

    /// Whether the run has ended.
    fn ended(&mut self) -> bool {
        self.child().try_wait().expect("poll hubform").is_some()
    }

    /// What an ended run printed.
    fn printed(&mut self) -> String {
        use std::io::Read;
        let child = self.child();
        let mut text = String::new();
        if let Some(out) = child.stdout.as_mut() {
            let _ = out.read_to_string(&mut text);
        }
        if let Some(err) = child.stderr.as_mut() {
            let _ = err.read_to_string(&mut text);
        }
        text
    }

    /// SIGKILL, and wait for it.
    fn kill(&mut self) {
        let child = self.child();
        child.kill().expect("SIGKILL hubform");
        let _ = child.wait();
    }

    /// Waits for the run to end.
    fn finish(mut self) -> Run {
        let child = self.0.take().expect("a running child");
        let out: Output = child.wait_with_output().expect("wait for hubform");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `hubform ARGS… --auto-approve SPEC` started in the background.
fn start(
    world: &World,
    args: &[&str],
    spec: &Path,
    ttl: Option<u64>,
) -> Background {
    let mut cmd = world.hubform();
    cmd.args(args).arg("--auto-approve").arg(spec);
    if let Some(secs) = ttl {
        cmd.env("HUBFORM_LOCK_TTL_SECS", secs.to_string());
    }
    Background::spawn(cmd)
}

/// Waits until the proxy holds a call of `action`.
fn wait_holding(world: &World, action: &str, runs: &mut [&mut Background]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if world.holding(action) {
            return;
        }
        for run in runs.iter_mut() {
            if run.ended() {
                panic!(
                    "a run ended before {action} was held:\n{}",
                    run.printed()
                );
            }
        }
        assert!(
            Instant::now() < deadline,
            "{action} never held: {}",
            world.holds()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Lets the held call go on.
async fn release_hold(world: &World) {
    world
        .proxy_ec2()
        .await
        .describe_regions()
        .send()
        .await
        .expect("DescribeRegions through the proxy");
}

/// Panics unless `run` was refused for the lock, naming the holder and
/// the expiry.
fn assert_refused(run: &Run, holder_verb: &str) {
    let run_text = format!("{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.code, 1, "refused with exit 1:\n{run_text}");
    assert!(run.stderr.contains(LOCKED), "the lock message:\n{run_text}");
    assert!(
        run.stderr.contains(&format!(", {holder_verb}")),
        "the holder and its verb ({holder_verb}):\n{run_text}"
    );
    assert!(
        run.stderr.contains("The lock expires at"),
        "when the lock expires:\n{run_text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn second_apply_is_refused_while_the_first_acts() {
    let world = World::start().await;
    let spec = example(&world);
    world.hold("RunInstances", RELEASE, 120);
    let mut first = start(&world, &["apply"], &spec, None);
    wait_holding(&world, "RunInstances", &mut [&mut first]);
    let lock = the_lock(&world).await;
    assert!(
        tag(lock.tags(), "hubform:workshop").is_none(),
        "the lock is not one of the workshop's objects: {lock:?}"
    );
    assert_eq!(tag(lock.tags(), "hubform:lock"), Some(WORKSHOP));

    world.reset_requests();
    let second = hubform(
        &world,
        &["apply", "--auto-approve", spec.to_str().expect("UTF-8")],
    );
    assert_refused(&second, "apply");
    let mutating = mutating_calls(&world);
    assert!(mutating.is_empty(), "the refused run changed: {mutating:?}");

    release_hold(&world).await;
    let first = first.finish().expect_code(0);
    assert!(first.stdout.contains("Apply complete!"), "{}", first.stdout);
    assert_eq!(objects(&world).await, (1, 1, 1), "one of each");
    assert!(locks(&world).await.is_empty(), "the lock was given back");
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_takes_the_lock_too() {
    let world = World::start().await;
    let spec = example(&world);
    apply(&world, &spec);
    assert!(locks(&world).await.is_empty(), "apply gave its lock back");

    world.hold("TerminateInstances", RELEASE, 120);
    let mut destroy = start(
        &world,
        &["destroy", "--allow-destroy", "--no-backup"],
        &spec,
        None,
    );
    wait_holding(&world, "TerminateInstances", &mut [&mut destroy]);
    let lock = the_lock(&world).await;
    let holder = tag(lock.tags(), "hubform:lock-holder").unwrap_or_default();
    assert!(holder.ends_with(", destroy"), "held by destroy: {holder}");

    let second = hubform(
        &world,
        &["apply", "--auto-approve", spec.to_str().expect("UTF-8")],
    );
    assert_refused(&second, "destroy");

    release_hold(&world).await;
    destroy.finish().expect_code(0);
    assert_eq!(objects(&world).await, (0, 0, 0), "all gone");
    assert!(locks(&world).await.is_empty(), "the lock was given back");
}

/// A killed run's lock from another machine (its process cannot be
/// checked from here) blocks until it expires, then is taken over.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_applys_lock_expires_and_is_taken_over() {
    let world = World::start().await;
    let spec = example(&world);
    let mut cmd = world.hubform();
    cmd.args(["apply", "--auto-approve"])
        .arg(&spec)
        .env("HUBFORM_LOCK_TTL_SECS", "10");
    Background::of(world.spawn_paused(cmd, "lock-taken")).kill();
    let stale = the_lock(&world).await;
    // As if that run had been on another machine: another boot id.
    world
        .ec2()
        .await
        .create_tags()
        .resources(stale.key_pair_id().expect("an id"))
        .tags(
            Tag::builder()
                .key(PROCESS)
                .value("linux:another-machines-boot-id:4026531836:7:99")
                .build(),
        )
        .send()
        .await
        .expect("name a process on another machine");
    let expires = expiry(&stale);
    assert!(now() < expires, "the lock has not expired yet");

    let refused = hubform(
        &world,
        &["apply", "--auto-approve", spec.to_str().expect("UTF-8")],
    );
    assert_refused(&refused, "apply");
    assert!(now() < expires, "refused before the expiry, not after");
    assert_eq!(objects(&world).await, (0, 0, 0), "nothing was made");

    let wait = (expires + 1).saturating_sub(now());
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let taken_over = apply(&world, &spec);
    assert!(
        taken_over.stdout.contains("Apply complete!"),
        "{}",
        taken_over.stdout
    );
    assert_eq!(objects(&world).await, (1, 1, 1), "one of each");
    assert!(locks(&world).await.is_empty(), "no lock is left");
    let again = plan(&world, &spec).expect_code(0);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_step_keeps_its_lock_alive() {
    let world = World::start().await;
    let spec = example(&world);
    world.hold("RunInstances", RELEASE, 120);
    let mut first = start(&world, &["apply"], &spec, Some(3));
    wait_holding(&world, "RunInstances", &mut [&mut first]);
    let taken = the_lock(&world).await;
    let first_expiry = expiry(&taken);

    // Longer than the lock's lifetime of 3 s.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(now() > first_expiry, "the first expiry has passed");
    let kept = the_lock(&world).await;
    assert_eq!(kept.key_pair_id(), taken.key_pair_id(), "the same lock");
    assert!(
        expiry(&kept) > first_expiry,
        "the expiry moved forward: {first_expiry} -> {} (now {})",
        expiry(&kept),
        now()
    );
    let second = hubform(
        &world,
        &["apply", "--auto-approve", spec.to_str().expect("UTF-8")],
    );
    assert_refused(&second, "apply");

    release_hold(&world).await;
    first.finish().expect_code(0);
    assert_eq!(objects(&world).await, (1, 1, 1), "one of each");
    assert!(locks(&world).await.is_empty(), "the lock was given back");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_runs_racing_for_a_stale_lock_one_wins() {
    let world = World::start().await;
    let spec = example(&world);
    let stale = plant_stale_lock(&world).await;

    world.hold("RunInstances", RELEASE, 120);
    let mut a = start(&world, &["apply"], &spec, None);
    let mut b = start(&world, &["apply"], &spec, None);
    wait_holding(&world, "RunInstances", &mut []);
    // The loser ends while the winner is held.
    let deadline = Instant::now() + Duration::from_secs(60);
    let loser_is_a = loop {
        if a.ended() {
            break true;
        }
        if b.ended() {
            break false;
        }
        assert!(Instant::now() < deadline, "neither run was refused");
        std::thread::sleep(Duration::from_millis(50));
    };
    let (loser, winner) = if loser_is_a { (a, b) } else { (b, a) };
    assert_refused(&loser.finish(), "apply");
    let lock = the_lock(&world).await;
    assert_ne!(lock.key_pair_id(), Some(stale.as_str()), "a new lock");

    release_hold(&world).await;
    winner.finish().expect_code(0);
    assert_eq!(objects(&world).await, (1, 1, 1), "one of each");
    assert!(locks(&world).await.is_empty(), "no lock is left");
}

/// A run killed on this machine cannot give its lock back; the next run
/// here sees that its process is gone and takes the lock over at once,
/// long before it would expire.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_runs_lock_on_this_machine_is_taken_over_at_once() {
    let world = World::start().await;
    let spec = example(&world);
    let mut cmd = world.hubform();
    cmd.args(["apply", "--auto-approve"]).arg(&spec);
    Background::of(world.spawn_paused(cmd, "lock-taken")).kill();
    let dead = the_lock(&world).await;
    let named = tag(dead.tags(), PROCESS).unwrap_or_default();
    assert!(named.starts_with(&this_machine()), "{named}");
    assert!(expiry(&dead) > now() + 200, "the lock lives 300 s");

    let next = apply(&world, &spec);
    assert!(
        next.stderr.contains(
            "ended on this machine without giving it back; taking the lock \
             over"
        ),
        "{}",
        next.stderr
    );
    assert!(next.stdout.contains("Apply complete!"), "{}", next.stdout);
    assert!(expiry(&dead) > now(), "taken before the old lock expired");
    assert_eq!(objects(&world).await, (1, 1, 1), "one of each");
    assert!(locks(&world).await.is_empty(), "no lock is left");
}

/// A lock naming a live process of this machine holds; the same pid with
/// another start time (the pid was reused after the holder died) does
/// not.
#[tokio::test(flavor = "multi_thread")]
async fn a_live_holder_here_keeps_its_lock_and_a_reused_pid_does_not() {
    let world = World::start().await;
    let spec = example(&world);
    let pid = std::process::id();
    let start = crate::host::process_start_time(pid).expect("our start");
    let alive = format!("{}:{pid}:{start}", this_machine());
    plant_lock(&world, now() + 300, Some(&alive)).await;
    let spec_arg = spec.to_str().expect("UTF-8");
    let refused = hubform(&world, &["apply", "--auto-approve", spec_arg]);
    assert_refused(&refused, "apply");
    assert_eq!(objects(&world).await, (0, 0, 0), "nothing was made");

    free_dead_runs_lock(&world).await;
    let reused = format!("{}:{pid}:{}", this_machine(), start + 1);
    plant_lock(&world, now() + 300, Some(&reused)).await;
    let next = apply(&world, &spec);
    assert!(next.stdout.contains("Apply complete!"), "{}", next.stdout);
    assert!(locks(&world).await.is_empty(), "no lock is left");
}

/// `linux:BOOT_ID:PID_NAMESPACE` of the machine and pid namespace the
/// tests and the hubform they start run in.
fn this_machine() -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .expect("the boot id");
    let namespace = std::fs::read_link("/proc/self/ns/pid")
        .expect("the pid namespace")
        .to_string_lossy()
        .chars()
        .filter(char::is_ascii_digit)
        .collect::<String>();
    format!("linux:{}:{namespace}", boot.trim())
}

/// A lock left by a run that died a minute ago; returns its id.
async fn plant_stale_lock(world: &World) -> String {
    plant_lock(world, now() - 60, None).await
}

/// A lock that expires at `expires` (Unix seconds), naming `process` as
/// its holder when given; returns its id.
async fn plant_lock(
    world: &World,
    expires: u64,
    process: Option<&str>,
) -> String {
    let mut tags = vec![
        Tag::builder().key("hubform:lock").value(WORKSHOP).build(),
        Tag::builder()
            .key("hubform:lock-holder")
            .value("ghost@gone, pid 1, apply")
            .build(),
        Tag::builder()
            .key("hubform:lock-expires")
            .value(expires.to_string())
            .build(),
    ];
    if let Some(process) = process {
        tags.push(Tag::builder().key(PROCESS).value(process).build());
    }
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG6n0b0yAbXq0oB9BYv3cQAh3\
               GLh3mQ0OOhZ5lM0T4nH stale";
    let out = world
        .ec2()
        .await
        .import_key_pair()
        .key_name(LOCK)
        .public_key_material(Blob::new(key))
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::KeyPair)
                .set_tags(Some(tags))
                .build(),
        )
        .send()
        .await
        .expect("plant a stale lock");
    out.key_pair_id().expect("an id").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_never_sees_the_lock() {
    let world = World::start().await;
    let spec = example(&world);
    apply(&world, &spec);

    let mut cmd = world.hubform();
    cmd.args(["apply", "--auto-approve"]).arg(&spec);
    let mut holder = Background::of(world.spawn_paused(cmd, "lock-taken"));
    the_lock(&world).await;

    let quiet = plan(&world, &spec);
    let text = format!("{}\n{}", quiet.stdout, quiet.stderr);
    assert_eq!(quiet.code, 0, "in sync while locked:\n{text}");
    assert!(quiet.stdout.contains("No changes."), "{text}");

    // With the spec's key pair gone, the search for an untagged twin by
    // name must not take the lock for it.
    world
        .ec2()
        .await
        .delete_key_pair()
        .key_name(KEY_NAME)
        .send()
        .await
        .expect("delete the key pair by hand");
    let create = plan(&world, &spec);
    let text = format!("{}\n{}", create.stdout, create.stderr);
    assert_eq!(create.code, 2, "the key pair is planned:\n{text}");
    assert!(text.contains("key_pair.workshop-central-asia"), "{text}");
    assert!(!text.contains("without hubform's tags"), "{text}");
    assert!(!text.contains(LOCK), "the lock is never named:\n{text}");

    holder.kill();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_apply_told_to_wait_acts_after_the_first() {
    let world = World::start().await;
    let spec = example(&world);
    world.hold("RunInstances", RELEASE, 120);
    let mut first = start(&world, &["apply"], &spec, None);
    wait_holding(&world, "RunInstances", &mut [&mut first]);
    // The first run's IAM steps go on beside the held launch; from its
    // last one on, any change would be the waiting run's.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !world
        .requests()
        .iter()
        .any(|r| r.action == "CreateAccessKey")
    {
        assert!(Instant::now() < deadline, "the first run's IAM steps");
        std::thread::sleep(Duration::from_millis(50));
    }

    world.reset_requests();
    let mut cmd = world.hubform();
    cmd.args(["apply", "--auto-approve"])
        .arg(&spec)
        .env("HUBFORM_LOCK_WAIT_SECS", "120");
    let mut second = Background::spawn(cmd);
    // Only the waiting run calls AWS meanwhile: a second look at the lock
    // means it is waiting.
    let deadline = Instant::now() + Duration::from_secs(60);
    let looks = || {
        let calls = world.lock_requests();
        calls
            .iter()
            .filter(|r| r.action == "DescribeKeyPairs")
            .count()
    };
    while looks() < 2 {
        assert!(!second.ended(), "the second run ended instead of waiting");
        assert!(Instant::now() < deadline, "the second run never looked");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mutating = mutating_calls(&world);
    assert!(mutating.is_empty(), "the waiting run changed: {mutating:?}");

    release_hold(&world).await;
    first.finish().expect_code(0);
    let second = second.finish().expect_code(0);
    assert!(second.stderr.contains("waiting up to"), "{}", second.stderr);
    assert!(second.stdout.contains("No changes."), "{}", second.stdout);
    assert_eq!(objects(&world).await, (1, 1, 1), "one of each");
    assert!(locks(&world).await.is_empty(), "the lock was given back");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_apply_gives_its_lock_back() {
    let world = World::start().await;
    let spec = example(&world);
    let mut cmd = world.hubform();
    cmd.args(["apply", "--auto-approve"]).arg(&spec);
    let mut paused = Background::of(world.spawn_paused(cmd, "lock-taken"));
    the_lock(&world).await;

    let pid = paused.child().id().to_string();
    let sent = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("run kill");
    assert!(sent.success(), "SIGINT sent");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !paused.ended() {
        assert!(Instant::now() < deadline, "the apply did not end on SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(locks(&world).await.is_empty(), "the lock was given back");
    apply(&world, &spec);
    assert_eq!(objects(&world).await, (1, 1, 1), "one of each");
}

/// `backup` and `backups --prune` hold the lock while they act (an apply
/// could replace or stop the instance mid-backup, or a prune delete the
/// backup a replace is about to keep); a plain `backups` list does not.
#[tokio::test(flavor = "multi_thread")]
async fn backup_and_prune_take_the_lock_too() {
    let world = World::start().await;
    let spec = example(&world);
    apply(&world, &spec);
    let apply_now = || {
        hubform(
            &world,
            &["apply", "--auto-approve", spec.to_str().expect("UTF-8")],
        )
    };

    for (verb, action, args) in [
        ("backup", "CreateImage", vec!["backup"]),
        ("backup", "CreateImage", vec!["backup"]),
        (
            "backups --prune",
            "DeregisterImage",
            vec!["backups", "--prune", "1"],
        ),
    ] {
        world.hold(action, RELEASE, 120);
        let mut cmd = world.hubform();
        cmd.args(&args).arg(&spec);
        let mut running = Background::spawn(cmd);
        wait_holding(&world, action, &mut [&mut running]);
        let lock = the_lock(&world).await;
        let holder =
            tag(lock.tags(), "hubform:lock-holder").unwrap_or_default();
        assert!(holder.ends_with(&format!(", {verb}")), "{verb}: {holder}");

        assert_refused(&apply_now(), verb);
        let listed =
            hubform(&world, &["backups", spec.to_str().expect("UTF-8")]);
        assert_eq!(listed.code, 0, "a list needs no lock: {listed:?}");

        release_hold(&world).await;
        running.finish().expect_code(0);
        assert!(locks(&world).await.is_empty(), "{verb} gave it back");
    }
}
