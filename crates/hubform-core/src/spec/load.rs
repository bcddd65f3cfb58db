//! Reading a spec file: bytes to text to [`Spec`], then [`validate`].
//!
//! Everything that can go wrong becomes a [`Diagnostic`] at a position:
//! a file that is too big, not UTF-8, binary or empty; the first syntax or
//! structure error serde-saphyr meets (serde stops there); then every
//! semantic error together.

use std::borrow::Cow;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_saphyr::{DuplicateKeyPolicy, MessageFormatter, Options};

use super::error::SpecError;
use super::shape;
use super::spanned::Pos;
use super::types::Spec;
use super::validate::{check_region, validate};

/// Largest spec accepted, in bytes. A workshop fits in a few kilobytes; a
/// bigger file is a mistake (a wrong path, a log, a disk image).
pub const MAX_SPEC_BYTES: usize = 1 << 20;

/// A valid spec and where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The spec.
    pub spec: Spec,
    /// The spec file as the user named it.
    pub path: PathBuf,
    /// The spec's folder (absolute when the working directory is known):
    /// relative paths in the spec start here.
    pub dir: PathBuf,
}

impl Loaded {
    /// The spec file's name as used in diagnostics.
    pub fn file(&self) -> String {
        self.path.display().to_string()
    }

    /// Where a path written in the spec points: `~` and `~/…` from
    /// `$HOME`, a relative path from the spec's folder, an absolute path
    /// as written. Without `$HOME`, `~/…` is taken as written.
    pub fn resolve(&self, p: &str) -> PathBuf {
        resolve_path(&self.dir, p)
    }

    /// Refuses a `--region` other than the spec's; see [`check_region`].
    pub fn check_region(
        &self,
        cli_region: Option<&str>,
    ) -> Result<(), SpecError> {
        check_region(&self.spec, &self.file(), cli_region)
    }
}

/// Where a path written in a spec whose folder is `dir` points: `~` and
/// `~/…` from `$HOME`, a relative path from `dir`, an absolute path as
/// written. Without `$HOME`, `~/…` is taken as written.
pub fn resolve_path(dir: &Path, p: &str) -> PathBuf {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
    match (p.strip_prefix('~'), home) {
        (Some(""), Some(home)) => PathBuf::from(home),
        (Some(rest), Some(home)) if rest.starts_with('/') => {
            PathBuf::from(home).join(rest.trim_start_matches('/'))
        }
        (Some(rest), None) if rest.is_empty() || rest.starts_with('/') => {
            PathBuf::from(p)
        }
        _ => dir.join(p),
    }
}

/// Reads, parses and validates the spec at `path`.
pub fn load(path: &Path) -> Result<Loaded, SpecError> {
    let file = path.display().to_string();
    tracing::debug!(spec = %file, "loading spec");

    let bytes = read_bounded(path).map_err(|source| SpecError::Read {
        file: file.clone(),
        source,
    })?;
    let spec = parse_bytes(&bytes, &file)?;

    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dir = std::path::absolute(&parent).unwrap_or(parent);
    Ok(Loaded {
        spec,
        path: path.to_path_buf(),
        dir,
    })
}

/// Reads at most one byte more than [`MAX_SPEC_BYTES`], so that a huge or
/// endless file (a device, a pipe) is refused without reading it all.
fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    File::open(path)?
        .take(MAX_SPEC_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Parses and validates spec bytes; `file` names them in diagnostics.
pub fn parse_bytes(bytes: &[u8], file: &str) -> Result<Spec, SpecError> {
    check_size(bytes.len(), file)?;
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(SpecError::at(
            file,
            Pos::new(1, 1),
            "the file is UTF-16 text; expected UTF-8",
        ));
    }

    match std::str::from_utf8(bytes) {
        Ok(text) => parse(text, file),
        Err(err) => {
            let valid = &bytes[..err.valid_up_to()];
            let prefix = String::from_utf8_lossy(valid);
            let byte = bytes[err.valid_up_to()];
            Err(SpecError::at(
                file,
                pos_after(&prefix),
                format!(
                    "invalid UTF-8 (byte 0x{byte:02x}); expected a UTF-8 \
                     text file"
                ),
            ))
        }
    }
}

/// Parses and validates spec text; `file` names it in diagnostics.
pub fn parse(text: &str, file: &str) -> Result<Spec, SpecError> {
    check_size(text.len(), file)?;
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    check_text(text, file)?;

    let spec = deserialize(text, file)?;
    validate(&spec, file)?;
    Ok(spec)
}

