//! Results on stdout. `println!` panics when stdout is gone: a closed
//! pipe (`hubform plan | head`, quitting `less`) or a full disk. The
//! `outln!` and `out!` macros write through [`write`] instead, which ends
//! the run with exit 1: quietly for a closed pipe, as other command-line
//! tools do, and with what went wrong otherwise.

use std::io::{ErrorKind, Write};

/// Writes `args` to stdout; ends the process when stdout cannot take it.
pub fn write(args: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    let written = stdout.write_fmt(args).and_then(|()| {
        // `out!` ends without a newline (a prompt): nothing would flush.
        stdout.flush()
    });
    if let Err(e) = written {
        if e.kind() != ErrorKind::BrokenPipe {
            eprintln!("error: cannot write to standard output: {e}");
        }
        std::process::exit(1);
    }
}
