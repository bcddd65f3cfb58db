//! The serde types of a workshop spec.
//!
//! Every value that a later check names (ids, references, CIDRs, sizes) is
//! wrapped in [`Spanned`] so that semantic errors can point at its
//! file:line:column; so are the ids that key each map. Resource kinds are
//! plain structs in maps keyed by id; no internally tagged or flattened
//! enums, because serde-saphyr loses positions inside them.
//!
//! The `schemars` attributes only help editors; [`validate`] is the
//! authority on what a spec may hold.
//!
//! [`validate`]: super::validate()

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

pub use super::port::Port;
pub use super::spanned::{Pos, Spanned};

/// A map of resources keyed by their id, each id with its position.
pub type Resources<T> = BTreeMap<Spanned<String>, Spanned<T>>;

/// One workshop: everything one YAML file declares.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Name of the workshop: lowercase letters, digits and '-', at most 40
    /// characters, starting with a letter and not ending with '-'. Written
    /// into tags and IAM paths of every object hubform creates.
    #[schemars(regex(pattern = r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$"))]
    pub workshop: Spanned<String>,
    /// AWS Region of every EC2 object, for example `ap-south-1`.
    #[schemars(regex(pattern = r"^[a-z]{2}(-[a-z]+)+-[0-9]$"))]
    pub region: Spanned<String>,
    /// IAM groups and users.
    #[serde(default)]
    pub iam: Iam,
    /// EC2 key pairs, keyed by key pair name.
    #[serde(default)]
    pub key_pairs: Resources<KeyPair>,
    /// Security groups in the default VPC, keyed by group name.
    #[serde(default)]
    pub security_groups: Resources<SecurityGroup>,
    /// Image lookups (read only), keyed by an id that servers name.
    #[serde(default)]
    pub images: Resources<Image>,
    /// Workshop servers, keyed by a stable id.
    #[serde(default)]
    pub servers: Resources<Server>,
}

/// IAM groups and users of the workshop, kept under the IAM path
/// `/hubform/<workshop>/`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Iam {
    /// IAM groups, keyed by group name.
    #[serde(default)]
    pub groups: Resources<IamGroup>,
    /// IAM users, keyed by user name.
    #[serde(default)]
    pub users: Resources<IamUser>,
}

/// An IAM group and the managed policies attached to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IamGroup {
    /// Managed policies: an AWS managed policy name such as
    /// `AdministratorAccess`, or a full policy ARN. The set is exact.
    #[serde(default)]
    pub policies: Vec<Spanned<String>>,
}

/// An IAM user, its group memberships and optionally an access key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IamUser {
    /// Groups of this spec the user belongs to. The set is exact.
    #[serde(default)]
    pub groups: Vec<Spanned<String>>,
    /// Where to write the access key (id and secret, mode 0600) when it is
    /// created, relative to the spec's folder. Without it the user gets no
    /// access key.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub access_key_file: Option<Spanned<String>>,
}

/// An EC2 key pair whose private key is generated locally (ed25519).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyPair {
    /// Path of the private key file (mode 0400), relative to the spec's
    /// folder. An existing file is never overwritten.
    #[schemars(length(min = 1))]
    pub private_key_file: Spanned<String>,
}

/// A security group in the default VPC.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroup {
    /// Description of the group. AWS cannot change it in place: a change
    /// replaces the group.
    #[schemars(length(min = 1, max = 255))]
    pub description: Spanned<String>,
    /// Inbound rules. The set is exact: rules added by hand are revoked.
    #[serde(default)]
    pub ingress: Vec<Spanned<Rule>>,
    /// Outbound rules; managed only when given.
    #[serde(default)]
    pub egress: Option<Vec<Spanned<Rule>>>,
}

/// One or more ports of one protocol from one CIDR block.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = rule_schema_accepts_to)]
pub struct Rule {
    /// `tcp` (default), `udp`, `icmp` or `all` (also written `-1`).
    #[serde(default)]
    #[schemars(extend("enum" = ["tcp", "udp", "icmp", "all", "-1", null]))]
    pub protocol: Option<Spanned<String>>,
    /// Ports: numbers, or ranges as `"8000-8100"`. Required for `tcp` and
    /// `udp`; not given for `icmp` and `all`.
    #[serde(default)]
    pub ports: Vec<Spanned<Port>>,
    /// Source (ingress) or destination (egress, also written `to`) as an
    /// IPv4 or IPv6 CIDR block, for example `0.0.0.0/0`.
    #[serde(alias = "to")]
    pub from: Spanned<String>,
    /// Description of the rule.
    #[serde(default)]
    #[schemars(length(max = 255))]
    pub description: Option<Spanned<String>>,
}

