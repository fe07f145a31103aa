//! Round-trip latency of a synchronous call (`kv.get`) from a Python sensor
//! through the shim and the real container, and two decompositions: the
//! shim against a stub responder (no container), and a plain-socket Python
//! sensor (no shim) against the real container.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::live::{self, Bins, SensorSpec, Workspace};
use crate::stats::Summary;

/// Times `samples` `kv.get` calls through the shim's RPC client
/// (`_client.call`, what `get_value` uses), then a tenth as many through
/// `get_value` itself; µs per call, one per line.
const LATENCY_PY: &str = r#"

class LatencySensor(BenchBase):
    def run(self):
        n = int(os.environ["BENCH_SAMPLES"])
        warm = min(1000, n)
        svc = self.sensor_service
        svc.set_value("bench_key", "v" * 40)
        call = svc._client.call
        params = {"name": "bench.LatencySensor:bench_key", "scope": "system", "decrypt": False}
        pc = time.perf_counter_ns
        out = []
        for i in range(n + warm):
            t = pc()
            call("kv.get", params)
            if i >= warm:
                out.append((pc() - t) / 1000.0)
        get = svc.get_value
        gv = []
        for i in range(max(100, n // 10)):
            t = pc()
            v = get("bench_key")
            gv.append((pc() - t) / 1000.0)
        assert v == "v" * 40, v
        marker("latency.get_value", "\n".join("%.3f" % x for x in gv))
        marker("latency.call", "\n".join("%.3f" % x for x in out))
        BenchBase.run(self)
"#;

/// A `runner_type: exec` sensor in Python with no shim: a blocking socket,
/// one pre-encoded `kv.get` request at a time.
const PLAIN_KV_PY: &str = r#"
import json, os, socket, time
out_dir = os.environ["BENCH_OUT"]
n = int(os.environ["BENCH_SAMPLES"])
warm = min(1000, n)
s = socket.socket(fileno=int(os.environ["SENSOR_RPC_FD"]))
f = s.makefile("rb")
def call(method, params):
    s.sendall((json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
                          separators=(",", ":")) + "\n").encode())
    return json.loads(f.readline())
assert call("kv.set", {"name": "bench.PlainKv:bench_key", "value": "v" * 40})["result"] is True
req = (json.dumps({"jsonrpc": "2.0", "id": 123456, "method": "kv.get",
                   "params": {"name": "bench.PlainKv:bench_key", "scope": "system", "decrypt": False}},
                  separators=(",", ":")) + "\n").encode()
pc = time.perf_counter_ns
lat = []
for i in range(n + warm):
    t = pc()
    s.sendall(req)
    f.readline()
    if i >= warm:
        lat.append((pc() - t) / 1000.0)
tmp = os.path.join(out_dir, ".plain.tmp")
with open(tmp, "w") as o:
    o.write("\n".join("%.3f" % x for x in lat))
os.rename(tmp, os.path.join(out_dir, "latency.plain"))
while True:
    time.sleep(60)
"#;

/// Samples in a marker file, one number per line.
pub(crate) fn read_samples(path: &Path) -> Result<Vec<f64>> {
    Ok(std::fs::read_to_string(path)?
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect())
}

/// Run one sensor of the bench pack until it writes `marker`.
fn run_until(ws: &Workspace, samples: usize, marker: &str) -> Result<()> {
    ws.register()?;
    let mut c = ws.start(&[], &[("BENCH_SAMPLES", samples.to_string())])?;
    c.wait_api(Duration::from_secs(30))?;
    let path = ws.marker(marker);
    live::wait_for(
        "the latency samples",
        Duration::from_secs(300),
        || c.check_alive(),
        || path.exists(),
    )?;
    c.stop(Duration::from_secs(30))
}

/// (`_client.call("kv.get")`, `get_value`) latencies in µs, shim → container.
pub fn kv_get(bins: &Bins, samples: usize) -> Result<(Summary, Summary)> {
    let ws = Workspace::new(bins, "sensorcontainer:\n  stop_grace_seconds: 5\n")?;
    let py = format!("{}{LATENCY_PY}", live::PY_HEADER);
    ws.write_pack(
        &[SensorSpec::python("LatencySensor", "latency.py", true)],
        &[("latency.py".into(), py)],
    )?;
    run_until(&ws, samples, "latency.call")?;
    let call = read_samples(&ws.marker("latency.call"))?;
    if call.len() != samples {
        bail!("{} latency samples, expected {samples}", call.len());
    }
    let gv = read_samples(&ws.marker("latency.get_value"))?;
    Ok((Summary::of(call), Summary::of(gv)))
}

/// `kv.get` latency in µs from a Python sensor with no shim (plain blocking
/// socket) through the real container.
pub fn kv_get_plain(bins: &Bins, python: &Path, samples: usize) -> Result<Summary> {
    let ws = Workspace::new(bins, "sensorcontainer:\n  stop_grace_seconds: 5\n")?;
    let script = format!("#!{}\n{PLAIN_KV_PY}", python.display());
    ws.write_pack(
        &[SensorSpec {
            class: "PlainKv".into(),
            entry: "plain_kv.py".into(),
            exec_args: Some(vec![]),
            declares_event: true,
        }],
        &[("plain_kv.py".into(), script)],
    )?;
    let entry = ws.packs.join("bench/sensors/plain_kv.py");
    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o755))?;
    run_until(&ws, samples, "latency.plain")?;
    let lat = read_samples(&ws.marker("latency.plain"))?;
    if lat.len() != samples {
        bail!("{} plain latency samples, expected {samples}", lat.len());
    }
    Ok(Summary::of(lat))
}

