//! Lints: risky or undersized choices in a spec that is otherwise valid.
//!
//! [`lint`] is a pure function of the spec and the instance memory table
//! (in the [`PriceTable`]); it makes no AWS call. Each [`Lint`] has a
//! stable id (listed in [`LINTS`] and documented in docs/lints.md), the
//! spec position it is about, what is wrong and how to fix it. Most are
//! warnings; memory below 1 GiB for TLJH is an error, which the plan
//! refuses even without `--lint=deny`.
//!
//! ```
//! use hubform_core::cost::PriceTable;
//! use hubform_core::lint::lint;
//!
//! let text = std::fs::read_to_string(concat!(
//!     env!("CARGO_MANIFEST_DIR"),
//!     "/../../specs/groundwater-workshop.yaml"
//! ))?;
//! let spec = hubform_core::spec::parse(&text, "w.yaml")?;
//! let ids: Vec<&str> =
//!     lint(&spec, &PriceTable::builtin()).iter().map(|l| l.id).collect();
//! assert_eq!(ids, ["administrator-access", "ssh-open-to-world"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt::Write as _;

use crate::cost::PriceTable;
use crate::spec::{Cidr, Port, Pos, Rule, SecurityGroup, Server, Spec};

/// SSH (port 22) open to 0.0.0.0/0 or ::/0.
pub const SSH_OPEN_TO_WORLD: &str = "ssh-open-to-world";
/// A group gets the `AdministratorAccess` policy.
pub const ADMINISTRATOR_ACCESS: &str = "administrator-access";
/// A server with TLJH and no `https`.
pub const HTTPS_OFF: &str = "https-off";
/// Below 1 GiB of memory for TLJH (an error).
pub const MEMORY_BELOW_TLJH_MINIMUM: &str = "memory-below-tljh-minimum";
/// Exactly 1 GiB of memory for TLJH.
pub const MEMORY_AT_TLJH_MINIMUM: &str = "memory-at-tljh-minimum";
/// More expected users than the memory serves.
pub const TOO_MANY_USERS: &str = "too-many-users";
/// A root volume too small for TLJH and the packages.
pub const ROOT_VOLUME_TOO_SMALL: &str = "root-volume-too-small";
/// An instance type the memory table does not know.
pub const INSTANCE_TYPE_UNKNOWN: &str = "instance-type-unknown";

/// Every lint id and what it checks, in the order docs/lints.md lists
/// them.
pub const LINTS: [(&str, &str); 8] = [
    (
        SSH_OPEN_TO_WORLD,
        "SSH (port 22) open to the whole internet",
    ),
    (
        ADMINISTRATOR_ACCESS,
        "an IAM group gets AdministratorAccess",
    ),
    (HTTPS_OFF, "a server with TLJH but no HTTPS"),
    (
        MEMORY_BELOW_TLJH_MINIMUM,
        "less than 1 GiB of memory for TLJH",
    ),
    (MEMORY_AT_TLJH_MINIMUM, "exactly 1 GiB of memory for TLJH"),
    (TOO_MANY_USERS, "more expected users than the memory serves"),
    (
        ROOT_VOLUME_TOO_SMALL,
        "a root volume too small for the packages",
    ),
    (INSTANCE_TYPE_UNKNOWN, "an instance type of unknown memory"),
];

/// Users one GiB of memory serves, the manual's guide as a rule: a
/// t3.micro (1 GiB) about 5, a t3.small (2 GiB) about 10, a t3.xlarge
/// (16 GiB) 20 and more.
pub const USERS_PER_GIB: f64 = 5.0;

/// GiB of root volume Ubuntu, TLJH and its conda environments need
/// before any course package, headroom for logs and homes included.
pub const BASE_DISK_GIB: f64 = 8.0;
/// GiB of disk counted per pip package.
pub const PIP_PACKAGE_GIB: f64 = 0.25;
/// GiB of disk counted per conda package (they bring their libraries).
pub const CONDA_PACKAGE_GIB: f64 = 0.5;

/// How bad a lint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Printed; an error only with `--lint=deny`.
    Warning,
    /// The plan is refused.
    Error,
}

impl Severity {
    /// `warning` or `error`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One finding about the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lint {
    /// The stable id, one of [`LINTS`].
    pub id: &'static str,
    /// Warning or error.
    pub severity: Severity,
    /// The spec position it is about.
    pub pos: Pos,
    /// What is wrong, a lowercase phrase.
    pub message: String,
    /// How to fix it.
    pub fix: String,
}

