//! Resources as the planner sees them: ids, attribute values and the
//! policy of each attribute (how a difference is repaired).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::spec::Pos;

/// The kinds of resources. Their names are written into tags on live
/// objects (`hubform:id=<kind>.<key>`): never rename one.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An IAM group and its attached managed policies.
    IamGroup,
    /// An IAM user, its memberships and its access key.
    IamUser,
    /// An EC2 key pair imported from a local private key.
    KeyPair,
    /// A security group and its rules.
    SecurityGroup,
    /// An image lookup (read only).
    Image,
    /// An EC2 instance.
    Instance,
    /// The root EBS volume of an instance.
    Volume,
    /// An Elastic IP and its association.
    ElasticIp,
    /// A Route 53 A record pointing at a server.
    DnsRecord,
    /// The operating system packages of a server (host layer).
    System,
    /// The Littlest JupyterHub installed on a server (host layer).
    Tljh,
    /// The `tljh-config` keys of a server (host layer).
    TljhConfig,
    /// Packages of a server's user environment (host layer).
    Packages,
}

impl Kind {
    /// Every kind, in the order plans list them.
    pub const ALL: [Kind; 13] = [
        Kind::IamGroup,
        Kind::IamUser,
        Kind::KeyPair,
        Kind::SecurityGroup,
        Kind::Image,
        Kind::Instance,
        Kind::Volume,
        Kind::ElasticIp,
        Kind::DnsRecord,
        Kind::System,
        Kind::Tljh,
        Kind::TljhConfig,
        Kind::Packages,
    ];

