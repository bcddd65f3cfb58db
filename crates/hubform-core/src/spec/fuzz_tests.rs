//! A bounded fuzz test of the loader: the example specs and the bad-spec
//! corpus, damaged at random (bytes changed, cut short, lines moved,
//! YAML put in odd places, indentation changed), and random bytes, must
//! each give a spec or a [`SpecError`] whose positions lie inside the
//! input: never a panic, never a hang.
//!
//! The run is deterministic: a fixed seed and a fixed number of cases.
//! `HUBFORM_FUZZ_SEED` and `HUBFORM_FUZZ_CASES` choose others for a longer
//! hunt; a failure names its seed and case and saves the input.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::tests::{example_path, repo, EXAMPLES};
use super::*;

const SEED: u64 = 0x5EED_0F4B_F012;
const CASES: usize = 2000;

/// Longest one case may take; every case takes milliseconds.
const ONE_CASE: Duration = Duration::from_secs(5);

/// Longest the whole run may take before it counts as a hang.
const ALL_CASES: Duration = Duration::from_secs(120);

/// A small xorshift generator: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Bytes that YAML gives meaning to, and a few that it forbids.
const BYTES: &[u8] =
    b"\t\n\r :-[]{}&*!|>'\"#%@`,?\\~\xff\xfe\xef\xbb\xbf\x00\x01\x7fa1.";

/// YAML put in place of a value or as a line of its own.
const SNIPPETS: &[&str] = &[
    "[",
    "]",
    "{",
    "}",
    "{ a: b }",
    "[1, [2, [3]]]",
    "&a",
    "*a",
    "&a [x, y]",
    "*nothing",
    "<<: *a",
    "!!binary aGk=",
    "!!int x",
    "!custom x",
    "~",
    "null",
    "- x",
    "? x",
    ": x",
    "|",
    ">-\n  folded",
    "'",
    "\"",
    "\"\\q\"",
    "'it''s'",
    "99999999999999999999999",
    "-1",
    "0x1F",
    "1e400",
    ".nan",
    "-.inf",
    "yes",
    "true",
    "2001:db8::/129",
    "0.0.0.0/33",
    "65536",
    "\u{feff}",
    "\u{a0}x",
    "\u{200b}",
    "---",
    "...",
    "%YAML 1.1",
    "# comment",
    "\t",
    "é",
];

/// The inputs that mutations start from: the examples and every corpus
/// file.
fn seeds() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = EXAMPLES
        .iter()
        .map(|name| std::fs::read(example_path(name)).unwrap())
        .collect();
    let corpus = repo().join("tests/bad-specs");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_none_or(|e| e != "expect" && e != "md"))
        .collect();
    paths.sort();
    seeds.extend(paths.iter().map(|p| std::fs::read(p).unwrap()));
    seeds
}

/// One random input: a damaged seed, or now and then random bytes. The
/// examples are chosen more often than any one corpus file.
fn input(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    if rng.below(20) == 0 {
        let len = rng.below(600);
        return (0..len).map(|_| rng.next() as u8).collect();
    }
    let seed = match rng.below(2) {
        0 => &seeds[rng.below(EXAMPLES.len())],
        _ => rng.pick(seeds),
    };
    let mut bytes = seed.clone();
    for _ in 0..1 + rng.below(3) {
        bytes = mutate(rng, bytes);
    }
    bytes
}

/// One mutation of `bytes`.
fn mutate(rng: &mut Rng, mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.is_empty() {
        return rng.pick(SNIPPETS).as_bytes().to_vec();
    }
    match rng.below(7) {
        0 => {
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(bytes.len());
                bytes[at] = match rng.below(3) {
                    0 => rng.next() as u8,
                    _ => *rng.pick(BYTES),
                };
            }
            bytes
        }
        1 => {
            bytes.truncate(rng.below(bytes.len()));
            bytes
        }
        2 => shuffle_lines(rng, bytes),
        3 => replace_value(rng, bytes),
        4 => insert_line(rng, bytes),
        5 => reindent(rng, bytes),
        _ => {
            // A stretch of the file repeated: duplicate keys, long lines.
            let from = rng.below(bytes.len());
            let to = (from + 1 + rng.below(200)).min(bytes.len());
            let copy = bytes[from..to].to_vec();
            let at = rng.below(bytes.len());
            bytes.splice(at..at, copy);
            bytes
        }
    }
}

fn lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect()
}

fn join(lines: Vec<Vec<u8>>) -> Vec<u8> {
    lines.join(&b'\n')
}

/// Two lines swapped, one line dropped, or one line doubled.
fn shuffle_lines(rng: &mut Rng, bytes: Vec<u8>) -> Vec<u8> {
    let mut lines = lines(&bytes);
    let a = rng.below(lines.len());
    let b = rng.below(lines.len());
    match rng.below(3) {
        0 => lines.swap(a, b),
        1 => {
            lines.remove(a);
        }
        _ => {
            let line = lines[a].clone();
            lines.insert(b, line);
        }
    }
    join(lines)
}

