//! Integration tests: the real hubform binary against a local AWS world.

mod apply;
mod cli;
mod common;
mod crash;
mod dns_record;
mod drift;
mod edits;
mod example_host;
mod host;
mod host_layer;
mod host_smoke;
mod https_waits;
mod ssh;
mod tljh_double;
mod world;
mod world_smoke;
