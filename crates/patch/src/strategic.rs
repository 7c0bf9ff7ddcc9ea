//! Strategic merge patch (`application/strategic-merge-patch+json`) as upstream's API server
//! applies it (`strategicpatch.StrategicMergePatch` with parallel-list merging and unmatched
//! nulls ignored), driven by the patch metadata of [`rkube_schema`]:
//!
//! - maps merge key by key; `null` deletes a key; `$patch: replace` replaces the map,
//!   `$patch: delete` empties it; `$retainKeys: [...]` drops keys not listed;
//! - lists whose field has patch strategy `merge` merge by `x-kubernetes-patch-merge-key`
//!   (lists of maps) or by value (lists of scalars); list items `{"$patch": "delete",
//!   <key>: v}` delete, `{"$patch": "replace"}` replaces the list; other lists are replaced;
//! - `$setElementOrder/<field>` orders a merged list, `$deleteFromPrimitiveList/<field>`
//!   removes values from a merged scalar list;
//! - the order of a merged list follows upstream: patch items in patch order, items only on
//!   the server in server order, interleaved by their server positions;
//! - fields the schema does not declare merge as plain JSON when both sides are objects
//!   and are otherwise replaced.

use serde_json::{Map, Value};

use rkube_schema::{PatchMeta, Resolved, Type};

use crate::error::PatchError;
use crate::json_patch::json_equal;

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

/// Applies a strategic merge patch to `original` (a whole object) of type `ty`.
pub fn apply(original: &Value, patch: &Value, ty: &Type) -> Result<Value, PatchError> {
    let (Value::Object(orig), Value::Object(p)) = (original, patch) else {
        return Err(PatchError::BadRequest("invalid JSON document".to_string()));
    };
    let merged = merge_map(orig.clone(), p.clone(), ty)?;
    Ok(Value::Object(merged))
}

/// Like [`apply`] but parses the patch bytes first.
pub fn apply_bytes(original: &Value, patch: &[u8], ty: &Type) -> Result<Value, PatchError> {
    let patch: Value =
        serde_json::from_slice(patch).map_err(|e| PatchError::BadRequest(e.to_string()))?;
    apply(original, &patch, ty)
}

/// Go's `%v` of a JSON value, for upstream's error messages (`map[image:nginx]`).
fn go_fmt(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_fmt(v)))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(go_fmt).collect::<Vec<_>>().join(" ")),
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".to_string(),
        other => other.to_string(),
    }
}

fn no_merge_key(item: &Value, key: &str) -> PatchError {
    PatchError::Internal(format!(
        "map: {} does not contain declared merge key: {key}",
        go_fmt(item)
    ))
}

/// Removes `null`s and directive keys from a value taken as-is from the patch (upstream
/// discards unmatched nulls; directives in new values are dropped when the object is
/// decoded).
fn clean(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, v| {
                !v.is_null()
                    && k != DIRECTIVE
                    && k != RETAIN_KEYS
                    && !k.starts_with(SET_ELEMENT_ORDER)
                    && !k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            });
            for v in m.values_mut() {
                clean(v);
            }
        }
        Value::Array(a) => {
            a.retain(|item| item.get(DIRECTIVE).is_none());
            for item in a.iter_mut() {
                clean(item);
            }
        }
        _ => {}
    }
}

/// The type and patch metadata of `key` inside an object of type `ty`.
fn lookup(ty: &Type, key: &str) -> (Type, PatchMeta) {
    match ty.child(key) {
        Some(c) => (c.ty.clone(), c.patch()),
        None => (Type::Deduced, PatchMeta::default()),
    }
}

fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    ty: &Type,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return match directive.as_str() {
            Some("replace") => {
                patch.remove(DIRECTIVE);
                let mut v = Value::Object(patch);
                clean(&mut v);
                Ok(match v {
                    Value::Object(m) => m,
                    _ => Map::new(),
                })
            }
            Some("delete") => Ok(Map::new()),
            _ => Err(PatchError::Internal(format!(
                "unknown patch type: {} in map: {}",
                go_fmt(directive),
                go_fmt(&Value::Object(patch.clone()))
            ))),
        };
    }

    // $retainKeys
    if let Some(retain) = patch.remove(RETAIN_KEYS) {
        let keys = retain.as_array().ok_or_else(|| {
            PatchError::BadRequest(
                "invalid patch: $retainKeys must be a list of strings".to_string(),
            )
        })?;
        let keep: Vec<&str> = keys.iter().filter_map(Value::as_str).collect();
        if keep.len() != keys.len() {
            return Err(PatchError::BadRequest(
                "invalid patch: $retainKeys must be a list of strings".to_string(),
            ));
        }
        original.retain(|k, _| keep.contains(&k.as_str()));
    }

    // $setElementOrder lists, merged together with their list.
    let order_keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for key in order_keys {
        let field = key[SET_ELEMENT_ORDER.len()..].to_string();
        let order = patch.remove(&key).unwrap_or(Value::Null);
        let order = order.as_array().cloned().ok_or_else(|| {
            PatchError::BadRequest(format!("invalid patch: {key} must be a list"))
        })?;
        let (fty, meta) = lookup(ty, &field);
        let original_list = match original.get(&field) {
            Some(Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        let patch_list = match patch.remove(&field) {
            Some(Value::Array(a)) => Some(a),
            Some(Value::Null) | None => None,
            Some(other) => {
                // Not a list: handled like any other key below.
                patch.insert(field.clone(), other);
                continue;
            }
        };
        let merge_key = meta.merge_key.clone().unwrap_or_default();
        if let Some(pl) = &patch_list {
            validate_set_order(pl, &order, &merge_key)?;
        }
        let merged = if meta.merge {
            merge_slice(
                original_list.clone(),
                patch_list.clone().unwrap_or_default(),
                &fty,
                &merge_key,
                false,
            )?
        } else {
            match patch_list.clone() {
                Some(mut pl) => {
                    let mut v = Value::Array(std::mem::take(&mut pl));
                    clean(&mut v);
                    v.as_array().cloned().unwrap_or_default()
                }
                None => original_list.clone(),
            }
        };
        let is_map = merged
            .first()
            .or(order.first())
            .is_some_and(Value::is_object);
        let (patch_items, server_only) = partition(&merged, &order, &merge_key, is_map);
        let result = normalize_element_order(
            patch_items,
            server_only,
            &order,
            &original_list,
            &merge_key,
            is_map,
        )?;
        if result.is_empty() && !original.contains_key(&field) {
            continue;
        }
        original.insert(field, Value::Array(result));
    }

    for (key, patch_v) in patch {
        let (key, is_delete_list) = match key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            Some(k) => (k.to_string(), true),
            None => (key, false),
        };
        if patch_v.is_null() {
            original.remove(&key);
            continue;
        }
        let Some(orig_v) = original.get(&key) else {
            if !is_delete_list {
                let mut v = patch_v;
                clean(&mut v);
                original.insert(key, v);
            }
            continue;
        };
        let same_kind = matches!(
            (orig_v, &patch_v),
            (Value::Object(_), Value::Object(_)) | (Value::Array(_), Value::Array(_))
        );
        if !same_kind {
            if !is_delete_list {
                let mut v = patch_v;
                clean(&mut v);
                original.insert(key, v);
            }
            continue;
        }
        let (fty, meta) = lookup(ty, &key);
        let new_v = match (orig_v.clone(), patch_v) {
            (Value::Object(o), Value::Object(p)) => {
                if meta.replace {
                    let mut v = Value::Object(p);
                    clean(&mut v);
                    v
                } else {
                    Value::Object(merge_map(o, p, &fty)?)
                }
            }
            (Value::Array(o), Value::Array(p)) => {
                if meta.merge {
                    let merge_key = meta.merge_key.clone().unwrap_or_default();
                    Value::Array(merge_slice_ordered(o, p, &fty, &merge_key, is_delete_list)?)
                } else {
                    let mut v = Value::Array(p);
                    clean(&mut v);
                    v
                }
            }
            (_, p) => p,
        };
        original.insert(key, new_v);
    }
    Ok(original)
}

fn item_type(list_ty: &Type) -> Type {
    match list_ty.resolve() {
        Resolved::List(l) => l.items.clone(),
        _ => Type::Deduced,
    }
}

