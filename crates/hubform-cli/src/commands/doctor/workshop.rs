//! The doctor's checks of one workshop spec: each key pair's private key
//! file, each server's web ports in its security groups, its DNS name and
//! SSH to its host.

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use hubform_aws::doctor::Check;
use hubform_aws::Aws;
use hubform_core::graph::Desired;
use hubform_core::model::{Kind, Observed, Resource, ResourceId, Value};
use hubform_core::rule::Rule;
use hubform_host::provider::{Host, HostSettings};
use hubform_host::waits::Resolver;

use crate::cli::DoctorArgs;

/// How long to keep trying an SSH connection, unless
/// `HUBFORM_SSH_RETRY_SECS` says otherwise: a running server answers at
/// once, and apply's two minutes for a booting one would only delay the
/// answer.
const SSH_RETRY: Duration = Duration::from_secs(5);

/// What the account checks left for the workshop's.
pub struct Found<'a> {
    /// AWS, when the credentials work.
    pub aws: Option<&'a Aws>,
    /// The workshop's objects, when they could be read.
    pub observed: Option<&'a Observed>,
    /// The spec's folder.
    pub dir: &'a Path,
    /// `HUBFORM_LOOPBACK_ONLY`: no real DNS lookups, no SSH off loopback.
    pub loopback_only: bool,
}

impl Found<'_> {
    /// Why checks that need AWS cannot run.
    fn missing(&self) -> &'static str {
        if self.aws.is_none() {
            "needs credentials"
        } else {
            "needs the workshop's objects from AWS"
        }
    }
}

/// Key files, then per server its ports, DNS name and SSH.
pub async fn checks(
    args: &DoctorArgs,
    desired: &Desired,
    found: &Found<'_>,
) -> Vec<Check> {
    let mut checks: Vec<Check> = desired
        .of_kind(Kind::KeyPair)
        .map(|k| key_file(k, found))
        .collect();
    let resolver = Resolver::from_env(found.loopback_only);
    let host = host(args, found);
    for server in desired.of_kind(Kind::Instance) {
        checks.push(ports(desired, server, found.observed));
        if let Some(name) = server.text("dns_name") {
            checks.push(dns(server, name, &resolver, found).await);
        }
        checks.push(ssh(desired, server, &host, found).await);
    }
    checks
}

/// The host provider with the doctor's short SSH retry.
fn host(args: &DoctorArgs, found: &Found<'_>) -> Host {
    let mut settings = HostSettings::from_env(found.loopback_only);
    if std::env::var_os("HUBFORM_SSH_RETRY_SECS").is_none() {
        settings.ssh.connect_retries_for = SSH_RETRY;
    }
    // Doctor reports a lost connection; it does not repeat anything.
    settings.attempts = 1;
    Host::new(found.dir.to_owned(), args.ssh_endpoint.clone(), settings)
}

/// A key pair's private key file: there (or not yet needed), readable by
/// its owner alone, and the key AWS holds.
fn key_file(key_pair: &Resource, found: &Found<'_>) -> Check {
    let name = format!("key file {}", key_pair.id.key);
    let Some(file) = key_pair.text("private_key_file") else {
        return Check::skip(&name, "the key pair names no file");
    };
    let path = hubform_core::spec::resolve_path(found.dir, file);
    let in_aws = found.observed.map(|o| o.live.contains_key(&key_pair.id));
    let meta = match std::fs::metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return missing_key(&name, file, in_aws)
        }
        Err(e) => {
            return Check::fail(
                &name,
                format!("cannot read {file}: {e}"),
                &format!(
                    "check the file and its folder: ls -l {}",
                    path.display()
                ),
            )
        }
    };
    if !meta.is_file() {
        return Check::fail(
            &name,
            format!("{file} is not a file"),
            "point private_key_file at the key pair's private key",
        );
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Check::fail(
            &name,
            format!(
                "{file} has mode {mode:04o}: others may read the private \
                 key, and ssh refuses such a key"
            ),
            &format!("chmod 400 {}", path.display()),
        );
    }
    let mismatch = found.observed.and_then(|o| {
        o.notes
            .iter()
            .find(|n| n.id == key_pair.id && n.text.contains("does not match"))
    });
    match mismatch {
        Some(note) => Check::fail(
            &name,
            note.text.clone(),
            "restore the key pair's own private key file from a backup",
        ),
        None => Check::ok(&name, format!("{file}, mode {mode:04o}")),
    }
}

