//! `hubform completions SHELL`: the shell's completion script, generated
//! by clap_complete from the command line's definition, so that it never
//! lags behind a new command or flag.

use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, CompletionsArgs};
use crate::commands::CliError;

pub fn run(args: &CompletionsArgs) -> Result<ExitCode, CliError> {
    let script = script(&args.shell)?;
    out!("{script}");
    Ok(ExitCode::SUCCESS)
}

/// The completion script of `shell` (`bash`, `zsh` or `fish`).
fn script(shell: &str) -> Result<String, CliError> {
    let shell = match shell {
        "bash" => Shell::Bash,
        "zsh" => Shell::Zsh,
        "fish" => Shell::Fish,
        other => {
            return Err(CliError::Other(format!(
                "no completions for the shell \"{other}\"; expected bash, \
                 zsh or fish"
            )))
        }
    };

    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "hubform", &mut script);
    String::from_utf8(script).map_err(|e| {
        CliError::Other(format!("the completion script is not UTF-8: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_completes_every_command() {
        let commands: Vec<String> = Cli::command()
            .get_subcommands()
            .filter(|c| !c.is_hide_set())
            .map(|c| c.get_name().to_owned())
            .collect();
        assert!(commands.len() >= 14, "{commands:?}");
        for shell in ["bash", "zsh", "fish"] {
            let script = script(shell).unwrap_or_default();
            for command in &commands {
                assert!(
                    script.contains(command.as_str()),
                    "{shell}: {command}"
                );
            }
            assert!(script.contains("auto-approve"), "{shell}");
        }
    }

    #[test]
    fn an_unknown_shell_is_refused() {
        let err = script("tcsh").err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("expected bash, zsh or fish")));
    }
}