fn check_size(len: usize, file: &str) -> Result<(), SpecError> {
    if len <= MAX_SPEC_BYTES {
        return Ok(());
    }
    Err(SpecError::at(
        file,
        Pos::new(1, 1),
        format!(
            "the file is larger than 1 MiB ({MAX_SPEC_BYTES} bytes); \
             expected a workshop spec of a few kilobytes"
        ),
    ))
}

/// Refuses binary data and text without a single YAML node.
fn check_text(text: &str, file: &str) -> Result<(), SpecError> {
    // YAML forbids C0 controls other than tab, LF and CR, and DEL; the
    // parser would stumble on them with a less helpful message.
    let bad = text.char_indices().find(|&(_, c)| {
        (c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\r'))
            || ('\u{80}'..='\u{9f}').contains(&c) && c != '\u{85}'
    });
    if let Some((at, c)) = bad {
        let message = if c == '\0' {
            "found a NUL byte: this looks like binary data; expected YAML \
             text"
                .to_owned()
        } else {
            format!(
                "control character U+{:04X} is not allowed; expected YAML \
                 text",
                u32::from(c)
            )
        };
        return Err(SpecError::at(file, pos_after(&text[..at]), message));
    }

    let blank = text.lines().all(|line| {
        let line = line.trim();
        line.is_empty()
            || line.starts_with('#')
            || line == "---"
            || line == "..."
    });
    if blank {
        return Err(SpecError::at(
            file,
            Pos::new(1, 1),
            "the spec is empty; expected a mapping with at least workshop \
             and region",
        ));
    }
    Ok(())
}

/// The position of the character that follows `prefix`.
fn pos_after(prefix: &str) -> Pos {
    let line = prefix.matches('\n').count() + 1;
    let last_line = prefix.rsplit('\n').next().unwrap_or("");
    let column = last_line.chars().count() + 1;
    Pos::new(line as u64, column as u64)
}

fn deserialize(text: &str, file: &str) -> Result<Spec, SpecError> {
    let mut options = Options::default();
    options.duplicate_keys = DuplicateKeyPolicy::Error;
    options.strict_booleans = true;
    options.with_snippet = false;

    serde_saphyr::from_str_with_options(text, options).map_err(|err| {
        let mut pos = err
            .location()
            .map(|at| Pos::new(at.line(), at.column()))
            .unwrap_or_default();

        if let Some(tab) = indenting_tab(text, pos.line + 1) {
            let message = "a tab indents this line; expected spaces (YAML \
                           does not indent with tabs)";
            return SpecError::at(file, tab, message);
        }
        use serde_saphyr::Error as E;
        let mut message = structural_message(&err);
        match original(&err) {
            E::SerdeMissingField { .. } => {
                pos = shape::mapping_start(text, pos).unwrap_or(pos);
            }
            E::InvalidScalar { .. }
            | E::InvalidBooleanStrict { .. }
            | E::NullIntoString { .. }
            | E::Unexpected { .. }
            | E::SerdeInvalidType { .. }
            | E::SerdeInvalidValue { .. } => {
                if let Some(key) = shape::key_of(text, pos) {
                    message = format!("{key}: {message}");
                }
            }
            _ => {}
        }
        SpecError::at(file, pos, message)
    })
}

/// The first tab in the indentation of a line up to `last_line`: the
/// likely cause of a parse error near it.
fn indenting_tab(text: &str, last_line: u64) -> Option<Pos> {
    text.lines().zip(1..=last_line).find_map(|(line, number)| {
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        let column = line[..indent].find('\t')?;
        Some(Pos::new(number, column as u64 + 1))
    })
}

/// The error itself, without the wrappers that add alias positions or a
/// snippet.
fn original(mut err: &serde_saphyr::Error) -> &serde_saphyr::Error {
    use serde_saphyr::Error as E;
    while let E::AliasError { error, .. } | E::WithSnippet { error, .. } = err {
        err = error;
    }
    err
}

/// A lowercase phrase for a serde-saphyr error, without its position.
fn structural_message(err: &serde_saphyr::Error) -> String {
    use serde_saphyr::Error as E;

    let message: Cow<'_, str> = match original(err) {
        E::SerdeUnknownField {
            field, expected, ..
        } => if expected.is_empty() {
            format!("unknown field \"{field}\"; no fields are allowed here")
        } else {
            format!(
                "unknown field \"{field}\"; expected one of: {}",
                expected.join(", ")
            )
        }
        .into(),
        E::SerdeMissingField { field, .. } => {
            format!("missing field \"{field}\"; it is required here").into()
        }
        E::DuplicateMappingKey { key: Some(key), .. } => format!(
            "duplicate key \"{key}\"; a key may appear only once in a mapping"
        )
        .into(),
        E::DuplicateMappingKey { key: None, .. } => {
            "duplicate key; a key may appear only once in a mapping".into()
        }
        E::InvalidScalar { ty, .. } => expected_scalar(ty).into(),
        E::InvalidBooleanStrict { .. } => "expected true or false".into(),
        E::NullIntoString { .. } => "expected a string, found nothing".into(),
        E::Unexpected { expected, .. } => format!(
            "expected {}",
            match *expected {
                "string scalar" => "a string",
                "mapping start" => "a mapping of keys to values",
                "sequence start" => "a list",
                other => other,
            }
        )
        .into(),
        E::SerdeInvalidType {
            unexpected,
            expected,
            ..
        }
        | E::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => format!("expected {expected}, found {unexpected}").into(),
        E::Eof { .. } => "unexpected end of file".into(),
        E::MultipleDocuments { .. } => {
            "expected one YAML document, found a second one".into()
        }
        E::UnknownAnchor { .. } => {
            "this alias names no anchor defined before it".into()
        }
        other => serde_saphyr::UserMessageFormatter.format_message(other),
    };
    finish(&message)
}