/// Every lint of `spec`, in file order. `table` gives the memory of
/// instance types.
pub fn lint(spec: &Spec, table: &PriceTable) -> Vec<Lint> {
    let mut lints = Vec::new();
    for (name, group) in &spec.security_groups {
        ssh_open(&mut lints, name, group);
    }
    for (name, group) in &spec.iam.groups {
        for policy in &group.policies {
            administrator_access(&mut lints, name, policy);
        }
    }
    for (id, server) in &spec.servers {
        https_off(&mut lints, id, server);
        memory(&mut lints, id, server, table);
        root_volume(&mut lints, id, server);
    }
    lints.sort_by_key(|l| (l.pos, l.id));
    lints
}

/// Whether any lint is an error, or any at all when `deny`.
pub fn refused(lints: &[Lint], deny: bool) -> bool {
    lints.iter().any(|l| deny || l.severity == Severity::Error)
}

fn ssh_open(
    lints: &mut Vec<Lint>,
    name: &str,
    group: &crate::spec::Spanned<SecurityGroup>,
) {
    for rule in &group.ingress {
        if !reaches_ssh(rule) {
            continue;
        }
        let Ok(cidr) = Cidr::parse(&rule.from) else {
            continue;
        };
        if cidr.prefix != 0 {
            continue;
        }
        lints.push(Lint {
            id: SSH_OPEN_TO_WORLD,
            severity: Severity::Warning,
            pos: rule.from.pos,
            message: format!(
                "security group {name} opens SSH (port 22) to the whole \
                 internet ({}): every scanner can try logins on the server",
                rule.from.value
            ),
            fix: "open port 22 only to the lecturer's network in a rule of \
                  its own, e.g. `- { ports: [22], from: 203.0.113.0/24 }` \
                  (your address: `curl https://checkip.amazonaws.com`), \
                  and keep 80 and 443 open to 0.0.0.0/0"
                .to_owned(),
        });
    }
}

/// Whether the rule lets port 22 over TCP through.
fn reaches_ssh(rule: &Rule) -> bool {
    let protocol = rule.protocol.as_ref().map_or("tcp", |p| p.as_str());
    match protocol {
        "all" | "-1" => true,
        "tcp" => rule.ports.iter().any(|p| covers(p.value, 22)),
        _ => false,
    }
}

fn covers(port: Port, number: i64) -> bool {
    let (from, to) = port.bounds();
    from <= number && number <= to
}

fn administrator_access(
    lints: &mut Vec<Lint>,
    group: &str,
    policy: &crate::spec::Spanned<String>,
) {
    let name = policy.rsplit('/').next().unwrap_or(policy);
    let aws_managed = !policy.starts_with("arn:")
        || policy.starts_with("arn:aws:iam::aws:policy/");
    if !(aws_managed && name == "AdministratorAccess") {
        return;
    }
    lints.push(Lint {
        id: ADMINISTRATOR_ACCESS,
        severity: Severity::Warning,
        pos: policy.pos,
        message: format!(
            "IAM group {group} gets AdministratorAccess: an access key of \
             its users can do anything in the account, billing and IAM \
             included"
        ),
        fix: "attach only what the group's users need, e.g. \
              `arn:aws:iam::aws:policy/AmazonEC2FullAccess` for running \
              servers (as in specs/small-workshop.yaml), and keep the \
              administrator's own login out of the workshop spec"
            .to_owned(),
    });
}

fn https_off(lints: &mut Vec<Lint>, id: &str, server: &Server) {
    let Some(tljh) = &server.tljh else {
        return;
    };
    if tljh.https.is_some() {
        return;
    }
    lints.push(Lint {
        id: HTTPS_OFF,
        severity: Severity::Warning,
        pos: tljh.pos,
        message: format!(
            "server {id} serves JupyterHub without HTTPS: passwords and \
             notebooks cross the network in clear text"
        ),
        fix: "add `https: { letsencrypt_email: you@example.org }` under \
              `tljh`, with `dns: { name: … }` on the server pointing at its \
              Elastic IP"
            .to_owned(),
    });
}

/// Memory lints: TLJH's floor (only for servers with TLJH) and the users
/// the memory serves (when `expected_users` is given).
fn memory(lints: &mut Vec<Lint>, id: &str, server: &Server, t: &PriceTable) {
    let users = server.expected_users.as_ref();
    if server.tljh.is_none() && users.is_none() {
        return;
    }
    let kind = &server.instance_type;
    let Some(gib) = t.memory_gib(kind) else {
        lints.push(unknown_type(id, server, t));
        return;
    };
    if server.tljh.is_some() {
        tljh_floor(lints, id, server, gib);
    }
    if let Some(users) = users {
        let serves = (gib * USERS_PER_GIB).floor();
        if f64::from(users.value) > serves {
            let needed = f64::from(users.value) / USERS_PER_GIB;
            lints.push(Lint {
                id: TOO_MANY_USERS,
                severity: Severity::Warning,
                pos: users.pos,
                message: format!(
                    "server {id} expects {} users, but {} ({} GiB) serves \
                     about {serves} (hubform counts {USERS_PER_GIB} users \
                     per GiB, the manual's sizing guide)",
                    users.value, kind.value, gib
                ),
                fix: format!(
                    "choose a type with at least {} GiB{}, or lower \
                     expected_users",
                    needed.ceil(),
                    suggestion(t, kind, needed)
                ),
            });
        }
    }
}

