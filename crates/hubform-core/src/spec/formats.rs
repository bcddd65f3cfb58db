//! The shapes of names and values that AWS (and hubform) accept.
//!
//! Each check takes the text alone and returns a lowercase phrase saying
//! what is wrong and what was expected; `validate` adds the position.

/// The first character of `text` that `allowed` refuses, quoted for a
/// message.
fn first_refused(text: &str, allowed: impl Fn(char) -> bool) -> Option<String> {
    text.chars().find(|&c| !allowed(c)).map(|c| match c {
        ' ' => "a space".to_owned(),
        c if c.is_control() => format!("{:?}", c),
        c => format!("'{c}'"),
    })
}

fn length(text: &str) -> usize {
    text.chars().count()
}

/// A workshop name: it goes into tags and IAM paths.
pub fn workshop_name(name: &str) -> Result<(), String> {
    const RULE: &str = "expected 1 to 40 lowercase letters, digits or '-', \
                        starting with a letter and not ending with '-'";
    let lower_alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();

    let problem = if name.is_empty() {
        Some("it is empty".to_owned())
    } else if let Some(c) = first_refused(name, |c| lower_alnum(c) || c == '-')
    {
        Some(format!("{c} is not allowed"))
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("it does not start with a letter".to_owned())
    } else if name.ends_with('-') {
        Some("it ends with '-'".to_owned())
    } else if length(name) > 40 {
        Some(format!("it has {} characters", length(name)))
    } else {
        None
    };
    match problem {
        Some(problem) => Err(format!(
            "invalid workshop name \"{name}\" ({problem}); {RULE}"
        )),
        None => Ok(()),
    }
}

/// An AWS Region code such as `ap-south-1` or `us-gov-west-1`.
pub fn region(region: &str) -> Result<(), String> {
    let parts: Vec<&str> = region.split('-').collect();
    let ok = parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1].iter().all(|p| {
            !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase())
        })
        && parts[parts.len() - 1].len() == 1
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid region \"{region}\"; expected an AWS Region code such \
             as ap-south-1"
        ))
    }
}

/// Characters of IAM user, group and policy names.
fn iam_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)
}

/// An IAM group (at most 128 characters) or user (at most 64) name.
pub fn iam_name(kind: &str, name: &str, max: usize) -> Result<(), String> {
    let problem = if name.is_empty() {
        Some("it is empty".to_owned())
    } else if let Some(c) = first_refused(name, iam_char) {
        Some(format!("{c} is not allowed"))
    } else if length(name) > max {
        Some(format!("it has {} characters", length(name)))
    } else {
        None
    };
    match problem {
        Some(problem) => Err(format!(
            "invalid {kind} name \"{name}\" ({problem}); expected 1 to {max} \
             letters, digits or any of + = , . @ _ -"
        )),
        None => Ok(()),
    }
}

/// A managed policy: an AWS managed policy name or a policy ARN.
pub fn policy(policy: &str) -> Result<(), String> {
    let expected = "expected an AWS managed policy name such as \
                    AdministratorAccess, or an ARN \
                    arn:aws:iam::ACCOUNT:policy/NAME";
    if let Some(rest) = policy.strip_prefix("arn:") {
        if policy_arn(rest) {
            return Ok(());
        }
        return Err(format!("invalid policy ARN \"{policy}\"; {expected}"));
    }
    if !policy.is_empty()
        && length(policy) <= 128
        && policy.chars().all(iam_char)
    {
        return Ok(());
    }
    Err(format!("invalid policy \"{policy}\"; {expected}"))
}

/// `PARTITION:iam::ACCOUNT:policy/PATH/NAME`, after `arn:`.
fn policy_arn(rest: &str) -> bool {
    let mut fields = rest.splitn(5, ':');
    let (Some(partition), Some(service), Some(region), Some(account)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return false;
    };
    let Some(name) = fields.next().and_then(|r| r.strip_prefix("policy/"))
    else {
        return false;
    };

    let partition_ok = partition == "aws" || partition.starts_with("aws-");
    let account_ok = account == "aws"
        || (account.len() == 12 && account.chars().all(|c| c.is_ascii_digit()));
    let last = name.rsplit('/').next().unwrap_or("");
    partition_ok
        && service == "iam"
        && region.is_empty()
        && account_ok
        && !last.is_empty()
        && name.chars().all(|c| iam_char(c) || c == '/')
}

/// The prefix of the key pairs that lock workshops
/// (`hubform-lock-<workshop>`, see `hubform_aws::lock`): a spec key pair
/// named so would be mistaken for a lock, and a lock for it.
pub const LOCK_KEY_PAIR_PREFIX: &str = "hubform-lock-";

