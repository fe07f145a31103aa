//! The wire contract between `sensorcontainer` and sensor processes.
//!
//! JSON-RPC 2.0, one object per `\n`-terminated line, over a Unix socketpair
//! handed to the child as fd 3. `PROTOCOL.md` beside this crate is the
//! normative description; this crate holds the message types, the error
//! codes and a size-bounded line reader.

pub mod codes;
pub mod framing;
pub mod integers;
pub mod message;

pub use framing::{Frame, FrameReader};
pub use message::{Incoming, Notification, Request, Response, RpcError};

/// Environment variable naming the fd of the RPC socket in the child.
pub const RPC_FD_ENV: &str = "SENSOR_RPC_FD";
/// The fd number the container always uses.
pub const RPC_FD: i32 = 3;
/// Environment variable naming the Unix socket where a sensor's other
/// processes (children, re-executed images) attach (see PROTOCOL.md).
pub const RPC_SOCKET_ENV: &str = "SENSOR_RPC_SOCKET";
/// Environment variable holding the token an `attach` must present.
pub const RPC_TOKEN_ENV: &str = "SENSOR_RPC_TOKEN";
/// Default maximum frame size (1 MiB).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 1024 * 1024;
