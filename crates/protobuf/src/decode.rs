//! Protobuf message → JSON, driven by the table, producing what upstream's Go code
//! prints for the decoded object:
//!
//! - value (non-pointer) fields that are absent decode to Go's zero value; scalar zero
//!   values are left out when the JSON tag says `omitempty`, kept otherwise; structs are
//!   always printed (`"status": {}`);
//! - pointer fields, lists, maps and `[]byte` appear exactly when set;
//! - values Go prints as `null` (nil pointers, slices and maps without `omitempty`, the
//!   zero `metav1.Time`) are left out instead: every upstream decoder treats `null` and
//!   absence alike, and typed decoders on our side reject `null` where a value is required;
//! - field numbers the table does not know are skipped and reported by path
//!   (`spec.#99`), like unknown JSON fields.

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use crate::envelope;
use crate::error::{Error, Path, Seg};
use crate::table::{self, F, INLINE, M, MAP, NILABLE, OMITEMPTY, REPEATED, S, Ty};
use crate::timefmt;
use crate::wire::{self, Reader, WireError};

/// How deep messages may nest (objects inside objects, embedded objects included).
pub(crate) const MAX_DEPTH: usize = 200;

/// State of one decoding: where we are and what was skipped.
#[derive(Default)]
pub(crate) struct Ctx {
    pub(crate) path: Path,
    pub(crate) unknown: Vec<String>,
    depth: usize,
}

impl Ctx {
    fn wire(&self, e: WireError) -> Error {
        self.path.malformed(e)
    }
}

/// Decodes one message (without envelope) into its JSON value. Plain messages give an
/// object; special ones their own form (`null` for Go's zero time and nil raw data).
pub(crate) fn message(ctx: &mut Ctx, index: u16, data: &[u8]) -> Result<Value, Error> {
    if ctx.depth >= MAX_DEPTH {
        return Err(ctx.path.malformed("messages nested too deeply"));
    }
    ctx.depth += 1;
    let m = table::message(index);
    let result = match m.special() {
        S::Plain => plain(ctx, m, data).map(Value::Object),
        special => special_message(ctx, m, special, data),
    };
    ctx.depth -= 1;
    result
}

/// What was read for one field.
enum Slot<'a> {
    Absent,
    Scalar(Value),
    /// The payloads of a singular message field (protobuf merges repeated occurrences).
    Parts(Vec<&'a [u8]>),
    List(Vec<Value>),
    Map(Map<String, Value>),
}

fn plain(ctx: &mut Ctx, m: &'static M, data: &[u8]) -> Result<Map<String, Value>, Error> {
    let fields = m.fields();
    let mut slots: Vec<Slot> = fields.iter().map(|_| Slot::Absent).collect();
    let mut r = Reader::new(data);
    while !r.is_empty() {
        let (number, wire) = r.key().map_err(|e| ctx.wire(e))?;
        let Ok(i) = fields.binary_search_by_key(&number, F::tag) else {
            r.skip(number, wire).map_err(|e| ctx.wire(e))?;
            ctx.path.push(Seg::Number(number));
            ctx.unknown.push(ctx.path.to_string());
            ctx.path.pop();
            continue;
        };
        let f = &fields[i];
        let named = !f.json().is_empty();
        if named {
            ctx.path.push(Seg::Field(f.json()));
        }
        let res = read_field(ctx, f, wire, &mut r, &mut slots[i]);
        if named {
            ctx.path.pop();
        }
        res?;
    }

    let mut out = Map::new();
    for (f, slot) in fields.iter().zip(slots) {
        let named = !f.json().is_empty();
        if named {
            ctx.path.push(Seg::Field(f.json()));
        }
        let res = finish_field(ctx, f, slot, &mut out);
        if named {
            ctx.path.pop();
        }
        res?;
    }
    Ok(out)
}

fn expect_wire(ctx: &Ctx, got: u8, want: u8) -> Result<(), Error> {
    if got == want {
        Ok(())
    } else {
        Err(ctx
            .path
            .malformed(format!("wrong wire type {got}, expected {want}")))
    }
}

