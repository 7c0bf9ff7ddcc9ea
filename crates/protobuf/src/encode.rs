//! JSON → protobuf message, driven by the table, writing the bytes upstream's Go code
//! writes for the same object: fields in number order; value (non-pointer) fields always,
//! with their zero value when the JSON leaves them out; pointer fields, lists, maps and
//! `[]byte` only when set; map entries sorted by key. JSON properties the table does not
//! know are ignored (upstream drops them when it decodes JSON into its Go types).

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::envelope;
use crate::error::{Error, Path, Seg};
use crate::table::{self, F, INLINE, M, MAP, NILABLE, REPEATED, S, Ty};
use crate::timefmt;
use crate::wire::Writer;

/// State of one encoding.
#[derive(Default)]
pub(crate) struct Enc {
    pub(crate) path: Path,
    depth: usize,
    /// Objects in `RawExtension`s are written as protobuf envelopes (watch events,
    /// `List` items) rather than as JSON.
    embed_protobuf: bool,
}

/// Writes the body of message `index` for `value` (`None` or `null`: the zero value).
pub(crate) fn message(
    enc: &mut Enc,
    w: &mut Writer,
    index: u16,
    value: Option<&Value>,
) -> Result<(), Error> {
    if enc.depth >= crate::decode::MAX_DEPTH {
        return Err(enc.path.invalid("objects nested too deeply"));
    }
    enc.depth += 1;
    let m = table::message(index);
    let value = value.filter(|v| !v.is_null());
    let res = match m.special() {
        S::Plain => {
            let empty = Map::new();
            let obj = match value {
                None => &empty,
                Some(Value::Object(o)) => o,
                Some(other) => {
                    enc.depth -= 1;
                    return Err(enc
                        .path
                        .invalid(format!("expected an object, got {}", kind(other))));
                }
            };
            let saved = enc.embed_protobuf;
            enc.embed_protobuf = embeds_objects(m);
            let res = plain(enc, w, m, obj);
            enc.embed_protobuf = saved;
            res
        }
        special => special_message(enc, w, m, special, value),
    };
    enc.depth -= 1;
    res
}

