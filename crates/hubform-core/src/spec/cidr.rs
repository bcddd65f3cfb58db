//! CIDR blocks of security group rules.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IPv4 or IPv6 network: an address with no host bits set and a prefix
/// length within range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    /// The network address.
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// Parses `ADDRESS/PREFIX`, refusing host bits; the error is a
    /// lowercase phrase saying what was expected.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let Some((addr, prefix)) = text.split_once('/') else {
            let hint = match text.parse::<IpAddr>() {
                Ok(IpAddr::V4(_)) => format!(", e.g. {text}/32"),
                Ok(IpAddr::V6(_)) => format!(", e.g. {text}/128"),
                Err(_) => String::new(),
            };
            return Err(format!(
                "\"{text}\" is not a CIDR block; expected an address and a \
                 prefix length{hint}"
            ));
        };

        let Ok(addr) = addr.parse::<IpAddr>() else {
            return Err(format!(
                "\"{text}\" is not a CIDR block; expected an IPv4 or IPv6 \
                 address before '/', e.g. 0.0.0.0/0"
            ));
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| prefix.parse::<u8>().ok())
            .flatten()
            .filter(|&p| p <= max && !prefix.is_empty());
        let Some(prefix) = prefix else {
            let family = if addr.is_ipv4() { "IPv4" } else { "IPv6" };
            return Err(format!(
                "\"{text}\" has an invalid prefix length; expected 0 to {max} \
                 for {family}"
            ));
        };

        let network = Cidr {
            addr: mask(addr, prefix),
            prefix,
        };
        if network.addr != addr {
            return Err(format!(
                "\"{text}\" has host bits set; did you mean {network}?"
            ));
        }
        Ok(network)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// `addr` with every bit after the first `prefix` cleared.
fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let keep =
                u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits & keep))
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let keep =
                u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & keep))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Cidr::parse(text).unwrap_err()
    }

    #[test]
    fn accepts_networks() {
        for ok in ["0.0.0.0/0", "10.0.0.0/8", "192.0.2.7/32", "::/0"] {
            assert_eq!(Cidr::parse(ok).unwrap().to_string(), ok);
        }
        assert!(Cidr::parse("2001:db8::/32").is_ok());
    }

    #[test]
    fn host_bits_suggest_the_network() {
        assert_eq!(
            err("10.0.0.1/8"),
            "\"10.0.0.1/8\" has host bits set; did you mean 10.0.0.0/8?"
        );
        assert!(err("2001:db8::1/32").ends_with("did you mean 2001:db8::/32?"));
    }

    #[test]
    fn refuses_other_shapes() {
        assert!(err("10.0.0.1").contains("e.g. 10.0.0.1/32"));
        assert!(err("10.0.0.0/33").contains("expected 0 to 32 for IPv4"));
        assert!(err("::/129").contains("expected 0 to 128 for IPv6"));
        assert!(err("10.0.0.0/").contains("invalid prefix length"));
        assert!(err("10.0.0.0/+8").contains("invalid prefix length"));
        assert!(err("300.0.0.0/8").contains("expected an IPv4 or IPv6"));
        assert!(err("anywhere").contains("is not a CIDR block"));
    }
}
