//! JSON Patch (RFC 6902), `application/json-patch+json`: `add`, `remove`, `replace`,
//! `move`, `copy`, `test`, over JSON Pointers (RFC 6901: `~0` is `~`, `~1` is `/`, `-`
//! appends to an array). Like upstream (which uses evanphx/json-patch), negative array
//! indices count from the end, numbers compare by value in `test`, and error messages
//! follow its wording (`testing value /spec/replicas failed: test failed`).

use serde_json::{Map, Value};

use crate::error::PatchError;

/// Applies a JSON Patch document (already parsed) to `doc`.
///
/// A document that is not an array of operation objects, or an operation without a valid
/// `op`/`path`, is a [`PatchError::BadRequest`]; an operation that does not apply to this
/// document is [`PatchError::Invalid`] (upstream answers 422).
pub fn apply(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    let ops = patch.as_array().ok_or_else(|| {
        PatchError::BadRequest(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
            json_kind(patch)
        ))
    })?;
    let mut out = doc.clone();
    for op in ops {
        let op = op.as_object().ok_or_else(|| {
            PatchError::BadRequest(format!(
                "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
                json_kind(op)
            ))
        })?;
        apply_op(&mut out, op)?;
    }
    Ok(out)
}

/// Like [`apply`] but parses the patch bytes first.
pub fn apply_bytes(doc: &Value, patch: &[u8]) -> Result<Value, PatchError> {
    let patch: Value =
        serde_json::from_slice(patch).map_err(|e| PatchError::BadRequest(e.to_string()))?;
    apply(doc, &patch)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Parses a JSON Pointer into its reference tokens.
pub fn parse_pointer(p: &str) -> Result<Vec<String>, PatchError> {
    if p.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = p.strip_prefix('/') else {
        return Err(PatchError::Invalid(format!(
            "JSON pointer {p:?} must start with \"/\""
        )));
    };
    rest.split('/')
        .map(|tok| {
            let mut out = String::with_capacity(tok.len());
            let mut chars = tok.chars();
            while let Some(c) = chars.next() {
                if c == '~' {
                    match chars.next() {
                        Some('0') => out.push('~'),
                        Some('1') => out.push('/'),
                        _ => {
                            return Err(PatchError::Invalid(format!(
                                "invalid escape in JSON pointer {p:?}"
                            )));
                        }
                    }
                } else {
                    out.push(c);
                }
            }
            Ok(out)
        })
        .collect()
}

fn str_field<'a>(
    op: &'a Map<String, Value>,
    name: &str,
    kind: &str,
) -> Result<&'a str, PatchError> {
    match op.get(name) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(PatchError::BadRequest(format!(
            "{kind} operation missing {name} field"
        ))),
    }
}

fn apply_op(doc: &mut Value, op: &Map<String, Value>) -> Result<(), PatchError> {
    let kind = match op.get("op") {
        Some(Value::String(s)) => s.as_str(),
        _ => {
            return Err(PatchError::BadRequest(
                "Unexpected kind: : unknown object type".to_string(),
            ));
        }
    };
    match kind {
        "add" | "replace" | "test" => {
            let path = str_field(op, "path", kind)?;
            let value = op
                .get("value")
                .ok_or_else(|| {
                    PatchError::BadRequest(format!("{kind} operation missing value field"))
                })?
                .clone();
            let tokens = parse_pointer(path)?;
            match kind {
                "add" => add(doc, &tokens, value, path),
                "replace" => replace(doc, &tokens, value, path),
                _ => test(doc, &tokens, &value, path),
            }
        }
        "remove" => {
            let path = str_field(op, "path", kind)?;
            let tokens = parse_pointer(path)?;
            remove(doc, &tokens, path).map(|_| ())
        }
        "move" | "copy" => {
            let from = str_field(op, "from", kind)?;
            let path = str_field(op, "path", kind)?;
            let from_tokens = parse_pointer(from)?;
            let tokens = parse_pointer(path)?;
            let value = if kind == "move" {
                if tokens.len() > from_tokens.len()
                    && tokens[..from_tokens.len()] == from_tokens[..]
                {
                    return Err(PatchError::Invalid(format!(
                        "move operation does not apply: cannot move {from} into its own child {path}"
                    )));
                }
                remove(doc, &from_tokens, from).map_err(|_| {
                    PatchError::Invalid(format!("move operation does not apply: doc is missing from path: {from}: missing value"))
                })?
            } else {
                get(doc, &from_tokens).cloned().ok_or_else(|| {
                    PatchError::Invalid(format!("copy operation does not apply: doc is missing from path: {from}: missing value"))
                })?
            };
            add(doc, &tokens, value, path)
        }
        other => Err(PatchError::BadRequest(format!(
            "Unexpected kind: {other}: unknown object type"
        ))),
    }
}

