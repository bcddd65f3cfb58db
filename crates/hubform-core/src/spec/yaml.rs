//! YAML text to a [`Spec`] with serde-saphyr, and its errors in plain
//! words.
//!
//! A syntax error anywhere in the file is reported before a structure
//! error: serde stops at the first problem it meets, and a field that
//! seems missing is often only the symptom of a line indented wrongly
//! further down. Nesting and alias expansion are bounded, so that a
//! hostile file is refused quickly instead of using up the stack or the
//! memory.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::granit_parser::{ErrorKind, ScanError};
use serde_saphyr::options::AliasLimits;
use serde_saphyr::{
    Budget, DuplicateKeyPolicy, ExternalMessageSource, MessageFormatter,
    Options,
};

use super::error::SpecError;
use super::shape;
use super::spanned::Pos;
use super::types::Spec;

/// Deepest nesting of mappings and lists accepted. A spec nests six
/// levels at most; the bound keeps a hostile file from using up the stack.
pub const MAX_DEPTH: usize = 16;

/// Most YAML events that aliases may replay in one spec. A spec that
/// shares a list or two by alias replays a few dozen; an alias bomb
/// ("billion laughs") is refused at this bound instead of expanded.
pub const MAX_REPLAYED_EVENTS: usize = 10_000;

type E = serde_saphyr::Error;

/// How serde-saphyr reads a spec: strict booleans, duplicate keys
/// refused, and bounds on nesting and alias expansion.
pub(super) fn options() -> Options {
    let mut budget = Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.flow_nesting_limit = MAX_DEPTH;
    let mut aliases = AliasLimits::default();
    aliases.max_total_replayed_events = MAX_REPLAYED_EVENTS;

    let mut options = Options::default();
    options.budget = Some(budget);
    options.alias_limits = aliases;
    options.duplicate_keys = DuplicateKeyPolicy::Error;
    options.strict_booleans = true;
    options.with_snippet = false;
    options
}

/// Deserializes spec text; the first syntax or structure problem becomes
/// one diagnostic of `file`.
pub(super) fn deserialize(text: &str, file: &str) -> Result<Spec, SpecError> {
    serde_saphyr::from_str_with_options(text, options()).map_err(|err| {
        let err = match is_syntax(&err) {
            true => err,
            false => syntax_error(text).unwrap_or(err),
        };
        diagnostic(text, file, &err)
    })
}

/// The file's first syntax error, if it has one.
fn syntax_error(text: &str) -> Option<E> {
    serde_saphyr::from_str_with_options::<IgnoredAny>(text, options())
        .err()
        .filter(is_syntax)
}

/// Whether the YAML text itself is broken, as opposed to well-formed YAML
/// of the wrong shape or beyond a limit.
fn is_syntax(err: &E) -> bool {
    match scan_error(err) {
        Some(scan) => *scan.kind() != ErrorKind::RecursionLimitExceeded,
        None => matches!(original(err), E::UnknownAnchor { .. }),
    }
}

/// The YAML parser's own error, when it is one.
fn scan_error(err: &E) -> Option<&ScanError> {
    match original(err) {
        E::ExternalMessage { source, .. } => match source.as_ref() {
            ExternalMessageSource::Parser(scan) => Some(scan),
            _ => None,
        },
        _ => None,
    }
}

fn diagnostic(text: &str, file: &str, err: &E) -> SpecError {
    let mut pos = err
        .location()
        .map(|at| Pos::new(at.line(), at.column()))
        .unwrap_or_default();

    if let Some((at, c)) = odd_indent(text, pos.line + 1) {
        let what = match c {
            '\t' => "a tab".to_owned(),
            '\u{a0}' => "a no-break space (U+00A0)".to_owned(),
            c => format!("the character U+{:04X}", u32::from(c)),
        };
        let message = format!(
            "{what} indents this line; expected spaces (YAML indents only \
             with spaces)"
        );
        return SpecError::at(file, at, message);
    }
    let mut message = structural_message(err);
    if let E::InvalidScalar { ty, .. } = original(err) {
        message = expected_scalar(ty, scalar_at(text, pos));
    }
    match original(err) {
        E::SerdeMissingField { .. } => {
            pos = shape::mapping_start(text, pos).unwrap_or(pos);
        }
        E::InvalidScalar { .. }
        | E::InvalidBooleanStrict { .. }
        | E::NullIntoString { .. }
        | E::Unexpected { .. }
        | E::Message { .. }
        | E::SerdeInvalidType { .. }
        | E::SerdeInvalidValue { .. } => {
            if let Some(key) = shape::key_of(text, pos) {
                message = format!("{key}: {message}");
            }
        }
        _ => {}
    }
    if let Some(note) = alias_note(text, pos) {
        message.push_str(&note);
    }
    SpecError::at(file, pos, message)
}

