//! Typed operations on objects for server-side apply, after upstream's
//! structured-merge-diff: the set of fields a value sets ([`to_field_set`]), merging an
//! applied configuration into a live object ([`merge`]), comparing two versions
//! ([`compare`]), removing items by path ([`remove_items`]), and
//! [`ensure_named_fields_are_members`].
//!
//! How a value is walked depends on its [`Type`]: scalars and atomic structs, maps and lists
//! are leaves; granular structs and maps are walked field by field (`f:` elements);
//! list-maps item by item (`k:` elements, keyed by the list-map keys, with key defaults);
//! sets value by value (`v:` elements); values of deduced type are walked by their shape
//! (objects granular, lists atomic).

use serde_json::{Map, Value};

use rkube_schema::{Field, ListKind, MapKind, Resolved, Type};

use crate::error::PatchError;
use crate::fieldpath::{PathElement, Set};
use crate::json_patch::json_equal;

/// How a value is walked.
enum Shape<'a> {
    Leaf,
    /// Granular object: the type to look children up in.
    Object(&'a Type),
    /// Associative list: item type and kind (set or map).
    List(&'a Type, &'a ListKind),
}

fn shape<'a>(ty: &'a Type, field: Option<&Field>, value: Option<&Value>) -> Shape<'a> {
    match ty.resolve() {
        Resolved::Scalar(_) | Resolved::AtomicAny => Shape::Leaf,
        Resolved::Struct(..) | Resolved::Map(_) => match ty.map_kind_in(field) {
            Some(MapKind::Atomic) => Shape::Leaf,
            _ => Shape::Object(ty),
        },
        Resolved::List(l) => match l.kind {
            ListKind::Atomic => Shape::Leaf,
            _ => Shape::List(&l.items, &l.kind),
        },
        Resolved::Deduced => match value {
            Some(Value::Object(_)) => Shape::Object(ty),
            _ => Shape::Leaf,
        },
    }
}

fn bad(path: &[PathElement], msg: impl std::fmt::Display) -> PatchError {
    let p: String = path.iter().map(|e| e.to_string()).collect();
    PatchError::BadRequest(format!("{p}: {msg}"))
}

/// The path element of a list item.
pub fn item_element(
    item: &Value,
    kind: &ListKind,
    index: usize,
    path: &[PathElement],
) -> Result<PathElement, PatchError> {
    match kind {
        ListKind::Set => {
            if item.is_object() || item.is_array() {
                return Err(bad(
                    path,
                    format!("element {index}: only scalar values are supported in a set"),
                ));
            }
            Ok(PathElement::Value(item.clone()))
        }
        ListKind::Map { keys, key_defaults } => {
            let Value::Object(m) = item else {
                return Err(bad(
                    path,
                    format!("element {index}: associative list with keys may only contain objects"),
                ));
            };
            let mut kv = Vec::with_capacity(keys.len());
            for k in keys {
                match m
                    .get(k)
                    .filter(|v| !v.is_null())
                    .or_else(|| key_defaults.get(k))
                {
                    Some(v) => kv.push((k.clone(), v.clone())),
                    None => {
                        return Err(bad(
                            path,
                            format!(
                                "element {index}: associative list with keys has an element that omits key field {k:?} (and doesn't have default value)"
                            ),
                        ));
                    }
                }
            }
            kv.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(PathElement::Key(kv))
        }
        ListKind::Atomic => Ok(PathElement::Index(index)),
    }
}

/// The items of a list with their path elements; duplicate keys are an error.
fn index_items<'v>(
    list: &'v [Value],
    kind: &ListKind,
    path: &[PathElement],
) -> Result<Vec<(PathElement, &'v Value)>, PatchError> {
    let mut out: Vec<(PathElement, &Value)> = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let pe = item_element(item, kind, i, path)?;
        if out.iter().any(|(p, _)| *p == pe) {
            return Err(bad(path, format!("duplicate entries for key {pe}")));
        }
        out.push((pe, item));
    }
    Ok(out)
}

/// The fields an (applied) object sets: leaves, list items and map entries, plus struct
/// fields set to `null` or `{}`.
pub fn to_field_set(value: &Value, ty: &Type) -> Result<Set, PatchError> {
    let mut set = Set::new();
    let mut path = Vec::new();
    walk_set(value, ty, None, &mut path, &mut set)?;
    Ok(set)
}

