//! More processes of one sensor: a per-sensor Unix socket where a child or
//! a re-executed image of the sensor (Flask's reloader, a forking server)
//! attaches to the same sensor service, since fd 3 reaches only the first
//! process. The socket (mode 0600, in a 0700 directory) lives while the
//! sensor process runs; its path and a random token go to the sensor in
//! `SENSOR_RPC_SOCKET` and `SENSOR_RPC_TOKEN`. The first frame on a new
//! connection must be `{"jsonrpc":"2.0","id":0,"method":"attach",
//! "params":{"token":"..."}}` (within 5 s); after the answer the connection
//! is an ordinary sensor connection with its own ordering guarantee.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use md5::{Digest, Md5};
use protocol::{codes, Response, RpcError};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

/// Longest wait for the attach frame.
const ATTACH_DEADLINE: Duration = Duration::from_secs(5);
/// Longest attach frame.
const MAX_ATTACH_FRAME: usize = 4096;
/// Attached connections one sensor may hold at once.
pub const MAX_ATTACHED: usize = 32;
/// `sockaddr_un` holds 108 bytes; stay below with the terminating NUL.
const MAX_SOCKET_PATH: usize = 100;

/// A sensor's attach socket; closed and removed on drop.
pub struct AttachPoint {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AttachPoint {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Where sensor `sensor_ref`'s socket goes: `<data_dir>/run/<hash>.sock`,
/// or under the temp dir when that path would be too long for a socket.
fn socket_path(data_dir: &Path, sensor_ref: &str) -> std::io::Result<PathBuf> {
    let hash: String = Md5::digest(format!("{}\0{sensor_ref}", data_dir.display()).as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = data_dir.join("run");
    let path = dir.join(format!("{hash}.sock"));
    if path.as_os_str().len() <= MAX_SOCKET_PATH {
        private_dir(&dir)?;
        return Ok(path);
    }
    let uid = nix::unistd::getuid();
    let dir = std::env::temp_dir().join(format!("sensorcontainer-{uid}"));
    private_dir(&dir)?;
    Ok(dir.join(format!("{hash}.sock")))
}

/// A fresh token: 32 bytes from the OS CSPRNG, hex.
pub fn new_token() -> std::io::Result<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| std::io::Error::other(format!("no randomness: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Equal in time independent of where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl AttachPoint {
    /// Listen for sensor `sensor_ref`; every accepted, authenticated
    /// connection goes to `on_attach` (at most [`MAX_ATTACHED`] at once;
    /// `live` counts them and is decremented by whoever ends one).
    pub fn open(
        data_dir: &Path,
        sensor_ref: &str,
        token: &str,
        live: Arc<AtomicUsize>,
        on_attach: impl Fn(UnixStream) + Send + Sync + 'static,
    ) -> std::io::Result<AttachPoint> {
        let path = socket_path(data_dir, sensor_ref)?;
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        let token = token.to_string();
        let expected = token.clone();
        let sensor = sensor_ref.to_string();
        let on_attach = Arc::new(on_attach);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let (expected, sensor, on_attach, live) = (
                    expected.clone(),
                    sensor.clone(),
                    on_attach.clone(),
                    live.clone(),
                );
                tokio::spawn(async move {
                    match handshake(stream, &expected, &live).await {
                        Ok(stream) => {
                            tracing::info!(sensor = %sensor, "a process attached to the sensor service");
                            on_attach(stream);
                        }
                        Err(why) => tracing::warn!(sensor = %sensor, "attach refused: {why}"),
                    }
                });
            }
        });
        Ok(AttachPoint { path, task })
    }

    /// `SENSOR_RPC_SOCKET` for the sensor's environment (the token goes
    /// there separately: it also marks the start's processes).
    pub fn socket_env(&self) -> (String, String) {
        (
            protocol::RPC_SOCKET_ENV.to_string(),
            self.path.display().to_string(),
        )
    }
}

async fn write_frame(stream: &mut UnixStream, resp: Response) {
    let _ = tokio::time::timeout(ATTACH_DEADLINE, stream.write_all(&resp.to_frame())).await;
}

/// Read the attach frame (byte by byte: nothing past its newline is
/// consumed), check the token, answer.
async fn handshake(
    mut stream: UnixStream,
    token: &str,
    live: &AtomicUsize,
) -> Result<UnixStream, String> {
    let mut line = Vec::with_capacity(128);
    let read = async {
        loop {
            let b = stream
                .read_u8()
                .await
                .map_err(|e| format!("closed before attaching: {e}"))?;
            if b == b'\n' {
                return Ok::<(), String>(());
            }
            if line.len() >= MAX_ATTACH_FRAME {
                return Err(format!("attach frame longer than {MAX_ATTACH_FRAME} bytes"));
            }
            line.push(b);
        }
    };
    match tokio::time::timeout(ATTACH_DEADLINE, read).await {
        Err(_) => return Err(format!("no attach frame within {ATTACH_DEADLINE:?}")),
        Ok(Err(e)) => return Err(e),
        Ok(Ok(())) => {}
    }
    let frame: Value = serde_json::from_slice(&line).unwrap_or(Value::Null);
    let id = frame.get("id").cloned().unwrap_or(Value::Null);
    let presented = frame
        .get("params")
        .and_then(|p| p.get("token"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let refuse = |why: &str| {
        Response::err(
            id.clone(),
            RpcError::new(codes::ATTACH_REFUSED, format!("attach refused: {why}")),
        )
    };
    if frame.get("method").and_then(Value::as_str) != Some("attach") {
        write_frame(
            &mut stream,
            refuse("the first frame must be an attach request"),
        )
        .await;
        return Err("the first frame was not an attach request".into());
    }
    if !same(presented.as_bytes(), token.as_bytes()) {
        write_frame(
            &mut stream,
            refuse("wrong or missing token (SENSOR_RPC_TOKEN)"),
        )
        .await;
        return Err("wrong or missing token".into());
    }
    if live.fetch_add(1, Ordering::AcqRel) >= MAX_ATTACHED {
        live.fetch_sub(1, Ordering::AcqRel);
        write_frame(
            &mut stream,
            refuse(&format!(
                "this sensor already has {MAX_ATTACHED} attached processes"
            )),
        )
        .await;
        return Err(format!("more than {MAX_ATTACHED} attached processes"));
    }
    write_frame(&mut stream, Response::ok(id, json!({"attached": true}))).await;
    Ok(stream)
}
