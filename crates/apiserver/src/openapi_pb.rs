//! `/openapi/v2` in protobuf, as client-go asks for it
//! (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`): the Swagger 2.0 JSON
//! document re-encoded as gnostic's `openapi.v2.Document` message. kubectl before 1.30
//! reads its patch metadata and the `fieldValidation` parameter from this document.
//!
//! A small protobuf writer is enough: the encoding only ever goes one way. Vendor
//! extensions (`x-…`) and free-form values (`default`, `enum`, `example`) become gnostic
//! `Any` messages holding YAML, which is how gnostic and kube-openapi read them.

use serde_json::{Map, Value};

/// Protobuf field writer.
#[derive(Default)]
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint(((field as u64) << 3) | wire as u64);
    }

    fn bytes(&mut self, field: u32, data: &[u8]) {
        self.key(field, 2);
        self.varint(data.len() as u64);
        self.buf.extend_from_slice(data);
    }

    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    fn message(&mut self, field: u32, m: Writer) {
        self.bytes(field, &m.buf);
    }

    fn boolean(&mut self, field: u32, b: bool) {
        if b {
            self.key(field, 0);
            self.varint(1);
        }
    }

    fn int64(&mut self, field: u32, v: i64) {
        if v != 0 {
            self.key(field, 0);
            self.varint(v as u64);
        }
    }

    fn double(&mut self, field: u32, v: f64) {
        if v != 0.0 {
            self.key(field, 1);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// gnostic `Any` { yaml = 2 }.
fn any(v: &Value) -> Writer {
    let mut w = Writer::default();
    w.string(2, &serde_yaml::to_string(v).unwrap_or_default());
    w
}

/// gnostic `NamedAny` { name = 1, value = 2 }.
fn named_any(name: &str, v: &Value) -> Writer {
    let mut w = Writer::default();
    w.string(1, name);
    w.message(2, any(v));
    w
}

fn extensions(w: &mut Writer, field: u32, obj: &Map<String, Value>) {
    for (k, v) in obj {
        if k.starts_with("x-") {
            w.message(field, named_any(k, v));
        }
    }
}

/// gnostic `Schema`.
fn schema(s: &Value) -> Writer {
    let mut w = Writer::default();
    let Some(o) = s.as_object() else {
        return w;
    };
    let str_of = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("");
    w.string(1, str_of("$ref"));
    w.string(2, str_of("format"));
    w.string(3, str_of("title"));
    w.string(4, str_of("description"));
    if let Some(d) = o.get("default") {
        w.message(5, any(d));
    }
    let num = |k: &str| o.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    let int = |k: &str| o.get(k).and_then(Value::as_i64).unwrap_or(0);
    let flag = |k: &str| o.get(k).and_then(Value::as_bool).unwrap_or(false);
    w.double(6, num("multipleOf"));
    w.double(7, num("maximum"));
    w.boolean(8, flag("exclusiveMaximum"));
    w.double(9, num("minimum"));
    w.boolean(10, flag("exclusiveMinimum"));
    w.int64(11, int("maxLength"));
    w.int64(12, int("minLength"));
    w.string(13, str_of("pattern"));
    w.int64(14, int("maxItems"));
    w.int64(15, int("minItems"));
    w.boolean(16, flag("uniqueItems"));
    w.int64(17, int("maxProperties"));
    w.int64(18, int("minProperties"));
    for r in o
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(r) = r.as_str() {
            w.string(19, r);
        }
    }
    for e in o
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        w.message(20, any(e));
    }
    match o.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut item = Writer::default();
            item.key(2, 0);
            item.varint(*b as u64);
            w.message(21, item);
        }
        Some(sub @ Value::Object(_)) => {
            let mut item = Writer::default();
            item.message(1, schema(sub));
            w.message(21, item);
        }
        _ => {}
    }
    let mut types = Writer::default();
    match o.get("type") {
        Some(Value::String(t)) => types.string(1, t),
        Some(Value::Array(ts)) => {
            for t in ts.iter().filter_map(Value::as_str) {
                types.string(1, t);
            }
        }
        _ => {}
    }
    if !types.buf.is_empty() {
        w.message(22, types);
    }
    match o.get("items") {
        Some(Value::Array(items)) => {
            let mut list = Writer::default();
            for i in items {
                list.message(1, schema(i));
            }
            w.message(23, list);
        }
        Some(item @ Value::Object(_)) => {
            let mut list = Writer::default();
            list.message(1, schema(item));
            w.message(23, list);
        }
        _ => {}
    }
    for a in o
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        w.message(24, schema(a));
    }
    if let Some(props) = o.get("properties").and_then(Value::as_object) {
        let mut p = Writer::default();
        for (name, sub) in props {
            let mut named = Writer::default();
            named.string(1, name);
            named.message(2, schema(sub));
            p.message(1, named);
        }
        w.message(25, p);
    }
    w.string(26, str_of("discriminator"));
    w.boolean(27, flag("readOnly"));
    if let Some(e) = o.get("example") {
        w.message(30, any(e));
    }
    extensions(&mut w, 31, o);
    w
}