fn unknown_type(id: &str, server: &Server, t: &PriceTable) -> Lint {
    Lint {
        id: INSTANCE_TYPE_UNKNOWN,
        severity: Severity::Warning,
        pos: server.instance_type.pos,
        message: format!(
            "server {id}: no memory size for {} in the instance table \
             (dated {}), so its memory and expected users are not checked",
            server.instance_type.value, t.taken
        ),
        fix: "check the type's name; a type newer than the table can be \
              added under `memory_gib` in a table given with `--prices`"
            .to_owned(),
    }
}

fn tljh_floor(lints: &mut Vec<Lint>, id: &str, server: &Server, gib: f64) {
    let kind = &server.instance_type;
    let (lint_id, severity, why) = if gib < 1.0 {
        (
            MEMORY_BELOW_TLJH_MINIMUM,
            Severity::Error,
            "TLJH needs at least 1 GiB and its install fails below",
        )
    } else if gib <= 1.0 {
        (
            MEMORY_AT_TLJH_MINIMUM,
            Severity::Warning,
            "TLJH's install runs out of memory at 1 GiB, and users have \
             next to nothing left",
        )
    } else {
        return;
    };
    lints.push(Lint {
        id: lint_id,
        severity,
        pos: kind.pos,
        message: format!(
            "server {id}: {} has {gib} GiB of memory; {why}",
            kind.value
        ),
        fix: "choose a type with 2 GiB or more, e.g. t3.small for about 10 \
              users"
            .to_owned(),
    });
}

/// `, e.g. t3.large`: the smallest type of the same family with at
/// least `gib`, when the table has one.
fn suggestion(table: &PriceTable, kind: &str, gib: f64) -> String {
    let family = kind.split('.').next().unwrap_or(kind);
    table
        .memory_gib
        .iter()
        .filter(|(t, m)| t.split('.').next() == Some(family) && **m >= gib)
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(t, _)| format!(", e.g. {t}"))
        .unwrap_or_default()
}

/// The root volume against TLJH's base and the course's packages.
fn root_volume(lints: &mut Vec<Lint>, id: &str, server: &Server) {
    let Some(tljh) = &server.tljh else {
        return;
    };
    let (pip, conda) = tljh
        .packages
        .as_ref()
        .map_or((0, 0), |p| (p.pip.len(), p.conda.len()));
    let needed = (BASE_DISK_GIB
        + PIP_PACKAGE_GIB * pip as f64
        + CONDA_PACKAGE_GIB * conda as f64)
        .ceil();
    let size = &server.root_volume.size_gb;
    if size.value as f64 >= needed {
        return;
    }
    lints.push(Lint {
        id: ROOT_VOLUME_TOO_SMALL,
        severity: Severity::Warning,
        pos: size.pos,
        message: format!(
            "server {id}: a {} GiB root volume is too small for TLJH and \
             {pip} pip and {conda} conda package(s): hubform counts about \
             {needed} GiB ({BASE_DISK_GIB} for Ubuntu and TLJH, \
             {PIP_PACKAGE_GIB} per pip and {CONDA_PACKAGE_GIB} per conda \
             package)",
            size.value
        ),
        fix: format!(
            "set root_volume.size_gb to {needed} or more (a volume grows in \
             place; it never shrinks)"
        ),
    });
}

/// The lints as the plan prints them, each with its position in `file`
/// and its fix; `deny` marks warnings as refused.
pub fn render(lints: &[Lint], file: &str, deny: bool) -> String {
    let mut out = String::new();
    for l in lints {
        let label = match (l.severity, deny) {
            (Severity::Error, _) => "Error",
            (Severity::Warning, true) => "Warning (denied)",
            (Severity::Warning, false) => "Warning",
        };
        let _ = writeln!(
            out,
            "{label} [{}] {file}:{}: {}\n  fix: {}",
            l.id, l.pos, l.message, l.fix
        );
    }
    out
}

/// The lints in `plan --json` (see docs/json-formats.md).
pub fn to_json(lints: &[Lint], file: &str) -> serde_json::Value {
    lints
        .iter()
        .map(|l| {
            serde_json::json!({
                "id": l.id,
                "severity": l.severity.as_str(),
                "file": file,
                "line": l.pos.line,
                "column": l.pos.column,
                "message": l.message,
                "fix": l.fix,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
