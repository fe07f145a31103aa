//! A newline-delimited frame reader with a hard size limit.
//!
//! A peer that sends an over-long line must not make us buffer it: the
//! reader discards bytes past the limit until the next newline and reports
//! [`Frame::TooLarge`], so the connection survives.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// One item read from the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete line, without its `\n` (and without a trailing `\r`).
    Line(Vec<u8>),
    /// A line longer than the limit; `len` is how many bytes it had.
    TooLarge { len: usize },
}

/// Reads `\n`-terminated frames, never buffering more than `max` bytes.
pub struct FrameReader<R> {
    inner: R,
    max: usize,
    buf: Vec<u8>,
}

impl<R: AsyncBufRead + Unpin> FrameReader<R> {
    /// Wrap a buffered reader; frames longer than `max` bytes are discarded.
    pub fn new(inner: R, max: usize) -> Self {
        FrameReader {
            inner,
            max,
            buf: Vec::new(),
        }
    }

    /// The next frame, or `None` at end of stream. A final line without a
    /// newline is returned as a frame.
    pub async fn next_frame(&mut self) -> std::io::Result<Option<Frame>> {
        self.buf.clear();
        let mut oversized: Option<usize> = None;
        loop {
            let available = self.inner.fill_buf().await?;
            if available.is_empty() {
                // EOF
                return Ok(match oversized {
                    Some(len) => Some(Frame::TooLarge { len }),
                    None if self.buf.is_empty() => None,
                    None => Some(Frame::Line(trim_cr(std::mem::take(&mut self.buf)))),
                });
            }
            let (chunk, found_newline) = match memchr(available) {
                Some(i) => (&available[..i], Some(i)),
                None => (available, None),
            };
            match &mut oversized {
                Some(len) => *len += chunk.len(),
                None if self.buf.len() + chunk.len() > self.max => {
                    oversized = Some(self.buf.len() + chunk.len());
                    self.buf.clear();
                    self.buf.shrink_to(64 * 1024);
                }
                None => self.buf.extend_from_slice(chunk),
            }
            let consumed = found_newline.map_or(chunk.len(), |i| i + 1);
            self.inner.consume(consumed);
            if found_newline.is_some() {
                return Ok(Some(match oversized {
                    Some(len) => Frame::TooLarge { len },
                    None => Frame::Line(trim_cr(std::mem::take(&mut self.buf))),
                }));
            }
        }
    }
}

impl<R: tokio::io::AsyncRead> FrameReader<tokio::io::BufReader<R>> {
    /// Whether another complete frame is already buffered, i.e. the next
    /// [`FrameReader::next_frame`] returns without waiting for the peer.
    pub fn has_buffered_frame(&self) -> bool {
        memchr(self.inner.buffer()).is_some()
    }
}

fn memchr(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|b| *b == b'\n')
}

fn trim_cr(mut line: Vec<u8>) -> Vec<u8> {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames(input: &[u8], max: usize) -> Vec<Frame> {
        let mut r = FrameReader::new(tokio::io::BufReader::with_capacity(7, input), max);
        let mut out = vec![];
        while let Some(f) = r.next_frame().await.unwrap() {
            out.push(f);
        }
        out
    }

    #[tokio::test]
    async fn splits_lines_across_small_buffers() {
        let out = frames(b"hello world\nsecond line here\r\nlast", 100).await;
        assert_eq!(
            out,
            vec![
                Frame::Line(b"hello world".to_vec()),
                Frame::Line(b"second line here".to_vec()),
                Frame::Line(b"last".to_vec())
            ]
        );
    }

    #[tokio::test]
    async fn oversized_frame_is_skipped_and_reader_survives() {
        let mut input = vec![b'x'; 50];
        input.extend_from_slice(b"\nok\n");
        let out = frames(&input, 10).await;
        assert_eq!(
            out,
            vec![Frame::TooLarge { len: 50 }, Frame::Line(b"ok".to_vec())]
        );
    }

    #[tokio::test]
    async fn exact_limit_is_accepted() {
        let out = frames(b"0123456789\n", 10).await;
        assert_eq!(out, vec![Frame::Line(b"0123456789".to_vec())]);
    }
}
