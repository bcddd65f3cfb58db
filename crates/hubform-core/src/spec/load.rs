//! Reading a spec file: bytes to text to [`Spec`], then [`validate`].
//!
//! Everything that can go wrong becomes a [`Diagnostic`] at a position:
//! a file that is too big, not UTF-8, binary or empty; the first syntax
//! error, else the first structure error (see `yaml`: serde stops there);
//! then every semantic error together.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::error::SpecError;
use super::spanned::Pos;
use super::types::Spec;
use super::validate::{check_region, validate};
use super::yaml::deserialize;

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

    let bytes = read_bounded(path).map_err(|cause| SpecError::Read {
        file: file.clone(),
        cause,
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
    if let Some(encoding) = wide_encoding(bytes) {
        return Err(SpecError::at(
            file,
            Pos::new(1, 1),
            format!("the file is {encoding} text; expected UTF-8"),
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

/// The name of a UTF-16 or UTF-32 encoding, if the bytes start with its
/// byte order mark or look like ASCII text in it (every other byte NUL).
fn wide_encoding(bytes: &[u8]) -> Option<&'static str> {
    const MARKS: [(&[u8], &str); 4] = [
        (&[0xFF, 0xFE, 0, 0], "UTF-32"),
        (&[0, 0, 0xFE, 0xFF], "UTF-32"),
        (&[0xFF, 0xFE], "UTF-16"),
        (&[0xFE, 0xFF], "UTF-16"),
    ];
    if let Some((_, name)) = MARKS.iter().find(|(m, _)| bytes.starts_with(m)) {
        return Some(name);
    }

    let head = &bytes[..bytes.len().min(64) & !1];
    let pairs = head.chunks_exact(2);
    let ascii_le = |p: &[u8]| p[0].is_ascii() && p[0] != 0 && p[1] == 0;
    let ascii_be = |p: &[u8]| p[1].is_ascii() && p[1] != 0 && p[0] == 0;
    let looks =
        |f: &dyn Fn(&[u8]) -> bool| head.len() >= 8 && pairs.clone().all(f);
    (looks(&ascii_le) || looks(&ascii_be)).then_some("UTF-16")
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

/// The position of the character that follows `prefix`. Lines break as
/// YAML breaks them, and as the parser counts them: at LF, CRLF or a lone
/// CR.
fn pos_after(prefix: &str) -> Pos {
    let breaks = prefix.matches('\n').count() + prefix.matches('\r').count()
        - prefix.matches("\r\n").count();
    let last_line = prefix.rsplit(['\n', '\r']).next().unwrap_or("");
    let column = last_line.chars().count() + 1;
    Pos::new(breaks as u64 + 1, column as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters() {
        assert_eq!(pos_after(""), Pos::new(1, 1));
        assert_eq!(pos_after("ab\ncdé"), Pos::new(2, 4));
        assert_eq!(pos_after("a\r\nb\rcd"), Pos::new(3, 3));
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
    fn utf16_and_utf32_are_named() {
        let wide = |text: &str| -> Vec<u8> {
            text.encode_utf16().flat_map(u16::to_le_bytes).collect()
        };
        let cases = [
            (vec![0xFF, 0xFE, b'a', 0], "UTF-16"),
            (vec![0xFF, 0xFE, 0, 0, b'a', 0, 0, 0], "UTF-32"),
            (wide("workshop: w\nregion: r\n"), "UTF-16"),
        ];
        for (bytes, name) in cases {
            let err = parse_bytes(&bytes, "u.yaml").unwrap_err();
            let expected = format!("u.yaml:1:1: the file is {name} text");
            assert!(err.to_string().starts_with(&expected), "{err}");
        }
    }

    #[test]
    fn a_missing_file_is_a_read_error() {
        let err = load(Path::new("/nonexistent/hubform.yaml")).unwrap_err();
        assert!(matches!(err, SpecError::Read { .. }));
        assert_eq!(
            err.to_string(),
            "/nonexistent/hubform.yaml: cannot read the spec: no such file; \
             check the path (relative to the current folder), or write a \
             starter spec with `hubform init /nonexistent/hubform.yaml`"
        );

        let dir = crate::spec::tests::repo().join("specs");
        let err = load(&dir).unwrap_err().to_string();
        assert!(
            err.ends_with(
                "cannot read the spec: it is a directory; \
                               expected the path of a YAML spec"
            ),
            "{err}"
        );
    }
}
