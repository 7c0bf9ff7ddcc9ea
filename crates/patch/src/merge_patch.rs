//! JSON Merge Patch (RFC 7386), `application/merge-patch+json`.

use serde_json::Value;

/// Applies a merge patch to a document: objects merge recursively, `null` deletes a key,
/// anything else (including arrays) replaces the target.
pub fn apply(target: &Value, patch: &Value) -> Value {
    let mut out = target.clone();
    merge_into(&mut out, patch);
    out
}

/// Like [`apply`] but parses the patch bytes first; a document that is not JSON is a
/// [`crate::PatchError::BadRequest`] like upstream's.
pub fn apply_bytes(target: &Value, patch: &[u8]) -> Result<Value, crate::PatchError> {
    let patch: Value =
        serde_json::from_slice(patch).map_err(|e| crate::PatchError::BadRequest(e.to_string()))?;
    Ok(apply(target, &patch))
}

fn merge_into(target: &mut Value, patch: &Value) {
    let Value::Object(patch_obj) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in patch_obj {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_into(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// Computes a merge patch turning `from` into `to` (used by tests and by callers that need
/// to express a change as a patch).
pub fn diff(from: &Value, to: &Value) -> Value {
    match (from, to) {
        (Value::Object(a), Value::Object(b)) => {
            let mut out = serde_json::Map::new();
            for (k, va) in a {
                match b.get(k) {
                    None => {
                        out.insert(k.clone(), Value::Null);
                    }
                    Some(vb) if vb != va => {
                        out.insert(k.clone(), diff(va, vb));
                    }
                    _ => {}
                }
            }
            for (k, vb) in b {
                if !a.contains_key(k) {
                    out.insert(k.clone(), vb.clone());
                }
            }
            Value::Object(out)
        }
        _ => to.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The examples of RFC 7386, appendix A.
    #[test]
    fn rfc7386_examples() {
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":"b","b":"c"}),
                json!({"a":null}),
                json!({"b":"c"}),
            ),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a":"b"}), json!(["c"]), json!(["c"])),
            (json!({"a":"foo"}), json!(null), json!(null)),
            (json!({"a":"foo"}), json!("bar"), json!("bar")),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ];
        for (target, patch, want) in cases {
            assert_eq!(
                apply(&target, &patch),
                want,
                "target {target} patch {patch}"
            );
        }
    }

    #[test]
    fn diff_round_trips() {
        let a = json!({"metadata":{"labels":{"a":"1","b":"2"}},"spec":{"replicas":1,"x":[1]}});
        let b = json!({"metadata":{"labels":{"a":"1","c":"3"}},"spec":{"replicas":2,"x":[1,2]}});
        let p = diff(&a, &b);
        assert_eq!(
            p,
            json!({"metadata":{"labels":{"b":null,"c":"3"}},"spec":{"replicas":2,"x":[1,2]}})
        );
        assert_eq!(apply(&a, &p), b);
    }

    #[test]
    fn malformed_patch_is_a_bad_request() {
        let err = apply_bytes(&json!({}), b"{not json").expect_err("bad");
        assert_eq!(err.status_code(), 400);
    }
}
