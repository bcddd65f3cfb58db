//! The desired graph: one resource per node, edges from references.
//!
//! [`Desired::from_spec`] turns a validated spec into resources in the
//! planner's terms. References that name nothing and cycles are errors
//! that name the ids involved.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use crate::model::{Kind, Policy, Resource, ResourceId, Value};
use crate::rule::Rule;
use crate::spec::{self, Pos, Spanned, Spec};

/// Where an AWS managed policy's ARN starts.
const MANAGED_POLICY_ARN: &str = "arn:aws:iam::aws:policy/";

/// A problem with the graph: a dangling reference or a cycle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// A resource names one that the spec does not declare.
    #[error("{from} refers to {to}, which the spec does not declare")]
    Dangling {
        /// The resource holding the reference.
        from: ResourceId,
        /// The missing resource.
        to: ResourceId,
        /// Where the reference is written.
        pos: Pos,
    },
    /// Resources that depend on each other in a circle.
    #[error("dependency cycle: {}", cycle_text(.0))]
    Cycle(Vec<ResourceId>),
}

fn cycle_text(ids: &[ResourceId]) -> String {
    let mut names: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
    if let Some(first) = names.first().cloned() {
        names.push(first);
    }
    names.join(" -> ")
}

/// Everything the spec declares, as resources in dependency order.
#[derive(Debug, Clone)]
pub struct Desired {
    /// The workshop's name.
    pub workshop: String,
    /// The AWS Region.
    pub region: String,
    /// Resources by id.
    pub resources: BTreeMap<ResourceId, Resource>,
    /// Ids such that each comes after everything it depends on.
    pub order: Vec<ResourceId>,
}

impl Desired {
    /// Builds the graph of a spec.
    pub fn from_spec(spec: &Spec) -> Result<Desired, Vec<GraphError>> {
        let resources = resources_of(spec);
        Desired::from_resources(
            spec.workshop.value.clone(),
            spec.region.value.clone(),
            resources,
        )
    }