fn walk_set(
    value: &Value,
    ty: &Type,
    field: Option<&Field>,
    path: &mut Vec<PathElement>,
    set: &mut Set,
) -> Result<(), PatchError> {
    if value.is_null() {
        return Ok(());
    }
    match shape(ty, field, Some(value)) {
        Shape::Leaf => set.insert(path),
        Shape::Object(oty) => {
            let Value::Object(m) = value else {
                set.insert(path);
                return Ok(());
            };
            for (k, v) in m {
                let Some(child) = oty.child(k) else { continue };
                path.push(PathElement::Field(k.clone()));
                walk_set(v, child.ty, child.field, path, set)?;
                let empty = v.is_null() || v.as_object().is_some_and(Map::is_empty);
                if empty || child.field.is_none() {
                    set.insert(path);
                }
                path.pop();
            }
        }
        Shape::List(item_ty, kind) => {
            let Value::Array(a) = value else {
                set.insert(path);
                return Ok(());
            };
            for (pe, item) in index_items(a, kind, path)? {
                path.push(pe);
                walk_set(item, item_ty, None, path, set)?;
                set.insert(path);
                path.pop();
            }
        }
    }
    Ok(())
}

/// The result of [`compare`].
#[derive(Debug, Default, Clone)]
pub struct Comparison {
    pub removed: Set,
    pub modified: Set,
    pub added: Set,
}

impl Comparison {
    pub fn is_same(&self) -> bool {
        self.removed.is_empty() && self.modified.is_empty() && self.added.is_empty()
    }

    /// Drops every path under the given fields.
    pub fn filter(&self, ignored: &Set) -> Comparison {
        Comparison {
            removed: self.removed.recursive_difference(ignored),
            modified: self.modified.recursive_difference(ignored),
            added: self.added.recursive_difference(ignored),
        }
    }
}

/// Which fields were removed, modified and added going from `lhs` to `rhs`.
pub fn compare(lhs: &Value, rhs: &Value, ty: &Type) -> Result<Comparison, PatchError> {
    let mut c = Comparison::default();
    let mut path = Vec::new();
    walk_compare(Some(lhs), Some(rhs), ty, None, &mut path, &mut c)?;
    Ok(c)
}

fn is_empty_container(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    }
}

fn leaf(lhs: Option<&Value>, rhs: Option<&Value>, path: &[PathElement], c: &mut Comparison) {
    match (lhs, rhs) {
        (None, _) => c.added.insert(path),
        (_, None) => c.removed.insert(path),
        (Some(l), Some(r)) if !json_equal(l, r) => c.modified.insert(path),
        _ => {}
    }
}

fn walk_compare(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    ty: &Type,
    field: Option<&Field>,
    path: &mut Vec<PathElement>,
    c: &mut Comparison,
) -> Result<(), PatchError> {
    let probe = rhs.filter(|v| !v.is_null()).or(lhs);
    let sh = shape(ty, field, probe);
    // Shapes that disagree with the values (e.g. a deduced object replaced by a scalar)
    // compare as leaves.
    let fits = |v: Option<&Value>, want_obj: bool| match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(_)) => want_obj,
        Some(Value::Array(_)) => !want_obj,
        _ => false,
    };
    match sh {
        Shape::Object(oty) if fits(lhs, true) && fits(rhs, true) => {
            if is_empty_container(lhs) && is_empty_container(rhs) {
                leaf(lhs, rhs, path, c);
                return Ok(());
            }
            let empty = Map::new();
            let lm = lhs.and_then(Value::as_object).unwrap_or(&empty);
            let rm = rhs.and_then(Value::as_object).unwrap_or(&empty);
            let mut keys: Vec<&String> = lm.keys().chain(rm.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let Some(child) = oty.child(k) else { continue };
                path.push(PathElement::Field(k.clone()));
                walk_compare(lm.get(k), rm.get(k), child.ty, child.field, path, c)?;
                path.pop();
            }
        }
        Shape::List(item_ty, kind) if fits(lhs, false) && fits(rhs, false) => {
            if is_empty_container(lhs) && is_empty_container(rhs) {
                leaf(lhs, rhs, path, c);
                return Ok(());
            }
            let empty = Vec::new();
            let la = lhs.and_then(Value::as_array).unwrap_or(&empty);
            let ra = rhs.and_then(Value::as_array).unwrap_or(&empty);
            let li = index_items(la, kind, path)?;
            let ri = index_items(ra, kind, path)?;
            for (pe, l) in &li {
                let r = ri.iter().find(|(p, _)| p == pe).map(|(_, v)| *v);
                path.push(pe.clone());
                walk_compare(Some(l), r, item_ty, None, path, c)?;
                path.pop();
            }
            for (pe, r) in &ri {
                if li.iter().any(|(p, _)| p == pe) {
                    continue;
                }
                path.push(pe.clone());
                walk_compare(None, Some(r), item_ty, None, path, c)?;
                path.pop();
            }
        }
        _ => {
            leaf(lhs, rhs, path, c);
            return Ok(());
        }
    }
    match (lhs, rhs) {
        (None, _) => c.added.insert(path),
        (_, None) => c.removed.insert(path),
        _ => {}
    }
    Ok(())
}

