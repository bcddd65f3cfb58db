//! Integration tests: the real hubform binary against a local AWS world.

mod apply;
mod cli;
mod common;
mod crash;
mod dns_record;
mod drift;
mod drift_cmd;
mod edits;
mod example_host;
mod guards;
mod host;
mod host_layer;
mod host_smoke;
mod https_waits;
mod import_cmd;
mod lifecycle;
mod lock;
mod saved_plan;
mod server_state;
mod ssh;
mod status_cmd;
mod tljh_double;
mod world;
mod world_smoke;
