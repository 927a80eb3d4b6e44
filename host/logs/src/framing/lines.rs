//! Cuts a byte stream into physical lines, bounding every line at `max` bytes
//! so one endless line cannot grow memory: beyond the limit it is either split
//! into several lines or truncated (the rest skipped up to the next newline).

use crate::framing::LongLineMode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    None,
    /// A fragment of a longer line; more fragments follow.
    Split,
    /// The first `max` bytes of a longer line; the rest was skipped.
    Truncated,
}

#[derive(Debug)]
pub(crate) struct PhysicalLine<'a> {
    /// Without the newline.
    pub bytes: &'a [u8],
    /// File offset of the first byte.
    pub start: u64,
    /// File offset just past the line (and its newline): where a reader resumes.
    pub end: u64,
    pub cut: Cut,
}

pub(crate) struct LineSplitter {
    buf: Vec<u8>,
    buf_start: u64,
    /// Truncate mode: past the limit, skipping to the next newline.
    discarding: bool,
    max: usize,
    mode: LongLineMode,
}

impl LineSplitter {
    pub fn new(max: usize, mode: LongLineMode) -> Self {
        Self { buf: Vec::new(), buf_start: 0, discarding: false, max: max.max(4), mode }
    }

    /// Feeds `chunk`, which starts at file offset `offset`; complete lines go to `emit`.
    pub fn push(&mut self, chunk: &[u8], mut offset: u64, emit: &mut impl FnMut(PhysicalLine<'_>)) {
        let mut rest = chunk;
        while !rest.is_empty() {
            match memchr::memchr(b'\n', rest) {
                Some(i) => {
                    self.piece(&rest[..i], offset, true, emit);
                    offset += i as u64 + 1;
                    rest = &rest[i + 1..];
                }
                None => {
                    self.piece(rest, offset, false, emit);
                    break;
                }
            }
        }
    }

    /// Emits a trailing line that never got its newline (the file is going away).
    pub fn flush(&mut self, emit: &mut impl FnMut(PhysicalLine<'_>)) {
        if !self.buf.is_empty() {
            let cut = if self.discarding { Cut::Truncated } else { Cut::None };
            let end = self.buf_start + self.buf.len() as u64;
            emit(PhysicalLine { bytes: &self.buf, start: self.buf_start, end, cut });
        }
        self.reset();
    }

    pub fn reset(&mut self) {
        self.buf.clear();
        self.discarding = false;
        // Do not keep a 10 MB allocation around for one long line.
        if self.buf.capacity() > 64 * 1024 {
            self.buf = Vec::new();
        }
    }

    /// Bytes held that were not yet emitted.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// `piece` starts at `offset`; when `terminated` a newline follows it.
    fn piece(&mut self, mut piece: &[u8], mut offset: u64, terminated: bool, emit: &mut impl FnMut(PhysicalLine<'_>)) {
        if self.discarding {
            if terminated {
                let end = offset + piece.len() as u64 + 1;
                emit(PhysicalLine { bytes: &self.buf, start: self.buf_start, end, cut: Cut::Truncated });
                self.reset();
            }
            return;
        }
        loop {
            let room = self.max - self.buf.len();
            if piece.len() <= room {
                if terminated {
                    let end = offset + piece.len() as u64 + 1;
                    if self.buf.is_empty() {
                        emit(PhysicalLine { bytes: piece, start: offset, end, cut: Cut::None });
                    } else {
                        self.buf.extend_from_slice(piece);
                        emit(PhysicalLine { bytes: &self.buf, start: self.buf_start, end, cut: Cut::None });
                        self.buf.clear();
                    }
                } else if !piece.is_empty() {
                    if self.buf.is_empty() {
                        self.buf_start = offset;
                    }
                    self.buf.extend_from_slice(piece);
                }
                return;
            }
            if self.buf.is_empty() {
                self.buf_start = offset;
            }
            let mut take = utf8_floor(piece, room);
            if take == 0 && self.buf.is_empty() {
                take = room;
            }
            self.buf.extend_from_slice(&piece[..take]);
            match self.mode {
                LongLineMode::Split => {
                    let mut end = self.buf_start + self.buf.len() as u64;
                    let done = take == piece.len() && terminated;
                    if done {
                        end += 1; // the newline belongs to the last fragment
                    }
                    emit(PhysicalLine { bytes: &self.buf, start: self.buf_start, end, cut: Cut::Split });
                    self.buf.clear();
                    if done {
                        return;
                    }
                    piece = &piece[take..];
                    offset += take as u64;
                }
                LongLineMode::Truncate => {
                    if terminated {
                        let end = offset + piece.len() as u64 + 1;
                        emit(PhysicalLine { bytes: &self.buf, start: self.buf_start, end, cut: Cut::Truncated });
                        self.reset();
                    } else {
                        self.discarding = true;
                    }
                    return;
                }
            }
        }
    }
}

/// The largest `n <= room` that does not cut a UTF-8 sequence of `bytes` in two
/// (so split fragments stay valid text); plain `room` for binary data.
pub(crate) fn utf8_floor(bytes: &[u8], room: usize) -> usize {
    if room >= bytes.len() {
        return bytes.len();
    }
    let mut n = room;
    while n > 0 && room - n < 4 && (bytes[n] & 0xC0) == 0x80 {
        n -= 1;
    }
    if room - n >= 4 { room } else { n }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(mode: LongLineMode, max: usize, chunks: &[&[u8]]) -> Vec<(String, u64, u64, Cut)> {
        let mut s = LineSplitter::new(max, mode);
        let mut out = Vec::new();
        let mut off = 0;
        for c in chunks {
            s.push(c, off, &mut |l| out.push((String::from_utf8_lossy(l.bytes).into_owned(), l.start, l.end, l.cut)));
            off += c.len() as u64;
        }
        out
    }

    #[test]
    fn lines_across_chunks_keep_offsets() {
        let out = run(LongLineMode::Split, 100, &[b"ab", b"c\nde\n", b"f"]);
        assert_eq!(out, vec![("abc".into(), 0, 4, Cut::None), ("de".into(), 4, 7, Cut::None)]);
    }

    #[test]
    fn long_lines_split_or_truncate() {
        let out = run(LongLineMode::Split, 4, &[b"abcdefghij\nxy\n"]);
        assert_eq!(
            out,
            vec![
                ("abcd".into(), 0, 4, Cut::Split),
                ("efgh".into(), 4, 8, Cut::Split),
                ("ij".into(), 8, 11, Cut::None),
                ("xy".into(), 11, 14, Cut::None)
            ]
        );
        let out = run(LongLineMode::Split, 4, &[b"abcd", b"efgh\n"]);
        assert_eq!(out, vec![("abcd".into(), 0, 4, Cut::Split), ("efgh".into(), 4, 9, Cut::None)]);
        let out = run(LongLineMode::Truncate, 4, &[b"abc", b"defgh", b"ij\nxy\n"]);
        assert_eq!(out, vec![("abcd".into(), 0, 11, Cut::Truncated), ("xy".into(), 11, 14, Cut::None)]);
    }

    #[test]
    fn splits_do_not_cut_characters() {
        let out = run(LongLineMode::Split, 4, &["abcé\n".as_bytes()]);
        assert_eq!(out[0].0, "abc");
        assert_eq!(out[1].0, "é");
    }
}