/// An EC2 key pair name: up to 255 ASCII characters, not a lock's name.
pub fn key_pair_name(name: &str) -> Result<(), String> {
    if name.starts_with(LOCK_KEY_PAIR_PREFIX) {
        return Err(format!(
            "key pair name \"{name}\" is reserved: names starting with \
             {LOCK_KEY_PAIR_PREFIX} are hubform's workshop locks; choose \
             another name"
        ));
    }
    let problem = if name.trim().is_empty() {
        Some("it is empty".to_owned())
    } else if let Some(c) =
        first_refused(name, |c| c.is_ascii_graphic() || c == ' ')
    {
        Some(format!("{c} is not allowed"))
    } else if name.trim() != name {
        Some("it starts or ends with a space".to_owned())
    } else if length(name) > 255 {
        Some(format!("it has {} characters", length(name)))
    } else {
        None
    };
    match problem {
        Some(problem) => Err(format!(
            "invalid key pair name \"{name}\" ({problem}); expected 1 to 255 \
             ASCII characters"
        )),
        None => Ok(()),
    }
}

/// Characters EC2 allows in VPC security group names and descriptions.
fn security_group_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || " ._-:/()#,@[]+=&;{}!$*".contains(c)
}

const SECURITY_GROUP_CHARS: &str =
    "letters, digits, spaces and any of ._-:/()#,@[]+=&;{}!$*";

/// A security group name: not `default`, not starting with `sg-`.
pub fn security_group_name(name: &str) -> Result<(), String> {
    let problem = if name.is_empty() {
        Some("it is empty".to_owned())
    } else if name.eq_ignore_ascii_case("default") {
        Some("the VPC's own group is named default".to_owned())
    } else if name.to_ascii_lowercase().starts_with("sg-") {
        Some("names starting with sg- are reserved for group ids".to_owned())
    } else if let Some(c) = first_refused(name, security_group_char) {
        Some(format!("{c} is not allowed"))
    } else if length(name) > 255 {
        Some(format!("it has {} characters", length(name)))
    } else {
        None
    };
    match problem {
        Some(problem) => Err(format!(
            "invalid security group name \"{name}\" ({problem}); expected 1 \
             to 255 {SECURITY_GROUP_CHARS}"
        )),
        None => Ok(()),
    }
}

/// A security group or rule description.
pub fn security_group_text(what: &str, text: &str) -> Result<(), String> {
    let problem = if let Some(c) = first_refused(text, security_group_char) {
        Some(format!("{c} is not allowed"))
    } else if length(text) > 255 {
        Some(format!("it has {} characters", length(text)))
    } else {
        None
    };
    match problem {
        Some(problem) => Err(format!(
            "invalid {what} ({problem}); expected up to 255 \
             {SECURITY_GROUP_CHARS}"
        )),
        None => Ok(()),
    }
}

/// An instance type `FAMILY.SIZE`, such as `t3.xlarge` or `m7i-flex.large`.
pub fn instance_type(name: &str) -> Result<(), String> {
    let part = |p: &str| {
        !p.is_empty()
            && p.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
            })
    };
    let ok = match name.split_once('.') {
        Some((family, size)) => {
            part(family)
                && part(size)
                && family.starts_with(|c: char| c.is_ascii_lowercase())
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid instance type \"{name}\"; expected FAMILY.SIZE such as \
             t3.xlarge"
        ))
    }
}

/// A root device name: `/dev/sd[a-z][0-9]*` or `/dev/xvd[a-z]`.
pub fn device(name: &str) -> Result<(), String> {
    let ok = if let Some(rest) = name.strip_prefix("/dev/sd") {
        let mut chars = rest.chars();
        chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_digit())
    } else if let Some(rest) = name.strip_prefix("/dev/xvd") {
        rest.len() == 1 && rest.chars().all(|c| c.is_ascii_lowercase())
    } else {
        false
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid device name \"{name}\"; expected /dev/sd[a-z] with an \
             optional partition number (e.g. /dev/sda1) or /dev/xvd[a-z]"
        ))
    }
}

/// A fully qualified host name, such as `jupyter.example.org`; a trailing
/// dot is allowed.
pub fn hostname(what: &str, name: &str) -> Result<(), String> {
    let bare = name.strip_suffix('.').unwrap_or(name);
    let labels: Vec<&str> = bare.split('.').collect();
    let label_ok = |l: &&str| {
        (1..=63).contains(&l.len())
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };

    let problem = if bare.is_empty() {
        Some("it is empty".to_owned())
    } else if let Some(c) =
        first_refused(bare, |c| c.is_ascii_alphanumeric() || "-.".contains(c))
    {
        Some(format!("{c} is not allowed"))
    } else if labels.len() < 2 {
        Some("it has no domain".to_owned())
    } else if !labels.iter().all(label_ok) {
        Some(
            "a label is empty, longer than 63 or starts or ends with '-'"
                .into(),
        )
    } else if bare.len() > 253 {
        Some(format!("it has {} characters", bare.len()))
    } else if labels
        .last()
        .is_some_and(|l| l.chars().all(|c| c.is_ascii_digit()))
    {
        Some("it looks like an IP address".to_owned())
    } else {
        None
    };
    match problem {
        Some(problem) => Err(format!(
            "invalid {what} \"{name}\" ({problem}); expected a fully \
             qualified host name such as jupyter.example.org"
        )),
        None => Ok(()),
    }
}

