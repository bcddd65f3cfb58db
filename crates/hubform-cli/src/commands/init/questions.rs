//! The questions init asks, their defaults and the checks of answers.
//!
//! Answers come from flags first; `--yes` takes the defaults for the
//! rest, otherwise each is asked on the terminal with its default in
//! brackets. A refused answer is asked again on a terminal and is an
//! error when it came from a flag.

use std::io::{BufRead, Write};
use std::path::Path;

use hubform_core::spec::Cidr;

use super::starter::{self, Answers};
use crate::cli::InitArgs;

/// One question of init.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Question {
    Workshop,
    Region,
    Users,
    Domain,
    Admin,
    Email,
    SshFrom,
}

const QUESTIONS: [Question; 7] = [
    Question::Workshop,
    Question::Region,
    Question::Users,
    Question::Domain,
    Question::Admin,
    Question::Email,
    Question::SshFrom,
];

impl Question {
    /// What the terminal shows before the default.
    fn prompt(self) -> &'static str {
        match self {
            Question::Workshop => "Workshop name (lowercase, digits, '-')",
            Question::Region => "AWS Region",
            Question::Users => "Expected participants",
            Question::Domain => "DNS name participants open",
            Question::Admin => "JupyterHub admin's user name",
            Question::Email => "Email for Let's Encrypt",
            Question::SshFrom => {
                "Your public IP address for SSH (`curl \
                 https://checkip.amazonaws.com`)"
            }
        }
    }

    /// The flag that answers it.
    fn flag(self) -> &'static str {
        match self {
            Question::Workshop => "--workshop",
            Question::Region => "--region",
            Question::Users => "--users",
            Question::Domain => "--domain",
            Question::Admin => "--admin",
            Question::Email => "--email",
            Question::SshFrom => "--ssh-from",
        }
    }

    fn given(self, args: &InitArgs) -> Option<&str> {
        match self {
            Question::Workshop => args.workshop.as_deref(),
            Question::Region => args.region.as_deref(),
            Question::Users => args.users.as_deref(),
            Question::Domain => args.domain.as_deref(),
            Question::Admin => args.admin.as_deref(),
            Question::Email => args.email.as_deref(),
            Question::SshFrom => args.ssh_from.as_deref(),
        }
    }

    fn current(self, answers: &Answers) -> String {
        match self {
            Question::Workshop => answers.workshop.clone(),
            Question::Region => answers.region.clone(),
            Question::Users => answers.users.to_string(),
            Question::Domain => answers.domain.clone(),
            Question::Admin => answers.admin.clone(),
            Question::Email => answers.email.clone(),
            Question::SshFrom => answers.ssh_from.clone(),
        }
    }

    /// Sets `answer` into `answers` when hubform accepts it, else says
    /// why not.
    fn set(self, answers: &mut Answers, answer: &str) -> Result<(), String> {
        let answer = answer.trim();
        let mut next = answers.clone();
        match self {
            Question::Workshop => {
                if let Some(problem) = starter::workshop_problem(answer) {
                    return Err(problem);
                }
                next.workshop = answer.to_owned();
            }
            Question::Region => {
                if let Some(problem) = starter::region_problem(answer) {
                    return Err(problem);
                }
                next.region = answer.to_owned();
            }
            Question::Users => next.users = users(answer)?,
            Question::Domain => next.domain = answer.to_owned(),
            Question::Admin => next.admin = admin(answer)?,
            Question::Email => next.email = email(answer)?,
            Question::SshFrom => next.ssh_from = ssh_from(answer)?,
        }

        let text = starter::render(&next, "check.yaml", "s.json");
        match starter::problems(&text).into_iter().next() {
            Some(problem) => Err(problem),
            None => {
                *answers = next;
                Ok(())
            }
        }
    }
}

fn users(answer: &str) -> Result<u32, String> {
    match answer.parse::<u32>() {
        Ok(n @ 1..=1000) => Ok(n),
        _ => Err(format!(
            "\"{answer}\" is not a number of participants; expected a whole \
             number from 1 to 1000"
        )),
    }
}

/// A JupyterHub user name TLJH can make a Unix user of (`jupyter-NAME`,
/// at most 32 characters).
fn admin(answer: &str) -> Result<String, String> {
    let ok = answer.starts_with(|c: char| c.is_ascii_lowercase())
        && answer.len() <= 24
        && answer.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c)
        });
    if ok {
        Ok(answer.to_owned())
    } else {
        Err(format!(
            "invalid user name \"{answer}\"; expected up to 24 lowercase \
             letters, digits, '.', '_' or '-', starting with a letter"
        ))
    }
}