/// Where the value anchored on the line of `pos`, before it, is repeated:
/// serde-saphyr reports an error in a repeated value at the anchor, and
/// the mistake may be in how an alias uses it.
fn alias_note(text: &str, pos: Pos) -> Option<String> {
    let line = text.lines().nth((pos.line as usize).checked_sub(1)?)?;
    let before: String = line
        .chars()
        .take((pos.column as usize).saturating_sub(1))
        .collect();
    let anchor = before
        .split([' ', '[', '{', ','])
        .rfind(|token| token.starts_with('&'))?;
    let name = anchor.strip_prefix('&').filter(|n| !n.is_empty())?;

    let alias = format!("*{name}");
    let uses: Vec<String> = text
        .lines()
        .zip(1..)
        .skip(pos.line as usize)
        .flat_map(|(line, number)| {
            let alias = alias.as_str();
            let whole = move |at: usize| {
                let next = line[at + alias.len()..].chars().next();
                !next.is_some_and(|c| c.is_alphanumeric() || "-_".contains(c))
            };
            line.match_indices(alias)
                .filter(move |(at, _)| whole(*at))
                .map(move |(at, _)| {
                    let column = line[..at].chars().count() + 1;
                    format!("{number}:{column}")
                })
        })
        .collect();
    if uses.is_empty() {
        return None;
    }
    Some(format!(
        " (this value is anchored as &{name} and repeated by {alias} at {})",
        uses.join(", ")
    ))
}

/// The first tab or other non-space character (a no-break space, say) in
/// the indentation of a line up to `last_line`: the likely cause of a
/// parse error near it.
fn odd_indent(text: &str, last_line: u64) -> Option<(Pos, char)> {
    text.lines().zip(1..=last_line).find_map(|(line, number)| {
        let body = line.trim_start_matches(|c: char| c.is_whitespace());
        if body.is_empty() {
            return None;
        }
        let indent = &line[..line.len() - body.len()];
        let (at, c) = indent.char_indices().find(|&(_, c)| c != ' ')?;
        let column = indent[..at].chars().count() as u64 + 1;
        Some((Pos::new(number, column), c))
    })
}

/// The error itself, without the wrappers that add alias positions or a
/// snippet.
fn original(mut err: &E) -> &E {
    while let E::AliasError { error, .. } | E::WithSnippet { error, .. } = err {
        err = error;
    }
    err
}

/// A lowercase phrase for a serde-saphyr error, without its position.
fn structural_message(err: &E) -> String {
    if let Some(scan) = scan_error(err) {
        let message =
            parser_message(scan.kind()).unwrap_or_else(|| scan.info());
        return finish(&message);
    }
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
        E::InvalidScalar { ty, .. } => expected_scalar(ty, "").into(),
        E::InvalidBooleanStrict { .. } => "expected true or false".into(),
        E::NullIntoString { .. } => "expected a string, found nothing".into(),
        E::Unexpected { expected, .. } => format!(
            "expected {}",
            match *expected {
                "string scalar" => "a single value, not a list or mapping",
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
        E::Budget { breach, .. } => budget_message(breach).into(),
        E::AliasReplayLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. } => alias_bomb().into(),
        other => serde_saphyr::UserMessageFormatter.format_message(other),
    };
    finish(&message)
}

/// Plainer words for the YAML parser's errors that people meet most;
/// `None` keeps the parser's own message.
fn parser_message(kind: &ErrorKind) -> Option<String> {
    let message = match kind {
        ErrorKind::RecursionLimitExceeded => too_deep(),
        ErrorKind::MappingValueNotAllowed => {
            "a \"key: value\" is not allowed here; expected this line to be \
             indented like the other keys of its mapping"
                .to_owned()
        }
        ErrorKind::SimpleKeyExpected => "expected \"key: value\" here, with \
                                         a space after the colon"
            .to_owned(),
        ErrorKind::ExpectedBlockMappingKey => {
            "expected a key indented like the other keys of this mapping \
             (a list item \"- \" cannot stand among keys)"
                .to_owned()
        }
        ErrorKind::UnsupportedYamlMajorVersion => {
            "unsupported YAML version; expected %YAML 1.2, or no %YAML line"
                .to_owned()
        }
        ErrorKind::UnexpectedCharacter { character } => {
            let c = character.escape_default();
            format!(
                "'{c}' cannot start a value; expected the value in quotes \
                 (\"{c}...\")"
            )
        }
        ErrorKind::MisplacedFlowCollectionEnd => {
            "a closing bracket with no opening one; expected brackets in \
             pairs"
                .to_owned()
        }
        ErrorKind::UnclosedQuotedScalar => {
            "a quoted value that is never closed; expected a closing quote \
             on this line or a later one"
                .to_owned()
        }
        ErrorKind::UnknownQuotedScalarEscape => {
            "unknown escape in a double-quoted value; expected one of \\\\ \
             \\\" \\n \\t \\xXX \\uXXXX, or single quotes for a value with \
             backslashes"
                .to_owned()
        }
        ErrorKind::InvalidBlockScalarHeader => {
            "after | or > only an indentation digit, + or - may follow on \
             that line; expected the text on the next lines"
                .to_owned()
        }
        _ => return None,
    };
    Some(message)
}