/// Adds `to`, the alias of `from` that schemars does not see, to the
/// schema of [`Rule`]: a rule has exactly one of the two.
fn rule_schema_accepts_to(schema: &mut schemars::Schema) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    let from = object
        .get("properties")
        .and_then(|p| p.get("from"))
        .cloned();
    if let (Some(mut to), Some(properties)) = (
        from,
        object.get_mut("properties").and_then(|p| p.as_object_mut()),
    ) {
        to["description"] = "Destination of an egress rule: another name \
                             for `from`."
            .into();
        properties.insert("to".into(), to);
    }
    if let Some(required) =
        object.get_mut("required").and_then(|r| r.as_array_mut())
    {
        required.retain(|field| field != "from");
        if required.is_empty() {
            object.remove("required");
        }
    }
    object.insert(
        "oneOf".into(),
        serde_json::json!([{ "required": ["from"] }, { "required": ["to"] }]),
    );
}

/// Image lookup: the newest available image of an owner, name pattern and
/// architecture, or a pinned image id.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// Owner account id, for example Canonical's `099720109477`, or an
    /// alias such as `amazon`.
    #[serde(default)]
    pub owner: Option<Spanned<String>>,
    /// Name pattern, `*` matching anything.
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    /// `x86_64` (default) or `arm64`.
    #[serde(default)]
    #[schemars(extend("enum" = ["x86_64", "arm64", null]))]
    pub architecture: Option<Spanned<String>>,
    /// A pinned image id (`ami-…`) instead of a lookup.
    #[serde(default)]
    #[schemars(regex(pattern = r"^ami-([0-9a-f]{8}|[0-9a-f]{17})$"))]
    pub id: Option<Spanned<String>>,
}

/// A workshop server: an EC2 instance, its root volume, optionally an
/// Elastic IP and a DNS name.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// The instance's Name tag.
    #[schemars(length(min = 1, max = 255))]
    pub name: Spanned<String>,
    /// Instance type, for example `t3.xlarge`.
    #[serde(rename = "type")]
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]*\.[a-z0-9-]+$"))]
    pub instance_type: Spanned<String>,
    /// Id of an entry of `images`.
    pub image: Spanned<String>,
    /// Name of an entry of `key_pairs`.
    pub key_pair: Spanned<String>,
    /// Names of entries of `security_groups`.
    #[serde(default)]
    pub security_groups: Vec<Spanned<String>>,
    /// The root volume.
    pub root_volume: Spanned<RootVolume>,
    /// Whether the server gets an Elastic IP.
    #[serde(default)]
    pub elastic_ip: Option<Spanned<bool>>,
    /// How many users the workshop expects (used by lints).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub expected_users: Option<Spanned<u32>>,
    /// The DNS name users open; the host layer checks or manages it.
    #[serde(default)]
    pub dns: Option<Spanned<Dns>>,
    /// Whether the instance runs: `running` or `stopped` (a stopped
    /// instance keeps its disk and Elastic IP and costs only storage).
    /// Not managed when absent.
    #[serde(default)]
    #[schemars(extend("enum" = ["running", "stopped", null]))]
    pub state: Option<Spanned<String>>,
    /// Whether the instance and its root volume are protected from
    /// replacement and deletion (default `true`): apply then refuses
    /// them without `--allow-replace` or `--allow-destroy`.
    #[serde(default)]
    pub protect: Option<Spanned<bool>>,
    /// Extra tags on the instance. Keys starting with `aws:` or
    /// `hubform:`, and `Name` (see `name`), are reserved.
    #[serde(default)]
    pub tags: BTreeMap<Spanned<String>, Spanned<String>>,
    /// The host layer: The Littlest JupyterHub on this server, set up over
    /// SSH.
    #[serde(default)]
    pub tljh: Option<Spanned<Tljh>>,
}

