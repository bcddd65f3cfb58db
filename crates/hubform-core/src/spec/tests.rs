//! Tests over whole specs: the examples and their positions. The corpus
//! of bad specs is checked in `corpus_tests`, random damage in
//! `fuzz_tests`.

use std::path::{Path, PathBuf};

use super::*;

/// The repository's root folder.
pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub(crate) fn example_path(name: &str) -> PathBuf {
    repo().join("specs").join(name)
}

/// The manual's workshop, loaded from `specs/`.
pub(crate) fn example_spec() -> Spec {
    load(&example_path("groundwater-workshop.yaml"))
        .unwrap()
        .spec
}

/// The example specs in `specs/`.
pub(crate) const EXAMPLES: [&str; 2] =
    ["groundwater-workshop.yaml", "small-workshop.yaml"];

#[test]
fn examples_load() {
    for name in EXAMPLES {
        let path = example_path(name);
        if let Err(err) = load(&path) {
            panic!("{name} does not load:\n{err}");
        }
    }
}

#[test]
fn groundwater_example_is_the_manual_workshop() {
    let loaded = load(&example_path("groundwater-workshop.yaml")).unwrap();
    let spec = &loaded.spec;
    assert_eq!(spec.workshop.as_str(), "groundwater-central-asia");
    assert_eq!(spec.region.as_str(), "ap-south-1");
    assert_eq!(
        spec.iam.groups["EC2Admins"].policies[0],
        "AdministratorAccess"
    );
    assert_eq!(spec.iam.users["ec2-admin"].groups[0], "EC2Admins");
    assert_eq!(
        spec.images["ubuntu-jammy"].owner.as_ref().unwrap(),
        "099720109477"
    );

    let hub = &spec.servers["hub"];
    assert_eq!(hub.instance_type.as_str(), "t3.xlarge");
    assert_eq!(hub.root_volume.size_gb.value, 20);
    assert_eq!(hub.expected_users.as_ref().unwrap().value, 20);
    assert!(hub.elastic_ip.as_ref().unwrap().value);
    let rule = &spec.security_groups["workshop-sg"].ingress[0];
    let ports: Vec<Port> = rule.ports.iter().map(|p| p.value).collect();
    assert_eq!(
        ports,
        [Port::Number(22), Port::Number(80), Port::Number(443)]
    );

    let key = &spec.key_pairs["workshop-central-asia"].private_key_file;
    assert_eq!(
        loaded.resolve(key),
        loaded.dir.join("keys/workshop-central-asia.pem")
    );
    assert!(loaded.dir.is_absolute());
}

