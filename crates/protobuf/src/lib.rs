//! The Kubernetes protobuf wire format (`application/vnd.kubernetes.protobuf`), converted to
//! and from the JSON objects rkube's API server stores and serves.
//!
//! kubectl's typed commands and every client-go based component send request bodies in
//! protobuf and prefer protobuf responses. This crate turns such a body into the JSON
//! upstream would have printed for the same object, and a JSON object into the bytes
//! upstream would have sent, for every built-in type of Kubernetes v1.33 (plus
//! `apiextensions.k8s.io/v1`, `apiregistration.k8s.io/v1`, `meta.k8s.io/v1`,
//! `apidiscovery.k8s.io/v2`, `metrics.k8s.io/v1beta1`).
//!
//! - [`decode`] / [`encode`]: one object in its envelope (`k8s\0` + `runtime.Unknown`).
//! - [`encode_watch_event`] / [`decode_watch_event`] and [`frame`] / [`FrameBuffer`]: protobuf
//!   watch streams (length-prefixed `WatchEvent` frames).
//!
//! It is table-driven: `generated.rs` (written by `examples/gen`, see there for where the
//! facts come from) lists every message with its fields' numbers, JSON names, protobuf types
//! and how upstream's Go struct declares them (pointer or value, `omitempty`, inline);
//! `decode.rs` and `encode.rs` walk it. Custom resources have no protobuf form (upstream
//! serves them as JSON only); asking for one gives [`Error::UnknownKind`], which a server
//! answers with 406 Not Acceptable.
//!
//! What JSON decoding produces, precisely: field names and values as upstream's Go types
//! print them (`volumeID`, base64 for bytes, RFC 3339 times, quantities as strings,
//! IntOrString as number or string, embedded JSON for `RawExtension`/`FieldsV1`, apiextensions
//! `JSON` and `JSONSchemaPropsOr*` as upstream marshals them), zero values of value fields
//! where Go prints them (`"status": {}`, `"containerPort": 0`), and no `null`s (upstream prints
//! `null` for nil pointers and slices without `omitempty` and for the zero time; every
//! upstream decoder reads `null` and absence alike, so they are left out).

mod decode;
mod encode;
mod envelope;
mod error;
#[rustfmt::skip]
mod generated;
mod table;
mod timefmt;
mod wire;

#[cfg(test)]
mod tests;

pub use error::Error;
use serde_json::Value;

/// The media type of the Kubernetes protobuf encoding.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The media type of a protobuf watch stream.
pub const WATCH_MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";

/// The largest watch frame [`FrameBuffer`] accepts by default (upstream's request body
/// limit is 3 MiB; objects in etcd are at most 1.5 MiB).
pub const DEFAULT_MAX_FRAME: usize = 16 << 20;

/// A decoded object.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    pub api_version: String,
    pub kind: String,
    /// The object as upstream's JSON, `apiVersion` and `kind` included.
    pub object: Value,
    /// Fields the table does not know (numbers upstream v1.33 does not define), skipped, by
    /// path: `spec.#99`, `spec.containers[0].#42`.
    pub unknown_fields: Vec<String>,
}

/// A decoded watch event.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchEvent {
    /// `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR`.
    pub event_type: String,
    pub object: Decoded,
}

/// Whether `data` starts with the protobuf envelope's magic bytes.
pub fn is_protobuf(data: &[u8]) -> bool {
    data.starts_with(envelope::MAGIC)
}

/// Whether objects of this apiVersion and kind have a protobuf form.
pub fn supports(api_version: &str, kind: &str) -> bool {
    table::kind(api_version, kind).is_some()
}

/// Decodes one enveloped object into upstream's JSON.
pub fn decode(data: &[u8]) -> Result<Decoded, Error> {
    envelope::decode(data)
}

/// Encodes a JSON object (with `apiVersion` and `kind`) into its envelope, byte for byte as
/// upstream's Go code encodes the same object. Properties the type does not have are
/// ignored.
pub fn encode(object: &Value) -> Result<Vec<u8>, Error> {
    envelope::encode(object)
}

/// Encodes a watch event as one complete frame of a protobuf watch stream (length prefix
/// included), ready to write to the response body.
pub fn encode_watch_event(event_type: &str, object: &Value) -> Result<Vec<u8>, Error> {
    Ok(frame(&envelope::encode_watch_event_payload(
        event_type, object,
    )?))
}

/// Decodes the payload of one watch frame (without its length prefix; see
/// [`FrameBuffer`]).
pub fn decode_watch_event(payload: &[u8]) -> Result<WatchEvent, Error> {
    envelope::decode_watch_event(payload)
}

/// Prefixes a payload with its 4-byte big-endian length.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Collects bytes of a protobuf watch stream and hands out complete frames' payloads.
#[derive(Debug)]
pub struct FrameBuffer {
    buf: Vec<u8>,
    start: usize,
    max: usize,
}

impl Default for FrameBuffer {
    fn default() -> Self {
        FrameBuffer::new(DEFAULT_MAX_FRAME)
    }
}

impl FrameBuffer {
    /// A buffer refusing frames larger than `max` bytes.
    pub fn new(max: usize) -> Self {
        FrameBuffer {
            buf: Vec::new(),
            start: 0,
            max,
        }
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame's payload, `None` until one is complete.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, Error> {
        let avail = &self.buf[self.start..];
        let Some(len) = avail.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if len > self.max {
            return Err(Error::FrameTooLarge(len, self.max));
        }
        if avail.len() < 4 + len {
            return Ok(None);
        }
        let payload = avail[4..4 + len].to_vec();
        self.start += 4 + len;
        if self.start > 1 << 16 && self.start * 2 > self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        Ok(Some(payload))
    }

    /// Bytes received that do not yet form a complete frame.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }
}
