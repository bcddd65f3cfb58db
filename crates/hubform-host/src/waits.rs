//! When HTTPS may be turned on: Let's Encrypt's challenge reaches the
//! server on port 443 through its DNS name, so the HTTPS keys wait until
//! the Elastic IP is associated, every domain resolves to it and port 443
//! is open to the world. Repeated failures are rate-limited by Let's
//! Encrypt, so hubform does not try before then.

use std::collections::BTreeMap;
use std::net::IpAddr;

use hubform_core::graph::Desired;
use hubform_core::model::{Kind, Observed, ResourceId, Value, Wait};
use hubform_core::rule::Rule;

/// Looks names up: the system's resolver, or fixed answers from
/// `HUBFORM_RESOLVE=name=ip,name=ip` (tests, offline demos). With
/// `HUBFORM_LOOPBACK_ONLY` only the fixed answers are used.
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    fixed: BTreeMap<String, IpAddr>,
    fixed_only: bool,
}

impl Resolver {
    /// The resolver the environment asks for.
    pub fn from_env(loopback_only: bool) -> Resolver {
        let fixed = std::env::var("HUBFORM_RESOLVE")
            .unwrap_or_default()
            .split(',')
            .filter_map(|pair| pair.split_once('='))
            .filter_map(|(name, ip)| {
                Some((name.trim().to_lowercase(), ip.trim().parse().ok()?))
            })
            .collect();
        Resolver {
            fixed,
            fixed_only: loopback_only,
        }
    }

    /// The addresses of `name`, or why there are none.
    pub async fn resolve(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        if let Some(ip) = self.fixed.get(&name.to_lowercase()) {
            return Ok(vec![*ip]);
        }
        if self.fixed_only {
            return Err(format!(
                "{name} was not looked up (HUBFORM_LOOPBACK_ONLY: only \
                 HUBFORM_RESOLVE answers)"
            ));
        }
        match tokio::net::lookup_host((name, 443)).await {
            Ok(addrs) => Ok(addrs.map(|a| a.ip()).collect()),
            Err(e) => Err(format!("{name} does not resolve ({e})")),
        }
    }
}

/// The HTTPS keys of each server whose conditions do not hold yet.
pub async fn https_waits(
    desired: &Desired,
    observed: &Observed,
    resolver: &Resolver,
) -> Vec<Wait> {
    let mut waits = Vec::new();
    for config in desired.of_kind(Kind::TljhConfig) {
        let https: Vec<String> = config
            .attrs
            .keys()
            .filter(|k| k.starts_with("https."))
            .cloned()
            .collect();
        if https.is_empty() {
            continue;
        }
        let key = &config.id.key;
        let domains = match config.attrs.get("https.letsencrypt.domains") {
            Some(a) => match &a.value {
                Value::List(items) => items.clone(),
                _ => Vec::new(),
            },
            None => Vec::new(),
        };
        if let Some(reason) =
            blocker(desired, observed, resolver, key, &domains).await
        {
            waits.push(Wait {
                id: config.id.clone(),
                attrs: https,
                reason,
            });
        }
    }
    waits
}

/// Notes for servers whose DNS name does not point at their address yet
/// (the name users open; with HTTPS the wait says the same).
pub async fn dns_notes(
    desired: &Desired,
    observed: &Observed,
    resolver: &Resolver,
) -> Vec<hubform_core::model::Note> {
    let mut notes = Vec::new();
    for instance in desired.of_kind(Kind::Instance) {
        let Some(name) = instance.text("dns_name") else {
            continue;
        };
        let key = &instance.id.key;
        let eip = ResourceId::new(Kind::ElasticIp, key);
        let address = observed
            .live
            .get(&eip)
            .or_else(|| observed.live.get(&instance.id))
            .and_then(|l| l.get_extra("public_ip"))
            .filter(|ip| !ip.is_empty());
        let Some(address) = address.and_then(|a| a.parse::<IpAddr>().ok())
        else {
            continue;
        };
        let text = match resolver.resolve(name).await {
            Ok(ips) if ips.contains(&address) => continue,
            Ok(ips) => {
                let ips: Vec<String> =
                    ips.iter().map(ToString::to_string).collect();
                format!(
                    "{name} resolves to {}, not to the server's address \
                     {address}; point its A record there",
                    ips.join(", ")
                )
            }
            Err(why) => format!(
                "{why}; create an A record for it pointing at {address}"
            ),
        };
        notes.push(hubform_core::model::Note {
            id: instance.id.clone(),
            text,
        });
    }
    notes
}

/// The first condition for HTTPS on server `key` that does not hold.
async fn blocker(
    desired: &Desired,
    observed: &Observed,
    resolver: &Resolver,
    key: &str,
    domains: &[String],
) -> Option<String> {
    if !open_to_the_world(desired, key) {
        return Some(
            "port 443 is not open to 0.0.0.0/0 in the server's security \
             groups; Let's Encrypt must reach it"
                .to_owned(),
        );
    }

    let instance = ResourceId::new(Kind::Instance, key);
    let eip = ResourceId::new(Kind::ElasticIp, key);
    let address = if desired.get(&eip).is_some() {
        let Some(live) = observed.live.get(&eip) else {
            return Some(
                "the Elastic IP does not exist yet; point the DNS name at \
                 it after this apply, then apply again"
                    .to_owned(),
            );
        };
        if live.attrs.get("instance") != Some(&Value::Ref(instance.clone())) {
            return Some(format!(
                "the Elastic IP {} is not associated with {instance} yet",
                live.get_extra("public_ip").unwrap_or("?")
            ));
        }
        live.get_extra("public_ip").unwrap_or_default().to_owned()
    } else {
        let live = observed.live.get(&instance)?;
        live.get_extra("public_ip").unwrap_or_default().to_owned()
    };
    let Ok(address) = address.parse::<IpAddr>() else {
        return Some(format!("{instance} has no public address yet"));
    };

    if domains.is_empty() {
        return Some(
            "no domain to certify: set https.domains or dns.name".into(),
        );
    }
    for domain in domains {
        match resolver.resolve(domain).await {
            Err(why) => return Some(why),
            Ok(ips) if !ips.contains(&address) => {
                let ips: Vec<String> =
                    ips.iter().map(|i| i.to_string()).collect();
                return Some(format!(
                    "{domain} resolves to {} instead of the Elastic IP \
                     {address}; update its A record",
                    ips.join(", ")
                ));
            }
            Ok(_) => {}
        }
    }
    None
}

/// Whether the server's security groups (as the spec wants them) let
/// everyone reach TCP port 443.
fn open_to_the_world(desired: &Desired, key: &str) -> bool {
    let Some(instance) = desired.get(&ResourceId::new(Kind::Instance, key))
    else {
        return false;
    };
    instance.items("security_groups").iter().any(|group| {
        desired
            .get(&ResourceId::new(Kind::SecurityGroup, group))
            .map(|g| g.items("ingress"))
            .unwrap_or_default()
            .iter()
            .filter_map(|r| r.parse::<Rule>().ok())
            .any(|r| {
                let world = r.cidr == "0.0.0.0/0";
                let covers = r.protocol == "all"
                    || (r.protocol == "tcp"
                        && r.from_port <= 443
                        && 443 <= r.to_port);
                world && covers
            })
    })
}
