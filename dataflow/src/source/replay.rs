//! JSON-lines replay reader: a file split into byte ranges, one per worker, each range treated like a
//! partition (partition = worker index, offset = byte offset of the line). A line belongs to the range in which
//! it starts, so every line is read exactly once whatever the worker count. Always bounded.

use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::Path;

use anyhow::{Context, Result};

use super::reader::{ReadError, Reader};
use crate::messages::RawRecord;

/// Bytes read from the file at a time; the buffer grows only for a longer line.
const CHUNK: usize = 1 << 20;

/// Reads one worker's byte range of a JSON-lines file. Lines are handed out as slices of the read buffer (found
/// with `memchr`), never copied before parsing.
pub struct ReplayReader {
    file: File,
    partition: i32,
    /// File offset of `buf[head]`.
    pos: u64,
    end: u64,
    buf: Vec<u8>,
    head: usize,
    tail: usize,
    eof: bool,
}

impl ReplayReader {
    /// Opens the byte range of `worker` (of `workers`) in `path`.
    pub fn open(path: &Path, worker: usize, workers: usize) -> Result<ReplayReader> {
        let mut file = File::open(path).with_context(|| format!("cannot open --input {}", path.display()))?;
        let len = file.metadata()?.len();
        let start = len * worker as u64 / workers as u64;
        let end = len * (worker as u64 + 1) / workers as u64;
        // From the byte before the range, so that the tail of a line begun in the previous range is skipped.
        let from = start.saturating_sub(1);
        file.seek(SeekFrom::Start(from))?;
        let mut reader = ReplayReader {
            file,
            partition: worker as i32,
            pos: from,
            end,
            buf: vec![0; CHUNK],
            head: 0,
            tail: 0,
            eof: false,
        };
        if start > 0 {
            reader.next_line()?;
        }
        Ok(reader)
    }

    /// The next line (without its `\n` and a `\r` before it) as a range of `buf`, with its file offset; `pos`
    /// moves past it. `None` at the end of the file.
    fn next_line(&mut self) -> Result<Option<(u64, Range<usize>)>> {
        let mut searched = self.head;
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[searched..self.tail]) {
                let newline = searched + i;
                return Ok(Some(self.take(newline, newline + 1)));
            }
            searched = self.tail;
            if self.eof {
                if self.head == self.tail {
                    return Ok(None);
                }
                return Ok(Some(self.take(self.tail, self.tail)));
            }
            searched -= self.fill()?;
        }
    }

    /// Hands out `buf[head..line_end]` (less a trailing `\r`) and consumes up to `next`.
    fn take(&mut self, line_end: usize, next: usize) -> (u64, Range<usize>) {
        let offset = self.pos;
        let mut line = self.head..line_end;
        if self.buf[line.clone()].ends_with(b"\r") {
            line.end -= 1;
        }
        self.pos += (next - self.head) as u64;
        self.head = next;
        (offset, line)
    }

    /// Reads more of the file after the unconsumed bytes, moving them to the front first (and growing the buffer
    /// when they fill it). Returns by how much the unconsumed bytes moved back.
    fn fill(&mut self) -> Result<usize> {
        let moved = self.head;
        self.buf.copy_within(self.head..self.tail, 0);
        self.tail -= self.head;
        self.head = 0;
        if self.tail == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        loop {
            match self.file.read(&mut self.buf[self.tail..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.tail += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
            return Ok(moved);
        }
    }
}

impl Reader for ReplayReader {
    fn partitions(&self) -> Vec<i32> {
        vec![self.partition]
    }

    fn poll(&mut self, max: usize, sink: &mut dyn FnMut(RawRecord<'_>)) -> Result<usize, ReadError> {
        let mut n = 0;
        while n < max && self.pos < self.end {
            let Some((offset, line)) = self.next_line()? else {
                self.end = self.pos;
                break;
            };
            sink(RawRecord {
                partition: self.partition,
                offset: offset as i64,
                key: None,
                value: Some(&self.buf[line]),
                timestamp: None,
            });
            n += 1;
        }
        Ok(n)
    }

    fn is_done(&self, _partition: i32) -> bool {
        self.pos >= self.end
    }

    fn lag(&self) -> u64 {
        0
    }

    fn next_offset(&self, _partition: i32) -> i64 {
        self.pos as i64
    }

    fn may_be_idle(&self, _partition: i32, _idle_timeout: std::time::Duration) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(path: &Path, workers: usize) -> Vec<(i32, i64, Vec<u8>)> {
        let mut out = Vec::new();
        for w in 0..workers {
            let mut r = ReplayReader::open(path, w, workers).unwrap();
            while !r.is_done(w as i32) {
                r.poll(3, &mut |raw| {
                    out.push((raw.partition, raw.offset, raw.value.unwrap().to_vec()))
                })
                .unwrap();
            }
        }
        out
    }

    #[test]
    fn every_line_is_read_exactly_once_for_any_worker_count() {
        let dir = std::env::temp_dir().join(format!("replay-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("in.jsonl");
        let lines: Vec<String> = (0..101)
            .map(|i| format!("{{\"n\":{}}}", "x".repeat(i % 7) + &i.to_string()))
            .collect();
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        for workers in [1, 2, 3, 4, 7, 64, 200] {
            let got: Vec<String> = read_all(&path, workers)
                .into_iter()
                .map(|(_, _, v)| String::from_utf8(v).unwrap())
                .collect();
            assert_eq!(got, lines, "{workers} workers");
        }
    }

    #[test]
    fn a_line_longer_than_the_read_buffer_is_read_whole() {
        let dir = std::env::temp_dir().join(format!("replay-test3-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("in.jsonl");
        let long = "y".repeat(CHUNK * 2 + 17);
        let lines = [
            "a".to_string(),
            long.clone(),
            "b".repeat(CHUNK - 1),
            long,
            "c".to_string(),
        ];
        std::fs::write(&path, lines.join("\n")).unwrap();
        for workers in [1, 2, 5] {
            let got: Vec<String> = read_all(&path, workers)
                .into_iter()
                .map(|(_, _, v)| String::from_utf8(v).unwrap())
                .collect();
            assert_eq!(got, lines, "{workers} workers");
        }
    }

    #[test]
    fn offsets_are_byte_offsets_and_empty_lines_are_kept() {
        let dir = std::env::temp_dir().join(format!("replay-test2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("in.jsonl");
        std::fs::write(&path, b"ab\n\ncd\r\nlast").unwrap();
        let got = read_all(&path, 1);
        assert_eq!(
            got,
            vec![
                (0, 0, b"ab".to_vec()),
                (0, 3, b"".to_vec()),
                (0, 4, b"cd".to_vec()),
                (0, 8, b"last".to_vec())
            ]
        );
    }
}