/// What [`compare`] of a created object against "no object" (`lhs`: `{}` for each
/// top-level field in `present`, as Go always serializes them) gives as added or modified,
/// with the paths under `ignored`'s members dropped (as [`Set::recursive_difference`]) and
/// `strip`'s members removed (as [`Set::difference`]), written directly in the `FieldsV1`
/// form [`Set::to_fields_v1`] would give: the create path of [`crate::update`] without
/// building, filtering and converting sets.
pub fn created_fields_v1(
    rhs: &Value,
    ty: &Type,
    present: &[&str],
    ignored: &Set,
    strip: &Set,
) -> Result<Map<String, Value>, PatchError> {
    let mut out = Map::new();
    let Value::Object(m) = rhs else {
        return Ok(out);
    };
    let Shape::Object(oty) = shape(ty, None, Some(rhs)) else {
        return Ok(out);
    };
    let mut path = Vec::new();
    for (k, v) in m {
        let Some(child) = oty.child(k) else { continue };
        let pe = PathElement::Field(k.clone());
        if ignored.members.contains(&pe) {
            continue;
        }
        let (ign, stp) = (ignored.children.get(&pe), strip.children.get(&pe));
        let strip_member = strip.members.contains(&pe);
        path.push(pe);
        let node = if present.contains(&k.as_str()) {
            // Compared with `{}`: children are added; the field itself changed only when
            // it is not an object with content.
            match (shape(child.ty, child.field, Some(v)), v) {
                (Shape::Object(cty), Value::Object(cm)) if !cm.is_empty() => {
                    let children = added_children(cm, cty, &mut path, ign, stp)?;
                    fields_v1_node(false, children)
                }
                (_, Value::Object(cm)) if cm.is_empty() => None,
                _ => fields_v1_node(!strip_member, Map::new()),
            }
        } else {
            let children = added(v, child.ty, child.field, &mut path, ign, stp)?;
            fields_v1_node(!strip_member, children)
        };
        let pe = path.pop().expect("pushed above");
        if let Some(node) = node {
            out.insert(pe.to_fields_v1_key(), node);
        }
    }
    Ok(out)
}

/// The `FieldsV1` value of one node: `{}` for a member without children, the children
/// (with `"."` when the node is a member too), or nothing.
fn fields_v1_node(member: bool, mut children: Map<String, Value>) -> Option<Value> {
    if children.is_empty() {
        return member.then(|| Value::Object(Map::new()));
    }
    if member {
        children.insert(".".to_string(), Value::Object(Map::new()));
    }
    Some(Value::Object(children))
}

/// The `FieldsV1` children of a value that did not exist before (every node under it is
/// added), filtered like [`created_fields_v1`].
fn added(
    v: &Value,
    ty: &Type,
    field: Option<&Field>,
    path: &mut Vec<PathElement>,
    ignored: Option<&Set>,
    strip: Option<&Set>,
) -> Result<Map<String, Value>, PatchError> {
    let probe = Some(v).filter(|v| !v.is_null());
    match (shape(ty, field, probe), v) {
        (Shape::Object(oty), Value::Object(m)) => added_children(m, oty, path, ignored, strip),
        (Shape::List(item_ty, kind), Value::Array(a)) if !a.is_empty() => {
            let mut out = Map::new();
            for (pe, item) in index_items(a, kind, path)? {
                if ignored.is_some_and(|s| s.members.contains(&pe)) {
                    continue;
                }
                let ign = ignored.and_then(|s| s.children.get(&pe));
                let stp = strip.and_then(|s| s.children.get(&pe));
                let member = !strip.is_some_and(|s| s.members.contains(&pe));
                path.push(pe);
                let children = added(item, item_ty, None, path, ign, stp)?;
                let pe = path.pop().expect("pushed above");
                if let Some(node) = fields_v1_node(member, children) {
                    out.insert(pe.to_fields_v1_key(), node);
                }
            }
            Ok(out)
        }
        _ => Ok(Map::new()),
    }
}