/// What a scalar of the Rust type `ty` should have looked like.
fn expected_scalar(ty: &str) -> String {
    match ty {
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => {
            "expected an integer".to_owned()
        }
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => {
            "expected a whole number (0 or more)".to_owned()
        }
        "f32" | "f64" => "expected a number".to_owned(),
        "bool" => "expected true or false".to_owned(),
        other => format!("expected a value of type {other}"),
    }
}

/// Strips a trailing " at line L, column C" if a message carries one,
/// escapes control characters and lowercases the first letter.
fn finish(message: &str) -> String {
    let message = match message.rfind(" at line ") {
        Some(at) if message[at..].contains(", column ") => &message[..at],
        _ => message,
    };
    let mut out = String::with_capacity(message.len());
    for c in message.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }

    // Lowercase a leading capital, but leave an acronym ("YAML") alone.
    let mut chars = out.chars();
    match (chars.next(), chars.next()) {
        (None, _) => "invalid YAML".to_owned(),
        (Some(first), second)
            if first.is_uppercase()
                && !second.is_some_and(char::is_uppercase) =>
        {
            first.to_lowercase().chain(out.chars().skip(1)).collect()
        }
        _ => out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters() {
        assert_eq!(pos_after(""), Pos::new(1, 1));
        assert_eq!(pos_after("ab\ncdé"), Pos::new(2, 4));
    }

    #[test]
    fn finish_strips_the_location_suffix() {
        assert_eq!(finish("Invalid i64 at line 2, column 7"), "invalid i64");
        assert_eq!(finish("tab\there"), "tab\\there");
        assert_eq!(finish("YAML is \"odd\""), "YAML is \"odd\"");
    }

    #[test]
    fn resolve_starts_at_the_spec_folder() {
        let loaded = Loaded {
            spec: crate::spec::tests::example_spec(),
            path: PathBuf::from("/w/specs/a.yaml"),
            dir: PathBuf::from("/w/specs"),
        };
        assert_eq!(
            loaded.resolve("keys/a.pem"),
            PathBuf::from("/w/specs/keys/a.pem")
        );
        assert_eq!(loaded.resolve("/etc/k.pem"), PathBuf::from("/etc/k.pem"));
        assert_eq!(loaded.resolve("~x"), PathBuf::from("/w/specs/~x"));
        if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            let home = PathBuf::from(home);
            assert_eq!(loaded.resolve("~/k.pem"), home.join("k.pem"));
            assert_eq!(loaded.resolve("~"), home);
        }
    }

    #[test]
    fn too_big_is_refused_before_parsing() {
        let text = format!("# {}\n", "x".repeat(MAX_SPEC_BYTES));
        let err = parse(&text, "big.yaml").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("big.yaml:1:1: the file is larger"));
    }

    #[test]
    fn utf16_is_named() {
        let err = parse_bytes(&[0xFF, 0xFE, b'a', 0], "u.yaml").unwrap_err();
        assert!(err.to_string().contains("UTF-16"), "{err}");
    }

    #[test]
    fn a_missing_file_is_a_read_error() {
        let err = load(Path::new("/nonexistent/hubform.yaml")).unwrap_err();
        assert!(matches!(err, SpecError::Read { .. }));
        assert_eq!(
            err.to_string(),
            "/nonexistent/hubform.yaml: cannot read the spec"
        );
    }
}
