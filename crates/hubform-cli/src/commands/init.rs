//! `hubform init [FILE]`: writes a commented starter spec.
//!
//! It asks the workshop's name, Region, expected participants, DNS name,
//! admin, Let's Encrypt contact and the lecturer's address for SSH
//! (`questions`), fills them into the template (`starter`), checks the
//! result as `hubform validate` would and writes it, never over an
//! existing file without `--force`. Beside it goes `hubform.schema.json`,
//! which the spec's first line names for editors (yaml-language-server),
//! unless `--schema` names another.

use std::fs::OpenOptions;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use crate::cli::InitArgs;
use crate::commands::CliError;

mod questions;
mod starter;

/// The schema's file name beside the spec.
const SCHEMA_FILE: &str = "hubform.schema.json";

pub fn run(args: &InitArgs) -> Result<ExitCode, CliError> {
    let shown = args.spec.display().to_string();
    if args.spec.exists() && !args.force {
        return Err(CliError::Other(format!(
            "{shown} already exists; init never overwrites a file: name \
             another file (`hubform init FILE`), or pass --force to replace \
             it"
        )));
    }

    if args.spec.file_name().is_some_and(|n| n == SCHEMA_FILE) {
        return Err(CliError::Other(format!(
            "{shown}: init writes the schema under that name beside the \
             spec; name the spec something else, such as workshop.yaml"
        )));
    }

    let answers = answers(args)?;
    let schema = args
        .schema
        .clone()
        .unwrap_or_else(|| format!("./{SCHEMA_FILE}"));
    let text = starter::render(&answers, &one_line(&shown), &one_line(&schema));
    if let Some(problem) = starter::problems(&text).into_iter().next() {
        return Err(CliError::Other(format!(
            "the starter spec would not be valid ({problem}); change that \
             answer and run init again"
        )));
    }

    write(&args.spec, &text, args.force)?;
    let schema_note = match &args.schema {
        Some(_) => None,
        None => write_schema(&args.spec, args.force)?,
    };
    report(&shown, &answers, schema_note);
    Ok(ExitCode::SUCCESS)
}

/// The answers from the flags, and from the terminal unless `--yes`.
fn answers(args: &InitArgs) -> Result<starter::Answers, CliError> {
    let env_region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()));
    let defaults = questions::defaults(&args.spec, env_region);

    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    let mut input = stdin.lock();
    let mut output = std::io::stderr();
    let terminal = interactive.then_some(questions::Terminal {
        input: &mut input,
        output: &mut output,
    });
    questions::gather(args, defaults, terminal).map_err(CliError::Other)
}

/// `text` on one line, for a comment of the spec.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], "?")
}

/// Writes `text` to `path`: only as a new file unless `force`.
fn write(path: &Path, text: &str, force: bool) -> Result<(), CliError> {
    let shown = path.display();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            CliError::Other(format!(
                "cannot create the folder {}: {e}",
                dir.display()
            ))
        })?;
    }
    let mut options = OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(path).map_err(|e| {
        CliError::Other(match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                format!("{shown} already exists; pass --force to replace it")
            }
            _ => format!("cannot write {shown}: {e}"),
        })
    })?;
    file.write_all(text.as_bytes())
        .map_err(|e| CliError::Other(format!("cannot write {shown}: {e}")))
}

/// Writes this hubform's schema beside `spec` unless the same is there.
/// A different one (from another hubform version) is replaced only with
/// `force`; otherwise the returned note says how to refresh it.
fn write_schema(spec: &Path, force: bool) -> Result<Option<String>, CliError> {
    let path = spec.with_file_name(SCHEMA_FILE);
    let fresh = hubform_core::spec::json_schema();
    match std::fs::read_to_string(&path) {
        Ok(text) if text == fresh => Ok(None),
        Ok(_) if !force => Ok(Some(format!(
            "{} is not this hubform's schema (left as it is); refresh it \
             with `hubform schema > {}`",
            path.display(),
            path.display()
        ))),
        _ => {
            write(&path, &fresh, true)?;
            Ok(None)
        }
    }
}

/// Tells the lecturer what was written and what to do next.
fn report(
    shown: &str,
    answers: &starter::Answers,
    schema_note: Option<String>,
) {
    let size = starter::size_for(answers.users);
    outln!(
        "Wrote {shown}: workshop {} in {}, a {} for {} participants.",
        answers.workshop,
        answers.region,
        size.instance_type,
        answers.users
    );
    if let Some(note) = schema_note {
        outln!("Note: {note}.");
    }

    let placeholders = [
        (answers.ssh_from == starter::SSH_PLACEHOLDER)
            .then_some("your public address for SSH (the rule of port 22)"),
        (answers.domain == starter::DOMAIN_PLACEHOLDER)
            .then_some("the DNS name participants open (dns.name)"),
        (answers.email == starter::EMAIL_PLACEHOLDER)
            .then_some("the contact for Let's Encrypt (letsencrypt_email)"),
    ];
    if placeholders.iter().any(Option::is_some) {
        outln!("Before you apply, replace what is marked REPLACE in it:");
        for placeholder in placeholders.into_iter().flatten() {
            outln!("  - {placeholder}");
        }
    }
    outln!("Next: hubform validate {shown} && hubform plan {shown}");
}