fn read_field<'a>(
    ctx: &mut Ctx,
    f: &'static F,
    wire: u8,
    r: &mut Reader<'a>,
    slot: &mut Slot<'a>,
) -> Result<(), Error> {
    if f.has(MAP) {
        expect_wire(ctx, wire, wire::LEN)?;
        let entry = r.bytes().map_err(|e| ctx.wire(e))?;
        let (key, value) = map_entry(ctx, f.ty(), entry)?;
        if !matches!(slot, Slot::Map(_)) {
            *slot = Slot::Map(Map::new());
        }
        if let Slot::Map(map) = slot {
            map.insert(key, value);
        }
        return Ok(());
    }
    if f.has(REPEATED) {
        if !matches!(slot, Slot::List(_)) {
            *slot = Slot::List(Vec::new());
        }
        let Slot::List(list) = slot else {
            return Ok(());
        };
        let packable = matches!(f.ty(), Ty::Bool | Ty::I32 | Ty::I64 | Ty::F64);
        if packable && wire == wire::LEN {
            let packed = r.bytes().map_err(|e| ctx.wire(e))?;
            let mut p = Reader::new(packed);
            while !p.is_empty() {
                let natural = natural_wire(f.ty());
                ctx.path.push(Seg::Index(list.len()));
                let v = scalar(ctx, f.ty(), natural, &mut p);
                ctx.path.pop();
                list.push(v?);
            }
            return Ok(());
        }
        ctx.path.push(Seg::Index(list.len()));
        let v = element(ctx, f.ty(), wire, r);
        ctx.path.pop();
        list.push(v?);
        return Ok(());
    }
    match f.ty() {
        Ty::Msg(_) => {
            expect_wire(ctx, wire, wire::LEN)?;
            let payload = r.bytes().map_err(|e| ctx.wire(e))?;
            match slot {
                Slot::Parts(parts) => parts.push(payload),
                _ => *slot = Slot::Parts(vec![payload]),
            }
        }
        ty => *slot = Slot::Scalar(scalar(ctx, ty, wire, r)?),
    }
    Ok(())
}

fn natural_wire(ty: Ty) -> u8 {
    match ty {
        Ty::Bool | Ty::I32 | Ty::I64 => wire::VARINT,
        Ty::F64 => wire::FIXED64,
        Ty::Str | Ty::Bytes | Ty::Msg(_) => wire::LEN,
    }
}

/// One list item or map value.
fn element(ctx: &mut Ctx, ty: Ty, wire: u8, r: &mut Reader) -> Result<Value, Error> {
    match ty {
        Ty::Msg(index) => {
            expect_wire(ctx, wire, wire::LEN)?;
            let payload = r.bytes().map_err(|e| ctx.wire(e))?;
            message(ctx, index, payload)
        }
        _ => scalar(ctx, ty, wire, r),
    }
}