/// What a breached serde-saphyr budget means for a spec.
fn budget_message(breach: &BudgetBreach) -> String {
    match breach {
        BudgetBreach::Depth { .. } => too_deep(),
        BudgetBreach::Aliases { .. }
        | BudgetBreach::AliasAnchorRatio { .. }
        | BudgetBreach::RecordedAnchorEvents { .. }
        | BudgetBreach::RecordedAnchorBytes { .. } => alias_bomb(),
        _ => "the YAML has too many nodes or too much text for a workshop \
              spec; expected a few kilobytes"
            .to_owned(),
    }
}

fn too_deep() -> String {
    format!(
        "mappings and lists nest more than {MAX_DEPTH} levels deep here; \
         expected a spec nested a few levels"
    )
}

fn alias_bomb() -> String {
    format!(
        "aliases here repeat more than {MAX_REPLAYED_EVENTS} YAML nodes (an \
         alias bomb?); expected aliases of small parts of a spec"
    )
}

/// What a scalar of the Rust type `ty` should have looked like; `found`
/// is the scalar's text, when known.
fn expected_scalar(ty: &str, found: &str) -> String {
    let range = match ty {
        "i8" => format!("{} to {}", i8::MIN, i8::MAX),
        "i16" => format!("{} to {}", i16::MIN, i16::MAX),
        "i32" => format!("{} to {}", i32::MIN, i32::MAX),
        "i64" | "isize" => format!("{} to {}", i64::MIN, i64::MAX),
        "u8" => format!("0 to {}", u8::MAX),
        "u16" => format!("0 to {}", u16::MAX),
        "u32" => format!("0 to {}", u32::MAX),
        "u64" | "usize" => format!("0 to {}", u64::MAX),
        "f32" | "f64" => return "expected a number".to_owned(),
        "bool" => return "expected true or false".to_owned(),
        other => return format!("expected a value of type {other}"),
    };

    let digits = found.trim_start_matches(['-', '+']);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        format!("{found} is out of range; expected a whole number from {range}")
    } else if ty.starts_with('u') {
        "expected a whole number (0 or more)".to_owned()
    } else {
        "expected an integer".to_owned()
    }
}

/// The plain scalar that starts at `pos`, up to a space, a comment or the
/// end of a flow collection.
fn scalar_at(text: &str, pos: Pos) -> &str {
    let Some(line) = text.lines().nth((pos.line as usize).saturating_sub(1))
    else {
        return "";
    };
    let start = line
        .char_indices()
        .nth((pos.column as usize).saturating_sub(1))
        .map_or(line.len(), |(at, _)| at);
    let rest = &line[start..];
    let end = rest
        .find(|c: char| c.is_whitespace() || matches!(c, ',' | ']' | '}' | '#'))
        .unwrap_or(rest.len());
    &rest[..end]
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
    fn finish_strips_the_location_suffix() {
        assert_eq!(finish("Invalid i64 at line 2, column 7"), "invalid i64");
        assert_eq!(finish("tab\there"), "tab\\there");
        assert_eq!(finish("YAML is \"odd\""), "YAML is \"odd\"");
    }

    #[test]
    fn numbers_out_of_range_are_named() {
        assert_eq!(
            expected_scalar("u32", "x"),
            "expected a whole number (0 or more)"
        );
        assert_eq!(expected_scalar("i64", "1.5"), "expected an integer");
        assert_eq!(
            expected_scalar("u8", "-3"),
            "-3 is out of range; expected a whole number from 0 to 255"
        );
        let text = "a: { b: 12345, c: x }\n";
        assert_eq!(scalar_at(text, Pos::new(1, 9)), "12345");
        assert_eq!(scalar_at(text, Pos::new(1, 19)), "x");
        assert_eq!(scalar_at(text, Pos::new(3, 1)), "");
    }

    #[test]
    fn an_error_at_an_anchor_names_its_aliases() {
        let text = "a: &g [x]\nb:\n  *g : 1\nc: [*g, *g, *gx]\n";
        assert_eq!(
            alias_note(text, Pos::new(1, 7)).as_deref(),
            Some(
                " (this value is anchored as &g and repeated by *g at 3:3, \
                 4:5, 4:9)"
            )
        );
        assert_eq!(alias_note(text, Pos::new(1, 3)), None);
        assert_eq!(alias_note(text, Pos::new(9, 1)), None);
    }

    #[test]
    fn a_syntax_error_below_comes_before_a_missing_field_above() {
        let text = "workshop: w\nregion: ap-south-1\nservers:\n  hub:\n    \
                    name: h\n   type: t3.small\n";
        let err = deserialize(text, "w.yaml").unwrap_err();
        let found = &err.diagnostics()[0];
        assert_eq!(found.pos.line, 6, "{err}");
    }
}
