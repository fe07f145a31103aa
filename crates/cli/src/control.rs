//! Where a data directory's control socket is. The server and the client
//! live in the `api` crate (`api::server`, `api::client`).

use std::path::{Path, PathBuf};

/// The socket's file name inside the data directory.
pub const SOCKET_NAME: &str = "control.sock";

/// Where the control socket of a data directory is.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}