/// gnostic `ParametersItem` for one Swagger parameter.
fn parameter(p: &Value) -> Writer {
    let o = p.as_object().cloned().unwrap_or_default();
    let str_of = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let required = o.get("required").and_then(Value::as_bool).unwrap_or(false);
    let mut param = Writer::default();
    if str_of("in") == "body" {
        let mut body = Writer::default();
        body.string(1, &str_of("description"));
        body.string(2, &str_of("name"));
        body.string(3, "body");
        body.boolean(4, required);
        if let Some(s) = o.get("schema") {
            body.message(5, schema(s));
        }
        extensions(&mut body, 6, &o);
        param.message(1, body);
    } else {
        // Query and path parameters share field numbers up to `type` (6 for query, 5 for
        // path) where they differ.
        let mut sub = Writer::default();
        sub.boolean(1, required);
        sub.string(2, &str_of("in"));
        sub.string(3, &str_of("description"));
        sub.string(4, &str_of("name"));
        let (which, type_field, vendor_field) = match str_of("in").as_str() {
            "path" => (4, 5, 22),
            "header" => (1, 5, 22),
            _ => (3, 6, 23),
        };
        sub.string(type_field, &str_of("type"));
        if o.get("uniqueItems")
            .and_then(Value::as_bool)
            .unwrap_or(false)
        {
            // uniqueItems: 19 on path/header, 20 on query.
            sub.boolean(if which == 3 { 20 } else { 19 }, true);
        }
        extensions(&mut sub, vendor_field, &o);
        let mut non_body = Writer::default();
        non_body.message(which, sub);
        param.message(2, non_body);
    }
    let mut item = Writer::default();
    item.message(1, param);
    item
}

/// gnostic `Operation`.
fn operation(op: &Value) -> Writer {
    let o = op.as_object().cloned().unwrap_or_default();
    let mut w = Writer::default();
    for t in o
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        w.string(1, t.as_str().unwrap_or(""));
    }
    w.string(
        3,
        o.get("description").and_then(Value::as_str).unwrap_or(""),
    );
    w.string(
        5,
        o.get("operationId").and_then(Value::as_str).unwrap_or(""),
    );
    for c in o
        .get("consumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        w.string(7, c.as_str().unwrap_or(""));
    }
    for p in o
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        w.message(8, parameter(p));
    }
    if let Some(responses) = o.get("responses").and_then(Value::as_object) {
        let mut rs = Writer::default();
        for (code, r) in responses {
            let mut resp = Writer::default();
            resp.string(
                1,
                r.get("description").and_then(Value::as_str).unwrap_or(""),
            );
            if let Some(s) = r.get("schema") {
                let mut item = Writer::default();
                item.message(1, schema(s));
                resp.message(2, item);
            }
            let mut value = Writer::default();
            value.message(1, resp);
            let mut named = Writer::default();
            named.string(1, code);
            named.message(2, value);
            rs.message(1, named);
        }
        w.message(9, rs);
    }
    extensions(&mut w, 13, &o);
    w
}