/// The Littlest JupyterHub on a server, and what it serves.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tljh {
    /// The SSH login of the image (`ubuntu` on Ubuntu images).
    #[serde(default)]
    pub ssh_user: Option<Spanned<String>>,
    /// `HOST:PORT` to SSH to instead of the server's address (a jump
    /// host's forward, a test host); `--ssh-endpoint` overrides it.
    #[serde(default)]
    pub ssh_endpoint: Option<Spanned<String>>,
    /// The TLJH version to install, for example `2.0.0`; the latest
    /// release when not given. A different version upgrades in place.
    #[serde(default)]
    pub version: Option<Spanned<String>>,
    /// Where bootstrap.py comes from: a URL (fetched by the server) or a
    /// local file (sent over SSH). Default: TLJH's own URL.
    #[serde(default)]
    pub bootstrap: Option<Spanned<String>>,
    /// The server's operating system packages.
    #[serde(default)]
    pub system: Option<Spanned<System>>,
    /// JupyterHub admins (`users.admin`).
    #[serde(default)]
    pub admins: Vec<Spanned<String>>,
    /// Users allowed to log in (`users.allowed`); anyone may sign up when
    /// empty.
    #[serde(default)]
    pub users: Vec<Spanned<String>>,
    /// HTTPS with Let's Encrypt.
    #[serde(default)]
    pub https: Option<Spanned<Https>>,
    /// Any other `tljh-config` key by dotted path, for example
    /// `limits.memory: 4G` or `services.cull.timeout: 3600`.
    #[serde(default)]
    pub config: BTreeMap<Spanned<String>, Spanned<ConfigValue>>,
    /// Packages of the users' environment (`/opt/tljh/user`).
    #[serde(default)]
    pub packages: Option<Spanned<Packages>>,
}

/// The server's operating system.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct System {
    /// Update the apt lists and upgrade the packages (`apt-get upgrade`)
    /// whenever upgrades are pending. Off unless set.
    #[serde(default)]
    pub upgrade: Option<Spanned<bool>>,
}

/// HTTPS with a Let's Encrypt certificate.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Https {
    /// Contact address for Let's Encrypt.
    pub letsencrypt_email: Spanned<String>,
    /// Names on the certificate; the server's `dns.name` when not given.
    #[serde(default)]
    pub domains: Vec<Spanned<String>>,
    /// Use Let's Encrypt's staging service (untrusted certificates, no
    /// rate limits) while trying things out.
    #[serde(default)]
    pub staging: Option<Spanned<bool>>,
}

/// A `tljh-config` value.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(
    untagged,
    expecting = "expected true or false, a number, text or a list of texts"
)]
pub enum ConfigValue {
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A number with a fraction.
    Float(f64),
    /// Text.
    Text(String),
    /// A list of texts.
    List(Vec<String>),
}

/// Packages of the users' environment; each `name` or `name==version`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Packages {
    /// Installed with pip.
    #[serde(default)]
    pub pip: Vec<Spanned<String>>,
    /// Installed with conda (mamba) from conda-forge.
    #[serde(default)]
    pub conda: Vec<Spanned<String>>,
}

/// The root EBS volume of a server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RootVolume {
    /// Device name of the root volume, `/dev/sda1` on Ubuntu images.
    #[serde(default)]
    #[schemars(regex(pattern = r"^/dev/(sd[a-z][0-9]*|xvd[a-z])$"))]
    pub device: Option<Spanned<String>>,
    /// Size in GiB, 1 to 16384. Volumes grow in place and never shrink.
    #[schemars(range(min = 1, max = 16384))]
    pub size_gb: Spanned<i64>,
    /// Volume type: `gp3` (default), `gp2`, `io1`, `io2`, `st1`, `sc1` or
    /// `standard`.
    #[serde(default, rename = "type")]
    #[schemars(extend(
        "enum" = ["gp3", "gp2", "io1", "io2", "st1", "sc1", "standard", null]
    ))]
    pub volume_type: Option<Spanned<String>>,
}

/// The server's DNS name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dns {
    /// Fully qualified name, for example `jupyter.example.org`.
    pub name: Spanned<String>,
    /// A Route 53 hosted zone to hold the A record: its name (a parent
    /// domain of `name`) or its id (`Z…`).
    #[serde(default)]
    pub zone: Option<Spanned<String>>,
}
