//! The starter spec: the answers written into a commented template.
//!
//! The template is `starter.yaml`; `{{name}}` marks each place an answer
//! or a figure derived from one goes. Answers are written as YAML
//! scalars that cannot change the file's structure (quoted unless plain
//! text is safe), and the result is loaded like any spec before it is
//! written, so init never writes a spec that `hubform validate` refuses.

use hubform_core::graph::Desired;
use hubform_core::spec;

const TEMPLATE: &str = include_str!("starter.yaml");

/// A documentation address (RFC 5737): SSH is open to nobody until the
/// lecturer puts their own address there.
pub const SSH_PLACEHOLDER: &str = "203.0.113.7/32";
/// A name under the reserved `example.org`: a placeholder to replace.
pub const DOMAIN_PLACEHOLDER: &str = "jupyter.example.org";
/// A placeholder contact; Let's Encrypt refuses `example.org` addresses.
pub const EMAIL_PLACEHOLDER: &str = "you@example.org";

/// What the lecturer answered (or the defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answers {
    /// The workshop's name.
    pub workshop: String,
    /// The AWS Region.
    pub region: String,
    /// How many participants to expect.
    pub users: u32,
    /// The DNS name participants open.
    pub domain: String,
    /// The JupyterHub admin.
    pub admin: String,
    /// The Let's Encrypt contact.
    pub email: String,
    /// The CIDR block that may SSH to the server.
    pub ssh_from: String,
}

/// An instance type fit for a number of users, after the manual's guide
/// (about 10 users on a t3.small, 20 and more on a t3.xlarge). Nothing
/// smaller than a t3.small: TLJH's install runs out of memory in 1 GiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// The instance type.
    pub instance_type: &'static str,
    /// Its virtual CPUs.
    pub vcpus: u32,
    /// Its memory in GiB.
    pub memory_gib: u32,
    /// Whole US dollars a month, running all month, on demand in
    /// us-east-1 (Linux, 730 hours).
    pub monthly_usd: u32,
    /// The memory limit of one participant's server (`limits.memory`).
    pub user_memory: &'static str,
}

/// From the fewest users up: the largest number each size serves.
const SIZES: [(u32, Size); 5] = [
    (10, size("t3.small", 2, 2, 15, "1G")),
    (15, size("t3.medium", 2, 4, 30, "1G")),
    (19, size("t3.large", 2, 8, 61, "2G")),
    (40, size("t3.xlarge", 4, 16, 121, "4G")),
    (u32::MAX, size("t3.2xlarge", 8, 32, 243, "4G")),
];

const fn size(
    instance_type: &'static str,
    vcpus: u32,
    memory_gib: u32,
    monthly_usd: u32,
    user_memory: &'static str,
) -> Size {
    Size {
        instance_type,
        vcpus,
        memory_gib,
        monthly_usd,
        user_memory,
    }
}

/// The size for `users` participants.
pub fn size_for(users: u32) -> Size {
    SIZES
        .iter()
        .find(|(most, _)| users <= *most)
        .map_or(SIZES[SIZES.len() - 1].1, |(_, size)| *size)
}

/// The starter spec for `answers`. `file` is the spec's name as the
/// lecturer gave it (for the commands in its opening comment), `schema`
/// the `$schema` of the editor comment.
pub fn render(answers: &Answers, file: &str, schema: &str) -> String {
    let size = size_for(answers.users);
    let figures = [
        ("schema", schema.to_owned()),
        ("file", file.to_owned()),
        ("workshop", answers.workshop.clone()),
        ("region", scalar(&answers.region)),
        ("users", answers.users.to_string()),
        ("type", size.instance_type.to_owned()),
        ("vcpus", size.vcpus.to_string()),
        ("memory_gib", size.memory_gib.to_string()),
        ("monthly", size.monthly_usd.to_string()),
        ("memory", size.user_memory.to_owned()),
        ("domain", scalar(&answers.domain)),
        ("domain_note", domain_note(answers).to_owned()),
        ("admin", scalar(&answers.admin)),
        ("email", scalar(&answers.email)),
        ("email_note", email_note(answers).to_owned()),
        ("ssh_from", scalar(&answers.ssh_from)),
        ("ssh_note", ssh_note(answers).to_owned()),
        ("replace_note", replace_note(answers).to_owned()),
    ];

    let mut text = TEMPLATE.to_owned();
    for (name, value) in figures {
        text = text.replace(&format!("{{{{{name}}}}}"), &value);
    }
    text
}

/// Whether any answer is still a placeholder.
pub fn has_placeholders(answers: &Answers) -> bool {
    answers.ssh_from == SSH_PLACEHOLDER
        || answers.domain == DOMAIN_PLACEHOLDER
        || answers.email == EMAIL_PLACEHOLDER
}

fn replace_note(answers: &Answers) -> &'static str {
    if has_placeholders(answers) {
        "# Look for REPLACE below: placeholders to change before you apply.\n"
    } else {
        ""
    }
}

