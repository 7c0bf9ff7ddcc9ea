//! The Kubernetes protobuf envelope, watch events and watch-stream framing.
//!
//! - An object is `k8s\0` followed by a `runtime.Unknown` message: `typeMeta` (1:
//!   `apiVersion` 1, `kind` 2), `raw` (2: the object's own message), `contentEncoding` (3),
//!   `contentType` (4).
//! - A protobuf watch stream is a sequence of frames, each a 4-byte big-endian length and
//!   then a `metav1.WatchEvent` message *without* an envelope (upstream's stream serializer
//!   is the "raw" one): `type` (1) and `object` (2, a `RawExtension` whose `raw` is the
//!   object in its own envelope).

use serde_json::Value;

use crate::decode::{self, Ctx};
use crate::encode::{self, Enc};
use crate::error::{Error, Seg};
use crate::table;
use crate::wire::{self, Reader, Writer};
use crate::{Decoded, WatchEvent};

/// The 4-byte prefix of every enveloped object.
pub(crate) const MAGIC: &[u8] = b"k8s\0";

/// The parts of a `runtime.Unknown`.
struct Unknown<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
    content_type: String,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn read_unknown<'a>(ctx: &Ctx, data: &'a [u8]) -> Result<Unknown<'a>, Error> {
    let body = data.strip_prefix(MAGIC).ok_or(Error::NotProtobuf)?;
    let mut u = Unknown {
        api_version: String::new(),
        kind: String::new(),
        raw: &[],
        content_encoding: String::new(),
        content_type: String::new(),
    };
    let malformed = |e: wire::WireError| ctx.path.malformed(format!("envelope: {e}"));
    let mut r = Reader::new(body);
    while !r.is_empty() {
        let (number, wt) = r.key().map_err(malformed)?;
        if wt != wire::LEN {
            r.skip(number, wt).map_err(malformed)?;
            continue;
        }
        let b = r.bytes().map_err(malformed)?;
        match number {
            1 => {
                let mut t = Reader::new(b);
                while !t.is_empty() {
                    let (n, w) = t.key().map_err(malformed)?;
                    if w != wire::LEN {
                        t.skip(n, w).map_err(malformed)?;
                        continue;
                    }
                    let s = t.bytes().map_err(malformed)?;
                    match n {
                        1 => u.api_version = text(s),
                        2 => u.kind = text(s),
                        _ => {}
                    }
                }
            }
            2 => u.raw = b,
            3 => u.content_encoding = text(b),
            4 => u.content_type = text(b),
            _ => {}
        }
    }
    Ok(u)
}

/// Decodes an enveloped object (at the top or embedded in a `RawExtension`).
pub(crate) fn decode_nested(ctx: &mut Ctx, data: &[u8]) -> Result<Value, Error> {
    let u = read_unknown(ctx, data)?;
    if !u.content_encoding.is_empty() {
        return Err(Error::Unsupported {
            what: "content encoding",
            value: u.content_encoding,
        });
    }
    let mut object = match u.content_type.as_str() {
        "" | crate::MEDIA_TYPE => {
            if u.kind.is_empty() {
                return Err(Error::MissingTypeMeta("kind"));
            }
            if u.api_version.is_empty() {
                return Err(Error::MissingTypeMeta("apiVersion"));
            }
            let index = table::kind(&u.api_version, &u.kind).ok_or_else(|| Error::UnknownKind {
                api_version: u.api_version.clone(),
                kind: u.kind.clone(),
            })?;
            decode::message(ctx, index, u.raw)?
        }
        "application/json" => serde_json::from_slice(u.raw)
            .map_err(|e| ctx.path.malformed(format!("embedded JSON: {e}")))?,
        other => {
            return Err(Error::Unsupported {
                what: "content type",
                value: other.to_string(),
            });
        }
    };
    if let Value::Object(map) = &mut object {
        if !u.api_version.is_empty() {
            map.insert("apiVersion".into(), Value::String(u.api_version));
        }
        if !u.kind.is_empty() {
            map.insert("kind".into(), Value::String(u.kind));
        }
    }
    Ok(object)
}