fn element_is_map(original: &[Value], patch: &[Value]) -> Result<bool, PatchError> {
    let mut kind: Option<bool> = None;
    for v in original.iter().chain(patch) {
        if v.is_array() {
            return Err(PatchError::Invalid(
                "lists of lists are not supported".to_string(),
            ));
        }
        let m = v.is_object();
        match kind {
            None => kind = Some(m),
            Some(k) if k != m => {
                return Err(PatchError::Internal(format!(
                    "mismatched types in list: {} and {}",
                    go_fmt(&Value::Array(original.to_vec())),
                    go_fmt(&Value::Array(patch.to_vec()))
                )));
            }
            _ => {}
        }
    }
    Ok(kind.unwrap_or(false))
}

/// `mergeSlice` with upstream's final ordering.
fn merge_slice_ordered(
    original: Vec<Value>,
    patch: Vec<Value>,
    list_ty: &Type,
    merge_key: &str,
    is_delete_list: bool,
) -> Result<Vec<Value>, PatchError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let is_map = element_is_map(&original, &patch)?;
    if !is_map && is_delete_list {
        return Ok(original
            .into_iter()
            .filter(|o| !patch.iter().any(|p| json_equal(o, p)))
            .collect());
    }
    let (server_order, patch_order, merged) =
        merge_slice_parts(original, patch, list_ty, merge_key, is_map)?;
    let (patch_items, server_only) = partition(&merged, &patch_order, merge_key, is_map);
    normalize_element_order(
        patch_items,
        server_only,
        &patch_order,
        &server_order,
        merge_key,
        is_map,
    )
}

/// `mergeSlice` without the final ordering (used by `$setElementOrder`, which orders
/// itself).
fn merge_slice(
    original: Vec<Value>,
    patch: Vec<Value>,
    list_ty: &Type,
    merge_key: &str,
    is_delete_list: bool,
) -> Result<Vec<Value>, PatchError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let is_map = element_is_map(&original, &patch)?;
    if !is_map && is_delete_list {
        return Ok(original
            .into_iter()
            .filter(|o| !patch.iter().any(|p| json_equal(o, p)))
            .collect());
    }
    Ok(merge_slice_parts(original, patch, list_ty, merge_key, is_map)?.2)
}

/// (server order, patch order, merged items).
type SliceParts = (Vec<Value>, Vec<Value>, Vec<Value>);

/// Returns (server order, patch order, merged items).
fn merge_slice_parts(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    list_ty: &Type,
    merge_key: &str,
    is_map: bool,
) -> Result<SliceParts, PatchError> {
    if !is_map {
        let mut merged: Vec<Value> = Vec::new();
        for v in original.iter().chain(patch.iter()) {
            if !merged.iter().any(|m| json_equal(m, v)) {
                merged.push(v.clone());
            }
        }
        return Ok((original, patch, merged));
    }
    if merge_key.is_empty() {
        return Err(PatchError::Internal(
            "cannot merge lists without merge key".to_string(),
        ));
    }
    let item_ty = item_type(list_ty);
    // Special elements.
    let mut plain_patch = Vec::new();
    let mut replace = false;
    for v in patch {
        let Some(directive) = v.get(DIRECTIVE) else {
            plain_patch.push(v);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let key_v = v
                    .get(merge_key)
                    .ok_or_else(|| no_merge_key(&v, merge_key))?;
                original.retain(|o| !o.get(merge_key).is_some_and(|ov| json_equal(ov, key_v)));
            }
            Some("replace") => replace = true,
            Some("merge") => {
                return Err(PatchError::Internal(
                    "merging lists cannot yet be specified in the patch".to_string(),
                ));
            }
            _ => {
                return Err(PatchError::Internal(format!(
                    "unknown patch type: {} in map: {}",
                    go_fmt(directive),
                    go_fmt(&v)
                )));
            }
        }
    }
    let (original, patch) = if replace {
        (plain_patch, Vec::new())
    } else {
        (original, plain_patch)
    };
    let mut merged = original.clone();
    let mut server_order = original;
    for v in &patch {
        let key_v = v.get(merge_key).ok_or_else(|| no_merge_key(v, merge_key))?;
        let pos = merged
            .iter()
            .position(|o| o.get(merge_key).is_some_and(|ov| json_equal(ov, key_v)));
        match pos {
            Some(i) => {
                let (Value::Object(o), Value::Object(p)) = (merged[i].clone(), v.clone()) else {
                    continue;
                };
                let m = Value::Object(merge_map(o, p, &item_ty)?);
                server_order[i] = m.clone();
                merged[i] = m;
            }
            None => {
                let mut item = v.clone();
                clean(&mut item);
                merged.push(item);
            }
        }
    }
    if replace {
        for item in merged.iter_mut() {
            clean(item);
        }
    }
    Ok((server_order, patch, merged))
}

