//! Running one command on an open session: exec, stdin, streamed output,
//! exit status, timeout.

use std::pin::pin;
use std::time::Duration;

use russh::client::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf, Sig};
use tokio::time::{timeout, timeout_at, Instant};

use super::lines::LineBuffer;
use super::{Exit, Output, RunOptions, Session, SshError};

/// How long a timed-out command's channel may take to close.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The first words of a command, for messages and logs: the first
/// non-empty line, at most four words and 60 characters.
pub(crate) fn summarize(command: &str) -> String {
    let line = command
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut summary = words.iter().take(4).copied().collect::<Vec<_>>();
    let mut cut = words.len() > 4 || command.trim().lines().count() > 1;
    if summary.join(" ").chars().count() > 60 {
        summary = vec![];
        cut = true;
    }
    let mut text = summary.join(" ");
    if text.is_empty() {
        text = line.chars().take(60).collect();
    }
    if cut {
        text.push('…');
    }
    text
}

/// What a command sent back before its channel ended.
struct Collected {
    status: Option<Exit>,
    stdout: String,
    stderr: String,
}

/// Why an exchange ended without a channel close.
enum Failed {
    /// The exec request never left: the connection is gone.
    NotSent,
    /// The server answered the exec request with a failure.
    Rejected,
}

impl Session {
    /// Runs `command` through the login user's shell and returns its exit
    /// status and output.
    ///
    /// A non-zero exit is an [`Output`], not an error; errors are about
    /// the connection. Stdin, if given, is sent and then closed; without
    /// it the command sees an empty stdin. The timeout covers everything
    /// from opening the channel to the exit status; when it strikes the
    /// command is sent TERM, its channel is closed and the session stays
    /// usable. Several commands may run at once on one session.
    pub async fn run(
        &self,
        command: &str,
        options: RunOptions<'_>,
    ) -> Result<Output, SshError> {
        let summary = summarize(options.label.unwrap_or(command));
        let started = Instant::now();
        let deadline = started + options.timeout;

        let opened =
            timeout_at(deadline, self.handle.channel_open_session()).await;
        let channel = match opened {
            Err(_) => return Err(self.timed_out(summary, options.timeout)),
            Ok(Err(e)) if self.handle.is_closed() => {
                tracing::debug!(error = %e, "ssh channel not opened");
                return Err(self.closed(summary));
            }
            Ok(Err(source)) => {
                return Err(SshError::Protocol {
                    host: self.host.clone(),
                    source,
                })
            }
            Ok(Ok(channel)) => channel,
        };
        let (mut reader, writer) = channel.split();

        let exchanged = timeout_at(
            deadline,
            exchange(&mut reader, &writer, command, &options),
        )
        .await;
        let collected = match exchanged {
            Ok(Ok(collected)) => collected,
            Ok(Err(Failed::NotSent)) => return Err(self.closed(summary)),
            Ok(Err(Failed::Rejected)) => {
                return Err(SshError::Rejected {
                    host: self.host.clone(),
                    command: summary,
                })
            }
            Err(_) => {
                // Stop reading first: an unread channel whose buffer fills
                // would stall every channel of the connection.
                drop(reader);
                stop(&writer).await;
                return Err(self.timed_out(summary, options.timeout));
            }
        };

        let elapsed_ms = started.elapsed().as_millis() as u64;
        let Some(status) = collected.status else {
            let reason = self.lost_reason();
            tracing::debug!(
                host = %self.host, command = %summary, elapsed_ms, %reason,
                "ssh command lost"
            );
            return Err(SshError::Dropped {
                host: self.host.clone(),
                command: summary,
                reason,
            });
        };
        tracing::debug!(
            host = %self.host,
            command = %summary,
            %status,
            stdin_bytes = options.stdin.map_or(0, <[u8]>::len),
            stdout_bytes = collected.stdout.len(),
            stderr_bytes = collected.stderr.len(),
            elapsed_ms,
            "ssh command finished"
        );
        Ok(Output {
            status,
            stdout: collected.stdout,
            stderr: collected.stderr,
        })
    }

    fn timed_out(&self, command: String, after: Duration) -> SshError {
        tracing::debug!(host = %self.host, %command, ?after, "ssh timeout");
        SshError::Timeout {
            host: self.host.clone(),
            command,
            after,
        }
    }

