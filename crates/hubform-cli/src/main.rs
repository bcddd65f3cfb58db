//! `hubform`: plan and apply a teaching JupyterHub's AWS resources from a
//! YAML spec.
//!
//! Map of the workspace:
//! - `crates/hubform-core`: the spec (`spec`), the resource graph
//!   (`graph`), the pure planner and its text (`plan`), the applier
//!   (`apply`), the create journal and the `Provider` trait. Start there.
//! - `crates/hubform-aws`: the AWS provider (IAM, key pairs, security
//!   groups, images, instances, volumes, Elastic IPs).
//! - `crates/hubform-cli` (this crate): argument parsing and one thin
//!   module per command in `commands/`.
//! - `tests/integration`: the one integration test binary, driving this
//!   binary against moto behind a fault proxy (`tests/harness`).
//!
//! Results go to stdout, progress and logs to stderr. Exit codes: 0 done
//! or no changes, 1 any error (a mistyped command line included), 2 only
//! for "changes present" with `plan --detailed-exitcode`.

use std::process::ExitCode;

use clap::Parser;

/// `println!` for results, through [`out::write`].
macro_rules! outln {
    () => {
        $crate::out::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::out::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` for results, through [`out::write`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::write(format_args!($($arg)*))
    };
}

mod cli;
mod commands;
mod lock;
mod logging;
mod out;
mod progress;
mod saved;
mod session;
mod stack;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap exits 2 on usage errors; 2 means "changes" here.
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    logging::init(cli.verbose);

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
