//! Pause points: named steps where a test can stop the binary.
//!
//! With `HUBFORM_PAUSE_AT=<step>`, reaching that step prints
//! `hubform: paused at <step>` on stderr and blocks for good, so that a
//! test can check the step's effect and then kill the process. Crash tests
//! use this instead of timing.

use std::io::Write;
use std::time::Duration;

/// The environment variable that names the step to pause at.
pub const PAUSE_ENV: &str = "HUBFORM_PAUSE_AT";

/// Blocks forever when `step` is the step named in `HUBFORM_PAUSE_AT`.
pub fn pause_point(step: &str) {
    let Ok(wanted) = std::env::var(PAUSE_ENV) else {
        return;
    };
    if wanted != step {
        return;
    }
    let mut stderr = std::io::stderr();
    let _ = writeln!(stderr, "hubform: paused at {step}");
    let _ = stderr.flush();
    loop {
        // Blocking on purpose: nothing else may move until the test acts.
        std::thread::sleep(Duration::from_secs(3600));
    }
}