fn email(answer: &str) -> Result<String, String> {
    let ok = match answer.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !answer.chars().any(|c| c.is_whitespace() || c == '"')
        }
        None => false,
    };
    if ok {
        Ok(answer.to_owned())
    } else {
        Err(format!(
            "invalid email address \"{answer}\"; expected NAME@DOMAIN, \
             where Let's Encrypt can reach you"
        ))
    }
}

/// A CIDR block; a bare address stands for itself alone.
fn ssh_from(answer: &str) -> Result<String, String> {
    let block = match answer.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => format!("{answer}/32"),
        Ok(std::net::IpAddr::V6(_)) => format!("{answer}/128"),
        Err(_) => answer.to_owned(),
    };
    Cidr::parse(&block).map(|cidr| cidr.to_string())
}

/// The answers before anything is asked: the spec file's name as the
/// workshop's when it is one, the Region of the AWS variables or
/// us-east-1, 10 participants, and placeholders for what only the
/// lecturer knows.
pub fn defaults(spec: &Path, env_region: Option<String>) -> Answers {
    let stem = spec.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let workshop = match starter::workshop_problem(stem) {
        None => stem.to_owned(),
        Some(_) => "my-workshop".to_owned(),
    };
    let region = env_region
        .filter(|r| starter::region_problem(r).is_none())
        .unwrap_or_else(|| "us-east-1".to_owned());
    Answers {
        workshop,
        region,
        users: 10,
        domain: starter::DOMAIN_PLACEHOLDER.to_owned(),
        admin: "lecturer".to_owned(),
        email: starter::EMAIL_PLACEHOLDER.to_owned(),
        ssh_from: starter::SSH_PLACEHOLDER.to_owned(),
    }
}

/// Where answers come from and where questions go.
pub struct Terminal<'a> {
    /// The lecturer's answers, a line each.
    pub input: &'a mut dyn BufRead,
    /// Where questions and complaints go (stderr).
    pub output: &'a mut dyn Write,
}

/// The answers: `defaults` changed by the flags of `args`, then by the
/// lecturer on `terminal` unless `--yes`; without a terminal, refused
/// unless `--yes` or every answer came as a flag.
pub fn gather(
    args: &InitArgs,
    mut answers: Answers,
    terminal: Option<Terminal<'_>>,
) -> Result<Answers, String> {
    let mut open = Vec::new();
    for question in QUESTIONS {
        match question.given(args) {
            Some(given) => question
                .set(&mut answers, given)
                .map_err(|problem| format!("{}: {problem}", question.flag()))?,
            None => open.push(question),
        }
    }
    if args.yes || open.is_empty() {
        return Ok(answers);
    }

    let Some(terminal) = terminal else {
        let flags: Vec<&str> = open.iter().map(|q| q.flag()).collect();
        return Err(format!(
            "init asks questions and there is no terminal to ask on; run \
             `hubform init` in a terminal, or pass --yes to take the \
             defaults (answers can be given as {})",
            flags.join(", ")
        ));
    };
    let Terminal { input, output } = terminal;
    for question in open {
        ask(question, &mut answers, &mut *input, &mut *output)?;
    }
    Ok(answers)
}