/// Encodes a Swagger 2.0 document as gnostic's `openapi.v2.Document`.
pub fn encode_v2(doc: &Value) -> Vec<u8> {
    let mut w = Writer::default();
    w.string(1, doc["swagger"].as_str().unwrap_or("2.0"));
    let mut info = Writer::default();
    info.string(1, doc["info"]["title"].as_str().unwrap_or(""));
    info.string(2, doc["info"]["version"].as_str().unwrap_or(""));
    w.message(2, info);
    if let Some(paths) = doc["paths"].as_object() {
        let mut ps = Writer::default();
        for (path, item) in paths {
            let mut pi = Writer::default();
            for (verb, field) in [
                ("get", 2),
                ("put", 3),
                ("post", 4),
                ("delete", 5),
                ("patch", 8),
            ] {
                if let Some(op) = item.get(verb) {
                    pi.message(field, operation(op));
                }
            }
            for p in item
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                pi.message(9, parameter(p));
            }
            let mut named = Writer::default();
            named.string(1, path);
            named.message(2, pi);
            ps.message(2, named);
        }
        w.message(8, ps);
    }
    if let Some(defs) = doc["definitions"].as_object() {
        let mut d = Writer::default();
        for (name, s) in defs {
            let mut named = Writer::default();
            named.string(1, name);
            named.message(2, schema(s));
            d.message(1, named);
        }
        w.message(9, d);
    }
    w.buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Reads the (field, bytes) pairs of one message level, for checking the encoding.
    fn fields(mut b: &[u8]) -> Vec<(u32, Vec<u8>)> {
        fn varint(b: &mut &[u8]) -> u64 {
            let mut v = 0u64;
            let mut shift = 0;
            loop {
                let byte = b[0];
                *b = &b[1..];
                v |= ((byte & 0x7f) as u64) << shift;
                if byte < 0x80 {
                    return v;
                }
                shift += 7;
            }
        }
        let mut out = Vec::new();
        while !b.is_empty() {
            let key = varint(&mut b);
            let (field, wire) = ((key >> 3) as u32, key & 7);
            match wire {
                0 => {
                    let v = varint(&mut b);
                    out.push((field, v.to_le_bytes().to_vec()));
                }
                1 => {
                    out.push((field, b[..8].to_vec()));
                    b = &b[8..];
                }
                2 => {
                    let n = varint(&mut b) as usize;
                    out.push((field, b[..n].to_vec()));
                    b = &b[n..];
                }
                _ => panic!("wire type {wire}"),
            }
        }
        out
    }

    #[test]
    fn documents_encode_as_gnostic_messages() {
        let doc = json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.33.0"},
            "definitions": {"io.k8s.api.core.v1.Pod": {
                "description": "Pod is a collection of containers",
                "type": "object",
                "properties": {"spec": {"$ref": "#/definitions/io.k8s.api.core.v1.PodSpec"}},
                "x-kubernetes-group-version-kind": [{"group": "", "kind": "Pod", "version": "v1"}]}},
            "paths": {}});
        let bytes = encode_v2(&doc);
        let top = fields(&bytes);
        assert_eq!(top[0], (1, b"2.0".to_vec()));
        let defs = &top.iter().find(|(f, _)| *f == 9).unwrap().1;
        let named = fields(&fields(defs)[0].1);
        assert_eq!(named[0], (1, b"io.k8s.api.core.v1.Pod".to_vec()));
        let pod = fields(&named[1].1);
        assert!(pod.contains(&(4, b"Pod is a collection of containers".to_vec())));
        let ext = &pod.iter().find(|(f, _)| *f == 31).unwrap().1;
        let ext = fields(ext);
        assert_eq!(ext[0], (1, b"x-kubernetes-group-version-kind".to_vec()));
        let yaml = String::from_utf8(fields(&ext[1].1)[0].1.clone()).unwrap();
        assert!(yaml.contains("kind: Pod"), "{yaml}");
        let props = fields(&pod.iter().find(|(f, _)| *f == 25).unwrap().1);
        let spec = fields(&props[0].1);
        assert_eq!(spec[0], (1, b"spec".to_vec()));
        assert_eq!(
            fields(&spec[1].1)[0],
            (1, b"#/definitions/io.k8s.api.core.v1.PodSpec".to_vec())
        );
    }
}