    /// Builds the graph of resources made in code (tests, destroy).
    pub fn from_resources(
        workshop: String,
        region: String,
        resources: Vec<Resource>,
    ) -> Result<Desired, Vec<GraphError>> {
        let resources: BTreeMap<ResourceId, Resource> =
            resources.into_iter().map(|r| (r.id.clone(), r)).collect();

        let mut errors = Vec::new();
        for r in resources.values() {
            for dep in &r.deps {
                if !resources.contains_key(dep) {
                    errors.push(GraphError::Dangling {
                        from: r.id.clone(),
                        to: dep.clone(),
                        pos: r.pos,
                    });
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }

        let order = topological_order(&resources).map_err(|e| vec![e])?;
        Ok(Desired {
            workshop,
            region,
            resources,
            order,
        })
    }

    /// An empty graph: what `destroy` converges to.
    pub fn empty(workshop: String, region: String) -> Desired {
        Desired {
            workshop,
            region,
            resources: BTreeMap::new(),
            order: Vec::new(),
        }
    }

    /// The resource with this id.
    pub fn get(&self, id: &ResourceId) -> Option<&Resource> {
        self.resources.get(id)
    }

    /// The resources of one kind.
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Resource> {
        self.resources.values().filter(move |r| r.id.kind == kind)
    }
}

/// Orders resources so that dependencies come first; ties by id.
fn topological_order(
    resources: &BTreeMap<ResourceId, Resource>,
) -> Result<Vec<ResourceId>, GraphError> {
    let mut order = Vec::new();
    let mut done = BTreeSet::new();
    let mut visiting = Vec::new();

    fn visit(
        id: &ResourceId,
        resources: &BTreeMap<ResourceId, Resource>,
        done: &mut BTreeSet<ResourceId>,
        visiting: &mut Vec<ResourceId>,
        order: &mut Vec<ResourceId>,
    ) -> Result<(), GraphError> {
        if done.contains(id) {
            return Ok(());
        }
        if let Some(start) = visiting.iter().position(|v| v == id) {
            return Err(GraphError::Cycle(visiting[start..].to_vec()));
        }
        visiting.push(id.clone());
        if let Some(r) = resources.get(id) {
            for dep in &r.deps {
                visit(dep, resources, done, visiting, order)?;
            }
        }
        visiting.pop();
        done.insert(id.clone());
        order.push(id.clone());
        Ok(())
    }

    for id in resources.keys() {
        visit(id, resources, &mut done, &mut visiting, &mut order)?;
    }
    Ok(order)
}

/// The ARN of a policy the spec names by AWS managed name or by ARN.
pub fn policy_arn(name: &str) -> String {
    if name.starts_with("arn:") {
        name.to_owned()
    } else {
        format!("{MANAGED_POLICY_ARN}{name}")
    }
}

/// The text that identifies an image selection, as the instance records it.
pub fn image_selection(image: &spec::Image) -> String {
    if let Some(id) = &image.id {
        return id.value.clone();
    }
    let owner = image.owner.as_ref().map(|o| o.value.as_str());
    let name = image.name.as_ref().map(|n| n.value.as_str());
    let arch = image.architecture.as_ref().map(|a| a.value.as_str());
    format!(
        "{}/{} ({})",
        owner.unwrap_or(""),
        name.unwrap_or(""),
        arch.unwrap_or("x86_64")
    )
}

/// A short digest of a selection text, small enough for a tag value.
pub fn selection_digest(selection: &str) -> String {
    let digest = Sha256::digest(selection.as_bytes());
    digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

fn text(s: &Spanned<String>) -> Value {
    Value::str(s.value.clone())
}

fn rules_value(rules: &[Spanned<spec::Rule>]) -> Value {
    Value::set(rules.iter().flat_map(|r| canonical_rules(&r.value)))
}

/// The canonical rules one spec rule stands for: one per port item.
pub fn canonical_rules(rule: &spec::Rule) -> Vec<String> {
    let protocol = rule
        .protocol
        .as_ref()
        .map(|p| p.value.as_str())
        .unwrap_or("tcp");
    let protocol = if protocol == "-1" { "all" } else { protocol };
    let cidr = rule.from.value.clone();
    let make = |from_port, to_port| {
        Rule {
            protocol: protocol.to_owned(),
            from_port,
            to_port,
            cidr: cidr.clone(),
        }
        .to_string()
    };

    if rule.ports.is_empty() || protocol == "all" {
        return vec![make(-1, -1)];
    }
    rule.ports
        .iter()
        .map(|p| {
            let (a, b) = p.value.bounds();
            make(port(a), port(b))
        })
        .collect()
}

/// A validated port as AWS takes it (validation keeps it in range).
fn port(n: i64) -> i32 {
    i32::try_from(n).unwrap_or(-1)
}

fn resources_of(spec: &Spec) -> Vec<Resource> {
    let mut out = Vec::new();

    for (name, group) in &spec.iam.groups {
        let arns = group.value.policies.iter().map(|p| policy_arn(&p.value));
        out.push(
            Resource::new(
                ResourceId::new(Kind::IamGroup, &name.value),
                group.pos,
            )
            .attr(
                "policies",
                Value::set(arns),
                Policy::Update,
                group.pos,
            ),
        );
    }

    for (name, user) in &spec.iam.users {
        let id = ResourceId::new(Kind::IamUser, &name.value);
        let groups = user.value.groups.iter().map(|g| g.value.clone());
        let key_file = &user.value.access_key_file;
        let mut r = Resource::new(id, user.pos)
            .attr("groups", Value::set(groups), Policy::Update, user.pos)
            .attr(
                "access_key",
                Value::Bool(key_file.is_some()),
                Policy::Update,
                key_file.as_ref().map_or(user.pos, |f| f.pos),
            );
        if let Some(file) = key_file {
            r = r.attr("access_key_file", text(file), Policy::Local, file.pos);
        }
        for g in &user.value.groups {
            r = r.dep(ResourceId::new(Kind::IamGroup, &g.value));
        }
        out.push(r);
    }

    for (name, key) in &spec.key_pairs {
        let file = &key.value.private_key_file;
        out.push(
            Resource::new(ResourceId::new(Kind::KeyPair, &name.value), key.pos)
                .attr("private_key_file", text(file), Policy::Local, file.pos),
        );
    }

    for (name, sg) in &spec.security_groups {
        let sg_spec = &sg.value;
        let mut r = Resource::new(
            ResourceId::new(Kind::SecurityGroup, &name.value),
            sg.pos,
        )
        .attr(
            "description",
            text(&sg_spec.description),
            Policy::Replace,
            sg_spec.description.pos,
        )
        .attr(
            "ingress",
            rules_value(&sg_spec.ingress),
            Policy::Update,
            sg.pos,
        );
        if let Some(egress) = &sg_spec.egress {
            r = r.attr("egress", rules_value(egress), Policy::Update, sg.pos);
        }
        out.push(r);
    }

    for (key, image) in &spec.images {
        let i = &image.value;
        let mut r =
            Resource::new(ResourceId::new(Kind::Image, &key.value), image.pos)
                .attr(
                    "selection",
                    Value::str(image_selection(i)),
                    Policy::Local,
                    image.pos,
                );
        if let Some(id) = &i.id {
            r = r.attr("id", text(id), Policy::Local, id.pos);
        }
        if let Some(owner) = &i.owner {
            r = r.attr("owner", text(owner), Policy::Local, owner.pos);
        }
        if let Some(name) = &i.name {
            r = r.attr("name", text(name), Policy::Local, name.pos);
        }
        let arch = i.architecture.as_ref();
        r = r.attr(
            "architecture",
            Value::str(arch.map_or("x86_64", |a| a.value.as_str())),
            Policy::Local,
            arch.map_or(image.pos, |a| a.pos),
        );
        out.push(r);
    }

    for (key, server) in &spec.servers {
        out.extend(server_resources(spec, &key.value, server));
    }
    out
}

fn server_resources(
    spec: &Spec,
    key: &str,
    server: &Spanned<spec::Server>,
) -> Vec<Resource> {
    let s = &server.value;
    let instance_id = ResourceId::new(Kind::Instance, key);
    let image_id = ResourceId::new(Kind::Image, &s.image.value);
    let selection = spec
        .images
        .iter()
        .find(|(k, _)| k.value == s.image.value)
        .map(|(_, i)| image_selection(&i.value))
        .unwrap_or_else(|| s.image.value.clone());
    let volume = &s.root_volume.value;
    let device = volume
        .device
        .as_ref()
        .map_or("/dev/sda1".to_owned(), |d| d.value.clone());
    let groups = s.security_groups.iter().map(|g| g.value.clone());

    let mut instance = Resource::new(instance_id.clone(), server.pos)
        .attr("name", text(&s.name), Policy::Update, s.name.pos)
        .attr(
            "type",
            text(&s.instance_type),
            Policy::Update,
            s.instance_type.pos,
        )
        .attr("image", Value::str(selection), Policy::Replace, s.image.pos)
        .attr(
            "key_pair",
            text(&s.key_pair),
            Policy::Replace,
            s.key_pair.pos,
        )
        .attr(
            "security_groups",
            Value::set(groups),
            Policy::Update,
            server.pos,
        )
        .attr(
            "root_device",
            Value::str(device),
            Policy::Replace,
            s.root_volume.pos,
        )
        .dep(image_id)
        .dep(ResourceId::new(Kind::KeyPair, &s.key_pair.value));
    if let Some(dns) = &s.dns {
        // Shown by `output`; the host layer will check it resolves.
        instance = instance.attr(
            "dns_name",
            text(&dns.value.name),
            Policy::Local,
            dns.pos,
        );
    }
    if !s.tags.is_empty() {
        let tags = s.tags.iter().map(|(k, v)| format!("{k}={v}"));
        instance =
            instance.attr("tags", Value::set(tags), Policy::Update, server.pos);
    }
    for g in &s.security_groups {
        instance = instance.dep(ResourceId::new(Kind::SecurityGroup, &g.value));
    }
    if let Some(state) = &s.state {
        instance =
            instance.attr("state", text(state), Policy::Update, state.pos);
    }
    let (protect, protect_pos) = s
        .protect
        .as_ref()
        .map_or((true, server.pos), |p| (p.value, p.pos));
    instance = instance.attr(
        "protect",
        Value::Bool(protect),
        Policy::Local,
        protect_pos,
    );

    let volume_type = volume
        .volume_type
        .as_ref()
        .map_or("gp3".to_owned(), |t| t.value.clone());
    let volume_type_pos = volume
        .volume_type
        .as_ref()
        .map_or(s.root_volume.pos, |t| t.pos);
    let volume =
        Resource::new(ResourceId::new(Kind::Volume, key), s.root_volume.pos)
            .attr(
                "size_gb",
                Value::Int(volume.size_gb.value),
                Policy::Grow,
                volume.size_gb.pos,
            )
            .attr(
                "type",
                Value::str(volume_type),
                Policy::Update,
                volume_type_pos,
            )
            .attr("protect", Value::Bool(protect), Policy::Local, protect_pos)
            .dep(instance_id.clone());

    // The instance launches with its volume: it needs the volume's
    // settings, which only the volume compares.
    let instance = instance
        .attr(
            "root_size_gb",
            Value::Int(volume.int("size_gb").unwrap_or(0)),
            Policy::Local,
            s.root_volume.pos,
        )
        .attr(
            "root_type",
            Value::str(volume.text("type").unwrap_or("gp3")),
            Policy::Local,
            s.root_volume.pos,
        );
    let host = s
        .tljh
        .as_ref()
        .map(|t| host_resources(key, s, t, &instance))
        .unwrap_or_default();
    let mut out = vec![instance, volume];
    if let Some(eip) = s.elastic_ip.as_ref().filter(|e| e.value) {
        out.push(
            Resource::new(ResourceId::new(Kind::ElasticIp, key), eip.pos)
                .attr(
                    "instance",
                    Value::Ref(instance_id.clone()),
                    Policy::Update,
                    eip.pos,
                )
                .dep(instance_id.clone()),
        );
    }
    if let Some(dns) = &s.dns {
        if let Some(zone) = &dns.value.zone {
            // The record points at the Elastic IP, else the instance.
            let target = if s.elastic_ip.as_ref().is_some_and(|e| e.value) {
                ResourceId::new(Kind::ElasticIp, key)
            } else {
                instance_id.clone()
            };
            out.push(
                Resource::new(ResourceId::new(Kind::DnsRecord, key), dns.pos)
                    .attr(
                        "name",
                        text(&dns.value.name),
                        Policy::Replace,
                        dns.value.name.pos,
                    )
                    .attr("zone", text(zone), Policy::Local, zone.pos)
                    .attr(
                        "address",
                        Value::Ref(target.clone()),
                        Policy::Update,
                        dns.pos,
                    )
                    .dep(target),
            );
        }
    }
    out.extend(host);
    out
}

/// The host layer of a server: TLJH itself, its config keys, packages.
fn host_resources(
    key: &str,
    server: &spec::Server,
    tljh: &Spanned<spec::Tljh>,
    instance: &Resource,
) -> Vec<Resource> {
    let t = &tljh.value;
    let tljh_id = ResourceId::new(Kind::Tljh, key);

    // SSH needs the server, its address and its rules in place.
    let mut install = Resource::new(tljh_id.clone(), tljh.pos)
        .attr(
            "ssh_user",
            Value::str(t.ssh_user.as_ref().map_or("ubuntu", |u| &u.value)),
            Policy::Local,
            tljh.pos,
        )
        .dep(instance.id.clone());
    if server.elastic_ip.as_ref().is_some_and(|e| e.value) {
        install = install.dep(ResourceId::new(Kind::ElasticIp, key));
    }
    for dep in instance
        .deps
        .iter()
        .filter(|d| d.kind == Kind::SecurityGroup)
    {
        install = install.dep(dep.clone());
    }
    if let Some(version) = &t.version {
        install =
            install.attr("version", text(version), Policy::Update, version.pos);
    }
    for (name, field) in [
        ("bootstrap", &t.bootstrap),
        ("ssh_endpoint", &t.ssh_endpoint),
    ] {
        if let Some(v) = field {
            install = install.attr(name, text(v), Policy::Local, v.pos);
        }
    }

    let mut config =
        Resource::new(ResourceId::new(Kind::TljhConfig, key), tljh.pos)
            .dep(tljh_id.clone());
    for (name, value, pos) in config_keys(server, tljh) {
        config = config.attr(&name, value, Policy::Update, pos);
    }

    let mut out = vec![install, config];
    if let Some(system) = &t.system {
        if let Some(upgrade) = system.value.upgrade.as_ref().filter(|u| u.value)
        {
            // Upgrades run before TLJH's install, as in the manual.
            // It needs SSH as the install does: the same dependencies.
            let system_id = ResourceId::new(Kind::System, key);
            let mut upgrades = Resource::new(system_id.clone(), system.pos)
                .attr(
                    "upgraded",
                    Value::Bool(true),
                    Policy::Update,
                    upgrade.pos,
                );
            for dep in &out[0].deps {
                upgrades = upgrades.dep(dep.clone());
            }
            out.push(upgrades);
            out[0] = out[0].clone().dep(system_id);
        }
    }
    if let Some(p) = &t.packages {
        let names = |list: &[Spanned<String>]| {
            Value::set(list.iter().map(|n| n.value.clone()))
        };
        out.push(
            Resource::new(ResourceId::new(Kind::Packages, key), p.pos)
                .attr("pip", names(&p.value.pip), Policy::Update, p.pos)
                .attr("conda", names(&p.value.conda), Policy::Update, p.pos)
                .dep(tljh_id),
        );
    }
    out
}

/// Every `tljh-config` key the spec sets, with TLJH's value types.
fn config_keys(
    server: &spec::Server,
    tljh: &Spanned<spec::Tljh>,
) -> Vec<(String, Value, Pos)> {
    let t = &tljh.value;
    let list = |items: &[Spanned<String>]| {
        let mut items: Vec<String> =
            items.iter().map(|i| i.value.clone()).collect();
        items.sort();
        items.dedup();
        Value::List(items)
    };
    let pos_of =
        |items: &[Spanned<String>]| items.first().map_or(tljh.pos, |i| i.pos);

    let mut keys = Vec::new();
    if !t.admins.is_empty() {
        keys.push(("users.admin".into(), list(&t.admins), pos_of(&t.admins)));
    }
    if !t.users.is_empty() {
        keys.push(("users.allowed".into(), list(&t.users), pos_of(&t.users)));
    }
    if let Some(https) = &t.https {
        let h = &https.value;
        let mut domains = h.domains.clone();
        if domains.is_empty() {
            if let Some(dns) = &server.dns {
                domains.push(dns.value.name.clone());
            }
        }
        keys.push(("https.enabled".into(), Value::Bool(true), https.pos));
        keys.push((
            "https.letsencrypt.email".into(),
            text(&h.letsencrypt_email),
            h.letsencrypt_email.pos,
        ));
        keys.push((
            "https.letsencrypt.domains".into(),
            list(&domains),
            pos_of(&domains),
        ));
        if let Some(staging) = &h.staging {
            keys.push((
                "https.letsencrypt.staging".into(),
                Value::Bool(staging.value),
                staging.pos,
            ));
        }
    }
    for (name, value) in &t.config {
        keys.push((name.value.clone(), config_value(&value.value), value.pos));
    }
    keys
}

/// A spec value in the planner's terms, typed as `tljh-config` types it.
pub fn config_value(value: &spec::ConfigValue) -> Value {
    match value {
        spec::ConfigValue::Bool(b) => Value::Bool(*b),
        spec::ConfigValue::Int(n) => Value::Int(*n),
        spec::ConfigValue::Float(x) => Value::Decimal(format!("{x:?}")),
        spec::ConfigValue::Text(s) => Value::Str(s.clone()),
        spec::ConfigValue::List(items) => {
            let mut items = items.clone();
            items.sort();
            items.dedup();
            Value::List(items)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(kind: Kind, key: &str, deps: &[(Kind, &str)]) -> Resource {
        let mut r = Resource::new(ResourceId::new(kind, key), Pos::default());
        for (k, d) in deps {
            r = r.dep(ResourceId::new(*k, *d));
        }
        r
    }

    fn build(nodes: Vec<Resource>) -> Result<Desired, Vec<GraphError>> {
        Desired::from_resources("w".into(), "ap-south-1".into(), nodes)
    }

    #[test]
    fn dependencies_come_first() {
        let desired = build(vec![
            node(Kind::ElasticIp, "hub", &[(Kind::Instance, "hub")]),
            node(Kind::Instance, "hub", &[(Kind::KeyPair, "k")]),
            node(Kind::KeyPair, "k", &[]),
        ])
        .expect("graph");
        let order: Vec<String> =
            desired.order.iter().map(ToString::to_string).collect();
        assert_eq!(order, ["key_pair.k", "instance.hub", "elastic_ip.hub"]);
    }

    #[test]
    fn dangling_reference_names_both_ids() {
        let errors =
            build(vec![node(Kind::Instance, "hub", &[(Kind::KeyPair, "k")])])
                .expect_err("dangling");
        assert_eq!(
            errors[0].to_string(),
            "instance.hub refers to key_pair.k, which the spec does not \
             declare"
        );
    }

    #[test]
    fn cycle_is_named() {
        let errors = build(vec![
            node(Kind::IamUser, "a", &[(Kind::IamGroup, "b")]),
            node(Kind::IamGroup, "b", &[(Kind::IamUser, "a")]),
        ])
        .expect_err("cycle");
        assert_eq!(
            errors[0].to_string(),
            "dependency cycle: iam_group.b -> iam_user.a -> iam_group.b"
        );
    }
}
