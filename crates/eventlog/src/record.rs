//! Record framing: how one trigger instance sits in a segment file.
//!
//! ```text
//! segment = MAGIC record*
//! record  = len:u32le  crc:u32le  seq:u64le  ts_ms:u64le  body[len]
//! crc     = CRC32C over seq, ts_ms and body (the 16 + len bytes after crc)
//! ```
//!
//! `seq` numbers records 1, 2, 3, ... across the whole log without gaps;
//! `ts_ms` is the writer's clock when the record was appended (never
//! decreasing). The body is the instance's JSON without its `seq`.

/// The first bytes of every segment file (format version 1).
pub const MAGIC: &[u8; 8] = b"SCLOGv1\n";
/// Bytes before a record's body.
pub const HEADER: usize = 24;
/// Largest body a record may have. A bigger length field is corruption.
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// One record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Its sequence number.
    pub seq: u64,
    /// When it was appended (milliseconds since the Unix epoch).
    pub ts_ms: u64,
    /// The body as appended.
    pub body: Vec<u8>,
}

/// Append one framed record to `out`.
pub fn encode(out: &mut Vec<u8>, seq: u64, ts_ms: u64, body: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&ts_ms.to_le_bytes());
    out.extend_from_slice(body);
    let crc = crc32c::crc32c(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// What a header says before the body is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub len: usize,
    pub crc: u32,
    pub seq: u64,
    pub ts_ms: u64,
}

impl Header {
    /// Parse a header; `None` when the length is impossible.
    pub fn parse(b: &[u8; HEADER]) -> Option<Header> {
        let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if len > MAX_BODY {
            return None;
        }
        Some(Header {
            len,
            crc: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            seq: u64::from_le_bytes(b[8..16].try_into().unwrap_or_default()),
            ts_ms: u64::from_le_bytes(b[16..24].try_into().unwrap_or_default()),
        })
    }

    /// Whether `body` matches this header's checksum.
    pub fn check(&self, header: &[u8; HEADER], body: &[u8]) -> bool {
        let crc = crc32c::crc32c_append(crc32c::crc32c(&header[8..]), body);
        crc == self.crc
    }

    /// Total framed size.
    pub fn frame_len(&self) -> u64 {
        (HEADER + self.len) as u64
    }
}

/// Decode the framed record at the start of `buf`: `Ok(None)` when `buf`
/// holds less than a whole record, `Err(())` when it is not a valid one.
#[allow(clippy::result_unit_err)]
pub fn decode(buf: &[u8]) -> Result<Option<(StoredRecord, usize)>, ()> {
    if buf.len() < HEADER {
        return Ok(None);
    }
    let head: &[u8; HEADER] = buf[..HEADER].try_into().map_err(|_| ())?;
    let h = Header::parse(head).ok_or(())?;
    let end = HEADER + h.len;
    if buf.len() < end {
        return Ok(None);
    }
    let body = &buf[HEADER..end];
    if !h.check(head, body) {
        return Err(());
    }
    Ok(Some((
        StoredRecord {
            seq: h.seq,
            ts_ms: h.ts_ms,
            body: body.to_vec(),
        },
        end,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let mut buf = Vec::new();
        encode(&mut buf, 7, 1234, b"{\"a\":1}");
        encode(&mut buf, 8, 1235, b"");
        let (r, n) = decode(&buf).unwrap().unwrap();
        assert_eq!(
            (r.seq, r.ts_ms, r.body.as_slice()),
            (7, 1234, &b"{\"a\":1}"[..])
        );
        let (r2, n2) = decode(&buf[n..]).unwrap().unwrap();
        assert_eq!((r2.seq, r2.body.len(), n + n2), (8, 0, buf.len()));
        // A torn record is "incomplete", a flipped bit is "invalid".
        assert_eq!(decode(&buf[..n - 1]), Ok(None));
        let mut bad = buf.clone();
        bad[HEADER + 2] ^= 1;
        assert_eq!(decode(&bad), Err(()));
        let mut bad_seq = buf.clone();
        bad_seq[9] ^= 1;
        assert_eq!(decode(&bad_seq), Err(()));
        let mut huge = buf;
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&huge), Err(()));
    }
}
