//! Checks after an apply, and while planning: what the probe is asked to
//! check on a server, and what its answers mean.

use hubform_core::graph::Desired;
use hubform_core::model::{Kind, ResourceId, Value};

use crate::probe::{Checks, Facts};

/// The tljh-config value of `name` the spec wants for server `key`.
pub(crate) fn wanted(
    desired: &Desired,
    key: &str,
    name: &str,
) -> Option<Value> {
    desired
        .get(&ResourceId::new(Kind::TljhConfig, key))
        .and_then(|r| r.attrs.get(name))
        .map(|a| a.value.clone())
}

/// What the probe checks on server `key`.
pub(crate) fn checks(desired: &Desired, key: &str) -> Checks {
    let port = |name: &str, default: i64| match wanted(desired, key, name) {
        Some(Value::Int(p)) => p,
        _ => default,
    };
    let https_names = match wanted(desired, key, "https.letsencrypt.domains") {
        Some(Value::List(names)) => names,
        _ => Vec::new(),
    };
    Checks {
        hub_port: Some(port("http.port", 80)),
        https_port: port("https.port", 443),
        https_names,
        imports: Vec::new(),
        apt: desired.get(&ResourceId::new(Kind::System, key)).is_some(),
    }
}

/// What is wrong with a host that has TLJH: the hub does not answer, or
/// a name's certificate is not trusted while HTTPS is on.
pub(crate) fn verify(
    desired: &Desired,
    key: &str,
    facts: &Facts,
) -> Vec<String> {
    let mut problems = Vec::new();
    if facts.tljh_version.is_none() {
        return problems;
    }
    let port = checks(desired, key).hub_port.unwrap_or(80);
    match facts.hub_status.as_deref() {
        // With HTTPS on, plain HTTP answers with a redirect.
        Some("200" | "301" | "302" | "307" | "308") => {}
        Some(status) => problems.push(format!(
            "the hub does not answer on http://127.0.0.1:{port}/hub/api \
             (HTTP {status}); look at `journalctl -u jupyterhub` on the \
             server"
        )),
        None => problems.push(
            "the hub could not be checked (no curl on the server)".to_owned(),
        ),
    }
    for (dist, outcome) in &facts.imports {
        if outcome != "ok" {
            problems.push(format!(
                "the user Python cannot import {dist}: {outcome}"
            ));
        }
    }
    let https_on =
        facts.config.get("https.enabled") == Some(&Value::Bool(true));
    if https_on {
        let staging = facts.config.get("https.letsencrypt.staging")
            == Some(&Value::Bool(true));
        for (name, code) in &facts.https {
            match code {
                0 => {}
                // Staging certificates are never trusted: expected.
                60 if staging => {}
                60 => problems.push(format!(
                    "the certificate served for {name} is not trusted \
                     (TLJH's default certificate: Let's Encrypt failed); \
                     see `journalctl -u traefik` on the server"
                )),
                code => problems.push(format!(
                    "https://{name} does not answer on the server (curl \
                     exit {code})"
                )),
            }
        }
    }
    problems
}

/// A one-line summary of a verified host.
pub(crate) fn verified(desired: &Desired, key: &str, facts: &Facts) -> String {
    let port = checks(desired, key).hub_port.unwrap_or(80);
    let mut text = format!("the hub answers on port {port}");
    if !facts.imports.is_empty() {
        text.push_str(&format!(
            "; the user Python imports {}",
            facts.imports.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    let trusted: Vec<&str> = facts
        .https
        .iter()
        .filter(|(_, code)| **code == 0)
        .map(|(name, _)| name.as_str())
        .collect();
    let https_on =
        facts.config.get("https.enabled") == Some(&Value::Bool(true));
    if !trusted.is_empty() && https_on {
        text.push_str(&format!(
            "; trusted certificate for {}",
            trusted.join(", ")
        ));
    }
    let staging = facts.config.get("https.letsencrypt.staging")
        == Some(&Value::Bool(true));
    if https_on && staging && trusted.is_empty() {
        text.push_str(
            "; HTTPS serves a Let's Encrypt staging certificate, which \
             browsers do not trust: remove https.staging once the name works",
        );
    }
    text
}
