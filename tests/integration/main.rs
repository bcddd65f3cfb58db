//! Integration tests: the real hubform binary against a local AWS world.

mod common;
mod world;
mod world_smoke;
