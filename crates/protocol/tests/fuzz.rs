//! Property-based fuzzing of the frame decoder and the message parser on
//! random input: never a panic, never a frame over the limit, one frame per
//! newline. `FUZZ_CASES` sets the number of cases (default 2,000 in the
//! normal suite; the dedicated run in README uses 1,000,000).

use protocol::{Frame, FrameReader, Incoming};

fn cases() -> usize {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"\n",
    b"\r\n",
    b"\\",
    b"\\u00",
    b"jsonrpc",
    b"\"2.0\"",
    b"id",
    b"method",
    b"params",
    b"dispatch",
    b"result",
    b"error",
    b"null",
    b"true",
    b"1e309",
    b"-0",
    b"18446744073709551616",
    b" ",
    b"\x00",
    b"\xff",
    b"\xc3\x28",
    b"\"x\"",
];

fn input(rng: &mut fastrand::Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.usize(0..60) {
        if rng.u8(..) < 40 {
            out.push(rng.u8(..));
        } else {
            out.extend_from_slice(TOKENS[rng.usize(0..TOKENS.len())]);
        }
    }
    out
}

#[test]
fn random_bytes_never_break_the_decoder_or_the_parser() {
    let n = cases();
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let mut rng = fastrand::Rng::with_seed(seed);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        for case in 0..n {
            let bytes = input(&mut rng);
            let max = rng.usize(1..80);
            let mut frames = FrameReader::new(&bytes[..], max);
            let mut count = 0;
            while let Some(f) = frames.next_frame().await.unwrap() {
                count += 1;
                if let Frame::Line(line) = f {
                    assert!(
                        line.len() <= max,
                        "case {case}: a {}-byte line over {max}",
                        line.len()
                    );
                    let _ = Incoming::parse(&line);
                }
            }
            let newlines = bytes.iter().filter(|b| **b == b'\n').count();
            let tail = !bytes.is_empty() && *bytes.last().unwrap() != b'\n';
            assert_eq!(count, newlines + tail as usize, "case {case}: {bytes:?}");
            // And the whole input as one message.
            let _ = Incoming::parse(&bytes);
        }
    });
}