fn scalar(ctx: &mut Ctx, ty: Ty, wire: u8, r: &mut Reader) -> Result<Value, Error> {
    expect_wire(ctx, wire, natural_wire(ty))?;
    Ok(match ty {
        Ty::Str => {
            let b = r.bytes().map_err(|e| ctx.wire(e))?;
            // Go does not check UTF-8 here; its JSON encoder replaces bad bytes.
            Value::String(String::from_utf8_lossy(b).into_owned())
        }
        Ty::Bytes => {
            let b = r.bytes().map_err(|e| ctx.wire(e))?;
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Ty::Bool => Value::Bool(r.varint().map_err(|e| ctx.wire(e))? != 0),
        Ty::I32 => Value::from(wire::as_i32(r.varint().map_err(|e| ctx.wire(e))?)),
        Ty::I64 => Value::from(r.varint().map_err(|e| ctx.wire(e))? as i64),
        Ty::F64 => float(ctx, f64::from_bits(r.fixed64().map_err(|e| ctx.wire(e))?))?,
        Ty::Msg(_) => return Err(ctx.path.malformed("message where a scalar belongs")),
    })
}

/// A JSON number as Go prints a float64: integral values without a fraction.
fn float(ctx: &Ctx, x: f64) -> Result<Value, Error> {
    if x.fract() == 0.0 && x.abs() < 9_007_199_254_740_992.0 {
        return Ok(Value::from(x as i64));
    }
    Number::from_f64(x)
        .map(Value::Number)
        .ok_or_else(|| ctx.path.malformed(format!("{x} has no JSON form")))
}

fn map_entry(ctx: &mut Ctx, ty: Ty, data: &[u8]) -> Result<(String, Value), Error> {
    let mut key = String::new();
    let mut value: Option<Value> = None;
    let mut r = Reader::new(data);
    while !r.is_empty() {
        let (number, wire) = r.key().map_err(|e| ctx.wire(e))?;
        match number {
            1 => {
                expect_wire(ctx, wire, wire::LEN)?;
                let b = r.bytes().map_err(|e| ctx.wire(e))?;
                key = String::from_utf8_lossy(b).into_owned();
            }
            2 => {
                ctx.path.push(Seg::Key(key.clone()));
                let v = element(ctx, ty, wire, &mut r);
                ctx.path.pop();
                value = Some(v?);
            }
            _ => r.skip(number, wire).map_err(|e| ctx.wire(e))?,
        }
    }
    let value = match value {
        Some(v) => v,
        None => {
            ctx.path.push(Seg::Key(key.clone()));
            let v = zero_of(ctx, ty);
            ctx.path.pop();
            v?
        }
    };
    Ok((key, value))
}

/// Go's zero value of a type, as JSON.
fn zero_of(ctx: &mut Ctx, ty: Ty) -> Result<Value, Error> {
    Ok(match ty {
        Ty::Str => Value::String(String::new()),
        Ty::Bytes => Value::Null,
        Ty::Bool => Value::Bool(false),
        Ty::I32 | Ty::I64 | Ty::F64 => Value::from(0),
        Ty::Msg(index) => message(ctx, index, &[])?,
    })
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Null => true,
        _ => false,
    }
}

fn finish_field(
    ctx: &mut Ctx,
    f: &'static F,
    slot: Slot,
    out: &mut Map<String, Value>,
) -> Result<(), Error> {
    let value = match slot {
        Slot::Absent => {
            if f.has(NILABLE) || f.has(REPEATED) || f.has(MAP) {
                return Ok(());
            }
            let zero = zero_of(ctx, f.ty())?;
            if matches!(f.ty(), Ty::Msg(_)) || !f.has(OMITEMPTY) {
                zero
            } else {
                return Ok(());
            }
        }
        Slot::Scalar(v) => {
            // omitempty drops zero values, and empty `[]byte`s even when set; a pointer to
            // a zero value stays.
            let pointer = f.has(NILABLE) && f.ty() != Ty::Bytes;
            if f.has(OMITEMPTY) && !pointer && is_zero(&v) {
                return Ok(());
            }
            v
        }
        Slot::Parts(parts) => {
            let Ty::Msg(index) = f.ty() else {
                return Ok(());
            };
            if parts.len() == 1 {
                message(ctx, index, parts[0])?
            } else {
                let joined: Vec<u8> = parts.concat();
                message(ctx, index, &joined)?
            }
        }
        Slot::List(list) => {
            if list.is_empty() {
                return Ok(());
            }
            Value::Array(list)
        }
        Slot::Map(map) => Value::Object(map),
    };
    if f.has(INLINE) {
        if let Value::Object(inner) = value {
            out.extend(inner);
        }
        return Ok(());
    }
    if !value.is_null() {
        out.insert(f.json().to_string(), value);
    }
    Ok(())
}