/// What follows the first `: ` of a random line replaced by a snippet.
fn replace_value(rng: &mut Rng, bytes: Vec<u8>) -> Vec<u8> {
    let mut lines = lines(&bytes);
    let at = rng.below(lines.len());
    let line = &lines[at];
    let cut = line
        .windows(2)
        .position(|w| w == b": ")
        .map_or(line.len(), |i| i + 2);
    let mut line = line[..cut].to_vec();
    line.extend_from_slice(rng.pick(SNIPPETS).as_bytes());
    lines[at] = line;
    join(lines)
}

/// A snippet, as a key or on its own, on a new line at some indentation.
fn insert_line(rng: &mut Rng, bytes: Vec<u8>) -> Vec<u8> {
    let mut lines = lines(&bytes);
    let mut line = b" ".repeat(rng.below(9));
    if rng.below(2) == 0 {
        line.extend_from_slice(b"key: ");
    }
    line.extend_from_slice(rng.pick(SNIPPETS).as_bytes());
    let at = rng.below(lines.len() + 1);
    lines.insert(at, line);
    join(lines)
}

/// A line's indentation made deeper or shallower, or given a tab.
fn reindent(rng: &mut Rng, bytes: Vec<u8>) -> Vec<u8> {
    let mut lines = lines(&bytes);
    let at = rng.below(lines.len());
    let line = &mut lines[at];
    match rng.below(3) {
        0 => line
            .splice(0..0, b" ".repeat(1 + rng.below(4)))
            .for_each(drop),
        1 => {
            let spaces = line.iter().take_while(|&&b| b == b' ').count();
            line.drain(..spaces.min(1 + rng.below(4)));
        }
        _ => line.insert(0, b'\t'),
    }
    join(lines)
}

/// What is wrong with loading `bytes`, if anything: a panic, or a
/// diagnostic with no position, a position outside the input or no
/// message.
fn check(bytes: &[u8]) -> Option<String> {
    let result =
        catch_unwind(AssertUnwindSafe(|| parse_bytes(bytes, "f.yaml")));
    let err = match result {
        Err(_) => return Some("panicked".to_owned()),
        Ok(Ok(_)) => return None,
        Ok(Err(err)) => err,
    };

    let found = err.diagnostics();
    if found.is_empty() {
        return Some(format!("an error without a diagnostic: {err}"));
    }
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let widths = line_widths(text);
    for d in found {
        let (line, column) = (d.pos.line as usize, d.pos.column as usize);
        let inside = line >= 1
            && column >= 1
            && widths.get(line - 1).is_some_and(|&w| column <= w + 1);
        if !inside || d.message.is_empty() || d.file != "f.yaml" {
            return Some(format!("a position outside the input: {d}"));
        }
    }
    None
}

/// The width in characters of each line, lines broken as YAML breaks
/// them (LF, CRLF or a lone CR). A position may be one past a line's
/// end, or on the line after a last line break.
fn line_widths(text: &str) -> Vec<usize> {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    text.split('\n').map(|line| line.chars().count()).collect()
}

/// Saves a failing input where a person can load it again.
fn save(seed: u64, case: usize, bytes: &[u8]) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("hubform-fuzz-{seed:x}-{case}.yaml"));
    let _ = std::fs::write(&path, bytes);
    path
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn damaged_specs_and_random_bytes_never_panic_or_hang() {
    let seed: u64 = env_or("HUBFORM_FUZZ_SEED", SEED);
    let cases: usize = env_or("HUBFORM_FUZZ_CASES", CASES);
    let seeds = seeds();

    // The cases run on a worker thread, so that a hang is reported (with
    // the input that hangs) instead of stalling the test run.
    let current = Arc::new(Mutex::new((0, Vec::new())));
    let (done, finished) = mpsc::channel();
    let shared = Arc::clone(&current);
    std::thread::spawn(move || {
        let mut rng = Rng(seed);
        let mut slowest = Duration::ZERO;
        for case in 0..cases {
            let bytes = input(&mut rng, &seeds);
            *shared.lock().unwrap() = (case, bytes.clone());
            let started = Instant::now();
            let problem = check(&bytes);
            let took = started.elapsed();
            slowest = slowest.max(took);
            let problem = problem.or_else(|| {
                (took > ONE_CASE).then(|| format!("took {took:?}"))
            });
            if let Some(problem) = problem {
                let saved = save(seed, case, &bytes);
                let _ = done.send(Err(format!(
                    "seed {seed:#x} case {case}: {problem}\n  input saved \
                     as {}",
                    saved.display()
                )));
                return;
            }
        }
        let _ = done.send(Ok(slowest));
    });

    let started = Instant::now();
    match finished.recv_timeout(ALL_CASES) {
        Ok(Ok(slowest)) => eprintln!(
            "{cases} cases from seed {seed:#x} in {:?}, slowest {slowest:?}",
            started.elapsed()
        ),
        Ok(Err(problem)) => panic!("{problem}"),
        Err(_) => {
            let (case, bytes) = current.lock().unwrap().clone();
            let saved = save(seed, case, &bytes);
            panic!(
                "seed {seed:#x} case {case} is still running after {:?}; \
                 input saved as {}",
                ALL_CASES,
                saved.display()
            );
        }
    }
}

#[test]
fn positions_past_a_line_end_count_as_inside() {
    assert_eq!(line_widths("ab\r\ncd\re\n"), [2, 2, 1, 0]);
    assert!(check(b"workshop: [x\n").is_none());
    assert!(check(b"\xef\xbb\xbfworkshop: W\nregion: r\n").is_none());
}
