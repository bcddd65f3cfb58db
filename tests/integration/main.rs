//! Integration tests: the real hubform binary against a local AWS world.

mod apply;
mod common;
mod drift;
mod edits;
mod world;
mod world_smoke;