/// Messages whose `RawExtension`s carry whole objects encoded like the outer one.
fn embeds_objects(m: &M) -> bool {
    matches!(
        m.name(),
        "k8s.io.apimachinery.pkg.apis.meta.v1.WatchEvent"
            | "k8s.io.apimachinery.pkg.apis.meta.v1.List"
            | "k8s.io.api.core.v1.List"
    )
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn plain(enc: &mut Enc, w: &mut Writer, m: &M, obj: &Map<String, Value>) -> Result<(), Error> {
    for f in m.fields() {
        if f.has(INLINE) {
            let Ty::Msg(index) = f.ty() else { continue };
            if f.has(NILABLE) && !mentions_any(table::message(index), obj) {
                continue;
            }
            let mark = w.begin(f.tag());
            plain_inline(enc, w, index, obj)?;
            w.end(mark);
            continue;
        }
        let value = obj.get(f.json()).filter(|v| !v.is_null());
        enc.path.push(Seg::Field(f.json()));
        let res = field(enc, w, f, value);
        enc.path.pop();
        res?;
    }
    Ok(())
}

/// An inlined message reads its fields from the parent's object.
fn plain_inline(
    enc: &mut Enc,
    w: &mut Writer,
    index: u16,
    obj: &Map<String, Value>,
) -> Result<(), Error> {
    let m = table::message(index);
    if m.special() != S::Plain {
        return Err(enc.path.invalid(format!("cannot inline {}", m.name())));
    }
    enc.depth += 1;
    let res = plain(enc, w, m, obj);
    enc.depth -= 1;
    res
}

fn mentions_any(m: &M, obj: &Map<String, Value>) -> bool {
    m.fields().iter().any(|f| {
        if f.has(INLINE) {
            matches!(f.ty(), Ty::Msg(i) if mentions_any(table::message(i), obj))
        } else {
            obj.get(f.json()).is_some_and(|v| !v.is_null())
        }
    })
}

fn field(enc: &mut Enc, w: &mut Writer, f: &F, value: Option<&Value>) -> Result<(), Error> {
    if f.has(MAP) {
        let Some(value) = value else { return Ok(()) };
        let Value::Object(map) = value else {
            return Err(enc
                .path
                .invalid(format!("expected an object, got {}", kind(value))));
        };
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort();
        for key in keys {
            let v = map.get(key).filter(|v| !v.is_null());
            enc.path.push(Seg::Key(key.clone()));
            let mark = w.begin(f.tag());
            w.bytes_field(1, key.as_bytes());
            let res = match (f.ty(), v) {
                // Go leaves a nil []byte value out of the entry.
                (Ty::Bytes, None) => Ok(()),
                (ty, v) => single(enc, w, 2, ty, v),
            };
            w.end(mark);
            enc.path.pop();
            res?;
        }
        return Ok(());
    }
    if f.has(REPEATED) {
        let Some(value) = value else { return Ok(()) };
        let Value::Array(items) = value else {
            return Err(enc
                .path
                .invalid(format!("expected a list, got {}", kind(value))));
        };
        for (i, item) in items.iter().enumerate() {
            enc.path.push(Seg::Index(i));
            let res = single(enc, w, f.tag(), f.ty(), Some(item).filter(|v| !v.is_null()));
            enc.path.pop();
            res?;
        }
        return Ok(());
    }
    if f.has(NILABLE) && value.is_none() {
        return Ok(());
    }
    single(enc, w, f.tag(), f.ty(), value)
}

/// Writes one value of type `ty` as field `number` (`None`: Go's zero value).
fn single(
    enc: &mut Enc,
    w: &mut Writer,
    number: u32,
    ty: Ty,
    value: Option<&Value>,
) -> Result<(), Error> {
    match ty {
        Ty::Msg(index) => {
            let mark = w.begin(number);
            let res = message(enc, w, index, value);
            w.end(mark);
            res
        }
        Ty::Str => {
            let s = match value {
                None => "",
                Some(Value::String(s)) => s.as_str(),
                Some(other) => {
                    return Err(enc
                        .path
                        .invalid(format!("expected a string, got {}", kind(other))));
                }
            };
            w.bytes_field(number, s.as_bytes());
            Ok(())
        }
        Ty::Bytes => {
            let bytes = match value {
                None => Vec::new(),
                Some(Value::String(s)) => base64::engine::general_purpose::STANDARD
                    .decode(s.as_bytes())
                    .map_err(|e| enc.path.invalid(format!("not base64: {e}")))?,
                Some(other) => {
                    return Err(enc
                        .path
                        .invalid(format!("expected a base64 string, got {}", kind(other))));
                }
            };
            w.bytes_field(number, &bytes);
            Ok(())
        }
        Ty::Bool => {
            let b = match value {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(other) => {
                    return Err(enc
                        .path
                        .invalid(format!("expected a boolean, got {}", kind(other))));
                }
            };
            w.varint_field(number, u64::from(b));
            Ok(())
        }
        Ty::I32 => {
            let n = integer(enc, value)?;
            let n = i32::try_from(n)
                .map_err(|_| enc.path.invalid(format!("{n} does not fit in int32")))?;
            w.varint_field(number, i64::from(n) as u64);
            Ok(())
        }
        Ty::I64 => {
            let n = integer(enc, value)?;
            w.varint_field(number, n as u64);
            Ok(())
        }
        Ty::F64 => {
            let x = match value {
                None => 0.0,
                Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
                Some(other) => {
                    return Err(enc
                        .path
                        .invalid(format!("expected a number, got {}", kind(other))));
                }
            };
            w.fixed64_field(number, x.to_bits());
            Ok(())
        }
    }
}

fn integer(enc: &Enc, value: Option<&Value>) -> Result<i64, Error> {
    match value {
        None => Ok(0),
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| enc.path.invalid(format!("expected an integer, got {n}"))),
        Some(other) => Err(enc
            .path
            .invalid(format!("expected an integer, got {}", kind(other)))),
    }
}

fn json_bytes(enc: &Enc, value: &Value) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|e| enc.path.invalid(e))
}

fn schema_index(enc: &Enc, m: &M, number: u32) -> Result<u16, Error> {
    match m.field(number).map(F::ty) {
        Some(Ty::Msg(i)) => Ok(i),
        _ => Err(enc
            .path
            .invalid(format!("{} has no message field {number}", m.name()))),
    }
}

