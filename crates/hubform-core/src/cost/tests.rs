//! The estimate of the example specs, priced by hand from the built-in
//! table, and what happens without a price.

use serde_json::Value;

use super::*;
use crate::spec::tests::{example_path, repo};
use crate::spec::{self, Spanned};

fn example(name: &str) -> Spec {
    spec::load(&example_path(name)).unwrap().spec
}

fn cents_of(server: &ServerCost) -> Vec<Result<u64, String>> {
    server.items.iter().map(|i| i.cents.clone()).collect()
}

#[test]
fn builtin_table_parses_and_says_its_date_and_source() {
    let table = PriceTable::builtin();
    assert_eq!(table.taken, "2026-12-04");
    assert!(table.source.contains("aws.amazon.com/ec2/pricing"));
    assert_eq!(table.hours_per_month, 730);
    assert_eq!(table.origin, "built-in");
    let text = std::fs::read_to_string(repo().join("prices/aws.yaml"));
    assert!(text.unwrap().contains("taken: \"2026-12-04\""));
}

#[test]
fn groundwater_example_costs_its_instance_volume_and_elastic_ip() {
    let cost = estimate(
        &example("groundwater-workshop.yaml"),
        &PriceTable::builtin(),
    );

    // t3.xlarge in ap-south-1: 730 h × $0.1792 = $130.816; 20 GB gp3 ×
    // $0.0912 = $1.824; the Elastic IP 730 h × $0.005 = $3.65.
    let hub = &cost.servers[0];
    assert_eq!(hub.server, "hub");
    assert_eq!(cents_of(hub), [Ok(13082), Ok(182), Ok(365)]);
    assert_eq!(cost.total_cents(), 13629);
    assert!(cost.complete());
    assert_eq!(dollars(cost.total_cents()), "$136.29");
}

#[test]
fn small_example_costs_its_instance_volume_and_elastic_ip() {
    let cost =
        estimate(&example("small-workshop.yaml"), &PriceTable::builtin());

    // t3.small in eu-central-1: 730 h × $0.024 = $17.52; 12 GB gp3 ×
    // $0.0952 = $1.1424; the Elastic IP $3.65.
    assert_eq!(cents_of(&cost.servers[0]), [Ok(1752), Ok(114), Ok(365)]);
    assert_eq!(cost.total_cents(), 2231);
}

#[test]
fn a_stopped_server_costs_its_volume_and_elastic_ip_only() {
    let mut spec = example("groundwater-workshop.yaml");
    let hub = spec.servers.values_mut().next().unwrap();
    hub.value.state = Some(Spanned::new("stopped".to_owned()));

    let cost = estimate(&spec, &PriceTable::builtin());

    assert_eq!(cents_of(&cost.servers[0]), [Ok(0), Ok(182), Ok(365)]);
    let text = render(&cost);
    assert!(
        text.contains("instance t3.xlarge, stopped: no hours"),
        "{text}"
    );
    assert!(text.contains("charged while stopped"), "{text}");
}

#[test]
fn without_an_elastic_ip_the_launch_address_is_charged_while_running() {
    let mut spec = example("small-workshop.yaml");
    let hub = spec.servers.values_mut().next().unwrap();
    hub.value.elastic_ip = None;
    assert_eq!(estimate(&spec, &PriceTable::builtin()).total_cents(), 2231);

    let hub = spec.servers.values_mut().next().unwrap();
    hub.value.state = Some(Spanned::new("stopped".to_owned()));
    let cost = estimate(&spec, &PriceTable::builtin());
    assert_eq!(cents_of(&cost.servers[0]), [Ok(0), Ok(114)]);
}

#[test]
fn unknown_type_and_region_are_said_never_guessed() {
    let mut spec = example("groundwater-workshop.yaml");
    let hub = spec.servers.values_mut().next().unwrap();
    hub.value.instance_type.value = "t3.foo".to_owned();

    let cost = estimate(&spec, &PriceTable::builtin());
    assert_eq!(
        cents_of(&cost.servers[0])[0],
        Err("no price for t3.foo in ap-south-1 in the table (dated \
             2026-12-04)"
            .to_owned())
    );
    assert!(!cost.complete());
    let text = render(&cost);
    assert!(
        text.contains("Total: at least $5.47 a month (1 item(s) without"),
        "{text}"
    );

    spec.region.value = "ca-central-1".to_owned();
    let cost = estimate(&spec, &PriceTable::builtin());
    assert_eq!(cost.unpriced(), 3);
    assert_eq!(
        cents_of(&cost.servers[0])[1],
        Err("no price for gp3 volumes in ca-central-1 in the table \
             (dated 2026-12-04)"
            .to_owned())
    );
}

