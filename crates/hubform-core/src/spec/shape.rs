//! The layout of a YAML text, for better structural error messages.
//!
//! serde reports a missing field only after reading the whole mapping, so
//! serde-saphyr places the error at the mapping's last key; and a type
//! error does not say which field it is about. After such an error (never
//! otherwise) a second pass over the text finds the mapping that holds the
//! key, or the key of the value, so that the message can point at the
//! mapping's start or name the field.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::spanned::{Pos, Spanned};

/// A node of the text: a mapping with its keys, a sequence, or a scalar.
enum Node {
    Map(Vec<(Spanned<Key>, Spanned<Node>)>),
    Seq(Vec<Spanned<Node>>),
    Leaf,
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Key>>()? {
            entries.push((key, map.next_value::<Spanned<Node>>()?));
        }
        Ok(Node::Map(entries))
    }

    fn visit_seq<A: SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

/// A mapping key as text; empty when it is not a scalar.
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let node = serde_json::Value::deserialize(d).map_err(|_| {
            de::Error::custom("a mapping key hubform cannot show")
        });
        Ok(Key(match node? {
            serde_json::Value::String(text) => text,
            serde_json::Value::Null
            | serde_json::Value::Array(_)
            | serde_json::Value::Object(_) => String::new(),
            scalar => scalar.to_string(),
        }))
    }
}

fn root(text: &str) -> Option<Spanned<Node>> {
    serde_saphyr::from_str_with_options(text, super::yaml::options()).ok()
}

/// The start of the mapping that has a key at `key`, if the text parses
/// and has one.
pub fn mapping_start(text: &str, key: Pos) -> Option<Pos> {
    fn find(node: &Spanned<Node>, key: Pos) -> Option<Pos> {
        match &node.value {
            Node::Map(entries) => {
                if entries.iter().any(|(k, _)| k.pos == key) {
                    return Some(node.pos);
                }
                entries.iter().find_map(|(_, child)| find(child, key))
            }
            Node::Seq(items) => items.iter().find_map(|item| find(item, key)),
            Node::Leaf => None,
        }
    }
    find(&root(text)?, key)
}

/// The key whose value, or an item of whose list value, starts at
/// `value`, if the text parses and has one.
pub fn key_of(text: &str, value: Pos) -> Option<String> {
    fn find(node: &Spanned<Node>, value: Pos) -> Option<&str> {
        match &node.value {
            Node::Map(entries) => entries.iter().find_map(|(key, child)| {
                let item_here = match &child.value {
                    Node::Seq(items) => items.iter().any(|i| i.pos == value),
                    _ => false,
                };
                let here = child.pos == value || item_here;
                if here && !key.0.is_empty() {
                    Some(key.0.as_str())
                } else {
                    find(child, value)
                }
            }),
            Node::Seq(items) => items.iter().find_map(|item| find(item, value)),
            Node::Leaf => None,
        }
    }
    find(&root(text)?, value).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_block_and_flow_mappings() {
        let text = "a: 1\nb:\n  c: { d: 1, e: 2 }\n  f: [ { g: 1 } ]\n";
        assert_eq!(mapping_start(text, Pos::new(2, 1)), Some(Pos::new(1, 1)));
        assert_eq!(mapping_start(text, Pos::new(3, 14)), Some(Pos::new(3, 6)));
        assert_eq!(mapping_start(text, Pos::new(4, 10)), Some(Pos::new(4, 8)));
        assert_eq!(mapping_start(text, Pos::new(9, 9)), None);
    }

    #[test]
    fn names_the_key_of_a_value_or_list_item() {
        let text = "a: 1\nb:\n  c: { d: x, 5: 2 }\n  f: [1, 2]\n";
        assert_eq!(key_of(text, Pos::new(1, 4)).as_deref(), Some("a"));
        assert_eq!(key_of(text, Pos::new(3, 11)).as_deref(), Some("d"));
        assert_eq!(key_of(text, Pos::new(3, 17)).as_deref(), Some("5"));
        assert_eq!(key_of(text, Pos::new(4, 10)).as_deref(), Some("f"));
        assert_eq!(key_of(text, Pos::new(4, 4)), None);
    }
}