fn get<'a>(doc: &'a Value, tokens: &[String]) -> Option<&'a Value> {
    let mut cur = doc;
    for t in tokens {
        cur = match cur {
            Value::Object(m) => m.get(t)?,
            Value::Array(a) => a.get(array_index(t, a.len(), false)?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// The container holding the last token, or `None` when a parent is missing.
fn parent_mut<'a>(doc: &'a mut Value, tokens: &[String]) -> Option<&'a mut Value> {
    let mut cur = doc;
    for t in &tokens[..tokens.len().saturating_sub(1)] {
        cur = match cur {
            Value::Object(m) => m.get_mut(t)?,
            Value::Array(a) => {
                let len = a.len();
                a.get_mut(array_index(t, len, false)?)?
            }
            _ => return None,
        };
    }
    Some(cur)
}

/// An array index token: digits, or a negative index counting from the end; `-` (only
/// when `allow_end`) is the end of the array.
fn array_index(t: &str, len: usize, allow_end: bool) -> Option<usize> {
    if t == "-" {
        return allow_end.then_some(len);
    }
    let i: i64 = t.parse().ok()?;
    let i = if i < 0 { len as i64 + i } else { i };
    if i < 0 { None } else { Some(i as usize) }
}

fn add(doc: &mut Value, tokens: &[String], value: Value, path: &str) -> Result<(), PatchError> {
    let Some(last) = tokens.last() else {
        *doc = value;
        return Ok(());
    };
    let missing = || {
        PatchError::Invalid(format!(
            "add operation does not apply: doc is missing path: \"{path}\": missing value"
        ))
    };
    let parent = parent_mut(doc, tokens).ok_or_else(missing)?;
    match parent {
        Value::Object(m) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(a) => {
            let idx = array_index(last, a.len(), true).filter(|i| *i <= a.len()).ok_or_else(|| {
                PatchError::Invalid(format!(
                    "error in add for path: '{path}': Unable to access invalid index: {last}: invalid index referenced"
                ))
            })?;
            a.insert(idx, value);
            Ok(())
        }
        _ => Err(missing()),
    }
}

fn remove(doc: &mut Value, tokens: &[String], path: &str) -> Result<Value, PatchError> {
    let Some(last) = tokens.last() else {
        return Err(PatchError::Invalid(format!(
            "error in remove for path: '{path}': cannot remove the whole document"
        )));
    };
    let parent = parent_mut(doc, tokens).ok_or_else(|| {
        PatchError::Invalid(format!(
            "remove operation does not apply: doc is missing path: \"{path}\": missing value"
        ))
    })?;
    match parent {
        Value::Object(m) => m.remove(last).ok_or_else(|| {
            PatchError::Invalid(format!(
                "error in remove for path: '{path}': Unable to remove nonexistent key: {last}: missing value"
            ))
        }),
        Value::Array(a) => {
            let idx = array_index(last, a.len(), false).filter(|i| *i < a.len()).ok_or_else(|| {
                PatchError::Invalid(format!(
                    "error in remove for path: '{path}': Unable to access invalid index: {last}: invalid index referenced"
                ))
            })?;
            Ok(a.remove(idx))
        }
        _ => Err(PatchError::Invalid(format!(
            "remove operation does not apply: doc is missing path: \"{path}\": missing value"
        ))),
    }
}

fn replace(doc: &mut Value, tokens: &[String], value: Value, path: &str) -> Result<(), PatchError> {
    let Some(last) = tokens.last() else {
        *doc = value;
        return Ok(());
    };
    let missing_key = || {
        PatchError::Invalid(format!(
            "replace operation does not apply: doc is missing key: {path}: missing value"
        ))
    };
    let parent = parent_mut(doc, tokens).ok_or_else(|| {
        PatchError::Invalid(format!(
            "replace operation does not apply: doc is missing path: {path}: missing value"
        ))
    })?;
    match parent {
        Value::Object(m) => match m.get_mut(last) {
            Some(slot) => {
                *slot = value;
                Ok(())
            }
            None => Err(missing_key()),
        },
        Value::Array(a) => {
            let len = a.len();
            match array_index(last, len, false).and_then(|i| a.get_mut(i)) {
                Some(slot) => {
                    *slot = value;
                    Ok(())
                }
                None => Err(missing_key()),
            }
        }
        _ => Err(missing_key()),
    }
}

fn test(doc: &Value, tokens: &[String], value: &Value, path: &str) -> Result<(), PatchError> {
    let failed = || PatchError::Invalid(format!("testing value {path} failed: test failed"));
    if !tokens.is_empty() && get(doc, &tokens[..tokens.len() - 1]).is_none() {
        return Err(PatchError::Invalid(format!(
            "test operation does not apply: is missing path: {path}: missing value"
        )));
    }
    match get(doc, tokens) {
        None if value.is_null() => Ok(()),
        None => Err(failed()),
        Some(v) if json_equal(v, value) => Ok(()),
        Some(_) => Err(failed()),
    }
}

/// JSON equality with numbers compared by value (`1` equals `1.0`).
pub(crate) fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(doc: Value, patch: Value) -> Value {
        apply(&doc, &patch).unwrap_or_else(|e| panic!("patch {patch} failed: {e}"))
    }

    /// The examples of RFC 6902, appendix A.
    #[test]
    fn rfc6902_examples() {
        assert_eq!(
            ok(
                json!({"foo":"bar"}),
                json!([{"op":"add","path":"/baz","value":"qux"}])
            ),
            json!({"baz":"qux","foo":"bar"})
        );
        assert_eq!(
            ok(
                json!({"foo":["bar","baz"]}),
                json!([{"op":"add","path":"/foo/1","value":"qux"}])
            ),
            json!({"foo":["bar","qux","baz"]})
        );
        assert_eq!(
            ok(
                json!({"baz":"qux","foo":"bar"}),
                json!([{"op":"remove","path":"/baz"}])
            ),
            json!({"foo":"bar"})
        );
        assert_eq!(
            ok(
                json!({"foo":["bar","qux","baz"]}),
                json!([{"op":"remove","path":"/foo/1"}])
            ),
            json!({"foo":["bar","baz"]})
        );
        assert_eq!(
            ok(
                json!({"baz":"qux","foo":"bar"}),
                json!([{"op":"replace","path":"/baz","value":"boo"}])
            ),
            json!({"baz":"boo","foo":"bar"})
        );
        assert_eq!(
            ok(
                json!({"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}}),
                json!([{"op":"move","from":"/foo/waldo","path":"/qux/thud"}])
            ),
            json!({"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}})
        );
        assert_eq!(
            ok(
                json!({"foo":["all","grass","cows","eat"]}),
                json!([{"op":"move","from":"/foo/1","path":"/foo/3"}])
            ),
            json!({"foo":["all","cows","eat","grass"]})
        );
        assert_eq!(
            ok(
                json!({"baz":"qux","foo":["a",2,"c"]}),
                json!([{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}])
            ),
            json!({"baz":"qux","foo":["a",2,"c"]})
        );
        let err = apply(
            &json!({"baz":"qux"}),
            &json!([{"op":"test","path":"/baz","value":"bar"}]),
        )
        .expect_err("A.9");
        assert_eq!(
            err,
            PatchError::Invalid("testing value /baz failed: test failed".into())
        );
        assert_eq!(
            ok(
                json!({"foo":"bar"}),
                json!([{"op":"add","path":"/child","value":{"grandchild":{}}}])
            ),
            json!({"foo":"bar","child":{"grandchild":{}}})
        );
        assert_eq!(
            ok(
                json!({"foo":"bar"}),
                json!([{"op":"add","path":"/baz","value":"qux","xyz":123}])
            ),
            json!({"foo":"bar","baz":"qux"})
        );
        let err = apply(
            &json!({"foo":"bar"}),
            &json!([{"op":"add","path":"/baz/bat","value":"qux"}]),
        )
        .expect_err("A.12");
        assert_eq!(err.status_code(), 422);
        assert_eq!(
            ok(
                json!({"/":9,"~1":10}),
                json!([{"op":"test","path":"/~01","value":10}])
            ),
            json!({"/":9,"~1":10})
        );
        assert!(
            apply(
                &json!({"/":9,"~1":10}),
                &json!([{"op":"test","path":"/~01","value":"10"}])
            )
            .is_err()
        );
        assert_eq!(
            ok(
                json!({"foo":["bar"]}),
                json!([{"op":"add","path":"/foo/-","value":["abc","def"]}])
            ),
            json!({"foo":["bar",["abc","def"]]})
        );
    }

    #[test]
    fn copy_root_and_escapes() {
        assert_eq!(
            ok(
                json!({"a":{"b":1}}),
                json!([{"op":"copy","from":"/a","path":"/c"}])
            ),
            json!({"a":{"b":1},"c":{"b":1}})
        );
        assert_eq!(
            ok(
                json!({"a":1}),
                json!([{"op":"replace","path":"","value":[1]}])
            ),
            json!([1])
        );
        assert_eq!(
            ok(
                json!({"metadata":{"annotations":{}}}),
                json!([{"op":"add","path":"/metadata/annotations/example.com~1a~0b","value":"x"}])
            ),
            json!({"metadata":{"annotations":{"example.com/a~b":"x"}}})
        );
        assert_eq!(
            ok(
                json!({"a":[1,2,3]}),
                json!([{"op":"remove","path":"/a/-1"}])
            ),
            json!({"a":[1,2]})
        );
        assert_eq!(
            ok(
                json!({"a":1}),
                json!([{"op":"test","path":"/a","value":1.0}])
            ),
            json!({"a":1})
        );
        assert_eq!(
            ok(
                json!({"a":1}),
                json!([{"op":"test","path":"/b","value":null}])
            ),
            json!({"a":1})
        );
    }

    #[test]
    fn errors_carry_upstream_wording_and_status() {
        let cases = [
            (
                json!([{"op":"remove","path":"/nope"}]),
                "error in remove for path: '/nope': Unable to remove nonexistent key: nope: missing value",
            ),
            (
                json!([{"op":"replace","path":"/nope","value":1}]),
                "replace operation does not apply: doc is missing key: /nope: missing value",
            ),
            (
                json!([{"op":"add","path":"/a/5","value":1}]),
                "error in add for path: '/a/5': Unable to access invalid index: 5: invalid index referenced",
            ),
            (
                json!([{"op":"move","from":"/x","path":"/y"}]),
                "move operation does not apply: doc is missing from path: /x: missing value",
            ),
        ];
        for (patch, msg) in cases {
            let err = apply(&json!({"a":[1]}), &patch).expect_err("must fail");
            assert_eq!(err, PatchError::Invalid(msg.to_string()), "{patch}");
        }
        for bad in [
            json!({"op":"add"}),
            json!(["x"]),
            json!([{"op":"frobnicate","path":"/a"}]),
            json!([{"op":"add","value":1}]),
        ] {
            let err = apply(&json!({}), &bad).expect_err("malformed");
            assert_eq!(err.status_code(), 400, "{bad}: {err}");
        }
        assert!(matches!(
            apply(&json!({}), &json!([{"op":"add","path":"a","value":1}])),
            Err(PatchError::Invalid(_))
        ));
        assert!(matches!(
            apply(&json!({}), &json!([{"op":"add","path":"/a~2","value":1}])),
            Err(PatchError::Invalid(_))
        ));
        assert!(apply_bytes(&json!({}), b"[{").is_err());
        // A failed operation leaves the caller's document untouched.
        let doc = json!({"a":1});
        let _ = apply(
            &doc,
            &json!([{"op":"add","path":"/b","value":2},{"op":"remove","path":"/zz"}]),
        );
        assert_eq!(doc, json!({"a":1}));
    }
}