/// A Route 53 hosted zone id such as `Z0123456789ABCDEFGHIJ`.
pub fn is_zone_id(zone: &str) -> bool {
    zone.len() > 1
        && zone.starts_with('Z')
        && zone
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// A pinned image id: `ami-` and 8 or 17 hex digits.
pub fn image_id(id: &str) -> Result<(), String> {
    let hex = id.strip_prefix("ami-").unwrap_or("");
    if matches!(hex.len(), 8 | 17)
        && hex
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    {
        Ok(())
    } else {
        Err(format!(
            "invalid image id \"{id}\"; expected ami- and 8 or 17 lowercase \
             hex digits, e.g. ami-0123456789abcdef0"
        ))
    }
}

/// An image owner: an account id or one of EC2's owner aliases.
pub fn image_owner(owner: &str) -> Result<(), String> {
    let account =
        owner.len() == 12 && owner.chars().all(|c| c.is_ascii_digit());
    if account || matches!(owner, "amazon" | "aws-marketplace" | "self") {
        Ok(())
    } else {
        Err(format!(
            "invalid image owner \"{owner}\"; expected a 12-digit account id \
             such as 099720109477, amazon, aws-marketplace or self"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workshop_names() {
        assert!(workshop_name("groundwater-central-asia").is_ok());
        assert!(workshop_name("a").is_ok());
        assert!(workshop_name(&"a".repeat(40)).is_ok());
        for bad in ["", "Ground", "1abc", "abc-", "a_b", &"a".repeat(41)] {
            assert!(workshop_name(bad).is_err(), "{bad}");
        }
        assert!(workshop_name("a_b").unwrap_err().contains("'_' is not"));
    }

    #[test]
    fn lock_names_are_reserved_for_key_pairs() {
        assert!(key_pair_name("workshop-central-asia").is_ok());
        assert!(key_pair_name("my-hubform-lock-x").is_ok());
        let err = key_pair_name("hubform-lock-demo").unwrap_err();
        assert!(err.contains("reserved"), "{err}");
    }

    #[test]
    fn regions() {
        for ok in ["ap-south-1", "us-gov-west-1", "eu-central-2"] {
            assert!(region(ok).is_ok(), "{ok}");
        }
        for bad in ["", "ap-south", "AP-SOUTH-1", "apsouth-1", "ap-south-12"] {
            assert!(region(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn iam_names_and_policies() {
        assert!(iam_name("iam group", "EC2Admins", 128).is_ok());
        assert!(iam_name("iam user", "a b", 64)
            .unwrap_err()
            .contains("a space"));
        assert!(iam_name("iam user", &"u".repeat(65), 64).is_err());
        assert!(policy("AdministratorAccess").is_ok());
        assert!(policy("arn:aws:iam::aws:policy/AdministratorAccess").is_ok());
        assert!(policy("arn:aws:iam::123456789012:policy/team/Ro").is_ok());
        assert!(policy("arn:aws:s3:::bucket").is_err());
        assert!(policy("arn:aws:iam::12:policy/x").is_err());
        assert!(policy("Admin Access").is_err());
    }

    #[test]
    fn security_group_names() {
        assert!(security_group_name("workshop-sg").is_ok());
        assert!(security_group_name("default").is_err());
        assert!(security_group_name("sg-123").is_err());
        assert!(security_group_name("é").is_err());
        assert!(security_group_name(&"s".repeat(256)).is_err());
    }

    #[test]
    fn server_values() {
        for ok in ["t3.xlarge", "m7i-flex.large", "u-6tb1.metal"] {
            assert!(instance_type(ok).is_ok(), "{ok}");
        }
        for bad in ["t3xlarge", "T3.large", ".large", "t3."] {
            assert!(instance_type(bad).is_err(), "{bad}");
        }
        for ok in ["/dev/sda1", "/dev/sdf", "/dev/xvda"] {
            assert!(device(ok).is_ok(), "{ok}");
        }
        for bad in ["/dev/nvme0n1", "/dev/xvda1", "sda1", "/dev/sd1"] {
            assert!(device(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hostnames() {
        for ok in ["jupyter.hydrosolutions.ch", "a.b.", "x-1.example.org"] {
            assert!(hostname("dns name", ok).is_ok(), "{ok}");
        }
        for bad in ["jupyter", "a..b", "-a.org", "a_b.org", "10.0.0.1", ""] {
            assert!(hostname("dns name", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn images() {
        assert!(image_id("ami-0123456789abcdef0").is_ok());
        assert!(image_id("ami-12345678").is_ok());
        assert!(image_id("ami-XYZ").is_err());
        assert!(image_owner("099720109477").is_ok());
        assert!(image_owner("amazon").is_ok());
        assert!(image_owner("canonical").is_err());
        assert!(is_zone_id("Z0123456789ABC"));
        assert!(!is_zone_id("example.org"));
    }
}