    fn closed(&self, command: String) -> SshError {
        SshError::Closed {
            host: self.host.clone(),
            command,
            reason: self.lost_reason(),
        }
    }

    fn lost_reason(&self) -> String {
        self.observed.lost().unwrap_or_else(|| {
            if self.handle.is_closed() {
                "the connection closed".to_owned()
            } else {
                "the channel closed without an exit status".to_owned()
            }
        })
    }
}

/// Starts the command, feeds its stdin and collects its output until the
/// server closes the channel.
async fn exchange(
    reader: &mut ChannelReadHalf,
    writer: &ChannelWriteHalf<Msg>,
    command: &str,
    options: &RunOptions<'_>,
) -> Result<Collected, Failed> {
    if let Err(e) = writer.exec(true, command).await {
        tracing::debug!(error = %e, "ssh exec not sent");
        return Err(Failed::NotSent);
    }

    // Stdin goes out while output comes in: a command may write more than
    // the window holds before it reads all of its input.
    let mut send = pin!(async {
        if let Some(stdin) = options.stdin {
            writer.data(stdin).await?;
        }
        writer.eof().await
    });
    let mut receive = pin!(receive(reader, options));
    let mut sending = true;
    loop {
        tokio::select! {
            sent = &mut send, if sending => {
                sending = false;
                if let Err(e) = sent {
                    // The command may have exited without reading it
                    // all; the exit status tells.
                    tracing::debug!(error = %e, "ssh stdin not fully sent");
                }
            }
            received = &mut receive => return received,
        }
    }
}

async fn receive(
    reader: &mut ChannelReadHalf,
    options: &RunOptions<'_>,
) -> Result<Collected, Failed> {
    let mut emit = |line: &str| {
        if let Some(on_line) = options.on_line {
            on_line(line);
        }
    };
    let mut stdout = LineBuffer::default();
    let mut stderr = LineBuffer::default();
    let mut status = None;

    // OpenSSH sends the exit status after EOF, so read until the channel
    // is gone, not until EOF.
    while let Some(message) = reader.wait().await {
        match message {
            ChannelMsg::Data { data } => stdout.push(&data, &mut emit),
            ChannelMsg::ExtendedData { data, ext: 1 } => {
                stderr.push(&data, &mut emit)
            }
            ChannelMsg::ExitStatus { exit_status } => {
                status = Some(Exit::Code(exit_status as i32));
            }
            ChannelMsg::ExitSignal { signal_name, .. } => {
                status = Some(Exit::Signal(signal_text(&signal_name)));
            }
            ChannelMsg::Failure => return Err(Failed::Rejected),
            _ => {}
        }
    }

    Ok(Collected {
        status,
        stdout: stdout.finish(&mut emit),
        stderr: stderr.finish(&mut emit),
    })
}

/// Asks a timed-out command to stop and closes its channel, without
/// waiting long for a connection that may be frozen.
async fn stop(writer: &ChannelWriteHalf<Msg>) {
    let stopped = timeout(CLOSE_GRACE, async {
        writer.signal(Sig::TERM).await?;
        writer.close().await
    })
    .await;
    if !matches!(stopped, Ok(Ok(()))) {
        tracing::debug!("ssh channel of a timed-out command not closed");
    }
}

/// `TERM`, `KILL`, …: the name without `SIG`, as OpenSSH sends it.
fn signal_text(signal: &Sig) -> String {
    match signal {
        Sig::Custom(name) => name.clone(),
        known => format!("{known:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_keeps_the_first_words() {
        assert_eq!(summarize("sudo -n id -u"), "sudo -n id -u");
        assert_eq!(
            summarize("sudo -n tee /etc/tljh/config.yaml >/dev/null"),
            "sudo -n tee /etc/tljh/config.yaml…"
        );
    }

    #[test]
    fn summary_of_a_script_is_its_first_line() {
        let script = "\n  set -eu\n  cat /etc/os-release\n";
        assert_eq!(summarize(script), "set -eu…");
    }

    #[test]
    fn summary_of_a_long_word_is_cut() {
        let word = "x".repeat(100);
        let summary = summarize(&word);
        assert_eq!(summary.chars().count(), 61);
        assert!(summary.ends_with('…'));
    }

    #[test]
    fn signal_names_have_no_prefix() {
        assert_eq!(signal_text(&Sig::TERM), "TERM");
        assert_eq!(signal_text(&Sig::Custom("WINCH".into())), "WINCH");
    }
}
