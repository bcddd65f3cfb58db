//! What the user sees on stderr while changes run.
//!
//! On a terminal each resource being changed has one spinner line with
//! the time since its change started and its provider's latest message
//! (a wait for an instance, the TLJH install, package installs, an AMI
//! backup); when the change ends the line becomes a `✓` or `✗` line with
//! the applier's outcome. Anywhere else (a pipe, a CI log, `TERM=dumb`)
//! each event is one plain line `<id>: <message>`.
//!
//! Colours only on a terminal and without `NO_COLOR`
//! (<https://no-color.org>: set to anything but the empty string, it
//! turns them off); `logging` follows the same rule. Lines show only
//! what the providers report, which never holds a secret.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use hubform_core::model::ResourceId;
use hubform_core::provider::Progress;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// The spinner's frames; the last one is shown once a line stops.
const TICKS: &[&str] = &["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏", " "];

/// How often a spinner turns and its elapsed time is redrawn.
const TICK: Duration = Duration::from_millis(120);

/// The terminal's live lines. There is one stderr per process, so one
/// board: log lines (see [`write_log`]) are printed above it instead of
/// through it.
static BOARD: OnceLock<MultiProgress> = OnceLock::new();

/// Whether output may be coloured: on a terminal, and `NO_COLOR` unset or
/// empty.
pub fn colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Whether stderr is a terminal that can redraw lines.
pub fn stderr_is_live() -> bool {
    let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
    std::io::stderr().is_terminal() && !dumb
}

/// Whether stderr may be coloured (see [`colour`]).
pub fn stderr_colour() -> bool {
    colour(stderr_is_live(), std::env::var_os("NO_COLOR").as_deref())
}

/// Writes one log record to stderr, above the live lines if there are
/// any, so that neither garbles the other.
pub fn write_log(record: &[u8]) -> std::io::Result<()> {
    let write = || std::io::stderr().lock().write_all(record);
    match BOARD.get() {
        Some(board) => board.suspend(write),
        None => write(),
    }
}

/// Progress on stderr: live lines on a terminal, plain lines elsewhere.
/// Lines still running when it is dropped stay as plain lines.
pub struct Stderr {
    live: Option<Live>,
}

struct Live {
    board: &'static MultiProgress,
    bars: Mutex<BTreeMap<ResourceId, ProgressBar>>,
    style: ProgressStyle,
    colour: bool,
}

impl Stderr {
    /// Progress for this process's stderr.
    pub fn open() -> Stderr {
        if !stderr_is_live() {
            return Stderr { live: None };
        }
        let board = BOARD.get_or_init(MultiProgress::new);
        if board.is_hidden() {
            return Stderr { live: None };
        }
        let colour = stderr_colour();
        Stderr {
            live: Some(Live {
                board,
                bars: Mutex::new(BTreeMap::new()),
                style: spinner_style(colour),
                colour,
            }),
        }
    }
}

impl Progress for Stderr {
    fn report(&self, id: &ResourceId, message: &str) {
        match &self.live {
            Some(live) => live.update(id, message),
            None => plain(id, message),
        }
    }

    fn finish(&self, id: &ResourceId, done: bool, message: &str) {
        match &self.live {
            Some(live) => live.finish(id, Some(done), message),
            None => plain(id, message),
        }
    }
}

impl Drop for Stderr {
    fn drop(&mut self) {
        let Some(live) = &self.live else { return };
        let left: Vec<(ResourceId, String)> = live
            .bars()
            .iter()
            .map(|(id, bar)| (id.clone(), bar.message()))
            .collect();
        for (id, message) in left {
            live.finish(&id, None, &message);
        }
    }
}

impl Live {
    fn bars(
        &self,
    ) -> std::sync::MutexGuard<'_, BTreeMap<ResourceId, ProgressBar>> {
        // A panic while holding the lock leaves the map usable.
        self.bars.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Shows `message` on `id`'s line, starting the line (and its clock)
    /// on the first message.
    fn update(&self, id: &ResourceId, message: &str) {
        let mut bars = self.bars();
        let bar = bars.entry(id.clone()).or_insert_with(|| {
            let bar = self.board.add(ProgressBar::new_spinner());
            bar.set_style(self.style.clone());
            bar.set_prefix(id.to_string());
            bar.enable_steady_tick(TICK);
            bar
        });
        bar.set_message(first_line(message).to_owned());
    }

    /// Replaces `id`'s line by a lasting line: `✓` when `done` is
    /// `Some(true)`, `✗` when `Some(false)`, no mark when the change's
    /// end is unknown.
    fn finish(&self, id: &ResourceId, done: Option<bool>, message: &str) {
        let mark = match done {
            Some(true) => paint("✓", GREEN, self.colour),
            Some(false) => paint("✗", RED, self.colour),
            None => " ".to_owned(),
        };
        let line = format!("{mark} {id}: {message}");
        let bar = self.bars().remove(id);
        if let Some(bar) = bar {
            bar.finish_and_clear();
            self.board.remove(&bar);
        }
        if self.board.println(&line).is_err() {
            plain(id, message);
        }
    }
}

/// The live line: spinner, elapsed time, resource id, latest message
/// (cut to the terminal's width so the line never wraps).
fn spinner_style(colour: bool) -> ProgressStyle {
    ProgressStyle::with_template(template(colour))
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .tick_strings(TICKS)
}

fn template(colour: bool) -> &'static str {
    if colour {
        "{spinner:.cyan} {elapsed:>4} {prefix}: {wide_msg}"
    } else {
        "{spinner} {elapsed:>4} {prefix}: {wide_msg}"
    }
}

const GREEN: &str = "32";
const RED: &str = "31";

/// `text` in the ANSI colour `code` when colours are on.
fn paint(text: &str, code: &str, colour: bool) -> String {
    if colour {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// A live line holds one line of text.
fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or("")
}

/// One plain line, as in a log.
fn plain(id: &ResourceId, message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{id}: {message}");
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    #[test]
    fn colour_needs_a_terminal() {
        assert!(!colour(false, None));
        assert!(colour(true, None));
    }

    #[test]
    fn no_color_with_any_value_turns_colour_off() {
        for value in ["1", "0", "false", "yes"] {
            assert!(!colour(true, Some(OsStr::new(value))), "{value}");
        }
    }

    #[test]
    fn empty_no_color_keeps_colour() {
        assert!(colour(true, Some(OsStr::new(""))));
    }

    #[test]
    fn paint_adds_escapes_only_with_colour() {
        assert_eq!(paint("✓", GREEN, false), "✓");
        assert_eq!(paint("✓", GREEN, true), "\x1b[32m✓\x1b[0m");
    }

    #[test]
    fn spinner_style_is_a_valid_template() {
        for colour in [false, true] {
            let template = template(colour);
            assert!(ProgressStyle::with_template(template).is_ok());
        }
    }

    #[test]
    fn live_line_holds_the_first_line_only() {
        assert_eq!(first_line("a\nb"), "a");
        assert_eq!(first_line(""), "");
    }
}
