//! Security group rules in one canonical text form, so that the spec's
//! rules and AWS's permissions compare as plain sets of strings.
//!
//! ```
//! use hubform_core::rule::Rule;
//!
//! let rule: Rule = "tcp 8000-8100 from 10.0.0.0/8".parse().unwrap();
//! assert_eq!(rule.from_port, 8000);
//! assert_eq!(rule.to_string(), "tcp 8000-8100 from 10.0.0.0/8");
//! ```

use std::fmt;
use std::str::FromStr;

/// One protocol, one port range, one CIDR block.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rule {
    /// `tcp`, `udp`, `icmp` or `all`.
    pub protocol: String,
    /// First port (ICMP type), `-1` when the protocol has none.
    pub from_port: i32,
    /// Last port (ICMP code), `-1` when the protocol has none.
    pub to_port: i32,
    /// The IPv4 or IPv6 block.
    pub cidr: String,
}

impl Rule {
    /// The protocol as AWS names it in `IpProtocol`.
    pub fn aws_protocol(&self) -> &str {
        if self.protocol == "all" {
            "-1"
        } else {
            &self.protocol
        }
    }

    /// Whether the block is IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.cidr.contains(':')
    }

    /// The rule for an AWS permission, in canonical form.
    pub fn from_aws(
        protocol: &str,
        from_port: Option<i32>,
        to_port: Option<i32>,
        cidr: &str,
    ) -> Rule {
        let protocol = match protocol {
            "-1" | "all" => "all",
            "6" => "tcp",
            "17" => "udp",
            "1" => "icmp",
            other => other,
        };
        let (from_port, to_port) = if protocol == "all" {
            (-1, -1)
        } else {
            (from_port.unwrap_or(-1), to_port.unwrap_or(-1))
        };
        Rule {
            protocol: protocol.to_owned(),
            from_port,
            to_port,
            cidr: cidr.to_owned(),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.protocol)?;
        if self.from_port != -1 || self.to_port != -1 {
            if self.from_port == self.to_port {
                write!(f, " {}", self.from_port)?;
            } else {
                write!(f, " {}-{}", self.from_port, self.to_port)?;
            }
        }
        write!(f, " from {}", self.cidr)
    }
}

/// A text that is not a rule in canonical form.
#[derive(Debug, thiserror::Error)]
#[error("not a rule: {0:?}")]
pub struct BadRule(String);

impl FromStr for Rule {
    type Err = BadRule;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadRule(text.to_owned());
        let words: Vec<&str> = text.split_whitespace().collect();
        let (protocol, ports, cidr) = match words.as_slice() {
            [p, "from", cidr] => (*p, None, *cidr),
            [p, ports, "from", cidr] => (*p, Some(*ports), *cidr),
            _ => return Err(bad()),
        };
        let (from_port, to_port) = match ports {
            None => (-1, -1),
            Some(ports) => {
                let (a, b) = ports.split_once('-').unwrap_or((ports, ports));
                let a = a.parse().map_err(|_| bad())?;
                let b = b.parse().map_err(|_| bad())?;
                (a, b)
            }
        };
        Ok(Rule {
            protocol: protocol.to_owned(),
            from_port,
            to_port,
            cidr: cidr.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_text_round_trips() {
        for text in [
            "tcp 22 from 0.0.0.0/0",
            "udp 60000-61000 from ::/0",
            "all from 10.0.0.0/8",
            "icmp 8-0 from 0.0.0.0/0",
        ] {
            let rule: Rule = text.parse().expect("parses");
            assert_eq!(rule.to_string(), text);
        }
    }

    #[test]
    fn aws_all_protocol_has_no_ports() {
        let rule = Rule::from_aws("-1", Some(0), Some(65535), "0.0.0.0/0");
        assert_eq!(rule.to_string(), "all from 0.0.0.0/0");
    }
}
