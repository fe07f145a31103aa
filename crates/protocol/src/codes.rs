//! JSON-RPC error codes. The standard ones come from the JSON-RPC 2.0 spec;
//! the `-320xx` ones are ours (see `PROTOCOL.md`, "Error codes").

/// The line is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// Valid JSON but not a JSON-RPC 2.0 request or notification.
pub const INVALID_REQUEST: i64 = -32600;
/// The method does not exist (or is not available in this version).
pub const METHOD_NOT_FOUND: i64 = -32601;
/// The params are missing or of the wrong shape.
pub const INVALID_PARAMS: i64 = -32602;
/// A bug or unexpected failure in the container.
pub const INTERNAL_ERROR: i64 = -32603;
/// The frame exceeded the configured size limit; it was discarded.
pub const FRAME_TOO_LARGE: i64 = -32001;
/// The payload failed the trigger type's `payload_schema`.
pub const VALIDATION_FAILED: i64 = -32010;
/// The trigger (type) named in a dispatch does not exist.
pub const UNKNOWN_TRIGGER: i64 = -32011;
/// The datastore rejected the call (bad name, scope, value, crypto...).
pub const DATASTORE_ERROR: i64 = -32020;
/// Storage failed: the trigger instance or key is not durable.
pub const STORAGE_ERROR: i64 = -32030;
/// An `attach` on a sensor's socket was refused (wrong or missing token).
pub const ATTACH_REFUSED: i64 = -32040;
