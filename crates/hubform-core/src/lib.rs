//! The engine of hubform: a teaching JupyterHub on AWS described by a YAML
//! file in git, planned and applied Terraform-style.
//!
//! This crate holds everything that needs neither AWS nor SSH. A run goes
//! [`spec::load`] → [`graph::Desired`] → `Provider::observe` →
//! [`plan::plan`] → [`apply::apply`]. The planner is pure: it takes what
//! the spec wants and what providers found, and returns the changes.
//! Beside the plan, [`cost::estimate`] and [`lint::lint`] read the spec
//! alone: its monthly cost from a dated price table, and its risky or
//! undersized choices.
//!
//! ```no_run
//! use hubform_core::graph::Desired;
//!
//! let loaded = hubform_core::spec::load("workshop.yaml".as_ref())?;
//! let desired = Desired::from_spec(&loaded.spec).expect("a valid graph");
//! println!("{} resources in {}", desired.order.len(), desired.region);
//! # Ok::<(), hubform_core::spec::SpecError>(())
//! ```

#![warn(missing_docs)]

pub mod apply;
pub mod cost;
pub mod graph;
pub mod guard;
pub mod journal;
pub mod lint;
pub mod model;
pub mod pause;
pub mod plan;
pub mod provider;
pub mod rule;
pub mod spec;
