//! The bad-input corpus, `tests/bad-specs/`: every file fails to load
//! with one diagnostic at the line:column and with the message its
//! expectation names, quickly and without a panic. Inputs too big to
//! commit (a file over the size bound, an endless one) and paths that are
//! not files are made here at test time.
//!
//! A text file's first line holds its expectation:
//! `# expect: LINE:COLUMN MESSAGE-SUBSTRING` (after a byte order mark, if
//! the file starts with one). A file that cannot carry a comment (binary
//! data, an empty file, UTF-16) has it in a sidecar `NAME.expect` holding
//! `LINE:COLUMN MESSAGE-SUBSTRING`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::tests::repo;
use super::*;

/// Longest an input may take to be refused. A corpus file takes
/// milliseconds, the largest input made here a second; an alias bomb
/// expanded without bound, or a parser that hangs, takes minutes.
/// Generous, for a slow shared machine.
const QUICKLY: Duration = Duration::from_secs(10);

/// One file of the corpus and what it must produce.
struct Case {
    name: String,
    bytes: Vec<u8>,
    pos: Pos,
    substring: String,
}

fn corpus_dir() -> PathBuf {
    repo().join("tests/bad-specs")
}

/// Every spec of the corpus, by name.
fn corpus() -> Vec<Case> {
    let dir = corpus_dir();
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".expect")
            || name.starts_with('.')
            || name == "README.md"
        {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let (pos, substring) = expectation(&path, &bytes);
        cases.push(Case {
            name,
            bytes,
            pos,
            substring,
        });
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    cases
}

/// The position and message substring a corpus file expects, from its
/// sidecar or its first line.
fn expectation(path: &Path, bytes: &[u8]) -> (Pos, String) {
    let name = path.display();
    let mut sidecar = path.as_os_str().to_owned();
    sidecar.push(".expect");
    let line = match std::fs::read_to_string(&sidecar) {
        Ok(text) => text.lines().next().unwrap_or_default().to_owned(),
        Err(_) => {
            let first = bytes.split(|&b| b == b'\n').next().unwrap();
            let first = String::from_utf8_lossy(first);
            let first = first.trim_start_matches('\u{feff}');
            first
                .strip_prefix("# expect: ")
                .unwrap_or_else(|| {
                    panic!("{name}: no `# expect:` line and no sidecar")
                })
                .to_owned()
        }
    };
    let (at, substring) = line
        .split_once(' ')
        .unwrap_or_else(|| panic!("{name}: expected `LINE:COLUMN MESSAGE`"));
    let (l, c) = at.split_once(':').unwrap();
    let pos = Pos::new(l.parse().unwrap(), c.parse().unwrap());
    (pos, substring.trim_end().to_owned())
}

/// What is wrong with the outcome of loading `case`, if anything.
fn check(case: &Case) -> Option<String> {
    let started = Instant::now();
    let result =
        catch_unwind(AssertUnwindSafe(|| parse_bytes(&case.bytes, &case.name)));
    let took = started.elapsed();

    let err = match result {
        Err(_) => return Some("panicked".to_owned()),
        Ok(Ok(_)) => return Some("accepted".to_owned()),
        Ok(Err(err)) => err,
    };
    if took > QUICKLY {
        return Some(format!("took {took:?}, more than {QUICKLY:?}"));
    }
    let found = err.diagnostics();
    let matches = found.len() == 1
        && found[0].pos == case.pos
        && found[0].message.contains(&case.substring)
        && found[0].file == case.name;
    (!matches).then(|| {
        format!(
            "expected one error at {} containing {:?}, got:\n{err}",
            case.pos, case.substring
        )
    })
}

#[test]
fn every_bad_spec_fails_where_its_expectation_says() {
    let cases = corpus();
    assert!(cases.len() >= 60, "only {} bad specs", cases.len());

    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| Some(format!("{}: {}", case.name, check(case)?)))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The corpus by kind of mistake; every file is in exactly one kind.
