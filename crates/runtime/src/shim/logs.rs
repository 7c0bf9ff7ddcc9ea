//! Container output in the CRI log format, one line per line of output:
//! `<RFC 3339 time with nanoseconds> <stdout|stderr> <F|P> <text>`. `F` ends a line; a line
//! longer than [`MAX_LINE`] is cut into `P` (partial) pieces followed by its `F` end. The
//! file is rotated by size: `log` → `log.1` → … → `log.<max_files-1>`, the oldest dropped.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Longest piece written as one log line.
pub const MAX_LINE: usize = 16 * 1024;

/// Which stream output came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Writes CRI log lines to a file, rotating it by size.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    max_files: u32,
    pending: [Vec<u8>; 2],
}

fn open_append(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    File::options().create(true).append(true).open(path)
}

impl LogWriter {
    /// Opens (appending to) the log file. `max_bytes` 0 disables rotation.
    pub fn open(path: &Path, max_bytes: u64, max_files: u32) -> std::io::Result<Self> {
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_path_buf(),
            file,
            size,
            max_bytes,
            max_files: max_files.max(1),
            pending: [Vec::new(), Vec::new()],
        })
    }

    /// Takes output of a stream; complete lines are written, the rest waits for more.
    pub fn write(&mut self, stream: Stream, data: &[u8]) {
        let idx = stream as usize;
        let mut buf = std::mem::take(&mut self.pending[idx]);
        buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
            let line = &buf[start..start + nl];
            self.emit_line(stream, line);
            start += nl + 1;
        }
        let mut rest = buf.split_off(start);
        while rest.len() >= MAX_LINE {
            let tail = rest.split_off(MAX_LINE);
            self.emit(stream, 'P', &rest);
            rest = tail;
        }
        self.pending[idx] = rest;
    }

    fn emit_line(&mut self, stream: Stream, mut line: &[u8]) {
        while line.len() > MAX_LINE {
            self.emit(stream, 'P', &line[..MAX_LINE]);
            line = &line[MAX_LINE..];
        }
        self.emit(stream, 'F', line);
    }

    /// Writes what is pending of both streams as complete lines (at the end of output).
    pub fn flush(&mut self) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let rest = std::mem::take(&mut self.pending[stream as usize]);
            if !rest.is_empty() {
                self.emit(stream, 'F', &rest);
            }
        }
    }

    fn emit(&mut self, stream: Stream, tag: char, text: &[u8]) {
        let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let mut line = Vec::with_capacity(text.len() + 48);
        line.extend_from_slice(ts.as_bytes());
        line.push(b' ');
        line.extend_from_slice(stream.name().as_bytes());
        line.push(b' ');
        line.push(tag as u8);
        line.push(b' ');
        line.extend_from_slice(text);
        line.push(b'\n');
        if self.max_bytes > 0 && self.size > 0 && self.size + line.len() as u64 > self.max_bytes {
            self.rotate();
        }
        // A full disk loses output rather than stopping the container.
        if self.file.write_all(&line).is_ok() {
            self.size += line.len() as u64;
        }
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut s = self.path.clone().into_os_string();
        s.push(format!(".{n}"));
        PathBuf::from(s)
    }

    fn rotate(&mut self) {
        if self.max_files <= 1 {
            let _ = self.file.set_len(0);
            self.size = 0;
            return;
        }
        let _ = std::fs::remove_file(self.rotated(self.max_files - 1));
        for n in (1..self.max_files - 1).rev() {
            let _ = std::fs::rename(self.rotated(n), self.rotated(n + 1));
        }
        let _ = std::fs::rename(&self.path, self.rotated(1));
        self.reopen();
    }

    /// Reopens the file at its path (after someone else moved it away).
    pub fn reopen(&mut self) {
        if let Ok(f) = open_append(&self.path) {
            self.size = f.metadata().map(|m| m.len()).unwrap_or(0);
            self.file = f;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(p: &Path) -> Vec<(String, String, String)> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| {
                let mut it = l.splitn(4, ' ');
                let ts = it.next().unwrap();
                assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{ts}");
                (
                    it.next().unwrap().to_string(),
                    it.next().unwrap().to_string(),
                    it.next().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn full_and_partial_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.log");
        let mut w = LogWriter::open(&p, 0, 1).unwrap();
        w.write(Stream::Stdout, b"hello\nwor");
        w.write(Stream::Stderr, b"oops\n");
        w.write(Stream::Stdout, b"ld\n\n");
        let long = vec![b'x'; MAX_LINE + 10];
        w.write(Stream::Stdout, &long);
        w.write(Stream::Stdout, b"\n");
        w.write(Stream::Stdout, b"tail");
        w.flush();
        let l = lines(&p);
        let s = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
        assert_eq!(l[0], s("stdout", "F", "hello"));
        assert_eq!(l[1], s("stderr", "F", "oops"));
        assert_eq!(l[2], s("stdout", "F", "world"));
        assert_eq!(l[3], s("stdout", "F", ""));
        assert_eq!(l[4].1, "P");
        assert_eq!(l[4].2.len(), MAX_LINE);
        assert_eq!(l[5], s("stdout", "F", &"x".repeat(10)));
        assert_eq!(l[6], s("stdout", "F", "tail"));
    }

    #[test]
    fn rotates_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.log");
        let mut w = LogWriter::open(&p, 1000, 3).unwrap();
        for i in 0..100 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes());
        }
        assert!(std::fs::metadata(&p).unwrap().len() <= 1000);
        assert!(dir.path().join("c.log.1").exists());
        assert!(dir.path().join("c.log.2").exists());
        assert!(!dir.path().join("c.log.3").exists());
        // The newest line is in the current file, older ones in .1.
        assert!(lines(&p).last().unwrap().2 == "line 99");
        let older = lines(&dir.path().join("c.log.1"));
        let first_current: u32 = lines(&p)[0].2[5..].parse().unwrap();
        assert_eq!(
            older.last().unwrap().2,
            format!("line {}", first_current - 1)
        );
    }
}