/// A key file that does not exist: fine before the key pair is made.
fn missing_key(name: &str, file: &str, in_aws: Option<bool>) -> Check {
    match in_aws {
        Some(false) => Check::ok(
            name,
            format!(
                "{file} does not exist yet: apply makes it with the key pair"
            ),
        ),
        Some(true) => Check::fail(
            name,
            format!(
                "{file} is missing, but the key pair exists in AWS: SSH to \
                 its servers will fail"
            ),
            "restore the file from a backup (a new key pair would only \
             reach new servers)",
        ),
        None => Check::warn(
            name,
            format!(
                "{file} is missing; whether AWS holds the key pair is \
                 unknown (the workshop could not be read)"
            ),
            "restore the file if the key pair exists; else apply makes it",
        ),
    }
}

/// Whether a server's security groups let everyone reach ports 80 and
/// 443: the hub answers on 80, HTTPS on 443, and Let's Encrypt needs
/// both. The live groups count where they exist, else the spec's rules.
fn ports(
    desired: &Desired,
    server: &Resource,
    observed: Option<&Observed>,
) -> Check {
    let key = &server.id.key;
    let name = format!("web ports {key}");
    let groups = server.items("security_groups");
    let mut rules = Vec::new();
    let mut sources = Vec::new();
    for group in &groups {
        let id = ResourceId::new(Kind::SecurityGroup, group);
        let live = observed.and_then(|o| o.live.get(&id));
        let (items, source) = match live.and_then(|l| l.attrs.get("ingress")) {
            Some(Value::Set(items)) => {
                (items.iter().cloned().collect(), "in AWS")
            }
            _ => (
                desired
                    .get(&id)
                    .map(|g| g.items("ingress"))
                    .unwrap_or_default(),
                "in the spec",
            ),
        };
        rules.extend(items.iter().filter_map(|r| r.parse::<Rule>().ok()));
        sources.push(format!("{group} {source}"));
    }
    let https = desired
        .get(&ResourceId::new(Kind::TljhConfig, key))
        .is_some_and(|c| c.attrs.contains_key("https.enabled"));
    let closed: Vec<u16> = [80, 443]
        .into_iter()
        .filter(|p| !rules.iter().any(|r| opens_to_world(r, *p)))
        .collect();
    let groups_text = sources.join(", ");
    let fix = format!(
        "add `{{ ports: [80, 443], from: 0.0.0.0/0 }}` to the ingress of \
         security group {} and run hubform apply",
        groups.first().map_or("of the server", String::as_str)
    );
    match closed.as_slice() {
        [] => Check::ok(
            &name,
            format!("80 and 443 open to 0.0.0.0/0 ({groups_text})"),
        ),
        [443] if !https => Check::warn(
            &name,
            format!(
                "443 is not open to 0.0.0.0/0 ({groups_text}); HTTPS will \
                 need it"
            ),
            &fix,
        ),
        _ => Check::fail(
            &name,
            format!(
                "{} not open to 0.0.0.0/0 ({groups_text}); the hub answers \
                 on 80, HTTPS on 443, and Let's Encrypt needs both",
                closed
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
            &fix,
        ),
    }
}

/// Whether the rule lets everyone reach TCP `port`.
fn opens_to_world(rule: &Rule, port: u16) -> bool {
    let port = i32::from(port);
    let covers = rule.protocol == "all"
        || (rule.protocol == "tcp"
            && rule.from_port <= port
            && port <= rule.to_port);
    rule.cidr == "0.0.0.0/0" && covers
}

/// Whether the server's DNS name resolves to its address (the Elastic
/// IP, else the instance's public address).
async fn dns(
    server: &Resource,
    name: &str,
    resolver: &Resolver,
    found: &Found<'_>,
) -> Check {
    let check = format!("dns {}", server.id.key);
    let address = found.observed.map(|o| address(o, &server.id.key));
    let ips = match resolver.resolve(name).await {
        Ok(ips) => ips,
        // Only HUBFORM_RESOLVE answers then: no answer is no finding.
        Err(why) if found.loopback_only => return Check::skip(&check, why),
        Err(why) => {
            let at = match address.flatten() {
                Some(ip) => format!("pointing at {ip}"),
                None => "pointing at the server's Elastic IP".to_owned(),
            };
            return Check::fail(
                &check,
                why,
                &format!("create an A record for {name} {at}"),
            );
        }
    };
    let shown = ips
        .iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    match address {
        None => Check::warn(
            &check,
            format!(
                "{name} resolves to {shown}; not compared with the server's \
                 address ({})",
                found.missing()
            ),
            "run doctor again once AWS can be read",
        ),
        Some(None) => Check::ok(
            &check,
            format!(
                "{name} resolves to {shown}; the server has no address yet \
                 (after apply, point the A record at its Elastic IP)"
            ),
        ),
        Some(Some(ip)) if ips.contains(&ip) => Check::ok(
            &check,
            format!("{name} resolves to {ip}, the server's address"),
        ),
        Some(Some(ip)) => Check::fail(
            &check,
            format!(
                "{name} resolves to {shown}, not to the server's address {ip}"
            ),
            &format!(
                "point the A record of {name} at {ip} (or give dns.zone and \
                 hubform writes it in Route 53), then wait for it to resolve"
            ),
        ),
    }
}

/// Server `key`'s Elastic IP, else its instance's public address.
fn address(observed: &Observed, key: &str) -> Option<IpAddr> {
    [Kind::ElasticIp, Kind::Instance]
        .into_iter()
        .filter_map(|kind| observed.live.get(&ResourceId::new(kind, key)))
        .filter_map(|l| l.get_extra("public_ip"))
        .find_map(|ip| ip.parse().ok())
}

/// Whether the server's host answers SSH and takes the key pair's key,
/// with the host key pinned on its instance.
async fn ssh(
    desired: &Desired,
    server: &Resource,
    host: &Host,
    found: &Found<'_>,
) -> Check {
    let key = &server.id.key;
    let name = format!("ssh {key}");
    if desired.get(&ResourceId::new(Kind::Tljh, key)).is_none() {
        return Check::skip(
            &name,
            "no tljh section: hubform does not log in to it",
        );
    }
    let (Some(aws), Some(observed)) = (found.aws, found.observed) else {
        return Check::skip(&name, found.missing());
    };
    let Some(live) = observed.live.get(&server.id) else {
        return Check::skip(
            &name,
            "the server does not exist yet (apply makes it)",
        );
    };
    let state = live.get_extra("state").unwrap_or("unknown");
    if state != "running" {
        return Check::skip(&name, format!("the instance is {state}"));
    }
    let pinned = live.get_extra("host_key").is_some_and(|k| !k.is_empty());
    match host.reach(aws, desired, key).await {
        Ok(reached) if pinned => Check::ok(
            &name,
            format!(
                "{reached} answers, logged in, its host key matches the pin"
            ),
        ),
        Ok(reached) => Check::ok(
            &name,
            format!(
                "{reached} answers, logged in; its host key is not pinned \
                 yet (the next apply pins it)"
            ),
        ),
        Err(e) => {
            let fix = if e.message.contains("host key") {
                "remove the pin (the instance's tag hubform:host-key) only \
                 if the server was replaced on purpose"
            } else {
                "check that the server runs (`hubform status`), that its \
                 security group lets port 22 in from here, and that the \
                 key file is the key pair's; --ssh-endpoint HOST:PORT \
                 reaches it another way"
            };
            Check::fail(&name, e.message, fix)
        }
    }
}