const KINDS: &[(&str, &[&str])] = &[
    (
        "YAML syntax",
        &[
            "bad-block-scalar-header.yaml",
            "bad-escape.yaml",
            "content-after-document-end.yaml",
            "list-item-in-mapping.yaml",
            "missing-space-after-colon.yaml",
            "not-yaml-prose.yaml",
            "over-indented-key.yaml",
            "reserved-indicator.yaml",
            "stray-closing-bracket.yaml",
            "syntax-error.yaml",
            "two-documents.yaml",
            "unclosed-double-quote.yaml",
            "unclosed-flow-mapping.yaml",
            "unclosed-flow-sequence-at-end.yaml",
            "under-indented-key.yaml",
            "unsupported-yaml-version.yaml",
            "unterminated-single-quote.yaml",
        ],
    ),
    (
        "wrong types",
        &[
            "empty-required-value.yaml",
            "fractional-size.yaml",
            "integer-overflow.yaml",
            "list-instead-of-boolean.yaml",
            "list-instead-of-mapping.yaml",
            "mapping-instead-of-string.yaml",
            "negative-expected-users.yaml",
            "null-workshop.yaml",
            "servers-as-scalar.yaml",
            "string-instead-of-list.yaml",
            "tag-on-value.yaml",
            "too-many-expected-users.yaml",
            "top-level-list.yaml",
            "wrong-type-size.yaml",
            "yes-is-not-a-boolean.yaml",
        ],
    ),
    (
        "missing and unknown keys",
        &[
            "missing-region.yaml",
            "missing-workshop.yaml",
            "misspelled-key.yaml",
            "unknown-field.yaml",
            "unknown-root-volume-key.yaml",
            "unknown-rule-key.yaml",
            "unknown-top-level-key.yaml",
            "unknown-user-key.yaml",
            "zero-width-space-in-key.yaml",
        ],
    ),
    (
        "bad references",
        &[
            "reference-by-aws-name.yaml",
            "reference-in-wrong-case.yaml",
            "reference-to-empty-section.yaml",
            "unknown-group.yaml",
            "unknown-image.yaml",
            "unknown-key-pair.yaml",
            "unknown-security-group.yaml",
        ],
    ),
    (
        "impossible values",
        &[
            "bad-architecture.yaml",
            "bad-cidr.yaml",
            "bad-device.yaml",
            "bad-dns-name.yaml",
            "bad-iam-user-name.yaml",
            "bad-instance-type.yaml",
            "bad-policy.yaml",
            "bad-region.yaml",
            "bad-volume-type.yaml",
            "bad-workshop-name.yaml",
            "cidr-octet-too-large.yaml",
            "cidr-without-prefix.yaml",
            "default-security-group.yaml",
            "dns-name-outside-zone.yaml",
            "empty-description.yaml",
            "empty-key-file.yaml",
            "host-bits-set.yaml",
            "iam-names-differ-in-case.yaml",
            "image-id-and-owner.yaml",
            "image-without-selection.yaml",
            "long-server-name.yaml",
            "negative-port.yaml",
            "negative-size.yaml",
            "port-not-a-number.yaml",
            "port-range-reversed.yaml",
            "port-too-large.yaml",
            "ports-for-all-protocols.yaml",
            "reserved-tag.yaml",
            "same-secret-file.yaml",
            "size-too-large.yaml",
            "size-zero.yaml",
            "st1-root-volume.yaml",
            "tcp-rule-without-ports.yaml",
            "unknown-protocol.yaml",
            "unknown-server-state.yaml",
            "workshop-name-trailing-dash.yaml",
            "zero-expected-users.yaml",
        ],
    ),
    (
        "duplicate keys and ids",
        &[
            "duplicate-ingress-rule.yaml",
            "duplicate-key-in-flow-mapping.yaml",
            "duplicate-key-quoted.yaml",
            "duplicate-key.yaml",
            "duplicate-resource-id.yaml",
            "duplicate-server-id.yaml",
            "duplicate-server-name.yaml",
            "duplicate-tag-key.yaml",
            "duplicate-top-level-key.yaml",
        ],
    ),
    (
        "anchors and aliases",
        &[
            "alias-as-key.yaml",
            "alias-bad-reference.yaml",
            "alias-of-wrong-shape.yaml",
            "alias-repeats-a-big-list.yaml",
            "anchor-without-node.yaml",
            "billion-laughs-after-type-error.yaml",
            "billion-laughs-in-config.yaml",
            "billion-laughs-inline.yaml",
            "billion-laughs.yaml",
            "merge-key.yaml",
            "recursive-alias.yaml",
            "unknown-anchor.yaml",
        ],
    ),
    (
        "deep nesting",
        &[
            "deep-block-nesting-in-config.yaml",
            "deep-block-nesting.yaml",
            "deep-flow-nesting-in-config.yaml",
            "deep-flow-nesting.yaml",
        ],
    ),
    (
        "binary data and control characters",
        &[
            "binary-nul.yaml",
            "control-character.yaml",
            "elf-binary",
            "gzip-compressed.yaml.gz",
            "png-image.png",
            "random-bytes.bin",
        ],
    ),
    (
        "encodings: non-UTF-8, UTF-16/32, byte order marks",
        &[
            "bom-inside.yaml",
            "high-bytes-only.bin",
            "latin1-in-comment.yaml",
            "not-utf8.yaml",
            "overlong-utf8.yaml",
            "truncated-utf8-at-end.yaml",
            "utf16le-with-bom.yaml",
            "utf16le-without-bom.yaml",
            "utf32-with-bom.yaml",
            "utf8-bom.yaml",
        ],
    ),
    (
        "empty files",
        &[
            "empty.yaml",
            "only-comments.yaml",
            "whitespace-only.yaml",
            "zero-bytes.yaml",
        ],
    ),
    (
        "whitespace: tabs, no-break spaces, CRLF",
        &[
            "crlf-line-endings.yaml",
            "nbsp-indentation.yaml",
            "tab-before-list-item.yaml",
            "tab-in-flow-indent.yaml",
            "tab-indentation.yaml",
        ],
    ),
];

