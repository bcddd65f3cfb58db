//! Logs to stderr through tracing: `-v` and `RUST_LOG` choose how much.
//!
//! The AWS SDK and HTTP crates are capped at info whatever is asked:
//! their debug and trace events can carry request and response bodies,
//! and a `CreateAccessKey` response holds a secret.
//!
//! Colours follow the progress display's rule (a terminal, no
//! `NO_COLOR`), and on a terminal records are printed above its live
//! lines.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::prelude::*;

/// Targets whose events may carry bodies.
const CAPPED: &[&str] =
    &["aws_", "hyper", "h2", "rustls", "russh", "tower", "reqwest"];

/// Sets the global subscriber.
pub fn init(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "hubform=info,hubform_core=info,hubform_aws=info,warn",
        2 => "hubform=debug,hubform_core=debug,hubform_aws=debug,info",
        _ => "hubform=trace,hubform_core=trace,hubform_aws=trace,debug",
    };
    let env = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(default));
    let cap = filter_fn(|meta| {
        let capped = CAPPED.iter().any(|t| meta.target().starts_with(t));
        !capped || *meta.level() <= LevelFilter::INFO
    });
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(|| LogLine)
                .with_ansi(crate::progress::stderr_colour())
                .with_target(verbose >= 2)
                .with_filter(env)
                .with_filter(cap),
        )
        .try_init();
}

/// Where the subscriber writes a record: stderr, through the progress
/// display.
struct LogLine;

impl std::io::Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        crate::progress::write_log(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