    /// The fixed name used in ids and tags.
    pub fn name(self) -> &'static str {
        match self {
            Kind::IamGroup => "iam_group",
            Kind::IamUser => "iam_user",
            Kind::KeyPair => "key_pair",
            Kind::SecurityGroup => "security_group",
            Kind::Image => "image",
            Kind::Instance => "instance",
            Kind::Volume => "volume",
            Kind::ElasticIp => "elastic_ip",
            Kind::DnsRecord => "dns_record",
            Kind::System => "system",
            Kind::Tljh => "tljh",
            Kind::TljhConfig => "tljh_config",
            Kind::Packages => "packages",
        }
    }

    /// Whether objects of this kind live on a server, reached over SSH.
    pub fn on_host(self) -> bool {
        matches!(
            self,
            Kind::System | Kind::Tljh | Kind::TljhConfig | Kind::Packages
        )
    }

    /// The kind named `name`, as written in a tag.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Kinds whose objects hold a reference to objects of this kind, so
    /// that this kind's objects can only be deleted after theirs.
    pub fn dependents(self) -> &'static [Kind] {
        match self {
            Kind::IamGroup => &[Kind::IamUser],
            Kind::KeyPair | Kind::SecurityGroup | Kind::Image => {
                &[Kind::Instance]
            }
            Kind::Instance => &[
                Kind::Volume,
                Kind::ElasticIp,
                Kind::Tljh,
                Kind::System,
                Kind::DnsRecord,
            ],
            Kind::ElasticIp => &[Kind::DnsRecord],
            Kind::Tljh => &[Kind::TljhConfig, Kind::Packages],
            Kind::IamUser
            | Kind::Volume
            | Kind::DnsRecord
            | Kind::System
            | Kind::TljhConfig
            | Kind::Packages => &[],
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A resource id, `<kind>.<key>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceId {
    /// The kind.
    pub kind: Kind,
    /// The key the spec gives it.
    pub key: String,
}

impl ResourceId {
    /// The id of `key` of `kind`.
    pub fn new(kind: Kind, key: impl Into<String>) -> Self {
        ResourceId {
            kind,
            key: key.into(),
        }
    }

    /// Parses `<kind>.<key>`, as written in tags.
    pub fn parse(text: &str) -> Option<Self> {
        let (kind, key) = text.split_once('.')?;
        let kind = Kind::from_name(kind)?;
        (!key.is_empty()).then(|| ResourceId::new(kind, key))
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.kind, self.key)
    }
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value {
    /// Text.
    Str(String),
    /// A whole number.
    Int(i64),
    /// A switch.
    Bool(bool),
    /// A set of texts, compared as a set and diffed item by item.
    Set(BTreeSet<String>),
    /// A list of texts in order, duplicates kept (a `tljh-config` list).
    List(Vec<String>),
    /// A number with a fraction, in its canonical text.
    Decimal(String),
    /// A reference to another resource of the spec.
    Ref(ResourceId),
    /// Nothing: not set, or not associated.
    None,
}

impl Value {
    /// A text value.
    pub fn str(text: impl Into<String>) -> Self {
        Value::Str(text.into())
    }

    /// A set of texts.
    pub fn set<I, S>(items: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Value::Set(items.into_iter().map(Into::into).collect())
    }

    /// The value as JSON: texts, numbers, booleans, arrays (a set in the
    /// order people read it), a reference as `kind.key`, nothing as
    /// `null`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as Json;
        let texts = |items: Vec<&String>| {
            Json::Array(items.into_iter().cloned().map(Json::String).collect())
        };
        match self {
            Value::Str(s) => Json::String(s.clone()),
            Value::Decimal(text) => text
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or_else(|| Json::String(text.clone()), Json::Number),
            Value::Int(n) => Json::from(*n),
            Value::Bool(b) => Json::Bool(*b),
            Value::Set(items) => {
                texts(crate::plan::render::natural_order(items.iter()))
            }
            Value::List(items) => texts(items.iter().collect()),
            Value::Ref(id) => Json::String(id.to_string()),
            Value::None => Json::Null,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Int(n) => write!(f, "{n}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Set(items) => {
                let items: Vec<String> =
                    crate::plan::render::natural_order(items.iter())
                        .into_iter()
                        .map(|i| format!("{i:?}"))
                        .collect();
                write!(f, "[{}]", items.join(", "))
            }
            Value::List(items) => {
                let items: Vec<String> =
                    items.iter().map(|i| format!("{i:?}")).collect();
                write!(f, "[{}]", items.join(", "))
            }
            Value::Decimal(n) => f.write_str(n),
            Value::Ref(id) => write!(f, "{id}"),
            Value::None => f.write_str("(none)"),
        }
    }
}

/// How a difference in an attribute is repaired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Changed in place.
    Update,
    /// Changed in place, but only upwards; a decrease is a plan error.
    Grow,
    /// Cannot change: the object is replaced.
    Replace,
    /// Known only to hubform (a local path): shown, never compared.
    Local,
}

/// One attribute of a desired resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Attr {
    /// The value.
    pub value: Value,
    /// How a difference is repaired.
    pub policy: Policy,
    /// Where the spec wrote it.
    pub pos: Pos,
}

/// A resource the spec declares.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// Its id.
    pub id: ResourceId,
    /// Its attributes by name.
    pub attrs: BTreeMap<String, Attr>,
    /// Resources it needs before it can be created.
    pub deps: Vec<ResourceId>,
    /// Where the spec declares it.
    pub pos: Pos,
}

impl Resource {
    /// A resource without attributes.
    pub fn new(id: ResourceId, pos: Pos) -> Self {
        Resource {
            id,
            attrs: BTreeMap::new(),
            deps: Vec::new(),
            pos,
        }
    }

    /// Adds an attribute.
    pub fn attr(
        mut self,
        name: &str,
        value: Value,
        policy: Policy,
        pos: Pos,
    ) -> Self {
        self.attrs
            .insert(name.to_owned(), Attr { value, policy, pos });
        self
    }

    /// Adds a dependency.
    pub fn dep(mut self, id: ResourceId) -> Self {
        if !self.deps.contains(&id) {
            self.deps.push(id);
        }
        self
    }

    /// The text value of an attribute, if it is text.
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.attrs.get(name).map(|a| &a.value) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// The whole number of an attribute, if it is one.
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.attrs.get(name).map(|a| &a.value) {
            Some(Value::Int(n)) => Some(*n),
            _ => None,
        }
    }

    /// The switch of an attribute, if it is one.
    pub fn flag(&self, name: &str) -> Option<bool> {
        match self.attrs.get(name).map(|a| &a.value) {
            Some(Value::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    /// The items of a set attribute, empty when absent.
    pub fn items(&self, name: &str) -> Vec<String> {
        match self.attrs.get(name).map(|a| &a.value) {
            Some(Value::Set(items)) => items.iter().cloned().collect(),
            _ => Vec::new(),
        }
    }
}

/// A live object found for a resource.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Live {
    /// The provider's id of the object (`sg-…`, `i-…`, a name for IAM).
    pub cloud_id: String,
    /// Its attributes, in the same terms as the desired ones.
    pub attrs: BTreeMap<String, Value>,
    /// Provider details that are neither compared nor shown (an
    /// association id, the VPC).
    pub extra: BTreeMap<String, String>,
}

impl Live {
    /// A live object with the given cloud id.
    pub fn new(cloud_id: impl Into<String>) -> Self {
        Live {
            cloud_id: cloud_id.into(),
            attrs: BTreeMap::new(),
            extra: BTreeMap::new(),
        }
    }

    /// Adds a provider detail.
    pub fn extra(mut self, name: &str, value: impl Into<String>) -> Self {
        self.extra.insert(name.to_owned(), value.into());
        self
    }

    /// A provider detail, if present.
    pub fn get_extra(&self, name: &str) -> Option<&str> {
        self.extra.get(name).map(String::as_str)
    }

    /// Adds an attribute.
    pub fn attr(mut self, name: &str, value: Value) -> Self {
        self.attrs.insert(name.to_owned(), value);
        self
    }
}

/// What a provider found: live objects by resource id, and remarks.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Objects that carry the workshop's tags (or IAM path).
    pub live: BTreeMap<ResourceId, Live>,
    /// Objects without tags that match a resource to be created by name.
    pub lookalikes: BTreeMap<ResourceId, String>,
    /// Objects that another workshop holds under a name this spec wants.
    pub conflicts: BTreeMap<ResourceId, String>,
    /// Remarks that change nothing (a newer image, a missing key file).
    pub notes: Vec<Note>,
    /// Attributes that must not change yet, and why (HTTPS before the
    /// DNS name points at the server).
    pub waits: Vec<Wait>,
    /// Servers whose host did not answer SSH, by server key, with why:
    /// their host layer is left out of the plan, so that what AWS needs
    /// (a security group that lets SSH in) can still be applied.
    pub unreachable: BTreeMap<String, String>,
}

/// Attributes of a resource held back until a condition holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    /// The resource.
    pub id: ResourceId,
    /// The attributes held back.
    pub attrs: Vec<String>,
    /// The condition that does not hold yet, a lowercase phrase.
    pub reason: String,
}

/// A remark attached to a resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Note {
    /// The resource it is about.
    pub id: ResourceId,
    /// What to say, a lowercase phrase.
    pub text: String,
}
