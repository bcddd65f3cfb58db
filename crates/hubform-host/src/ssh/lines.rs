//! Cutting a stream of output chunks into lines for progress callbacks.

/// Collects one stream (stdout or stderr) and hands out each complete line
/// as soon as its newline arrives.
///
/// Chunks split lines, and even UTF-8 characters, anywhere; lines are cut
/// on bytes first and decoded afterwards, so a character split between two
/// chunks survives.
// TODO-robustness: the whole stream is kept in memory. Fine for probes
// and installs (a TLJH install prints well under a megabyte), not for a
// command that prints without end; cap it if such a command appears.
// Progress bars that redraw with `\r` and no `\n` arrive as one line.
#[derive(Debug, Default)]
pub(crate) struct LineBuffer {
    /// Everything received, for the final output.
    all: Vec<u8>,
    /// Where the current, unfinished line starts in `all`.
    line_start: usize,
}

impl LineBuffer {
    /// Appends a chunk and calls `emit` for every line it completes.
    pub(crate) fn push(&mut self, chunk: &[u8], emit: &mut dyn FnMut(&str)) {
        let scan_from = self.all.len();
        self.all.extend_from_slice(chunk);

        let mut at = scan_from;
        while let Some(offset) = self.all.get(at..).and_then(find_newline) {
            let end = at + offset;
            emit_line(self.all.get(self.line_start..end), emit);
            at = end + 1;
            self.line_start = at;
        }
    }

    /// Calls `emit` for a last line without a newline, if any, and returns
    /// the whole stream as text.
    pub(crate) fn finish(self, emit: &mut dyn FnMut(&str)) -> String {
        if self.line_start < self.all.len() {
            emit_line(self.all.get(self.line_start..), emit);
        }
        match String::from_utf8(self.all) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }
}

fn find_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

fn emit_line(line: Option<&[u8]>, emit: &mut dyn FnMut(&str)) {
    let line = line.unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    emit(&String::from_utf8_lossy(line));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(chunks: &[&[u8]]) -> (Vec<String>, String) {
        let mut lines = Vec::new();
        let mut buffer = LineBuffer::default();
        for chunk in chunks {
            buffer.push(chunk, &mut |l| lines.push(l.to_owned()));
        }
        let all = buffer.finish(&mut |l| lines.push(l.to_owned()));
        (lines, all)
    }

    #[test]
    fn a_line_split_across_chunks_comes_out_whole() {
        let (lines, all) = feed(&[b"hel", b"lo\nwor", b"ld\n"]);
        assert_eq!(lines, ["hello", "world"]);
        assert_eq!(all, "hello\nworld\n");
    }

    #[test]
    fn one_chunk_with_many_lines_gives_each() {
        let (lines, _) = feed(&[b"1\n2\n3\n"]);
        assert_eq!(lines, ["1", "2", "3"]);
    }

    #[test]
    fn last_line_without_newline_is_emitted_at_the_end() {
        let (lines, all) = feed(&[b"done\npartial"]);
        assert_eq!(lines, ["done", "partial"]);
        assert_eq!(all, "done\npartial");
    }

    #[test]
    fn empty_lines_and_crlf() {
        let (lines, _) = feed(&[b"a\r\n\r\n", b"\nb"]);
        assert_eq!(lines, ["a", "", "", "b"]);
    }

    #[test]
    fn utf8_character_split_between_chunks_survives() {
        let text = "größe ✓\n".as_bytes();
        let (head, tail) = text.split_at(10); // inside the check mark
        let (lines, all) = feed(&[head, tail]);
        assert_eq!(lines, ["größe ✓"]);
        assert_eq!(all, "größe ✓\n");
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let (lines, all) = feed(&[b"ok \xff\n"]);
        assert_eq!(lines, ["ok \u{fffd}"]);
        assert_eq!(all, "ok \u{fffd}\n");
    }

    #[test]
    fn no_output_gives_no_lines() {
        let (lines, all) = feed(&[]);
        assert!(lines.is_empty());
        assert_eq!(all, "");
    }
}
