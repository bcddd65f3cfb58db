//! The monthly cost of a workshop, from its spec and a price table alone.
//!
//! [`estimate`] prices each server: its instance hours (730 a month, none
//! while `state: stopped`), its root volume's GB-months and its public
//! IPv4 address (an Elastic IP is charged by the hour, stopped or not).
//! Prices come from a [`PriceTable`]: the built-in `prices/aws.yaml`, or a
//! file of the same shape (`hubform plan --prices FILE`). An item the
//! table has no price for is reported as such, never guessed.
//!
//! ```
//! use hubform_core::cost::{estimate, PriceTable};
//!
//! let text = std::fs::read_to_string(
//!     concat!(env!("CARGO_MANIFEST_DIR"), "/../../specs/small-workshop.yaml"),
//! )?;
//! let spec = hubform_core::spec::parse(&text, "small-workshop.yaml")?;
//! let cost = estimate(&spec, &PriceTable::builtin());
//! assert_eq!(cost.total_cents(), 2231); // $22.31 a month
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod table;

use std::fmt::Write as _;

use crate::spec::{Server, Spec};

pub use table::{PriceError, PriceTable, RegionPrices};

/// What a spec's servers cost a month, item by item.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// Each server, in spec order (by id).
    pub servers: Vec<ServerCost>,
    /// When the table's prices were taken, as the table says.
    pub taken: String,
    /// Where the table's prices come from, as the table says.
    pub source: String,
    /// `built-in` or the path of the table given.
    pub origin: String,
    /// Hours in a month.
    pub hours_per_month: u32,
}

/// What one server costs a month.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerCost {
    /// The server's id in the spec.
    pub server: String,
    /// Its instance type.
    pub instance_type: String,
    /// The Region.
    pub region: String,
    /// Its priced items: instance, root volume, public IPv4.
    pub items: Vec<Item>,
}

/// One line of a server's cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// `instance`, `volume` or `public_ipv4`.
    pub kind: &'static str,
    /// What is priced and how, e.g. `instance t3.xlarge, 730 h ×
    /// $0.1792`.
    pub what: String,
    /// US cents a month, or why there is no price.
    pub cents: Result<u64, String>,
}

impl ServerCost {
    /// Cents a month of the items that have a price.
    pub fn cents(&self) -> u64 {
        self.items
            .iter()
            .filter_map(|i| i.cents.as_ref().ok())
            .sum()
    }

    /// Whether every item has a price.
    pub fn complete(&self) -> bool {
        self.items.iter().all(|i| i.cents.is_ok())
    }
}

impl Estimate {
    /// Cents a month of every priced item (a lower bound when some item
    /// has no price).
    pub fn total_cents(&self) -> u64 {
        self.servers.iter().map(ServerCost::cents).sum()
    }

    /// Whether every item of every server has a price.
    pub fn complete(&self) -> bool {
        self.servers.iter().all(ServerCost::complete)
    }

    /// How many items have no price.
    pub fn unpriced(&self) -> usize {
        self.servers
            .iter()
            .flat_map(|s| &s.items)
            .filter(|i| i.cents.is_err())
            .count()
    }
}

/// Prices every server of `spec` with `table`.
pub fn estimate(spec: &Spec, table: &PriceTable) -> Estimate {
    let servers = spec
        .servers
        .iter()
        .map(|(id, server)| price_server(id, server, &spec.region, table))
        .collect();
    Estimate {
        servers,
        taken: table.taken.clone(),
        source: table.source.clone(),
        origin: table.origin.clone(),
        hours_per_month: table.hours_per_month,
    }
}

/// Prices one server's instance, root volume and public address.
fn price_server(
    id: &str,
    server: &Server,
    region: &str,
    table: &PriceTable,
) -> ServerCost {
    let hours = u64::from(table.hours_per_month);
    let running = server.state.as_ref().is_none_or(|s| s.value != "stopped");
    let instance_type = server.instance_type.value.as_str();
    let prices = table.regions.get(region);
    let missing = |what: &str| table.no_price(what, region);
    let mut items = Vec::new();

    let rate = prices.and_then(|p| p.instances.get(instance_type));
    items.push(match (running, rate) {
        (false, _) => Item {
            kind: "instance",
            what: format!("instance {instance_type}, stopped: no hours"),
            cents: Ok(0),
        },
        (true, Some(rate)) => Item {
            kind: "instance",
            what: format!(
                "instance {instance_type}, {hours} h × {}",
                dollars_rate(*rate)
            ),
            cents: Ok(cents(*rate * hours as f64)),
        },
        (true, None) => Item {
            kind: "instance",
            what: format!("instance {instance_type}"),
            cents: Err(missing(instance_type)),
        },
    });

    let volume = &server.root_volume.value;
    let volume_type = volume.volume_type.as_ref().map_or("gp3", |t| t.as_str());
    let size = volume.size_gb.value.max(0) as u64;
    let rate = prices.and_then(|p| p.volumes.get(volume_type));
    let what = format!("root volume {size} GB {volume_type}");
    items.push(match rate {
        Some(rate) => Item {
            kind: "volume",
            what: format!("{what} × {} a GB-month", dollars_rate(*rate)),
            cents: Ok(cents(*rate * size as f64)),
        },
        None => Item {
            kind: "volume",
            what,
            cents: Err(missing(&format!("{volume_type} volumes"))),
        },
    });

    if let Some(item) = price_address(server, running, hours, prices, &missing)
    {
        items.push(item);
    }
    ServerCost {
        server: id.to_owned(),
        instance_type: instance_type.to_owned(),
        region: region.to_owned(),
        items,
    }
}