pub(crate) fn decode(data: &[u8]) -> Result<Decoded, Error> {
    let mut ctx = Ctx::default();
    let object = decode_nested(&mut ctx, data)?;
    Ok(into_decoded(object, ctx))
}

fn into_decoded(object: Value, ctx: Ctx) -> Decoded {
    let field = |k: &str| {
        object
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Decoded {
        api_version: field("apiVersion"),
        kind: field("kind"),
        unknown_fields: ctx.unknown,
        object,
    }
}

/// The apiVersion and kind of a JSON object.
fn type_meta(value: &Value) -> Result<(&str, &str), Error> {
    let get = |k: &'static str| {
        value
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or(Error::MissingTypeMeta(k))
    };
    Ok((get("apiVersion")?, get("kind")?))
}

/// Encodes an object in its envelope (at the top or inside a `RawExtension`).
pub(crate) fn encode_nested(enc: &mut Enc, value: &Value) -> Result<Vec<u8>, Error> {
    let (api_version, kind) = type_meta(value)?;
    let index = table::kind(api_version, kind).ok_or_else(|| Error::UnknownKind {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
    })?;
    let mut w = Writer::default();
    w.buf.extend_from_slice(MAGIC);
    // Unknown: typeMeta, raw, contentEncoding "", contentType "" (Go writes all four).
    let tm = w.begin(1);
    w.bytes_field(1, api_version.as_bytes());
    w.bytes_field(2, kind.as_bytes());
    w.end(tm);
    let raw = w.begin(2);
    encode::message(enc, &mut w, index, Some(value))?;
    w.end(raw);
    w.bytes_field(3, b"");
    w.bytes_field(4, b"");
    Ok(w.buf)
}

pub(crate) fn encode(value: &Value) -> Result<Vec<u8>, Error> {
    encode_nested(&mut Enc::default(), value)
}

/// A watch event as the payload of one frame (no length prefix).
pub(crate) fn encode_watch_event_payload(
    event_type: &str,
    object: &Value,
) -> Result<Vec<u8>, Error> {
    let mut enc = Enc::default();
    enc.path.push(Seg::Field("object"));
    let embedded = encode_nested(&mut enc, object)?;
    let mut w = Writer::default();
    w.bytes_field(1, event_type.as_bytes());
    let obj = w.begin(2);
    w.bytes_field(1, &embedded);
    w.end(obj);
    Ok(w.buf)
}

/// Decodes the payload of one watch frame.
pub(crate) fn decode_watch_event(payload: &[u8]) -> Result<WatchEvent, Error> {
    let mut ctx = Ctx::default();
    let mut event_type = String::new();
    let mut raw: Option<&[u8]> = None;
    let malformed = |e: wire::WireError| Error::Malformed {
        path: "watch event".into(),
        reason: e.to_string(),
    };
    let mut r = Reader::new(payload);
    while !r.is_empty() {
        let (number, wt) = r.key().map_err(malformed)?;
        match (number, wt) {
            (1, wire::LEN) => event_type = text(r.bytes().map_err(malformed)?),
            (2, wire::LEN) => {
                let ext = r.bytes().map_err(malformed)?;
                let mut e = Reader::new(ext);
                while !e.is_empty() {
                    let (n, w) = e.key().map_err(malformed)?;
                    if (n, w) == (1, wire::LEN) {
                        raw = Some(e.bytes().map_err(malformed)?);
                    } else {
                        e.skip(n, w).map_err(malformed)?;
                    }
                }
            }
            _ => {
                r.skip(number, wt).map_err(malformed)?;
                ctx.unknown.push(format!("#{number}"));
            }
        }
    }
    let raw = raw.ok_or_else(|| Error::Malformed {
        path: "watch event".into(),
        reason: "no object".into(),
    })?;
    ctx.path.push(Seg::Field("object"));
    let object = if raw.starts_with(MAGIC) {
        decode_nested(&mut ctx, raw)?
    } else {
        serde_json::from_slice(raw).map_err(|e| ctx.path.malformed(format!("not JSON: {e}")))?
    };
    ctx.path.pop();
    Ok(WatchEvent {
        event_type,
        object: into_decoded(object, ctx),
    })
}