fn added_children(
    m: &Map<String, Value>,
    oty: &Type,
    path: &mut Vec<PathElement>,
    ignored: Option<&Set>,
    strip: Option<&Set>,
) -> Result<Map<String, Value>, PatchError> {
    let mut out = Map::new();
    for (k, v) in m {
        let Some(child) = oty.child(k) else { continue };
        let pe = PathElement::Field(k.clone());
        if ignored.is_some_and(|s| s.members.contains(&pe)) {
            continue;
        }
        let ign = ignored.and_then(|s| s.children.get(&pe));
        let stp = strip.and_then(|s| s.children.get(&pe));
        let member = !strip.is_some_and(|s| s.members.contains(&pe));
        path.push(pe);
        let children = added(v, child.ty, child.field, path, ign, stp)?;
        path.pop();
        if let Some(node) = fields_v1_node(member, children) {
            out.insert(format!("f:{k}"), node);
        }
    }
    Ok(out)
}

/// Merges `rhs` (an applied configuration) into `lhs` (the live object): leaves and atomic
/// values are taken from `rhs`, granular objects merge key by key, associative lists item by
/// item (order as upstream: `rhs` order for shared items, `lhs`-only items kept in place).
pub fn merge(lhs: &Value, rhs: &Value, ty: &Type) -> Result<Value, PatchError> {
    let mut path = Vec::new();
    walk_merge(lhs, rhs, ty, None, &mut path)
}

