//! `hubform status`: the example workshop with a host layer, applied
//! against moto and a test host running the TLJH double. What status
//! prints is compared with what the host itself reports over SSH (df,
//! /proc/meminfo, systemctl, journalctl) and with the instance in moto.

use std::path::PathBuf;

use crate::common::{self, spec_text, write_spec, Run, EXAMPLE};
use crate::drift::has_line;
use crate::tljh_double::TljhHost;
use crate::world::World;

const GIB: f64 = (1u64 << 30) as f64;

/// A workshop applied with a host layer on a fresh test host.
struct Applied {
    world: World,
    tljh: TljhHost,
    spec: PathBuf,
}

impl Applied {
    /// The example with a small `tljh` section reaching the test host,
    /// applied.
    async fn new() -> Applied {
        let world = World::start().await;
        let tljh = TljhHost::start();
        let host = tljh.spec_block();
        tljh.lend_key(world.dir(), "workshop-central-asia");
        let text = format!("{}{host}", spec_text(EXAMPLE));
        let spec = write_spec(&world, "workshop.yaml", &text);
        common::apply(&world, &spec);
        Applied { world, tljh, spec }
    }

    /// `hubform status SPEC ARGS…`.
    fn status(&self, args: &[&str]) -> Run {
        let mut all = vec!["status", self.spec.to_str().expect("UTF-8")];
        all.extend(args);
        common::hubform(&self.world, &all)
    }

    /// The workshop's one instance id, from moto.
    async fn instance_id(&self) -> String {
        let out = self
            .world
            .ec2()
            .await
            .describe_instances()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag:hubform:id")
                    .values("instance.hub")
                    .build(),
            )
            .send()
            .await
            .expect("DescribeInstances");
        out.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find_map(|i| i.instance_id())
            .expect("the workshop's instance")
            .to_owned()
    }
}

/// The figures of a status line `  NAME  X GiB used of Y GiB (P%)`, in
/// GiB (a figure below one GiB is printed in MiB).
fn figures(stdout: &str, name: &str) -> (f64, f64, u64) {
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with(name))
        .unwrap_or_else(|| panic!("no `{name}` line in:\n{stdout}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let gib = |number: &str, unit: &str| -> f64 {
        let n: f64 = number
            .parse()
            .unwrap_or_else(|_| panic!("{number:?} in {line:?} is no number"));
        match unit {
            "GiB" => n,
            "MiB" => n / 1024.0,
            other => panic!("unit {other:?} in {line:?}"),
        }
    };
    let at = words.iter().position(|w| *w == "used").expect("`used`");
    let percent = words[at + 4]
        .trim_matches(|c| c == '(' || c == ')' || c == '%')
        .parse()
        .expect("a percentage");
    (
        gib(words[at - 2], words[at - 1]),
        gib(words[at + 2], words[at + 3]),
        percent,
    )
}

