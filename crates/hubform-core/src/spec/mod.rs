//! The workshop spec: one YAML file, its types, loading and checks.
//!
//! [`load`] reads a file, [`parse`] a text; both deserialise with
//! serde-saphyr (unknown fields and duplicate keys are errors) and then
//! [`validate`] the result. Every problem becomes a [`Diagnostic`] at
//! file:line:column: the first syntax or structure error (serde stops
//! there), or all semantic errors together. [`json_schema`] describes the
//! same types for editors.
//!
//! - `types` — the serde types; `spanned` — values with positions;
//!   `port` — rule ports.
//! - `load` — bytes to a [`Spec`], with `yaml` (serde-saphyr, its
//!   limits and its errors in plain words) and `shape` (positions of
//!   mappings for missing fields); `error` — [`SpecError`].
//! - `validate` — semantic checks, with `formats` (names and values AWS
//!   accepts) and `cidr`.
//! - `schema` — the JSON Schema; `reference` — the spec reference page
//!   generated from it (`docs/spec-reference.md`).
//!
//! ```
//! let text = "workshop: demo\nregion: ap-south-1\n";
//! let spec = hubform_core::spec::parse(text, "demo.yaml").unwrap();
//! assert_eq!(spec.region.as_str(), "ap-south-1");
//!
//! let err = hubform_core::spec::parse("workshop: Demo\nregion: x\n", "d.yaml")
//!     .unwrap_err();
//! assert!(err.to_string().starts_with("d.yaml:1:11: invalid workshop name"));
//! ```

mod cidr;
mod error;
mod formats;
mod load;
mod port;
pub mod reference;
mod schema;
mod shape;
mod spanned;
pub mod types;
mod validate;
mod yaml;

#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
pub(crate) mod tests;

pub use cidr::Cidr;
pub use error::{Diagnostic, Diagnostics, SpecError};
pub use load::{
    load, parse, parse_bytes, resolve_path, Loaded, MAX_SPEC_BYTES,
};
pub use schema::{json_schema, SCHEMA_ID};
pub use types::{
    ConfigValue, Dns, Https, Iam, IamGroup, IamUser, Image, KeyPair, Packages,
    Port, Pos, Resources, RootVolume, Rule, SecurityGroup, Server, Spanned,
    Spec, System, Tljh,
};
pub use validate::{check_region, validate};