fn walk_merge(
    lhs: &Value,
    rhs: &Value,
    ty: &Type,
    field: Option<&Field>,
    path: &mut Vec<PathElement>,
) -> Result<Value, PatchError> {
    match (shape(ty, field, Some(rhs)), lhs, rhs) {
        (Shape::Object(oty), Value::Object(lm), Value::Object(rm)) => {
            let mut out = lm.clone();
            for (k, rv) in rm {
                let merged = match (oty.child(k), lm.get(k)) {
                    (Some(child), Some(lv)) => {
                        path.push(PathElement::Field(k.clone()));
                        let m = walk_merge(lv, rv, child.ty, child.field, path)?;
                        path.pop();
                        m
                    }
                    _ => rv.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Ok(Value::Object(out))
        }
        (Shape::List(item_ty, kind), Value::Array(la), Value::Array(ra)) => {
            let li = index_items(la, kind, path)?;
            let ri = index_items(ra, kind, path)?;
            merge_list(&li, &ri, item_ty, path)
        }
        _ => Ok(rhs.clone()),
    }
}

/// Upstream's list merge order: walk both lists; shared items appear in `rhs` order, items
/// only in `lhs` keep their place relative to the shared ones, items only in `rhs` are
/// inserted where `rhs` has them.
fn merge_list(
    lhs: &[(PathElement, &Value)],
    rhs: &[(PathElement, &Value)],
    item_ty: &Type,
    path: &mut Vec<PathElement>,
) -> Result<Value, PatchError> {
    let in_rhs = |pe: &PathElement| rhs.iter().find(|(p, _)| p == pe).map(|(_, v)| *v);
    let in_lhs = |pe: &PathElement| lhs.iter().find(|(p, _)| p == pe).map(|(_, v)| *v);
    let mut shared: std::collections::VecDeque<&PathElement> = rhs
        .iter()
        .filter(|(p, _)| in_lhs(p).is_some())
        .map(|(p, _)| p)
        .collect();
    let mut next_shared = shared.pop_front();
    let mut merged_rhs: Vec<&PathElement> = Vec::new();
    let mut out = Vec::with_capacity(lhs.len().max(rhs.len()));
    let (mut li, mut ri) = (0, 0);
    let merge_item = |pe: &PathElement,
                      l: Option<&Value>,
                      r: Option<&Value>,
                      path: &mut Vec<PathElement>|
     -> Result<Value, PatchError> {
        path.push(pe.clone());
        let v = match (l, r) {
            (Some(l), Some(r)) => walk_merge(l, r, item_ty, None, path)?,
            (Some(l), None) => l.clone(),
            (None, Some(r)) => r.clone(),
            (None, None) => Value::Null,
        };
        path.pop();
        Ok(v)
    };
    while li < lhs.len() || ri < rhs.len() {
        if li < lhs.len() && ri < rhs.len() {
            let pe = &lhs[li].0;
            if *pe == rhs[ri].0 {
                merged_rhs.push(pe);
                out.push(merge_item(pe, in_lhs(pe), in_rhs(pe), path)?);
                li += 1;
                ri += 1;
                next_shared = shared.pop_front();
                continue;
            }
            if in_rhs(pe).is_some() && next_shared.is_some_and(|n| n != pe) {
                li += 1;
                continue;
            }
        }
        if li < lhs.len() {
            let pe = &lhs[li].0;
            if in_rhs(pe).is_none() {
                out.push(lhs[li].1.clone());
                li += 1;
                continue;
            } else if merged_rhs.contains(&pe) {
                li += 1;
                continue;
            }
        }
        if ri < rhs.len() {
            let pe = &rhs[ri].0;
            merged_rhs.push(pe);
            out.push(merge_item(pe, in_lhs(pe), in_rhs(pe), path)?);
            ri += 1;
            if next_shared.is_some_and(|n| n == pe) {
                next_shared = shared.pop_front();
            }
        }
    }
    Ok(Value::Array(out))
}

/// Removes from `value` every field, map entry and list item whose path is a member of
/// `set` (descending into children of the set).
pub fn remove_items(value: &Value, ty: &Type, set: &Set) -> Result<Value, PatchError> {
    let mut path = Vec::new();
    walk_remove(value, ty, None, set, &mut path)
}

fn walk_remove(
    value: &Value,
    ty: &Type,
    field: Option<&Field>,
    set: &Set,
    path: &mut Vec<PathElement>,
) -> Result<Value, PatchError> {
    if set.is_empty() {
        return Ok(value.clone());
    }
    match (shape(ty, field, Some(value)), value) {
        (Shape::Object(oty), Value::Object(m)) => {
            let mut out = Map::new();
            for (k, v) in m {
                let pe = PathElement::Field(k.clone());
                if set.members.contains(&pe) {
                    continue;
                }
                match (set.child(&pe), oty.child(k)) {
                    (Some(sub), Some(child)) => {
                        path.push(pe);
                        let nv = walk_remove(v, child.ty, child.field, sub, path)?;
                        path.pop();
                        out.insert(k.clone(), nv);
                    }
                    _ => {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
            Ok(Value::Object(out))
        }
        (Shape::List(item_ty, kind), Value::Array(a)) => {
            let mut out = Vec::with_capacity(a.len());
            for (pe, item) in index_items(a, kind, path)? {
                if set.members.contains(&pe) {
                    continue;
                }
                match set.child(&pe) {
                    Some(sub) => {
                        path.push(pe);
                        let nv = walk_remove(item, item_ty, None, sub, path)?;
                        path.pop();
                        out.push(nv);
                    }
                    None => out.push(item.clone()),
                }
            }
            Ok(Value::Array(out))
        }
        _ => Ok(value.clone()),
    }
}

/// Adds, as members, the declared struct fields that have children in the set (upstream's
/// `EnsureNamedFieldsAreMembers`), so that removing a set removes emptied struct fields too.
pub fn ensure_named_fields_are_members(set: &Set, ty: &Type) -> Set {
    ensure(set, ty)
}

fn ensure(set: &Set, ty: &Type) -> Set {
    let mut out = Set {
        members: set.members.clone(),
        children: Default::default(),
    };
    let resolved = ty.resolve();
    for (pe, sub) in &set.children {
        let child_ty: Type = match (pe, &resolved) {
            (PathElement::Field(name), Resolved::Struct(s, _)) => match s.fields.get(name) {
                Some(f) => {
                    out.members.insert(pe.clone());
                    f.ty.clone()
                }
                None => Type::Deduced,
            },
            (PathElement::Field(name), _) => ty
                .child(name)
                .map(|c| c.ty.clone())
                .unwrap_or(Type::Deduced),
            (_, Resolved::List(l)) => l.items.clone(),
            _ => Type::Deduced,
        };
        out.children.insert(pe.clone(), ensure(sub, &child_ty));
    }
    out
}

/// Removes `null` values from objects, recursively (an applied `null` clears a field, and
/// the stored object does not keep it).
pub fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}