#[test]
fn every_bad_spec_is_one_kind_of_mistake() {
    let names: Vec<String> = corpus().into_iter().map(|c| c.name).collect();

    let mut problems = Vec::new();
    for name in &names {
        let kinds: Vec<&str> = KINDS
            .iter()
            .filter(|(_, files)| files.contains(&name.as_str()))
            .map(|(kind, _)| *kind)
            .collect();
        if kinds.len() != 1 {
            problems.push(format!("{name} is in kinds {kinds:?}"));
        }
    }
    for (kind, files) in KINDS {
        for file in *files {
            if !names.iter().any(|n| n == file) {
                problems
                    .push(format!("{kind}: tests/bad-specs/{file} is missing"));
            }
        }
        if files.len() < 3 {
            problems.push(format!("{kind}: only {} specs", files.len()));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A scratch folder for inputs made at test time, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir()
            .join(format!("hubform-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Loads `path`, which must fail quickly without a panic; the error's
/// text.
fn load_error(path: &Path) -> String {
    let started = Instant::now();
    let result = catch_unwind(|| load(path));
    let took = started.elapsed();

    let shown = path.display();
    let err = match result {
        Err(_) => panic!("{shown}: panicked"),
        Ok(Ok(_)) => panic!("{shown}: accepted"),
        Ok(Err(err)) => err.to_string(),
    };
    assert!(took < QUICKLY, "{shown}: took {took:?}");
    assert_eq!(err.lines().count(), 1, "{shown}: {err}");
    err
}

#[test]
fn a_file_over_the_size_bound_is_refused_at_its_start() {
    let scratch = Scratch::new("big-specs");
    let example =
        std::fs::read_to_string(repo().join("specs/small-workshop.yaml"))
            .unwrap();

    // A valid spec padded with a comment to the bound loads; one byte
    // more, and an endless file, are refused without reading them whole.
    let padding = "#".repeat(MAX_SPEC_BYTES - example.len() - 1);
    let fits = format!("{example}{padding}\n");
    let fits = scratch.write("fits.yaml", fits.as_bytes());
    let started = Instant::now();
    if let Err(err) = load(&fits) {
        panic!("a spec of {MAX_SPEC_BYTES} bytes is refused:\n{err}");
    }
    assert!(started.elapsed() < QUICKLY);

    let big = format!("{example}#{padding}\n");
    let err = load_error(&scratch.write("big.yaml", big.as_bytes()));
    assert!(
        err.ends_with(
            ":1:1: the file is larger than 1 MiB (1048576 bytes); expected \
             a workshop spec of a few kilobytes"
        ),
        "{err}"
    );
    let err = load_error(Path::new("/dev/zero"));
    assert!(
        err.starts_with("/dev/zero:1:1: the file is larger"),
        "{err}"
    );
}

#[test]
fn large_specs_under_the_bound_fail_quickly_at_their_position() {
    let scratch = Scratch::new("large-specs");

    // 20000 tags on one server, one line of half a MiB, 100000 nested
    // lists: each refused with a position, in well under the bound.
    let head = "workshop: w\nregion: ap-south-1\nservers:\n  hub:\n";
    let tags: String =
        (0..20_000).map(|i| format!("      t{i}: v\n")).collect();
    let many = format!("{head}    tags:\n{tags}");
    let err = load_error(&scratch.write("tags.yaml", many.as_bytes()));
    assert!(err.contains(":5:5: missing field \"name\""), "{err}");

    let long =
        format!("workshop: {}\nregion: ap-south-1\n", "w".repeat(1 << 19));
    let err = load_error(&scratch.write("long.yaml", long.as_bytes()));
    assert!(err.contains(":1:11: invalid workshop name"), "{err}");

    let deep = format!(
        "{head}    tljh:\n      config:\n        a: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let err = load_error(&scratch.write("deep.yaml", deep.as_bytes()));
    assert!(
        err.contains(":7:28: mappings and lists nest more than"),
        "{err}"
    );
}

#[test]
fn a_directory_or_a_missing_file_says_why_it_cannot_be_read() {
    let dir = corpus_dir();
    let err = load_error(&dir);
    assert!(
        err.ends_with(
            "cannot read the spec: it is a directory; expected the \
                       path of a YAML spec"
        ),
        "{err}"
    );

    let missing = dir.join("no-such-spec.yaml");
    let err = load_error(&missing);
    assert!(
        err.ends_with(&format!(
            "no-such-spec.yaml: cannot read the spec: no such \
                       file; check the path (relative to the current \
                       folder), or write a starter spec with `hubform \
                       init {}`",
            missing.display()
        )),
        "{err}"
    );
}
