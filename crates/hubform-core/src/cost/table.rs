//! The price table: prices by Region, and the memory of instance types.
//!
//! The built-in table is `prices/aws.yaml` at the workspace root, compiled
//! in; `--prices FILE` reads another of the same shape. Memory sizes are
//! facts about a type, not prices: a given table's `memory_gib` adds to
//! the built-in one, whose other entries stay.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// The built-in table's text.
const BUILTIN: &str = include_str!("../../../../prices/aws.yaml");

/// Why a price table cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct PriceError {
    /// The table file as named.
    pub file: String,
    /// A lowercase phrase: what is wrong and what was expected.
    pub message: String,
}

/// Prices (USD, On-Demand, Linux) by Region, and memory by type.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceTable {
    /// When the prices were taken, e.g. `2026-12-04`.
    pub taken: String,
    /// Where they were taken from.
    pub source: String,
    /// Always `USD`.
    pub currency: String,
    /// Hours in a month: AWS counts 730.
    pub hours_per_month: u32,
    /// Prices of each Region, by Region code.
    pub regions: BTreeMap<String, RegionPrices>,
    /// GiB of memory of each instance type.
    #[serde(default)]
    pub memory_gib: BTreeMap<String, f64>,
    /// `built-in` or the file's path; not in the file.
    #[serde(skip)]
    pub origin: String,
}

/// Prices in one Region.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionPrices {
    /// USD an hour of a public IPv4 address (an Elastic IP included).
    #[serde(default)]
    pub public_ipv4_per_hour: Option<f64>,
    /// USD per instance hour, by instance type.
    #[serde(default)]
    pub instances: BTreeMap<String, f64>,
    /// USD per GB-month, by volume type.
    #[serde(default)]
    pub volumes: BTreeMap<String, f64>,
}

impl PriceTable {
    /// The table compiled into hubform (`prices/aws.yaml`).
    pub fn builtin() -> PriceTable {
        // A unit test parses the same text: this cannot fail at run time.
        Self::parse(BUILTIN, "built-in").expect("the built-in price table")
    }

    /// Reads a table from `path`; its memory sizes add to the built-in
    /// ones.
    pub fn load(path: &Path) -> Result<PriceTable, PriceError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| PriceError {
            file: file.clone(),
            message: format!(
                "cannot read the price table: {e}; expected a YAML file \
                 shaped like hubform's prices/aws.yaml"
            ),
        })?;
        let mut table = Self::parse(&text, &file)?;
        let mut memory = Self::builtin().memory_gib;
        memory.append(&mut table.memory_gib);
        table.memory_gib = memory;
        Ok(table)
    }

    /// Parses and checks a table's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<PriceTable, PriceError> {
        let error = |message: String| PriceError {
            file: origin.to_owned(),
            message,
        };
        let mut table: PriceTable = serde_saphyr::from_str(text)
            .map_err(|e| error(format!("not a price table: {e}")))?;
        table.origin = origin.to_owned();
        table.check().map_err(error)?;
        Ok(table)
    }

    /// Refuses what would make a wrong estimate: no date, another
    /// currency, a month without hours, a negative or non-finite price.
    fn check(&self) -> Result<(), String> {
        if self.taken.trim().is_empty() {
            return Err("`taken` is empty; expected the date the prices \
                        were taken, e.g. 2026-12-04"
                .to_owned());
        }
        if self.currency != "USD" {
            return Err(format!(
                "currency {} is not supported; expected USD",
                self.currency
            ));
        }
        if self.hours_per_month == 0 {
            return Err("hours_per_month is 0; expected 730".to_owned());
        }
        let bad = |what: String, value: f64| {
            (!value.is_finite() || value < 0.0).then(|| {
                format!("{what} is {value}; expected a price of 0 or more")
            })
        };
        for (region, prices) in &self.regions {
            let ipv4 = prices.public_ipv4_per_hour.into_iter();
            let problem =
                ipv4.map(|v| (format!("{region} public_ipv4_per_hour"), v))
                    .chain(
                        prices.instances.iter().map(|(t, v)| {
                            (format!("{region} instances.{t}"), *v)
                        }),
                    )
                    .chain(
                        prices.volumes.iter().map(|(t, v)| {
                            (format!("{region} volumes.{t}"), *v)
                        }),
                    )
                    .find_map(|(what, v)| bad(what, v));
            if let Some(problem) = problem {
                return Err(problem);
            }
        }
        match self
            .memory_gib
            .iter()
            .find(|(_, g)| g.is_nan() || **g <= 0.0)
        {
            Some((t, g)) => Err(format!(
                "memory_gib.{t} is {g}; expected a size above 0 GiB"
            )),
            None => Ok(()),
        }
    }

    /// GiB of memory of `instance_type`, when the table knows it.
    pub fn memory_gib(&self, instance_type: &str) -> Option<f64> {
        self.memory_gib.get(instance_type).copied()
    }

    /// Says that the table has no price for `what` in `region`.
    pub fn no_price(&self, what: &str, region: &str) -> String {
        let table = match self.origin.as_str() {
            "built-in" => "the table".to_owned(),
            path => format!("the table {path}"),
        };
        let taken = &self.taken;
        format!("no price for {what} in {region} in {table} (dated {taken})")
    }
}
