//! The limits: what the machine, the disk, the pipe, sled and the
//! interpreter can do with none of our code in the way.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use protocol::{Frame, FrameReader, Incoming};
use tokio::io::BufReader;

use crate::live::rss_bytes;
use crate::stats::Summary;

/// The dispatch frame the raw-pipe row writes (same shape as the shim's).
pub const PAYLOAD_FRAME: &str = r#"{"jsonrpc":"2.0","id":123456,"method":"dispatch","params":{"trigger":"bench.event","payload":{"n":123456,"source":"bench"}}}"#;

/// A `kv.get` request as the shim sends it (the echo row sends this size).
pub const KV_GET_FRAME: &str = r#"{"jsonrpc":"2.0","id":123456,"method":"kv.get","params":{"name":"bench.LatencySensor:bench_key","scope":"system","decrypt":false}}"#;

/// sled's own batched insert + flush rate with instance-sized values.
pub fn sled_limit(n: u64) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let db = sled::Config::new()
        .path(dir.path())
        .cache_capacity(64 << 20)
        .open()?;
    let tree = db.open_tree("bench")?;
    let value = vec![b'x'; 300];
    let start = Instant::now();
    for i in 0..n {
        tree.insert(i.to_be_bytes(), value.as_slice())?;
        if i % 1000 == 999 {
            db.flush()?;
        }
    }
    db.flush()?;
    let rate = n as f64 / start.elapsed().as_secs_f64();
    eprintln!("  sled insert + flush/1000: {rate:.0}/s");
    Ok(rate)
}

/// Bytes per record the raw-append limit writes: a 300-byte body plus the
/// 24-byte frame header, the bytes the trigger-instance log writes for
/// each 300-byte record (`eventlog::record::HEADER`).
pub const RAW_RECORD_BYTES: usize = eventlog::record::HEADER + crate::rows::log::BODY_BYTES;

/// The disk's limit for durable appends: one thread appends `batch`
/// records of [`RAW_RECORD_BYTES`] to a plain file in a temp dir (same
/// filesystem as the data dirs) with one `write` + `File::sync_data` per
/// batch, for about `dur`. Records per second.
pub fn raw_append_fdatasync(batch: usize, dur: Duration) -> Result<f64> {
    let dir = tempfile::tempdir().context("temp dir for the raw append limit")?;
    let path = dir.path().join("raw.log");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("create {}", path.display()))?;
    let buf = vec![b'x'; batch * RAW_RECORD_BYTES];
    // One synced batch first, so the file exists on disk before timing.
    file.write_all(&buf)
        .and_then(|()| file.sync_data())
        .with_context(|| format!("append to {}", path.display()))?;
    let start = Instant::now();
    let mut records = 0u64;
    while start.elapsed() < dur {
        file.write_all(&buf)
            .and_then(|()| file.sync_data())
            .with_context(|| format!("append to {}", path.display()))?;
        records += batch as u64;
    }
    let rate = records as f64 / start.elapsed().as_secs_f64();
    eprintln!(
        "  raw append + fdatasync, {batch} × {RAW_RECORD_BYTES} B per sync: {rate:.0}/s ({:.2} ms per sync)",
        1e3 * start.elapsed().as_secs_f64() * batch as f64 / records as f64
    );
    Ok(rate)
}

/// The raw pipe: Python writes frames as fast as it can (1000 per write),
/// we read and parse them through the same reader the container uses.
pub async fn raw_pipe(python: &Path, n: u64) -> Result<f64> {
    let script = format!(
        r#"
import json, os
fd = int(os.environ["SENSOR_RPC_FD"])
n = {n}
batch = []
for i in range(n):
    batch.append(json.dumps({{"jsonrpc": "2.0", "id": i, "method": "dispatch", "params": {{"trigger": "bench.event", "payload": {{"n": i, "source": "bench"}}}}}}, separators=(",", ":")))
    if len(batch) == 1000:
        data = ("\n".join(batch) + "\n").encode()
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        batch = []
if batch:
    os.write(fd, ("\n".join(batch) + "\n").encode())
"#
    );
    let spec = container::spawn::SpawnSpec {
        sensor_ref: "bench.pipe".into(),
        program: python.to_path_buf(),
        args: vec!["-c".into(), script.into()],
        env: vec![],
        cwd: None,
        run_as: None,
        limits: Default::default(),
        cgroup_procs: None,
    };
    let status = Arc::new(container::status::SensorStatus::default());
    let mut spawned = container::spawn::spawn(&spec, status)?;
    let mut reader = FrameReader::new(
        BufReader::with_capacity(64 * 1024, spawned.conn),
        protocol::DEFAULT_MAX_FRAME_BYTES,
    );
    let mut count = 0u64;
    let mut start = None;
    while let Some(frame) = reader.next_frame().await? {
        start.get_or_insert_with(Instant::now);
        if let Frame::Line(line) = frame {
            if Incoming::parse(&line).is_ok() {
                count += 1;
            }
        }
    }
    let elapsed = start.map(|s| s.elapsed().as_secs_f64()).unwrap_or(f64::NAN);
    spawned.child.wait().await?;
    if count != n {
        bail!("raw pipe: read {count} frames, expected {n}");
    }
    let rate = n as f64 / elapsed;
    eprintln!("  raw pipe: {rate:.0}/s");
    Ok(rate)
}