/// Asks `question` until the answer is accepted; an empty answer takes
/// the default.
fn ask(
    question: Question,
    answers: &mut Answers,
    input: &mut dyn BufRead,
    output: &mut dyn Write,
) -> Result<(), String> {
    let unanswered = || {
        format!(
            "no answer to \"{}\" (end of input); run `hubform init` again, \
             or pass --yes to take the defaults",
            question.prompt()
        )
    };
    loop {
        let default = question.current(answers);
        let _ = write!(output, "{} [{default}]: ", question.prompt());
        let _ = output.flush();

        let mut line = String::new();
        match input.read_line(&mut line) {
            Ok(0) => return Err(unanswered()),
            Ok(_) => {}
            Err(e) => return Err(format!("cannot read the answer: {e}")),
        }
        if line.trim().is_empty() {
            return Ok(());
        }
        match question.set(answers, &line) {
            Ok(()) => return Ok(()),
            Err(problem) => {
                let _ = writeln!(output, "  {problem}; try again");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn args() -> InitArgs {
        InitArgs {
            spec: PathBuf::from("python-intro.yaml"),
            yes: false,
            force: false,
            workshop: None,
            region: None,
            users: None,
            domain: None,
            admin: None,
            email: None,
            ssh_from: None,
            schema: None,
        }
    }

    /// The answers to `typed` lines on a terminal, and what it showed.
    fn asked(
        args: &InitArgs,
        typed: &str,
    ) -> (Result<Answers, String>, String) {
        let mut input = typed.as_bytes();
        let mut output = Vec::new();
        let defaults = defaults(&args.spec, None);
        let terminal = Terminal {
            input: &mut input,
            output: &mut output,
        };
        let answers = gather(args, defaults, Some(terminal));
        (answers, String::from_utf8_lossy(&output).into_owned())
    }

    #[test]
    fn defaults_come_from_the_file_name_and_the_environment() {
        let a = defaults(Path::new("dir/python-intro.yaml"), None);
        assert_eq!(a.workshop, "python-intro");
        assert_eq!(a.region, "us-east-1");
        assert_eq!(a.users, 10);

        let a =
            defaults(Path::new("Kurs 2025.yaml"), Some("ap-south-1".into()));
        assert_eq!(a.workshop, "my-workshop");
        assert_eq!(a.region, "ap-south-1");
        let a = defaults(Path::new("w.yaml"), Some("nowhere".into()));
        assert_eq!(a.region, "us-east-1");
    }

    #[test]
    fn empty_answers_take_the_defaults_shown_in_brackets() {
        let (answers, shown) = asked(&args(), "\n\n\n\n\n\n\n");
        assert_eq!(answers, Ok(defaults(Path::new("python-intro.yaml"), None)));
        assert!(shown.contains("Workshop name"), "{shown}");
        assert!(shown.contains("[python-intro]: "), "{shown}");
        assert!(shown.contains("[us-east-1]: "), "{shown}");
        assert!(shown.contains("[203.0.113.7/32]: "), "{shown}");
    }

    #[test]
    fn a_refused_answer_is_asked_again() {
        let typed = "Kurs!\nkurs\nmars\neu-west-1\nmany\n0\n25\n\n\
                     Root User\nteacher\nnobody\nt@uni.example.edu\n\
                     198.51.100.4/24\n198.51.100.4\n";
        let (answers, shown) = asked(&args(), typed);
        let answers = answers.unwrap_or_else(|e| panic!("{e}\n{shown}"));
        assert_eq!(answers.workshop, "kurs");
        assert_eq!(answers.region, "eu-west-1");
        assert_eq!(answers.users, 25);
        assert_eq!(answers.domain, starter::DOMAIN_PLACEHOLDER);
        assert_eq!(answers.admin, "teacher");
        assert_eq!(answers.email, "t@uni.example.edu");
        assert_eq!(answers.ssh_from, "198.51.100.4/32");
        assert_eq!(shown.matches("try again").count(), 7, "{shown}");
        assert!(shown.contains("invalid workshop name \"Kurs!\""));
        assert!(shown.contains("has host bits set; did you mean"));
    }

    #[test]
    fn the_end_of_input_is_no_answer() {
        let (answers, _) = asked(&args(), "kurs\n");
        let err = answers.err().unwrap_or_default();
        assert!(err.contains("no answer to \"AWS Region\""), "{err}");
    }

    #[test]
    fn flags_answer_and_are_not_asked() {
        let mut args = args();
        args.workshop = Some("kurs".into());
        args.users = Some("20".into());
        args.ssh_from = Some("2001:db8::7".into());
        let (answers, shown) = asked(&args, "\n\n\n\n\n");
        let answers = answers.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(answers.workshop, "kurs");
        assert_eq!(answers.users, 20);
        assert_eq!(answers.ssh_from, "2001:db8::7/128");
        assert!(!shown.contains("Workshop name"), "{shown}");
        assert!(!shown.contains("participants ["), "{shown}");
    }

    #[test]
    fn a_refused_flag_is_an_error_naming_it() {
        let mut args = args();
        args.yes = true;
        args.domain = Some("localhost".into());
        let err = gather(&args, defaults(&args.spec, None), None)
            .err()
            .unwrap_or_default();
        assert!(err.starts_with("--domain: invalid"), "{err}");
    }

    #[test]
    fn without_a_terminal_only_yes_or_every_flag_will_do() {
        let defaults = || defaults(Path::new("w.yaml"), None);
        let err = gather(&args(), defaults(), None).err().unwrap_or_default();
        assert!(err.contains("pass --yes"), "{err}");

        let mut yes = args();
        yes.yes = true;
        assert_eq!(gather(&yes, defaults(), None), Ok(defaults()));

        let mut all = args();
        all.workshop = Some("kurs".into());
        all.region = Some("eu-west-1".into());
        all.users = Some("5".into());
        all.domain = Some("hub.uni.example.edu".into());
        all.admin = Some("teacher".into());
        all.email = Some("t@uni.example.edu".into());
        all.ssh_from = Some("198.51.100.0/24".into());
        assert!(gather(&all, defaults(), None).is_ok());
    }
}