/// `kv.get` latency in µs through the shim's `_client.call` against a stub
/// responder thread in this process (answers every request at once with a
/// key object of the real size): the shim's share of the round trip.
pub fn kv_get_shim_stub(python: &Path, samples: usize) -> Result<Summary> {
    let tmp = tempfile::tempdir()?;
    let runtime = container::runtime::install(tmp.path()).context("install the shim")?;
    let script = format!(
        r#"
import os, socket, sys, time
sys.path.insert(0, {runtime:?})
from st2reactor.container import rpc
c = rpc.RpcClient(socket.socket(fileno=3))
c.start()
params = {{"name": "bench.LatencySensor:bench_key", "scope": "system", "decrypt": False}}
pc = time.perf_counter_ns
out = []
warm = min(1000, {samples})
for i in range({samples} + warm):
    t = pc()
    c.call("kv.get", params)
    if i >= warm:
        out.append((pc() - t) / 1000.0)
print("\n".join("%.3f" % x for x in out))
"#,
        runtime = runtime.display().to_string()
    );
    let (mine, theirs) = std::os::unix::net::UnixStream::pair()?;
    let mut cmd = std::process::Command::new(python);
    cmd.args(["-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped());
    let fd = std::os::fd::AsRawFd::as_raw_fd(&theirs);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
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
    let stub = std::thread::spawn(move || -> Result<()> {
        let mut w = mine.try_clone()?;
        let mut r = BufReader::new(mine);
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let v: serde_json::Value = serde_json::from_str(&line)?;
            let reply = serde_json::json!({"jsonrpc": "2.0", "id": v["id"], "result": {
                "name": "bench.LatencySensor:bench_key", "value": "v".repeat(40), "secret": false,
                "encrypted": false, "scope": "st2kv.system", "expire_timestamp": null}});
            let mut bytes = serde_json::to_vec(&reply)?;
            bytes.push(b'\n');
            w.write_all(&bytes)?;
        }
    });
    let out = child.wait_with_output()?;
    let _ = stub.join();
    let lat: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    if lat.len() != samples {
        bail!("shim stub: {} samples, expected {samples}", lat.len());
    }
    Ok(Summary::of(lat))
}