/// The server's public IPv4 address: an Elastic IP is charged every hour,
/// the server stopped or not; without one, the address the default VPC
/// gives at launch is charged while the server runs.
fn price_address(
    server: &Server,
    running: bool,
    hours: u64,
    prices: Option<&RegionPrices>,
    missing: &dyn Fn(&str) -> String,
) -> Option<Item> {
    let elastic = server.elastic_ip.as_ref().is_some_and(|e| e.value);
    let what = match (elastic, running) {
        (true, true) => "Elastic IP (public IPv4)",
        (true, false) => "Elastic IP (public IPv4), charged while stopped",
        (false, true) => "public IPv4 given at launch",
        (false, false) => return None,
    };
    let rate = prices.and_then(|p| p.public_ipv4_per_hour);
    Some(match rate {
        Some(rate) => Item {
            kind: "public_ipv4",
            what: format!("{what}, {hours} h × {}", dollars_rate(rate)),
            cents: Ok(cents(rate * hours as f64)),
        },
        None => Item {
            kind: "public_ipv4",
            what: what.to_owned(),
            cents: Err(missing("public IPv4 addresses")),
        },
    })
}

/// Dollars to whole cents, half a cent rounded up.
fn cents(dollars: f64) -> u64 {
    (dollars * 100.0).round().max(0.0) as u64
}

/// `$1,234.56` for cents.
pub fn dollars(cents: u64) -> String {
    let whole = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("${grouped}.{:02}", cents % 100)
}

/// A rate as the table writes it: `$0.1792`.
fn dollars_rate(rate: f64) -> String {
    format!("${rate}")
}

/// The estimate as the plan prints it.
pub fn render(estimate: &Estimate) -> String {
    let mut out = String::new();
    if estimate.servers.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "Monthly cost estimate (USD, On-Demand list prices of {}, {} h a \
         month, {} table):",
        estimate.taken,
        estimate.hours_per_month,
        match estimate.origin.as_str() {
            "built-in" => "built-in".to_owned(),
            path => format!("from {path}"),
        }
    );
    for server in &estimate.servers {
        render_server(&mut out, server);
    }
    let total = dollars(estimate.total_cents());
    match estimate.unpriced() {
        0 => {
            let _ = writeln!(out, "  Total: {total} a month");
        }
        n => {
            let _ = writeln!(
                out,
                "  Total: at least {total} a month ({n} item(s) without a \
                 price, above)"
            );
        }
    }
    out
}

fn render_server(out: &mut String, server: &ServerCost) {
    let _ = writeln!(
        out,
        "  server {} ({} in {}):",
        server.server, server.instance_type, server.region
    );
    for item in &server.items {
        match &item.cents {
            Ok(cents) => {
                let amount = dollars(*cents);
                let _ = writeln!(out, "    {:<56} {amount:>10}", item.what);
            }
            Err(why) => {
                let _ = writeln!(out, "    {}: {why}", item.what);
            }
        }
    }
    let _ = writeln!(
        out,
        "    {:<56} {:>10}",
        "server total",
        dollars(server.cents())
    );
}

/// The estimate in `plan --json` (see docs/json-formats.md).
pub fn to_json(estimate: &Estimate) -> serde_json::Value {
    let usd = |cents: u64| serde_json::json!(cents as f64 / 100.0);
    let servers: Vec<serde_json::Value> = estimate
        .servers
        .iter()
        .map(|s| {
            let items: Vec<serde_json::Value> = s
                .items
                .iter()
                .map(|i| {
                    serde_json::json!({
                        "item": i.kind,
                        "description": i.what,
                        "monthly_usd": i.cents.as_ref().ok().map(|c| usd(*c)),
                        "missing": i.cents.as_ref().err(),
                    })
                })
                .collect();
            serde_json::json!({
                "server": s.server,
                "instance_type": s.instance_type,
                "region": s.region,
                "items": items,
                "monthly_usd": usd(s.cents()),
                "complete": s.complete(),
            })
        })
        .collect();
    serde_json::json!({
        "currency": "USD",
        "prices_taken": estimate.taken,
        "prices_source": estimate.source,
        "prices_table": estimate.origin,
        "hours_per_month": estimate.hours_per_month,
        "servers": servers,
        "monthly_usd": usd(estimate.total_cents()),
        "complete": estimate.complete(),
    })
}

#[cfg(test)]
mod tests;
