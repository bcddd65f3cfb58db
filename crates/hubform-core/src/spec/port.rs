//! A port of a security group rule: a number or a range `"FROM-TO"`.
//!
//! Deserialising only checks the shape; whether the numbers are ports
//! (0 to 65535, FROM not above TO) is a semantic check in `validate`, so
//! that all such mistakes are reported together, each at its position.

use std::borrow::Cow;
use std::fmt;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::Deserialize;

/// A port number or an inclusive range of ports, as the spec wrote it.
///
/// The numbers are wide so that an out-of-range port reaches `validate`
/// and gets a positioned message; after validation both lie in 0..=65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Port {
    /// One port.
    Number(i64),
    /// An inclusive range, written `"FROM-TO"`.
    Range(i64, i64),
}

impl Port {
    /// The first and the last port.
    pub fn bounds(&self) -> (i64, i64) {
        match *self {
            Port::Number(port) => (port, port),
            Port::Range(from, to) => (from, to),
        }
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Port::Number(port) => write!(f, "{port}"),
            Port::Range(from, to) => write!(f, "{from}-{to}"),
        }
    }
}

/// Parses `"22"` or `"8000-8100"`; `None` when the text has another shape.
fn parse_port(text: &str) -> Option<Port> {
    fn number(digits: &str) -> Option<i64> {
        let digits = digits.trim();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }

    match text.split_once('-') {
        None => number(text).map(Port::Number),
        Some((from, to)) => Some(Port::Range(number(from)?, number(to)?)),
    }
}

struct PortVisitor;

impl Visitor<'_> for PortVisitor {
    type Value = Port;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a port number or a range \"FROM-TO\"")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Port, E> {
        Ok(Port::Number(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Port, E> {
        i64::try_from(v)
            .map(Port::Number)
            .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Port, E> {
        parse_port(v).ok_or_else(|| E::invalid_value(Unexpected::Str(v), &self))
    }
}

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(PortVisitor)
    }
}

impl JsonSchema for Port {
    fn schema_name() -> Cow<'static, str> {
        "Port".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A port number, or an inclusive range \"FROM-TO\".",
            "anyOf": [
                { "type": "integer", "minimum": 0, "maximum": 65535 },
                { "type": "string", "pattern": "^[0-9]{1,5}(-[0-9]{1,5})?$" }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_and_ranges() {
        assert_eq!(parse_port("22"), Some(Port::Number(22)));
        assert_eq!(parse_port("8000-8100"), Some(Port::Range(8000, 8100)));
        assert_eq!(parse_port("8000 - 8100"), Some(Port::Range(8000, 8100)));
        assert_eq!(parse_port("eighty"), None);
        assert_eq!(parse_port("-1"), None);
        assert_eq!(parse_port("1-2-3"), None);
        assert_eq!(parse_port(""), None);
    }

    #[test]
    fn displays_as_written() {
        assert_eq!(Port::Range(1, 2).to_string(), "1-2");
        assert_eq!(Port::Number(443).bounds(), (443, 443));
    }
}