/// The lines printed under the heading that starts with `heading`.
fn section<'a>(stdout: &'a str, heading: &str) -> Vec<&'a str> {
    stdout
        .lines()
        .skip_while(|l| !l.trim_start().starts_with(heading))
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .map(str::trim)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn status_shows_the_instance_and_what_the_host_reports() {
    let w = Applied::new().await;
    let instance = w.instance_id().await;
    let address = common::elastic_ip(&w.world).await;
    // A log may hold anything: a terminal escape and a line that looks
    // like the status script's own section marker.
    w.tljh.host.sudo_ok(
        "printf 'status-marker one\\n\\033[2Jcleared\\n==hubform:end==\\n' \
         >> /var/log/hubform-double/jupyterhub.log",
    );

    let before = w.tljh.host.connections_accepted();
    let run = w.status(&[]).expect_code(0);
    let out = &run.stdout;
    assert_eq!(
        w.tljh.host.connections_accepted() - before,
        1,
        "one SSH login"
    );
    assert!(
        has_line(
            out,
            &format!(
                "hub: instance {instance} (t3.xlarge), running, Elastic IP \
                 {address}"
            )
        ),
        "{out}"
    );

    // Disk and memory as the host reports them.
    let df = w.tljh.host.ssh_ok("df -P -k / | tail -n 1");
    let df: Vec<u64> = df
        .split_whitespace()
        .skip(1)
        .take(4)
        .map(|f| f.trim_end_matches('%').parse().expect("a df figure"))
        .collect();
    let (used, size, percent) = figures(out, "disk /:");
    assert_eq!(
        format!("{size:.1}"),
        format!("{:.1}", df[0] as f64 * 1024.0 / GIB),
        "{out}"
    );
    // Other tests write to the same disk meanwhile.
    assert!((used - df[1] as f64 * 1024.0 / GIB).abs() < 1.0, "{out}");
    assert!(percent.abs_diff(df[3]) <= 2, "df says {}%: {out}", df[3]);
    let meminfo = w.tljh.host.ssh_ok("grep MemTotal /proc/meminfo");
    let total_kib: f64 = meminfo
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("MemTotal in kB");
    let (used, total, _) = figures(out, "memory:");
    assert_eq!(
        format!("{total:.1}"),
        format!("{:.1}", total_kib * 1024.0 / GIB)
    );
    assert!(used > 0.0 && used <= total, "{out}");

    // The services' states as systemctl gives them on the host.
    for service in ["jupyterhub", "traefik"] {
        let state = w
            .tljh
            .host
            .ssh_ok(&format!("systemctl is-active {service}"));
        assert_eq!(state.trim(), "active");
        assert!(has_line(out, &format!("{service}: active")), "{out}");
    }

    // The last lines of each log, indented under its heading; the escape
    // is shown, not sent to the terminal, and the fake marker is a line.
    let hub = section(out, "jupyterhub log, last");
    assert!(hub.len() <= 10, "{out}");
    let tail = &hub[hub.len().saturating_sub(3)..];
    assert_eq!(
        tail,
        ["status-marker one", "\\u{1b}[2Jcleared", "==hubform:end=="],
        "{out}"
    );
    assert!(!out.contains('\u{1b}'), "{out}");
    let traefik = section(out, "traefik log, last");
    let journal = w
        .tljh
        .host
        .sudo_ok("journalctl -u traefik -n 10 --no-pager");
    let journal: Vec<&str> = journal.lines().map(str::trim).collect();
    assert!(!traefik.is_empty(), "{out}");
    assert_eq!(traefik, journal, "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn status_reads_stopped_services_and_a_host_without_journalctl() {
    let w = Applied::new().await;
    // Stopping traefik stops the hub too (it requires traefik).
    w.tljh.host.sudo_ok("systemctl stop traefik");
    w.tljh.host.sudo_ok("rm /usr/bin/journalctl");

    let run = w.status(&[]).expect_code(0);
    let out = &run.stdout;
    for service in ["jupyterhub", "traefik"] {
        let state = w.tljh.host.ssh(&format!("systemctl is-active {service}"));
        assert_eq!(String::from_utf8_lossy(&state.stdout).trim(), "inactive");
        assert!(has_line(out, &format!("{service}: inactive")), "{out}");
        assert!(
            has_line(
                out,
                &format!(
                    "{service} log: not available (journalctl: not found)"
                )
            ),
            "{out}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn status_of_a_stopped_instance_skips_ssh_and_an_unreachable_host_fails()
{
    let w = Applied::new().await;

    // Nothing listens on this port: the host cannot be reached.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    let endpoint = format!("127.0.0.1:{closed}");
    let run = w.status(&["--ssh-endpoint", &endpoint]).expect_code(1);
    assert!(
        run.stdout.contains(", running, Elastic IP"),
        "the instance is still shown:\n{}",
        run.stdout
    );
    let unreachable = run
        .stdout
        .lines()
        .find(|l| l.contains("host: unreachable over SSH:"))
        .unwrap_or_else(|| panic!("no unreachable line:\n{}", run.stdout));
    assert!(unreachable.contains(&endpoint), "{unreachable}");
    assert!(run.stderr.contains("could not be read over SSH"), "{run:?}");

    // A stopped instance: its state, and no SSH at all.
    let instance = w.instance_id().await;
    let ec2 = w.world.ec2().await;
    ec2.stop_instances()
        .instance_ids(&instance)
        .send()
        .await
        .expect("StopInstances");
    wait_stopped(&ec2, &instance).await;
    let before = w.tljh.host.connections_accepted();
    let run = w.status(&[]).expect_code(0);
    let out = &run.stdout;
    assert!(
        out.contains(&format!("hub: instance {instance} (t3.xlarge), stopped")),
        "{out}"
    );
    assert!(
        has_line(out, "host: not read over SSH: the instance is stopped"),
        "{out}"
    );
    assert_eq!(w.tljh.host.connections_accepted(), before, "no SSH login");
}

/// Waits (moto directly) until the instance is stopped.
async fn wait_stopped(ec2: &aws_sdk_ec2::Client, instance: &str) {
    for _ in 0..300 {
        let out = ec2
            .describe_instances()
            .instance_ids(instance)
            .send()
            .await
            .expect("DescribeInstances");
        let state = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find_map(|i| i.state().and_then(|s| s.name()).cloned());
        if state.as_ref().map(|s| s.as_str()) == Some("stopped") {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{instance} did not stop");
}
