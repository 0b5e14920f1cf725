//! JSON-lines replay reader: a file split into byte ranges, one per worker, each range treated like a
//! partition (partition = worker index, offset = byte offset of the line). A line belongs to the range in which
//! it starts, so every line is read exactly once whatever the worker count. Always bounded.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, Result};

use super::reader::Reader;
use crate::messages::RawRecord;

/// Reads one worker's byte range of a JSON-lines file.
pub struct ReplayReader {
    reader: BufReader<File>,
    partition: i32,
    pos: u64,
    end: u64,
    line: Vec<u8>,
}

impl ReplayReader {
    /// Opens the byte range of `worker` (of `workers`) in `path`.
    pub fn open(path: &Path, worker: usize, workers: usize) -> Result<ReplayReader> {
        let file = File::open(path).with_context(|| format!("cannot open --input {}", path.display()))?;
        let len = file.metadata()?.len();
        let start = len * worker as u64 / workers as u64;
        let end = len * (worker as u64 + 1) / workers as u64;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut pos = start;
        if start > 0 {
            // Skip the tail of the line that began in the previous range.
            reader.seek(SeekFrom::Start(start - 1))?;
            let mut skipped = Vec::new();
            let n = reader.read_until(b'\n', &mut skipped)?;
            pos = start - 1 + n as u64;
        }
        Ok(ReplayReader {
            reader,
            partition: worker as i32,
            pos,
            end,
            line: Vec::with_capacity(512),
        })
    }
}

impl Reader for ReplayReader {
    fn partitions(&self) -> Vec<i32> {
        vec![self.partition]
    }

    fn poll(&mut self, max: usize, sink: &mut dyn FnMut(RawRecord<'_>)) -> Result<usize> {
        let mut n = 0;
        while n < max && self.pos < self.end {
            self.line.clear();
            let read = self.reader.read_until(b'\n', &mut self.line)?;
            if read == 0 {
                self.end = self.pos;
                break;
            }
            let offset = self.pos;
            self.pos += read as u64;
            let mut value = &self.line[..];
            if let Some(stripped) = value.strip_suffix(b"\n") {
                value = stripped;
            }
            if let Some(stripped) = value.strip_suffix(b"\r") {
                value = stripped;
            }
            sink(RawRecord {
                partition: self.partition,
                offset: offset as i64,
                key: None,
                value: Some(value),
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