/// Reads the fields of a small special message into (number → values) without a table
/// walk; unknown fields are skipped.
fn fields_of<'a>(ctx: &Ctx, data: &'a [u8]) -> Result<Vec<(u32, u8, Raw<'a>)>, Error> {
    let mut out = Vec::new();
    let mut r = Reader::new(data);
    while !r.is_empty() {
        let (number, wire) = r.key().map_err(|e| ctx.wire(e))?;
        let raw = match wire {
            wire::VARINT => Raw::Varint(r.varint().map_err(|e| ctx.wire(e))?),
            wire::LEN => Raw::Bytes(r.bytes().map_err(|e| ctx.wire(e))?),
            wire::FIXED64 => Raw::Varint(r.fixed64().map_err(|e| ctx.wire(e))?),
            _ => {
                r.skip(number, wire).map_err(|e| ctx.wire(e))?;
                continue;
            }
        };
        out.push((number, wire, raw));
    }
    Ok(out)
}

#[derive(Clone, Copy)]
enum Raw<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn last_varint(ctx: &Ctx, fields: &[(u32, u8, Raw)], number: u32) -> Result<u64, Error> {
    let mut v = 0;
    for (n, wire, raw) in fields {
        if *n == number {
            match raw {
                Raw::Varint(x) if *wire == wire::VARINT => v = *x,
                _ => {
                    return Err(ctx
                        .path
                        .malformed(format!("field {number} is not a varint")));
                }
            }
        }
    }
    Ok(v)
}

fn last_bytes<'a>(
    ctx: &Ctx,
    fields: &[(u32, u8, Raw<'a>)],
    number: u32,
) -> Result<Option<&'a [u8]>, Error> {
    let mut v = None;
    for (n, _, raw) in fields {
        if *n == number {
            match raw {
                Raw::Bytes(b) => v = Some(*b),
                Raw::Varint(_) => {
                    return Err(ctx
                        .path
                        .malformed(format!("field {number} is not length-delimited")));
                }
            }
        }
    }
    Ok(v)
}

fn all_bytes<'a>(
    ctx: &Ctx,
    fields: &[(u32, u8, Raw<'a>)],
    number: u32,
) -> Result<Vec<&'a [u8]>, Error> {
    let mut v = Vec::new();
    for (n, _, raw) in fields {
        if *n == number {
            match raw {
                Raw::Bytes(b) => v.push(*b),
                Raw::Varint(_) => {
                    return Err(ctx
                        .path
                        .malformed(format!("field {number} is not length-delimited")));
                }
            }
        }
    }
    Ok(v)
}

/// The message type of field `number` of a special message.
fn sub_message(ctx: &Ctx, m: &M, number: u32) -> Result<u16, Error> {
    match m.field(number).map(F::ty) {
        Some(Ty::Msg(i)) => Ok(i),
        _ => Err(ctx
            .path
            .malformed(format!("{} has no message field {number}", m.name()))),
    }
}

fn embedded_json(ctx: &mut Ctx, raw: &[u8]) -> Result<Value, Error> {
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    if raw.starts_with(envelope::MAGIC) {
        ctx.path.push(Seg::Embedded);
        let res = envelope::decode_nested(ctx, raw);
        ctx.path.pop();
        return res;
    }
    serde_json::from_slice(raw).map_err(|e| {
        ctx.path
            .malformed(format!("embedded data is not JSON: {e}"))
    })
}

