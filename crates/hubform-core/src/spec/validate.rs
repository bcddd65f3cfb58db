//! Semantic checks of a deserialised spec, offline.
//!
//! Every problem is collected, not only the first, each at the position of
//! the value it is about. Checks that need AWS (a volume smaller than its
//! image, a shrink) belong to the planner.

use std::collections::HashMap;

use super::cidr::Cidr;
use super::error::{Diagnostic, SpecError};
use super::formats;
use super::spanned::{Pos, Spanned};
use super::types::{Image, Port, Resources, Rule, Server, Spec};

/// Volume types EBS offers.
/// The states a server can be declared in.
const SERVER_STATES: [&str; 2] = ["running", "stopped"];

const VOLUME_TYPES: [&str; 7] =
    ["gp3", "gp2", "io1", "io2", "st1", "sc1", "standard"];

/// Checks everything about `spec` that can be checked without AWS.
/// `file` names the spec in diagnostics.
pub fn validate(spec: &Spec, file: &str) -> Result<(), SpecError> {
    let mut checker = Checker {
        file,
        found: Vec::new(),
        files: Vec::new(),
    };

    checker.check(spec.workshop.pos, formats::workshop_name(&spec.workshop));
    checker.check(spec.region.pos, formats::region(&spec.region));
    checker.iam(spec);
    checker.key_pairs(spec);
    checker.security_groups(spec);
    checker.images(spec);
    checker.servers(spec);
    checker.shared_files();

    if checker.found.is_empty() {
        Ok(())
    } else {
        Err(SpecError::from_diagnostics(checker.found))
    }
}

/// Refuses a `--region` that differs from the spec's: discovery in another
/// region would find nothing and plan a second workshop.
pub fn check_region(
    spec: &Spec,
    file: &str,
    cli_region: Option<&str>,
) -> Result<(), SpecError> {
    match cli_region {
        Some(cli) if cli != spec.region.as_str() => Err(SpecError::at(
            file,
            spec.region.pos,
            format!(
                "--region {cli} does not match the spec's region {}; drop \
                 --region or change the spec",
                spec.region.value
            ),
        )),
        _ => Ok(()),
    }
}

/// A secret file that a resource writes, for finding two writers.
struct SecretFile {
    path: String,
    pos: Pos,
    owner: String,
}

struct Checker<'a> {
    file: &'a str,
    found: Vec<Diagnostic>,
    files: Vec<SecretFile>,
}