fn special_message(
    enc: &mut Enc,
    w: &mut Writer,
    m: &M,
    special: S,
    value: Option<&Value>,
) -> Result<(), Error> {
    match special {
        S::Plain => Err(enc
            .path
            .invalid("internal: plain message in the special encoder")),
        S::Time | S::MicroTime => {
            let Some(value) = value else { return Ok(()) };
            let Value::String(s) = value else {
                return Err(enc
                    .path
                    .invalid(format!("expected a time, got {}", kind(value))));
            };
            let (seconds, nanos) = timefmt::parse_time(s).map_err(|e| enc.path.invalid(e))?;
            if seconds == timefmt::GO_ZERO_UNIX && nanos == 0 {
                return Ok(());
            }
            w.varint_field(1, seconds as u64);
            // Time drops the nanoseconds (its JSON has none); MicroTime keeps them.
            let nanos = if special == S::Time { 0 } else { nanos };
            w.varint_field(2, i64::from(nanos) as u64);
            Ok(())
        }
        S::Duration => {
            let nanos = match value {
                None => 0,
                Some(Value::String(s)) => {
                    timefmt::parse_duration(s).map_err(|e| enc.path.invalid(e))?
                }
                Some(other) => {
                    return Err(enc
                        .path
                        .invalid(format!("expected a duration string, got {}", kind(other))));
                }
            };
            w.varint_field(1, nanos as u64);
            Ok(())
        }
        S::Quantity => {
            let s = match value {
                None => "0".to_string(),
                Some(Value::String(s)) => s.trim().to_string(),
                Some(Value::Number(n)) => n.to_string(),
                Some(other) => {
                    return Err(enc
                        .path
                        .invalid(format!("expected a quantity, got {}", kind(other))));
                }
            };
            if s.is_empty() {
                return Err(enc.path.invalid("empty quantity"));
            }
            w.bytes_field(1, s.as_bytes());
            Ok(())
        }
        S::IntOrString => {
            match value {
                None => {
                    w.varint_field(1, 0);
                    w.varint_field(2, 0);
                    w.bytes_field(3, b"");
                }
                Some(Value::Number(n)) => {
                    let i = n
                        .as_i64()
                        .and_then(|i| i32::try_from(i).ok())
                        .ok_or_else(|| enc.path.invalid(format!("{n} is not an int32")))?;
                    w.varint_field(1, 0);
                    w.varint_field(2, i64::from(i) as u64);
                    w.bytes_field(3, b"");
                }
                Some(Value::String(s)) => {
                    w.varint_field(1, 1);
                    w.varint_field(2, 0);
                    w.bytes_field(3, s.as_bytes());
                }
                Some(other) => {
                    return Err(enc.path.invalid(format!(
                        "expected an integer or a string, got {}",
                        kind(other)
                    )));
                }
            }
            Ok(())
        }
        S::RawExtension => {
            let Some(value) = value else { return Ok(()) };
            let raw = if enc.embed_protobuf && value.is_object() {
                enc.path.push(Seg::Embedded);
                let res = envelope::encode_nested(enc, value);
                enc.path.pop();
                res?
            } else {
                json_bytes(enc, value)?
            };
            w.bytes_field(1, &raw);
            Ok(())
        }
        S::FieldsV1 | S::Json => {
            let Some(value) = value else { return Ok(()) };
            let raw = json_bytes(enc, value)?;
            w.bytes_field(1, &raw);
            Ok(())
        }
        S::SchemaOrArray => {
            let schema = schema_index(enc, m, 1)?;
            match value {
                None => Ok(()),
                Some(Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        enc.path.push(Seg::Index(i));
                        let mark = w.begin(2);
                        let res = message(enc, w, schema, Some(item));
                        w.end(mark);
                        enc.path.pop();
                        res?;
                    }
                    Ok(())
                }
                Some(v @ Value::Object(_)) => {
                    let mark = w.begin(1);
                    let res = message(enc, w, schema, Some(v));
                    w.end(mark);
                    res
                }
                Some(other) => Err(enc
                    .path
                    .invalid(format!("expected a schema or a list, got {}", kind(other)))),
            }
        }
        S::SchemaOrBool => {
            let schema = schema_index(enc, m, 2)?;
            match value {
                None => {
                    w.varint_field(1, 0);
                    Ok(())
                }
                Some(Value::Bool(b)) => {
                    w.varint_field(1, u64::from(*b));
                    Ok(())
                }
                Some(v @ Value::Object(_)) => {
                    w.varint_field(1, 1);
                    let mark = w.begin(2);
                    let res = message(enc, w, schema, Some(v));
                    w.end(mark);
                    res
                }
                Some(other) => Err(enc.path.invalid(format!(
                    "expected a schema or a boolean, got {}",
                    kind(other)
                ))),
            }
        }
        S::SchemaOrStringArray => {
            let schema = schema_index(enc, m, 1)?;
            match value {
                None => Ok(()),
                Some(Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        enc.path.push(Seg::Index(i));
                        let res = single(enc, w, 2, Ty::Str, Some(item));
                        enc.path.pop();
                        res?;
                    }
                    Ok(())
                }
                Some(v @ Value::Object(_)) => {
                    let mark = w.begin(1);
                    let res = message(enc, w, schema, Some(v));
                    w.end(mark);
                    res
                }
                Some(other) => Err(enc
                    .path
                    .invalid(format!("expected a schema or a list, got {}", kind(other)))),
            }
        }
        S::Wrapper => {
            let f = m
                .field(1)
                .ok_or_else(|| enc.path.invalid(format!("{} has no items", m.name())))?;
            match value {
                None => Ok(()),
                Some(Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        enc.path.push(Seg::Index(i));
                        let res = single(enc, w, 1, f.ty(), Some(item).filter(|v| !v.is_null()));
                        enc.path.pop();
                        res?;
                    }
                    Ok(())
                }
                Some(other) => Err(enc
                    .path
                    .invalid(format!("expected a list, got {}", kind(other)))),
            }
        }
    }
}