/// Spawn `python -c script` with one end of a socketpair as fd 3.
fn python_on_fd3(python: &Path, script: &str) -> Result<(std::process::Child, StdUnixStream)> {
    let (mine, theirs) = StdUnixStream::pair()?;
    let fd = theirs.as_raw_fd();
    let mut cmd = Command::new(python);
    cmd.args(["-c", script])
        .env("SENSOR_RPC_FD", "3")
        .stdin(Stdio::null());
    // SAFETY: only async-signal-safe calls on plain integers between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0);
            } else if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().context("spawn python")?;
    drop(theirs);
    Ok((child, mine))
}

/// Round trips of a `kv.get`-sized frame: we write it, a Python peer
/// echoes it back (blocking recv/sendall), we read it. One sample per trip.
pub fn echo_latency(python: &Path, samples: usize) -> Result<Summary> {
    let script = r#"
import os, socket
s = socket.socket(fileno=int(os.environ["SENSOR_RPC_FD"]))
recv, send = s.recv, s.sendall
while True:
    d = recv(65536)
    if not d:
        break
    send(d)
"#;
    let (mut child, mut sock) = python_on_fd3(python, script)?;
    let msg = format!("{KV_GET_FRAME}\n");
    let msg = msg.as_bytes();
    let mut buf = vec![0u8; msg.len()];
    let warmup = 1000.min(samples);
    let mut lat = Vec::with_capacity(samples);
    for i in 0..warmup + samples {
        let t = Instant::now();
        sock.write_all(msg)?;
        sock.read_exact(&mut buf)?;
        let dt = t.elapsed();
        if i >= warmup {
            lat.push(dt.as_secs_f64() * 1e6);
        }
    }
    drop(sock);
    child.wait()?;
    let s = Summary::of(lat);
    eprintln!(
        "  raw echo (Rust ⇄ Python): p50 {:.1} µs, p99 {:.1} µs",
        s.p50, s.p99
    );
    Ok(s)
}