fn special_message(ctx: &mut Ctx, m: &'static M, special: S, data: &[u8]) -> Result<Value, Error> {
    let fields = fields_of(ctx, data)?;
    Ok(match special {
        S::Plain => unreachable_plain(ctx)?,
        S::Time => {
            if data.is_empty() {
                return Ok(Value::Null);
            }
            // Upstream ignores the nanoseconds of a Time.
            let seconds = last_varint(ctx, &fields, 1)? as i64;
            if seconds == timefmt::GO_ZERO_UNIX {
                return Ok(Value::Null);
            }
            Value::String(
                timefmt::format_time(seconds)
                    .ok_or_else(|| ctx.path.malformed(format!("time {seconds} out of range")))?,
            )
        }
        S::MicroTime => {
            if data.is_empty() {
                return Ok(Value::Null);
            }
            let seconds = last_varint(ctx, &fields, 1)? as i64;
            let nanos = i64::from(wire::as_i32(last_varint(ctx, &fields, 2)?));
            if seconds == timefmt::GO_ZERO_UNIX && nanos == 0 {
                return Ok(Value::Null);
            }
            Value::String(
                timefmt::format_micro_time(seconds, nanos)
                    .ok_or_else(|| ctx.path.malformed(format!("time {seconds} out of range")))?,
            )
        }
        S::Duration => Value::String(timefmt::format_duration(
            last_varint(ctx, &fields, 1)? as i64
        )),
        S::Quantity => match last_bytes(ctx, &fields, 1)? {
            Some(b) if !b.is_empty() => Value::String(String::from_utf8_lossy(b).into_owned()),
            _ => Value::String("0".into()),
        },
        S::IntOrString => match last_varint(ctx, &fields, 1)? {
            0 => Value::from(wire::as_i32(last_varint(ctx, &fields, 2)?)),
            1 => Value::String(
                last_bytes(ctx, &fields, 3)?
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default(),
            ),
            t => return Err(ctx.path.malformed(format!("IntOrString of type {t}"))),
        },
        S::RawExtension | S::FieldsV1 | S::Json => match last_bytes(ctx, &fields, 1)? {
            Some(raw) => embedded_json(ctx, raw)?,
            None => Value::Null,
        },
        S::SchemaOrArray => {
            let schema = sub_message(ctx, m, 1)?;
            let many = all_bytes(ctx, &fields, 2)?;
            if !many.is_empty() {
                let mut items = Vec::new();
                for (i, b) in many.into_iter().enumerate() {
                    ctx.path.push(Seg::Index(i));
                    let v = message(ctx, schema, b);
                    ctx.path.pop();
                    items.push(v?);
                }
                Value::Array(items)
            } else if let Some(b) = last_bytes(ctx, &fields, 1)? {
                message(ctx, schema, b)?
            } else {
                Value::Null
            }
        }
        S::SchemaOrBool => {
            let schema = sub_message(ctx, m, 2)?;
            match last_bytes(ctx, &fields, 2)? {
                Some(b) => message(ctx, schema, b)?,
                None => Value::Bool(last_varint(ctx, &fields, 1)? != 0),
            }
        }
        S::SchemaOrStringArray => {
            let schema = sub_message(ctx, m, 1)?;
            let strings = all_bytes(ctx, &fields, 2)?;
            if !strings.is_empty() {
                Value::Array(
                    strings
                        .into_iter()
                        .map(|b| Value::String(String::from_utf8_lossy(b).into_owned()))
                        .collect(),
                )
            } else if let Some(b) = last_bytes(ctx, &fields, 1)? {
                message(ctx, schema, b)?
            } else {
                Value::Null
            }
        }
        S::Wrapper => {
            // A named slice: a list of its field 1.
            let f = m
                .field(1)
                .ok_or_else(|| ctx.path.malformed(format!("{} has no items", m.name())))?;
            let mut items = Vec::new();
            let mut r = Reader::new(data);
            while !r.is_empty() {
                let (number, wire) = r.key().map_err(|e| ctx.wire(e))?;
                if number != 1 {
                    r.skip(number, wire).map_err(|e| ctx.wire(e))?;
                    continue;
                }
                ctx.path.push(Seg::Index(items.len()));
                let v = element(ctx, f.ty(), wire, &mut r);
                ctx.path.pop();
                items.push(v?);
            }
            if items.is_empty() {
                Value::Null
            } else {
                Value::Array(items)
            }
        }
    })
}

fn unreachable_plain(ctx: &Ctx) -> Result<Value, Error> {
    Err(ctx
        .path
        .malformed("internal: plain message in the special decoder"))
}