fn ssh_note(answers: &Answers) -> &'static str {
    if answers.ssh_from == SSH_PLACEHOLDER {
        "REPLACE 203.0.113.7/32, a documentation address that reaches\n      \
         # nobody, with your public address and /32 (`curl\n      \
         # https://checkip.amazonaws.com` prints it). 0.0.0.0/0 would let\n      \
         # the whole internet try to log in."
    } else {
        "Your address when this file was written: change it when yours\n      \
         # changes (`curl https://checkip.amazonaws.com` prints it)."
    }
}

fn domain_note(answers: &Answers) -> &'static str {
    if answers.domain == DOMAIN_PLACEHOLDER {
        "  # REPLACE with your name"
    } else {
        ""
    }
}

fn email_note(answers: &Answers) -> &'static str {
    if answers.email == EMAIL_PLACEHOLDER {
        "  # REPLACE: Let's Encrypt refuses it"
    } else {
        ""
    }
}

/// `text` as a YAML scalar: plain when that is safe in block and flow
/// context, else double-quoted (a JSON string is a YAML one).
fn scalar(text: &str) -> String {
    let plain = text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._@/+-".contains(c));
    if plain {
        text.to_owned()
    } else {
        serde_json::Value::from(text).to_string()
    }
}

/// Why `spec_text` is not a spec hubform accepts: the messages of its
/// problems (without positions: the lecturer did not write the file).
pub fn problems(spec_text: &str) -> Vec<String> {
    let spec = match spec::parse(spec_text, "starter") {
        Ok(spec) => spec,
        Err(e) => {
            let messages: Vec<String> =
                e.diagnostics().iter().map(|d| d.message.clone()).collect();
            return if messages.is_empty() {
                vec![e.to_string()]
            } else {
                messages
            };
        }
    };
    match Desired::from_spec(&spec) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

/// Why `workshop` is no workshop name, in the spec loader's words.
pub fn workshop_problem(workshop: &str) -> Option<String> {
    let text = format!("workshop: {}\nregion: us-east-1\n", scalar(workshop));
    problems(&text).into_iter().next()
}

/// Why `region` is no Region code, in the spec loader's words.
pub fn region_problem(region: &str) -> Option<String> {
    let text = format!("workshop: demo\nregion: {}\n", scalar(region));
    problems(&text).into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers() -> Answers {
        Answers {
            workshop: "demo".into(),
            region: "eu-central-1".into(),
            users: 10,
            domain: DOMAIN_PLACEHOLDER.into(),
            admin: "lecturer".into(),
            email: EMAIL_PLACEHOLDER.into(),
            ssh_from: SSH_PLACEHOLDER.into(),
        }
    }

    #[test]
    fn sizes_follow_the_manuals_guide() {
        assert_eq!(size_for(1).instance_type, "t3.small");
        assert_eq!(size_for(10).instance_type, "t3.small");
        assert_eq!(size_for(11).instance_type, "t3.medium");
        assert_eq!(size_for(19).instance_type, "t3.large");
        assert_eq!(size_for(20).instance_type, "t3.xlarge");
        assert_eq!(size_for(41).instance_type, "t3.2xlarge");
        assert_eq!(size_for(u32::MAX).instance_type, "t3.2xlarge");
    }

    #[test]
    fn every_place_of_the_template_is_filled() {
        let text = render(&answers(), "demo.yaml", "./hubform.schema.json");
        assert!(!text.contains("{{"), "{text}");
        assert!(!text.contains("}}"), "{text}");
        assert_eq!(problems(&text), Vec::<String>::new());
    }

    #[test]
    fn lines_stay_within_80_columns() {
        let mut long = answers();
        long.ssh_from = "198.51.100.4/32".into();
        for a in [answers(), long] {
            let text = render(&a, "demo.yaml", "./hubform.schema.json");
            for line in text.lines() {
                assert!(line.chars().count() <= 80, "too long: {line}");
            }
        }
    }

    #[test]
    fn answers_cannot_change_the_structure() {
        let mut a = answers();
        a.admin = "lecturer, root".into();
        let text = render(&a, "demo.yaml", "s.json");
        assert!(text.contains("admins: [\"lecturer, root\"]"), "{text}");

        a.domain = "x.org }\nevil: 1".into();
        let text = render(&a, "demo.yaml", "s.json");
        assert!(!problems(&text).is_empty());
        assert!(!text.contains("\nevil: 1"));
    }

    #[test]
    fn names_and_regions_are_checked_by_the_loader() {
        assert_eq!(workshop_problem("demo-1"), None);
        let problem = workshop_problem("Demo").unwrap_or_default();
        assert!(problem.starts_with("invalid workshop name"), "{problem}");
        assert_eq!(region_problem("ap-south-1"), None);
        let problem = region_problem("mars").unwrap_or_default();
        assert!(problem.starts_with("invalid region"), "{problem}");
    }
}