/// Round trips the other way round: a Python client (plain blocking
/// socket, no shim) times `sendall` + `recv` against a Rust echo thread.
/// Diagnostic: the client side as the shim sees it, minus the shim.
pub fn echo_latency_python_client(python: &Path, samples: usize) -> Result<Summary> {
    let script = format!(
        r#"
import os, socket, time
s = socket.socket(fileno=int(os.environ["SENSOR_RPC_FD"]))
msg = {msg:?}.encode() + b"\n"
n = len(msg)
out = []
pc = time.perf_counter_ns
for i in range({total}):
    t = pc()
    s.sendall(msg)
    got = 0
    while got < n:
        got += len(s.recv(65536))
    if i >= {warmup}:
        out.append((pc() - t) / 1000.0)
print("\n".join("%.3f" % x for x in out))
"#,
        msg = KV_GET_FRAME,
        total = samples + 1000.min(samples),
        warmup = 1000.min(samples)
    );
    let (mine, theirs) = StdUnixStream::pair()?;
    let fd = theirs.as_raw_fd();
    let mut cmd = Command::new(python);
    cmd.args(["-c", &script])
        .env("SENSOR_RPC_FD", "3")
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    // SAFETY: as in python_on_fd3.
    unsafe {
        cmd.pre_exec(move || {
            if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0);
            } else if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    drop(theirs);
    let echo = std::thread::spawn(move || -> Result<()> {
        let mut s = mine;
        let mut buf = vec![0u8; 65536];
        loop {
            let n = s.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            s.write_all(&buf[..n])?;
        }
    });
    let out = child.wait_with_output()?;
    let _ = echo.join();
    let lat: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    if lat.len() != samples {
        bail!(
            "python echo client: {} samples, expected {samples}",
            lat.len()
        );
    }
    Ok(Summary::of(lat))
}

/// `n` runs of `python -c pass` started at once; wall time until all
/// exited, and the CPU time they used in total.
pub fn bare_python_parallel(python: &Path, n: usize) -> Result<(Duration, f64)> {
    let cpu0 = crate::live::children_cpu_secs();
    let start = Instant::now();
    let mut kids = Vec::with_capacity(n);
    for _ in 0..n {
        kids.push(
            Command::new(python)
                .args(["-c", "pass"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?,
        );
    }
    for mut k in kids {
        let st = k.wait()?;
        if !st.success() {
            bail!("python3 -c pass failed: {st}");
        }
    }
    Ok((start.elapsed(), crate::live::children_cpu_secs() - cpu0))
}

/// One `python -c pass`, start to exit.
pub fn bare_python_once(python: &Path) -> Result<Duration> {
    let start = Instant::now();
    let st = Command::new(python)
        .args(["-c", "pass"])
        .stdin(Stdio::null())
        .status()?;
    if !st.success() {
        bail!("python3 -c pass failed: {st}");
    }
    Ok(start.elapsed())
}

/// RSS of an idle bare interpreter (started, then blocked reading stdin).
pub fn bare_python_rss(python: &Path) -> Result<u64> {
    let mut child = Command::new(python)
        .args([
            "-c",
            "import sys; sys.stdout.write('up\\n'); sys.stdout.flush(); sys.stdin.read()",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut up = [0u8; 3];
    child
        .stdout
        .as_mut()
        .context("stdout")?
        .read_exact(&mut up)?;
    std::thread::sleep(Duration::from_millis(200));
    let rss = rss_bytes(child.id());
    drop(child.stdin.take());
    child.wait()?;
    rss
}

/// The container's per-dispatch work on one thread, with no pipe, no
/// async runtime and no other thread but the group-commit flusher: parse
/// the frame as the connection reader does, validate and append through
/// the real `Dispatcher`, and wait for durability every 1000 (so flushes
/// cover ~1000 instances, like the sled row). An upper bound for one
/// sensor connection with the current dispatch path.
pub fn dispatcher_inprocess(n: u64) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let pack = dir.path().join("packs/bench");
    std::fs::create_dir_all(pack.join("sensors"))?;
    std::fs::write(
        pack.join("pack.yaml"),
        "name: bench\ndescription: bench\nversion: 1.0.0\nauthor: bench\n",
    )?;
    std::fs::write(pack.join("sensors/bench.py"), "")?;
    std::fs::write(
        pack.join("sensors/bench.yaml"),
        "class_name: BenchSensor\nentry_point: bench.py\ntrigger_types:\n  - name: event\n    payload_schema:\n      type: object\n      properties:\n        n: {type: integer, required: true}\n        source: {type: string}\n",
    )?;
    let store = store::Store::open(&dir.path().join("data"), &store::StoreOptions::default())?;
    let report = content::load_packs(&content::LoadOptions {
        packs_paths: vec![dir.path().join("packs")],
        configs_dir: dir.path().join("configs"),
    });
    if let Some(e) = report.errors.first() {
        bail!("bench pack: {e}");
    }
    store::registrar::register(
        &store.registry,
        &report,
        store::registrar::RegisterWhat::all(),
    )?;
    let log: std::sync::Arc<dyn eventlog::EventLog> = std::sync::Arc::new(eventlog::Log::open(
        &dir.path().join("data/log"),
        eventlog::LogOptions::default(),
    )?);
    let dispatcher = container::dispatcher::Dispatcher::open(&store, log)?;
    let frames: Vec<Vec<u8>> = (0..1000u64)
        .map(|i| format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"dispatch","params":{{"trigger":"bench.event","payload":{{"n":{i},"source":"bench"}}}}}}"#).into_bytes())
        .collect();
    let start = Instant::now();
    let mut last = None;
    for i in 0..n {
        let Ok(Incoming::Request(req)) = Incoming::parse(&frames[(i % 1000) as usize]) else {
            bail!("bad frame");
        };
        let params: container::dispatcher::DispatchParams = serde_json::from_value(req.params)?;
        let accepted = dispatcher
            .dispatch(Some("bench.BenchSensor"), params)
            .map_err(|e| anyhow::anyhow!("dispatch: {}", e.message))?;
        if i % 1000 == 999 {
            accepted.completion.wait_blocking()?;
        }
        last = Some(accepted.completion);
    }
    if let Some(c) = last {
        c.wait_blocking()?;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    eprintln!("  dispatcher in-process (parse + validate + append, durable per 1000): {rate:.0}/s");
    Ok(rate)
}