#[test]
fn render_prints_each_item_the_server_total_and_the_date() {
    let cost = estimate(
        &example("groundwater-workshop.yaml"),
        &PriceTable::builtin(),
    );
    let text = render(&cost);
    assert!(text.starts_with(
        "Monthly cost estimate (USD, On-Demand list prices of 2026-12-04, \
         730 h a month, built-in table):\n  server hub (t3.xlarge in \
         ap-south-1):\n"
    ));
    for line in [
        "instance t3.xlarge, 730 h × $0.1792",
        "root volume 20 GB gp3 × $0.0912 a GB-month",
        "Elastic IP (public IPv4), 730 h × $0.005",
        "$130.82",
        "$1.82",
        "$3.65",
        "  Total: $136.29 a month\n",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
}

#[test]
fn json_gives_dollars_per_item_server_and_total() {
    let cost =
        estimate(&example("small-workshop.yaml"), &PriceTable::builtin());
    let json = to_json(&cost);
    assert_eq!(json["monthly_usd"], 22.31);
    assert_eq!(json["prices_taken"], "2026-12-04");
    assert_eq!(json["servers"][0]["items"][0]["monthly_usd"], 17.52);
    assert_eq!(json["servers"][0]["items"][0]["missing"], Value::Null);
    assert_eq!(json["complete"], true);
}

#[test]
fn a_given_table_replaces_prices_and_adds_memory_sizes() {
    let dir = std::env::temp_dir().join(format!(
        "hubform-prices-{}-{}",
        std::process::id(),
        line!()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("prices.yaml");
    std::fs::write(
        &path,
        "taken: \"2027-01-01\"\nsource: my invoice\ncurrency: USD\n\
         hours_per_month: 730\nregions:\n  ap-south-1:\n    \
         public_ipv4_per_hour: 0.01\n    instances: { t3.xlarge: 0.1 }\n    \
         volumes: { gp3: 0.1 }\nmemory_gib: { x9.huge: 512 }\n",
    )
    .unwrap();

    let table = PriceTable::load(&path).unwrap();
    let cost = estimate(&example("groundwater-workshop.yaml"), &table);

    assert_eq!(cents_of(&cost.servers[0]), [Ok(7300), Ok(200), Ok(730)]);
    assert_eq!(table.memory_gib("x9.huge"), Some(512.0));
    assert_eq!(table.memory_gib("t3.small"), Some(2.0));
    let text = render(&cost);
    assert!(text.contains("prices of 2027-01-01"), "{text}");
    assert!(text.contains(&format!("from {}", path.display())), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bad_table_is_refused_with_why() {
    let good = "taken: \"2027-01-01\"\nsource: s\ncurrency: USD\n\
                hours_per_month: 730\nregions: {}\n";
    assert!(PriceTable::parse(good, "p.yaml").is_ok());

    let negative = good.replace(
        "regions: {}",
        "regions: { x-1: { instances: { t3.a: -1 } } }",
    );
    let err = PriceTable::parse(&negative, "p.yaml").unwrap_err();
    assert_eq!(
        err.to_string(),
        "p.yaml: x-1 instances.t3.a is -1; expected a price of 0 or more"
    );

    let undated = good.replace("\"2027-01-01\"", "\"\"");
    let err = PriceTable::parse(&undated, "p.yaml").unwrap_err();
    assert!(err.to_string().contains("`taken` is empty"), "{err}");

    let euro = good.replace("USD", "EUR");
    assert!(PriceTable::parse(&euro, "p.yaml").is_err());

    let unknown = format!("{good}extra: 1\n");
    let err = PriceTable::parse(&unknown, "p.yaml").unwrap_err();
    assert!(err.to_string().starts_with("p.yaml: not a price table"));

    let missing = PriceTable::load("/nonexistent/prices.yaml".as_ref());
    assert!(missing.unwrap_err().message.contains("cannot read"));
}

#[test]
fn dollars_group_thousands() {
    assert_eq!(dollars(0), "$0.00");
    assert_eq!(dollars(5), "$0.05");
    assert_eq!(dollars(123_456_789), "$1,234,567.89");
}