impl Checker<'_> {
    fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.found.push(Diagnostic::new(self.file, pos, message));
    }

    fn check(&mut self, pos: Pos, result: Result<(), String>) {
        if let Err(message) = result {
            self.error(pos, message);
        }
    }

    /// Reports `id` unless `known` has it.
    fn reference<T>(
        &mut self,
        from: &str,
        kind: &str,
        section: &str,
        id: &Spanned<String>,
        known: &Resources<T>,
    ) {
        if known.contains_key(id.as_str()) {
            return;
        }
        let known = if known.is_empty() {
            format!("{section} is empty")
        } else {
            let ids: Vec<&str> = known.keys().map(|k| k.as_str()).collect();
            format!("known: {}", ids.join(", "))
        };
        self.error(
            id.pos,
            format!(
                "{from} names {kind} \"{id}\", which is not in {section} \
                 ({known})"
            ),
        );
    }

    /// Reports entries of `list` given more than once.
    fn unique(&mut self, from: &str, kind: &str, list: &[Spanned<String>]) {
        let mut seen: HashMap<&str, Pos> = HashMap::new();
        for item in list {
            if let Some(first) = seen.insert(item.as_str(), item.pos) {
                seen.insert(item.as_str(), first);
                self.error(
                    item.pos,
                    format!(
                        "{from} lists {kind} \"{item}\" twice (first at \
                         {first}); expected each once"
                    ),
                );
            }
        }
    }

    /// Checks a path that a secret is written to: not empty, and no other
    /// resource writing the same file.
    fn secret_file(
        &mut self,
        owner: String,
        field: &str,
        path: &Spanned<String>,
    ) {
        if path.trim().is_empty() || path.ends_with('/') {
            self.error(
                path.pos,
                format!(
                    "{field} of {owner} is not a file name; expected a path \
                     such as keys/NAME, relative to the spec's folder"
                ),
            );
            return;
        }

        let normal = normalize(path);
        self.files.push(SecretFile {
            path: normal,
            pos: path.pos,
            owner,
        });
    }

    /// Reports each secret file named before, at the later mention.
    fn shared_files(&mut self) {
        let mut files = std::mem::take(&mut self.files);
        files.sort_by_key(|f| f.pos);
        for (i, file) in files.iter().enumerate() {
            let Some(first) = files[..i].iter().find(|f| f.path == file.path)
            else {
                continue;
            };
            self.error(
                file.pos,
                format!(
                    "{} writes to \"{}\", the file of {} at {}; expected a \
                     file of its own",
                    file.owner, file.path, first.owner, first.pos
                ),
            );
        }
    }

    fn iam(&mut self, spec: &Spec) {
        let groups = &spec.iam.groups;
        let users = &spec.iam.users;

        for (name, group) in groups {
            self.check(name.pos, formats::iam_name("iam group", name, 128));
            for policy in &group.policies {
                self.check(policy.pos, formats::policy(policy));
            }
            let from = format!("iam group \"{name}\"");
            self.unique(&from, "policy", &group.policies);
        }
        self.case_clash("iam group", groups.keys());

        for (name, user) in users {
            self.check(name.pos, formats::iam_name("iam user", name, 64));
            let from = format!("iam user \"{name}\"");
            for group in &user.groups {
                self.reference(&from, "group", "iam.groups", group, groups);
            }
            self.unique(&from, "group", &user.groups);
            if let Some(path) = &user.access_key_file {
                self.secret_file(from, "access_key_file", path);
            }
        }
        self.case_clash("iam user", users.keys());
    }

    /// IAM names are unique without regard to case.
    fn case_clash<'n>(
        &mut self,
        kind: &str,
        names: impl Iterator<Item = &'n Spanned<String>>,
    ) {
        let mut seen: HashMap<String, &Spanned<String>> = HashMap::new();
        for name in names {
            let lower = name.to_ascii_lowercase();
            if let Some(first) = seen.get(&lower) {
                let message = format!(
                    "{kind} \"{name}\" differs from \"{first}\" at {} only in \
                     case; IAM names ignore case, expected another name",
                    first.pos
                );
                self.error(name.pos, message);
            } else {
                seen.insert(lower, name);
            }
        }
    }

    fn key_pairs(&mut self, spec: &Spec) {
        for (name, key_pair) in &spec.key_pairs {
            self.check(name.pos, formats::key_pair_name(name));
            let owner = format!("key pair \"{name}\"");
            self.secret_file(
                owner,
                "private_key_file",
                &key_pair.private_key_file,
            );
        }
    }

    fn security_groups(&mut self, spec: &Spec) {
        for (name, group) in &spec.security_groups {
            self.check(name.pos, formats::security_group_name(name));

            let what = format!("description of security group \"{name}\"");
            if group.description.trim().is_empty() {
                self.error(
                    group.description.pos,
                    format!("{what} is empty; AWS requires one"),
                );
            } else {
                let text =
                    formats::security_group_text(&what, &group.description);
                self.check(group.description.pos, text);
            }

            self.rules(name, "ingress", &group.ingress);
            if let Some(egress) = &group.egress {
                self.rules(name, "egress", egress);
            }
        }
    }

    fn rules(&mut self, group: &str, direction: &str, rules: &[Spanned<Rule>]) {
        let mut seen: HashMap<(&str, i64, i64, Cidr), Pos> = HashMap::new();

        for rule in rules {
            let protocol = self.protocol(group, direction, rule);
            let cidr = match Cidr::parse(&rule.from) {
                Ok(cidr) => Some(cidr),
                Err(message) => {
                    self.error(rule.from.pos, message);
                    None
                }
            };
            if let Some(description) = &rule.description {
                let what = format!("rule description in \"{group}\"");
                let text = formats::security_group_text(&what, description);
                self.check(description.pos, text);
            }

            // Each port of each rule is one permission; an all-protocol or
            // icmp rule is one permission without ports.
            let mut ports: Vec<(Pos, i64, i64)> = Vec::new();
            match protocol {
                Some(p @ ("tcp" | "udp")) if rule.ports.is_empty() => {
                    self.error(
                        rule.pos,
                        format!(
                            "{p} {direction} rule of security group \
                             \"{group}\" has no ports; expected ports such as \
                             [22, 443] or [\"8000-8100\"]"
                        ),
                    );
                }
                Some(p @ ("icmp" | "all")) => {
                    if let Some(first) = rule.ports.first() {
                        let rules = if p == "all" {
                            "rules for all protocols"
                        } else {
                            "icmp rules"
                        };
                        self.error(
                            first.pos,
                            format!(
                                "{rules} take no ports; expected no ports, or \
                                 protocol tcp or udp"
                            ),
                        );
                    }
                    ports.push((rule.pos, -1, -1));
                }
                _ => {
                    for port in &rule.ports {
                        if self.port(port) {
                            let (from, to) = port.bounds();
                            ports.push((port.pos, from, to));
                        }
                    }
                }
            }

            let (Some(protocol), Some(cidr)) = (protocol, cidr) else {
                continue;
            };
            for (pos, from, to) in ports {
                let Some(first) = seen.get(&(protocol, from, to, cidr)) else {
                    seen.insert((protocol, from, to, cidr), pos);
                    continue;
                };
                let what = match (protocol, from == to) {
                    ("all", _) => "all traffic".to_owned(),
                    ("icmp", _) => "icmp".to_owned(),
                    (p, true) => format!("{p} {from}"),
                    (p, false) => format!("{p} {from}-{to}"),
                };
                let message = format!(
                    "duplicate {direction} rule in security group \
                     \"{group}\": {what} {} {cidr} is already given at \
                     {first}; expected each rule once",
                    if direction == "egress" { "to" } else { "from" },
                );
                self.error(pos, message);
            }
        }
    }

    /// The rule's protocol, normalised; `None` (and an error) when unknown.
    fn protocol(
        &mut self,
        group: &str,
        direction: &str,
        rule: &Rule,
    ) -> Option<&'static str> {
        let Some(protocol) = &rule.protocol else {
            return Some("tcp");
        };
        match protocol.as_str() {
            "tcp" => Some("tcp"),
            "udp" => Some("udp"),
            "icmp" => Some("icmp"),
            "all" | "-1" => Some("all"),
            other => {
                self.error(
                    protocol.pos,
                    format!(
                        "unknown protocol \"{other}\" in an {direction} rule \
                         of security group \"{group}\"; expected tcp, udp, \
                         icmp or all"
                    ),
                );
                None
            }
        }
    }

    /// Whether `port` holds real ports; reports it otherwise.
    fn port(&mut self, port: &Spanned<Port>) -> bool {
        let (from, to) = port.bounds();
        let outside = [from, to].into_iter().find(|p| !(0..=65535).contains(p));
        if let Some(p) = outside {
            self.error(
                port.pos,
                format!("port {p} is out of range; expected 0 to 65535"),
            );
            return false;
        }
        if from > to {
            self.error(
                port.pos,
                format!(
                    "port range {from}-{to} runs backwards; expected FROM-TO \
                     with FROM not above TO, e.g. {to}-{from}"
                ),
            );
            return false;
        }
        true
    }

    fn images(&mut self, spec: &Spec) {
        for (key, image) in &spec.images {
            self.image(key, image);
        }
    }

    fn image(&mut self, key: &Spanned<String>, image: &Spanned<Image>) {
        let what = format!("image \"{key}\"");
        match (&image.id, &image.owner, &image.name) {
            (Some(id), owner, name) => {
                self.check(id.pos, formats::image_id(id));
                if owner.is_some() || name.is_some() {
                    self.error(
                        id.pos,
                        format!(
                            "{what} has both id and owner/name; expected \
                             either a pinned id or an owner and name lookup"
                        ),
                    );
                }
            }
            (None, Some(owner), Some(name)) => {
                self.check(owner.pos, formats::image_owner(owner));
                if name.trim().is_empty() || name.chars().count() > 128 {
                    self.error(
                        name.pos,
                        format!(
                            "name pattern of {what} has {} characters; \
                             expected 1 to 128, '*' matching anything",
                            name.chars().count()
                        ),
                    );
                }
            }
            (None, Some(owner), None) => self.error(
                owner.pos,
                format!("{what} has an owner but no name; expected both"),
            ),
            (None, None, Some(name)) => self.error(
                name.pos,
                format!("{what} has a name but no owner; expected both"),
            ),
            (None, None, None) => self.error(
                key.pos,
                format!(
                    "{what} chooses no image; expected id: ami-…, or owner \
                     and name"
                ),
            ),
        }

        if let Some(arch) = &image.architecture {
            if !matches!(arch.as_str(), "x86_64" | "arm64") {
                self.error(
                    arch.pos,
                    format!(
                        "unknown architecture \"{arch}\" of {what}; expected \
                         x86_64 or arm64"
                    ),
                );
            }
        }
    }

    fn servers(&mut self, spec: &Spec) {
        for (id, server) in &spec.servers {
            self.server(spec, id, server);
        }

        // Two instances with one Name tag cannot be told apart in the
        // console; report the later one.
        let mut names: Vec<(&Spanned<String>, &str)> = spec
            .servers
            .iter()
            .map(|(id, server)| (&server.name, id.as_str()))
            .collect();
        names.sort_by_key(|(name, _)| name.pos);
        let mut seen: HashMap<&str, (&str, Pos)> = HashMap::new();
        for (name, id) in names {
            match seen.get(name.as_str()) {
                Some(&(other, at)) => self.error(
                    name.pos,
                    format!(
                        "server \"{id}\" has the Name \"{name}\" of server \
                         \"{other}\" at {at}; expected a name of its own"
                    ),
                ),
                None => {
                    seen.insert(name.as_str(), (id, name.pos));
                }
            }
        }
    }

    fn server(&mut self, spec: &Spec, id: &str, server: &Server) {
        let from = format!("server \"{id}\"");

        let name = &server.name;
        if name.trim().is_empty() || name.chars().count() > 255 {
            self.error(
                name.pos,
                format!(
                    "name of {from} has {} characters; expected 1 to 255",
                    name.chars().count()
                ),
            );
        }
        self.check(
            server.instance_type.pos,
            formats::instance_type(&server.instance_type),
        );

        self.reference(&from, "image", "images", &server.image, &spec.images);
        self.reference(
            &from,
            "key pair",
            "key_pairs",
            &server.key_pair,
            &spec.key_pairs,
        );
        for group in &server.security_groups {
            let known = &spec.security_groups;
            self.reference(
                &from,
                "security group",
                "security_groups",
                group,
                known,
            );
        }
        self.unique(&from, "security group", &server.security_groups);

        self.root_volume(&from, server);

        if let Some(users) = &server.expected_users {
            if users.value == 0 {
                self.error(
                    users.pos,
                    format!(
                        "expected_users of {from} is 0; expected 1 or more"
                    ),
                );
            }
        }
        if let Some(state) = &server.state {
            if !SERVER_STATES.contains(&state.as_str()) {
                self.error(
                    state.pos,
                    format!(
                        "unknown state \"{state}\" of {from}; expected one \
                         of {}",
                        SERVER_STATES.join(", ")
                    ),
                );
            }
        }
        if let Some(dns) = &server.dns {
            self.check(dns.name.pos, formats::hostname("dns name", &dns.name));
            if let Some(zone) = &dns.zone {
                self.zone(&dns.name, zone);
            }
        }
        for (key, value) in &server.tags {
            self.tag(&from, key, value);
        }
    }

    fn root_volume(&mut self, from: &str, server: &Server) {
        let volume = &server.root_volume;

        if let Some(device) = &volume.device {
            self.check(device.pos, formats::device(device));
        }

        let size = &volume.size_gb;
        if !(1..=16384).contains(&size.value) {
            self.error(
                size.pos,
                format!(
                    "root volume size {} GiB of {from} is out of range; \
                     expected 1 to 16384",
                    size.value
                ),
            );
        }

        let Some(kind) = &volume.volume_type else {
            return;
        };
        if !VOLUME_TYPES.contains(&kind.as_str()) {
            self.error(
                kind.pos,
                format!(
                    "unknown volume type \"{kind}\" of {from}; expected one \
                     of {}",
                    VOLUME_TYPES.join(", ")
                ),
            );
        } else if matches!(kind.as_str(), "st1" | "sc1") {
            self.error(
                kind.pos,
                format!(
                    "{kind} volumes cannot boot an instance; expected gp3, \
                     gp2, io1, io2 or standard for the root volume of {from}"
                ),
            );
        } else if matches!(kind.as_str(), "io1" | "io2") && size.value < 4 {
            self.error(
                size.pos,
                format!(
                    "{kind} volumes need at least 4 GiB; expected 4 or more"
                ),
            );
        } else if kind.as_str() == "standard" && size.value > 1024 {
            self.error(
                size.pos,
                "standard (magnetic) volumes hold at most 1024 GiB; expected \
                 1 to 1024, or type gp3",
            );
        }
    }

    fn zone(&mut self, name: &Spanned<String>, zone: &Spanned<String>) {
        if formats::is_zone_id(zone) {
            return;
        }
        if let Err(message) = formats::hostname("dns zone", zone) {
            self.error(zone.pos, message);
            return;
        }

        let bare = |s: &str| s.trim_end_matches('.').to_ascii_lowercase();
        let (name_bare, zone_bare) = (bare(name), bare(zone));
        if name_bare != zone_bare
            && !name_bare.ends_with(&format!(".{zone_bare}"))
        {
            self.error(
                name.pos,
                format!(
                    "dns name \"{name}\" is not in zone \"{zone}\"; expected \
                     a name ending in .{zone_bare}"
                ),
            );
        }
    }

    fn tag(
        &mut self,
        from: &str,
        key: &Spanned<String>,
        value: &Spanned<String>,
    ) {
        let reserved = key.starts_with("aws:") || key.starts_with("hubform:");
        if key.is_empty() || key.chars().count() > 128 {
            self.error(
                key.pos,
                format!(
                    "tag key \"{key}\" of {from} has {} characters; expected \
                     1 to 128",
                    key.chars().count()
                ),
            );
        } else if reserved {
            self.error(
                key.pos,
                format!(
                    "tag key \"{key}\" of {from} is reserved; expected a key \
                     not starting with aws: or hubform:"
                ),
            );
        } else if key.as_str() == "Name" {
            self.error(
                key.pos,
                format!(
                    "tag Name of {from} is set by its name field; expected \
                     another key"
                ),
            );
        }
        if value.chars().count() > 256 {
            self.error(
                value.pos,
                format!(
                    "value of tag \"{key}\" of {from} has {} characters; \
                     expected at most 256",
                    value.chars().count()
                ),
            );
        }
    }
}

/// A path with `.` parts and repeated slashes removed and `..` applied,
/// so that two spellings of one file compare equal.
fn normalize(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_spellings_of_one_file() {
        assert_eq!(normalize("./keys//a.pem"), "keys/a.pem");
        assert_eq!(normalize("keys/x/../a.pem"), "keys/a.pem");
        assert_eq!(normalize("/k/a.pem"), "/k/a.pem");
        assert_eq!(normalize("../a.pem"), "../a.pem");
    }
}
