//! Errors of loading and checking a spec, each at a file:line:column.

use std::fmt;
use std::io;

use super::spanned::Pos;

/// One problem in a spec: where it is and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The spec file as the user named it.
    pub file: String,
    /// Where in the file; `0:0` when no position is known.
    pub pos: Pos,
    /// A lowercase phrase saying what is wrong and what was expected.
    pub message: String,
}

impl Diagnostic {
    /// A problem at `pos` of `file`.
    pub fn new(
        file: impl Into<String>,
        pos: Pos,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            file: file.into(),
            pos,
            message: shown(message.into()),
        }
    }
}

/// `message` with control characters and invisible ones (a zero-width
/// space or joiner, a no-break space, a byte order mark, a direction
/// mark) escaped, so that a name that looks right on screen shows what
/// is wrong with it, and a diagnostic stays one line.
fn shown(message: String) -> String {
    let invisible = |c: char| {
        c.is_control()
            || matches!(c, '\u{a0}' | '\u{ad}' | '\u{feff}')
            || ('\u{200b}'..='\u{200f}').contains(&c)
            || ('\u{2028}'..='\u{202e}').contains(&c)
            || ('\u{2060}'..='\u{2064}').contains(&c)
    };
    if !message.chars().any(invisible) {
        return message;
    }
    message
        .chars()
        .map(|c| match invisible(c) {
            true => c.escape_unicode().to_string(),
            false => c.to_string(),
        })
        .collect()
}

impl fmt::Display for Diagnostic {
    /// `FILE:LINE:COLUMN: MESSAGE`, or `FILE: MESSAGE` without a position.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pos.is_unknown() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.pos, self.message)
        }
    }
}

/// Diagnostics rendered one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

/// Why a spec could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The spec file could not be read. The message says why (the
    /// binary prints only the top error), so `cause` is not a `source`.
    #[error("{file}: cannot read the spec: {}", why_unreadable(file, cause))]
    Read {
        /// The spec file as the user named it.
        file: String,
        /// What the file system said.
        cause: io::Error,
    },
    /// The spec is not valid: one syntax or structure problem, or all
    /// semantic problems found, in file order.
    #[error("{0}")]
    Invalid(Diagnostics),
}

/// Why a spec file could not be read, and what to do about it.
fn why_unreadable(file: &str, cause: &io::Error) -> String {
    use io::ErrorKind as K;
    match cause.kind() {
        K::NotFound => format!(
            "no such file; check the path (relative to the current folder), \
             or write a starter spec with `hubform init {file}`"
        ),
        K::IsADirectory => {
            "it is a directory; expected the path of a YAML spec".to_owned()
        }
        K::PermissionDenied => format!(
            "permission denied; make it readable (`chmod u+r {file}`) or \
             run as its owner"
        ),
        _ => format!("{cause}; expected the path of a YAML spec"),
    }
}

impl SpecError {
    /// A spec error made of these diagnostics, sorted by file and
    /// position.
    pub fn from_diagnostics(mut diagnostics: Vec<Diagnostic>) -> Self {
        diagnostics.sort_by(|a, b| (&a.file, a.pos).cmp(&(&b.file, b.pos)));
        SpecError::Invalid(Diagnostics(diagnostics))
    }

    /// One problem at `pos` of `file`.
    pub fn at(
        file: impl Into<String>,
        pos: Pos,
        message: impl Into<String>,
    ) -> Self {
        SpecError::Invalid(Diagnostics(vec![Diagnostic::new(
            file, pos, message,
        )]))
    }

    /// The problems found; empty when the file could not be read.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            SpecError::Read { .. } => &[],
            SpecError::Invalid(diagnostics) => &diagnostics.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_diagnostic_per_line_in_file_order() {
        let err = SpecError::from_diagnostics(vec![
            Diagnostic::new("w.yaml", Pos::new(9, 3), "second"),
            Diagnostic::new("w.yaml", Pos::new(2, 7), "first"),
        ]);
        assert_eq!(err.to_string(), "w.yaml:2:7: first\nw.yaml:9:3: second");
    }

    #[test]
    fn invisible_characters_are_shown_escaped() {
        let d =
            Diagnostic::new("w.yaml", Pos::new(1, 1), "\"im\u{200b}age\"\n");
        assert_eq!(d.message, "\"im\\u{200b}age\"\\u{a}");
    }

    #[test]
    fn renders_without_a_position_when_unknown() {
        let err = SpecError::at("w.yaml", Pos::default(), "too big");
        assert_eq!(err.to_string(), "w.yaml: too big");
    }
}
