//! Integration tests: the real hubform binary against a local AWS world.

mod world;
mod world_smoke;