/// Every position that the spec's [`Spanned`] values carry, named.
fn positions(spec: &Spec) -> Vec<(String, Pos)> {
    fn add<T>(out: &mut Vec<(String, Pos)>, name: String, s: &Spanned<T>) {
        out.push((name, s.pos));
    }
    fn opt<T>(
        out: &mut Vec<(String, Pos)>,
        name: String,
        s: &Option<Spanned<T>>,
    ) {
        if let Some(s) = s {
            out.push((name, s.pos));
        }
    }

    let mut out = Vec::new();
    add(&mut out, "workshop".into(), &spec.workshop);
    add(&mut out, "region".into(), &spec.region);
    for (k, g) in &spec.iam.groups {
        add(&mut out, format!("group {k}"), k);
        add(&mut out, format!("group {k} value"), g);
        for p in &g.policies {
            add(&mut out, format!("group {k} policy"), p);
        }
    }
    for (k, u) in &spec.iam.users {
        add(&mut out, format!("user {k}"), k);
        add(&mut out, format!("user {k} value"), u);
        for g in &u.groups {
            add(&mut out, format!("user {k} group"), g);
        }
        opt(
            &mut out,
            format!("user {k} access_key_file"),
            &u.access_key_file,
        );
    }
    for (k, p) in &spec.key_pairs {
        add(&mut out, format!("key pair {k}"), k);
        add(&mut out, format!("key pair {k} value"), p);
        add(&mut out, format!("key pair {k} file"), &p.private_key_file);
    }
    for (k, g) in &spec.security_groups {
        add(&mut out, format!("sg {k}"), k);
        add(&mut out, format!("sg {k} value"), g);
        add(&mut out, format!("sg {k} description"), &g.description);
        let egress = g.egress.iter().flatten();
        for r in g.ingress.iter().chain(egress) {
            add(&mut out, format!("sg {k} rule"), r);
            opt(&mut out, format!("sg {k} protocol"), &r.protocol);
            for p in &r.ports {
                add(&mut out, format!("sg {k} port {}", p.value), p);
            }
            add(&mut out, format!("sg {k} from"), &r.from);
            opt(&mut out, format!("sg {k} description"), &r.description);
        }
    }
    for (k, i) in &spec.images {
        add(&mut out, format!("image {k}"), k);
        add(&mut out, format!("image {k} value"), i);
        opt(&mut out, format!("image {k} owner"), &i.owner);
        opt(&mut out, format!("image {k} name"), &i.name);
        opt(&mut out, format!("image {k} architecture"), &i.architecture);
        opt(&mut out, format!("image {k} id"), &i.id);
    }
    for (k, s) in &spec.servers {
        add(&mut out, format!("server {k}"), k);
        add(&mut out, format!("server {k} value"), s);
        add(&mut out, format!("server {k} name"), &s.name);
        add(&mut out, format!("server {k} type"), &s.instance_type);
        add(&mut out, format!("server {k} image"), &s.image);
        add(&mut out, format!("server {k} key_pair"), &s.key_pair);
        for g in &s.security_groups {
            add(&mut out, format!("server {k} security group"), g);
        }
        let v = &s.root_volume;
        add(&mut out, format!("server {k} root_volume"), v);
        opt(&mut out, format!("server {k} device"), &v.device);
        add(&mut out, format!("server {k} size_gb"), &v.size_gb);
        opt(&mut out, format!("server {k} volume type"), &v.volume_type);
        opt(&mut out, format!("server {k} elastic_ip"), &s.elastic_ip);
        opt(
            &mut out,
            format!("server {k} expected_users"),
            &s.expected_users,
        );
        if let Some(d) = &s.dns {
            add(&mut out, format!("server {k} dns"), d);
            add(&mut out, format!("server {k} dns name"), &d.name);
            opt(&mut out, format!("server {k} dns zone"), &d.zone);
        }
        for (t, v) in &s.tags {
            add(&mut out, format!("server {k} tag {t}"), t);
            add(&mut out, format!("server {k} tag {t} value"), v);
        }
    }
    out
}

#[test]
fn no_spanned_value_of_the_examples_is_at_0_0() {
    for name in EXAMPLES {
        let spec = load(&example_path(name)).unwrap().spec;
        let found = positions(&spec);
        assert!(found.len() > 30, "{name}: only {} positions", found.len());
        for (what, pos) in found {
            assert!(!pos.is_unknown(), "{name}: {what} is at 0:0");
        }
    }
}

#[test]
fn positions_point_at_keys_and_values() {
    let spec = example_spec();
    let (key, hub) = spec.servers.get_key_value("hub").unwrap();
    assert_eq!(key.pos, Pos::new(43, 3));
    assert_eq!(hub.instance_type.pos, Pos::new(45, 11));
    assert_eq!(hub.root_volume.size_gb.pos, Pos::new(49, 48));
}

#[test]
fn region_override_must_match() {
    let loaded = load(&example_path("groundwater-workshop.yaml")).unwrap();
    assert!(loaded.check_region(None).is_ok());
    assert!(loaded.check_region(Some("ap-south-1")).is_ok());

    let err = loaded.check_region(Some("eu-west-1")).unwrap_err();
    let diagnostic = &err.diagnostics()[0];
    assert_eq!(diagnostic.pos, Pos::new(10, 9));
    assert!(diagnostic.message.starts_with(
        "--region eu-west-1 does not match the spec's region ap-south-1"
    ));
}

#[test]
fn semantic_errors_are_all_reported_in_file_order() {
    let text = "\
workshop: Bad_Name
region: mars-1
key_pairs:
  k: { private_key_file: '' }
servers:
  a:
    name: x
    type: t3
    image: nope
    key_pair: k
    root_volume: { size_gb: 0 }
";
    let err = parse(text, "w.yaml").unwrap_err();
    let lines: Vec<String> = err
        .diagnostics()
        .iter()
        .map(|d| format!("{}", d.pos))
        .collect();
    assert_eq!(
        lines,
        ["1:11", "2:9", "4:26", "8:11", "9:12", "11:29"],
        "{err}"
    );
}