fn same_item(a: &Value, b: &Value, merge_key: &str, is_map: bool) -> bool {
    if is_map {
        match (a.get(merge_key), b.get(merge_key)) {
            (Some(x), Some(y)) => json_equal(x, y),
            _ => false,
        }
    } else {
        json_equal(a, b)
    }
}

fn index_of(list: &[Value], item: &Value, merge_key: &str, is_map: bool) -> Option<usize> {
    list.iter()
        .position(|v| same_item(v, item, merge_key, is_map))
}

/// Splits merged items into those present in `present` and the rest.
fn partition(
    merged: &[Value],
    present: &[Value],
    merge_key: &str,
    is_map: bool,
) -> (Vec<Value>, Vec<Value>) {
    merged
        .iter()
        .cloned()
        .partition(|m| index_of(present, m, merge_key, is_map).is_some())
}

fn normalize_slice_order(
    mut to_sort: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    is_map: bool,
) -> Result<Vec<Value>, PatchError> {
    if is_map {
        for v in to_sort.iter().chain(order.iter()) {
            if v.get(merge_key).is_none() {
                return Err(no_merge_key(v, merge_key));
            }
        }
    }
    // Items found in `order` are sorted by their position there; the others keep their
    // relative order after them (a stable sort on the found positions).
    let mut indexed: Vec<(Option<usize>, usize, Value)> = to_sort
        .drain(..)
        .enumerate()
        .map(|(i, v)| (index_of(order, &v, merge_key, is_map), i, v))
        .collect();
    indexed.sort_by(|a, b| match (a.0, b.0) {
        (Some(x), Some(y)) => x.cmp(&y).then(a.1.cmp(&b.1)),
        _ => a.1.cmp(&b.1),
    });
    Ok(indexed.into_iter().map(|(_, _, v)| v).collect())
}

fn normalize_element_order(
    patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    is_map: bool,
) -> Result<Vec<Value>, PatchError> {
    let patch = normalize_slice_order(patch, patch_order, merge_key, is_map)?;
    let server_only = normalize_slice_order(server_only, server_order, merge_key, is_map)?;
    // mergeSortedSlice(left = server only, right = patch items, by server order)
    let (left, right) = (server_only, patch);
    let mut out = Vec::with_capacity(left.len() + right.len());
    let (mut i, mut j) = (0, 0);
    while i < left.len() || j < right.len() {
        if i >= left.len() {
            out.push(right[j].clone());
            j += 1;
        } else if j >= right.len() {
            out.push(left[i].clone());
            i += 1;
        } else {
            let li = index_of(server_order, &left[i], merge_key, is_map);
            let ri = index_of(server_order, &right[j], merge_key, is_map);
            match (li, ri) {
                (Some(a), Some(b)) if a < b => {
                    out.push(left[i].clone());
                    i += 1;
                }
                _ => {
                    out.push(right[j].clone());
                    j += 1;
                }
            }
        }
    }
    Ok(out)
}

/// Every item of the patch list (other than deletions) must appear in the
/// `$setElementOrder` list, in the same relative order.
fn validate_set_order(
    patch_list: &[Value],
    order: &[Value],
    merge_key: &str,
) -> Result<(), PatchError> {
    let is_map = !merge_key.is_empty();
    let mut last = None;
    for item in patch_list {
        if is_map && item.get(DIRECTIVE).is_some() {
            continue;
        }
        let Some(pos) = index_of(order, item, merge_key, is_map) else {
            return Err(PatchError::BadRequest(format!(
                "invalid patch: the order of the $setElementOrder list does not contain {}",
                go_fmt(item)
            )));
        };
        if last.is_some_and(|l| pos < l) {
            return Err(PatchError::BadRequest(
                "invalid patch: the order of the patch list and the $setElementOrder list do not match".to_string(),
            ));
        }
        last = Some(pos);
    }
    Ok(())
}
