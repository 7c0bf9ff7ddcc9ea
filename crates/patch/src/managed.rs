//! Server-side apply and the `metadata.managedFields` bookkeeping of every write, as
//! upstream's field manager does it:
//!
//! - [`apply`] (`PATCH` with `application/apply-patch+yaml`, or apply to a missing object,
//!   which creates it): merges the applied configuration into the live object by the
//!   schema, records the applier's fields as an `Apply` entry, removes fields the applier
//!   stopped applying when no other manager owns them, and fails with conflicts when
//!   another manager owns a field the configuration changes (unless `force`, which takes
//!   the fields over);
//! - [`update`] (create, update, and the other patch types): records the fields the write
//!   added or changed as an `Update` entry of the manager, taking them over from other
//!   managers, and drops removed fields from every entry.
//!
//! Both take and return whole objects; the returned object carries the new
//! `metadata.managedFields` (sorted like upstream: Apply entries first, then by time,
//! manager, apiVersion and subresource).

use serde_json::{Map, Value, json};

use rkube_schema::Type;

use crate::error::{Conflict, PatchError};
use crate::fieldpath::{PathElement, Set};
use crate::ssa;

/// The operation of a managedFields entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One `metadata.managedFields` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagerEntry {
    pub manager: String,
    pub operation: Operation,
    pub api_version: String,
    /// RFC 3339 time of the entry's last change.
    pub time: Option<String>,
    /// `""` for the main resource, `status`, `scale`, ...
    pub subresource: String,
    pub fields: Set,
}

impl ManagerEntry {
    /// Whether `self` and `other` are the same manager: same name, operation and
    /// subresource, and for `Update` entries the same apiVersion.
    fn same_manager(
        &self,
        manager: &str,
        operation: Operation,
        api_version: &str,
        subresource: &str,
    ) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource == subresource
            && (operation == Operation::Apply || self.api_version == api_version)
    }

    /// The manager as upstream prints it in conflict messages.
    pub fn display(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == Operation::Update {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), self.manager.clone().into());
        m.insert("operation".into(), self.operation.as_str().into());
        m.insert("apiVersion".into(), self.api_version.clone().into());
        if let Some(t) = &self.time {
            m.insert("time".into(), t.clone().into());
        }
        m.insert("fieldsType".into(), "FieldsV1".into());
        m.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if !self.subresource.is_empty() {
            m.insert("subresource".into(), self.subresource.clone().into());
        }
        Value::Object(m)
    }

    fn from_value(v: &Value) -> Result<ManagerEntry, PatchError> {
        let bad = |m: &str| PatchError::BadRequest(format!("invalid managedFields: {m}"));
        let obj = v
            .as_object()
            .ok_or_else(|| bad("entries must be objects"))?;
        let s = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let operation = match s("operation").as_str() {
            "Apply" => Operation::Apply,
            "Update" => Operation::Update,
            other => return Err(bad(&format!("unknown operation {other:?}"))),
        };
        match obj.get("fieldsType").and_then(Value::as_str) {
            Some("FieldsV1") | None => {}
            Some(other) => return Err(bad(&format!("unknown fieldsType {other:?}"))),
        }
        let fields = match obj.get("fieldsV1") {
            Some(f) => Set::from_fields_v1(f)?,
            None => Set::new(),
        };
        Ok(ManagerEntry {
            manager: s("manager"),
            operation,
            api_version: s("apiVersion"),
            time: obj.get("time").and_then(Value::as_str).map(str::to_string),
            subresource: s("subresource"),
            fields,
        })
    }
}

/// The decoded `metadata.managedFields` of an object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManagedFields {
    pub entries: Vec<ManagerEntry>,
}

impl ManagedFields {
    /// Decodes `metadata.managedFields` (absent means none).
    pub fn from_object(obj: &Value) -> Result<ManagedFields, PatchError> {
        match obj.get("metadata").and_then(|m| m.get("managedFields")) {
            None | Some(Value::Null) => Ok(ManagedFields::default()),
            Some(Value::Array(a)) => Ok(ManagedFields {
                entries: a
                    .iter()
                    .map(ManagerEntry::from_value)
                    .collect::<Result<_, _>>()?,
            }),
            Some(_) => Err(PatchError::BadRequest(
                "invalid managedFields: must be a list".into(),
            )),
        }
    }

    /// The JSON list, sorted like upstream.
    pub fn to_value(&self) -> Value {
        let mut entries: Vec<&ManagerEntry> = self.entries.iter().collect();
        entries.sort_by(|a, b| {
            a.operation
                .cmp(&b.operation)
                .then_with(|| a.time.cmp(&b.time))
                .then_with(|| a.manager.cmp(&b.manager))
                .then_with(|| a.api_version.cmp(&b.api_version))
                .then_with(|| a.subresource.cmp(&b.subresource))
        });
        Value::Array(entries.into_iter().map(ManagerEntry::to_value).collect())
    }

    /// Stores the entries in `obj.metadata.managedFields` (removing the field when there
    /// are none).
    pub fn write_to(&self, obj: &mut Value) {
        let Some(o) = obj.as_object_mut() else { return };
        let meta = o.entry("metadata").or_insert_with(|| json!({}));
        if let Some(m) = meta.as_object_mut() {
            if self.entries.is_empty() {
                m.remove("managedFields");
            } else {
                m.insert("managedFields".into(), self.to_value());
            }
        }
    }

    fn find(
        &self,
        manager: &str,
        op: Operation,
        api_version: &str,
        subresource: &str,
    ) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.same_manager(manager, op, api_version, subresource))
    }
}

/// Fields never recorded in managedFields (upstream's `stripMeta`).
fn strip_set() -> &'static Set {
    static SET: std::sync::OnceLock<Set> = std::sync::OnceLock::new();
    SET.get_or_init(build_strip_set)
}

fn build_strip_set() -> Set {
    let mut s = Set::new();
    for p in [
        &["apiVersion"][..],
        &["kind"],
        &["metadata"],
        &["metadata", "name"],
        &["metadata", "namespace"],
        &["metadata", "creationTimestamp"],
        &["metadata", "selfLink"],
        &["metadata", "uid"],
        &["metadata", "clusterName"],
        &["metadata", "generation"],
        &["metadata", "managedFields"],
        &["metadata", "resourceVersion"],
    ] {
        let path: Vec<PathElement> = p
            .iter()
            .map(|n| PathElement::Field(n.to_string()))
            .collect();
        s.insert(&path);
    }
    s
}

fn strip(set: &Set) -> Set {
    set.difference(strip_set())
}

/// The object without `metadata.managedFields`.
fn without_managed_fields(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    o
}

/// What stands for "no object" when comparing a create: the top-level structs Go always
/// serializes.
fn empty_object(ty: &Type) -> Value {
    let mut m = Map::new();
    for f in ["metadata", "spec", "status"] {
        if ty.child(f).is_some_and(|c| c.field.is_some()) {
            m.insert(f.to_string(), json!({}));
        }
    }
    Value::Object(m)
}

/// Options of [`update`].
#[derive(Clone, Debug)]
pub struct UpdateOptions<'a> {
    /// The field manager (`?fieldManager=`, or the user agent's program name).
    pub manager: &'a str,
    /// The apiVersion the request used (`apps/v1`).
    pub api_version: &'a str,
    /// `""` for the main resource, else the subresource (`status`, `scale`).
    pub subresource: &'a str,
    /// RFC 3339 time recorded in the entry.
    pub now: &'a str,
    /// Fields the endpoint resets and that are therefore not owned through it (e.g.
    /// `status` for the main resource, everything but `status` for `/status`); built
    /// with [`Set::insert`] or [`field_set`].
    pub ignored: Set,
}

/// Options of [`apply`].
#[derive(Clone, Debug)]
pub struct ApplyOptions<'a> {
    pub manager: &'a str,
    pub api_version: &'a str,
    pub subresource: &'a str,
    pub now: &'a str,
    /// `?force=true`: take over conflicting fields instead of failing.
    pub force: bool,
    pub ignored: Set,
}

/// A set of field-name paths (`field_set(&[&["status"]])`), for `ignored`.
pub fn field_set(paths: &[&[&str]]) -> Set {
    let mut s = Set::new();
    for p in paths {
        let path: Vec<PathElement> = p
            .iter()
            .map(|n| PathElement::Field(n.to_string()))
            .collect();
        s.insert(&path);
    }
    s
}

/// Which managedFields an update starts from: a request that sends `[{}]` resets them,
/// a request with valid non-empty managedFields sets them, otherwise the live ones stay.
fn decode_live_or_new(live: Option<&Value>, new: &Value) -> ManagedFields {
    if let Some(Value::Array(a)) = new.get("metadata").and_then(|m| m.get("managedFields")) {
        if a.len() == 1 && a[0].as_object().is_some_and(Map::is_empty) {
            return ManagedFields::default();
        }
        if let Ok(m) = ManagedFields::from_object(new)
            && !m.entries.is_empty()
        {
            return m;
        }
    }
    live.and_then(|l| ManagedFields::from_object(l).ok())
        .unwrap_or_default()
}

/// Records an ordinary write (create when `live` is `None`, update, or a non-apply patch)
/// by `opts.manager`, and returns `new` with its new `metadata.managedFields`.
///
/// Like upstream, an existing object without any managedFields is not tracked by updates.
pub fn update(
    live: Option<&Value>,
    new: &Value,
    ty: &Type,
    opts: &UpdateOptions,
) -> Result<Value, PatchError> {
    update_owned(live, new.clone(), ty, opts)
}

/// [`update`] taking the new object by value (no copy of it is made).
pub fn update_owned(
    live: Option<&Value>,
    mut new: Value,
    ty: &Type,
    opts: &UpdateOptions,
) -> Result<Value, PatchError> {
    let managed = decode_live_or_new(live, &new);
    if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    let out = new;
    if live.is_some() && managed.entries.is_empty() {
        return Ok(out);
    }
    if live.is_none() && managed.entries.is_empty() {
        return record_create(out, ty, opts);
    }
    update_general(live, out, managed, ty, opts)
}

/// A create with no managedFields sent: the one entry holds every field the object sets,
/// written straight from the object ([`ssa::created_fields_v1`]); the same result as
/// [`update_general`] without comparing against an empty object and filtering sets.
fn record_create(mut out: Value, ty: &Type, opts: &UpdateOptions) -> Result<Value, PatchError> {
    let present: Vec<&str> = ["metadata", "spec", "status"]
        .into_iter()
        .filter(|f| ty.child(f).is_some_and(|c| c.field.is_some()))
        .collect();
    let fields = ssa::created_fields_v1(&out, ty, &present, &opts.ignored, strip_set())?;
    let entries = if fields.is_empty() {
        None
    } else {
        let mut m = Map::new();
        m.insert("manager".into(), opts.manager.into());
        m.insert("operation".into(), Operation::Update.as_str().into());
        m.insert("apiVersion".into(), opts.api_version.into());
        m.insert("time".into(), opts.now.into());
        m.insert("fieldsType".into(), "FieldsV1".into());
        m.insert("fieldsV1".into(), Value::Object(fields));
        if !opts.subresource.is_empty() {
            m.insert("subresource".into(), opts.subresource.into());
        }
        Some(Value::Array(vec![Value::Object(m)]))
    };
    if let Some(o) = out.as_object_mut() {
        let meta = o.entry("metadata").or_insert_with(|| json!({}));
        if let Some(m) = meta.as_object_mut() {
            match entries {
                Some(e) => {
                    m.insert("managedFields".into(), e);
                }
                None => {
                    m.remove("managedFields");
                }
            }
        }
    }
    Ok(out)
}

/// [`update_owned`] by comparing the live object (or an empty one) with the new one.
fn update_general(
    live: Option<&Value>,
    mut out: Value,
    mut managed: ManagedFields,
    ty: &Type,
    opts: &UpdateOptions,
) -> Result<Value, PatchError> {
    let before = match live {
        Some(l) => without_managed_fields(l),
        None => empty_object(ty),
    };
    let ssa::Comparison {
        removed,
        modified,
        added,
    } = ssa::compare(&before, &out, ty)?.filter(&opts.ignored);
    let changed = if modified.is_empty() {
        added
    } else {
        modified.union(&added)
    };
    for e in managed.entries.iter_mut() {
        e.fields = strip(&e.fields.difference(&changed).difference(&removed));
    }
    let op_set = strip(&changed);
    if !op_set.is_empty() {
        match managed.find(
            opts.manager,
            Operation::Update,
            opts.api_version,
            opts.subresource,
        ) {
            Some(i) => {
                let e = &mut managed.entries[i];
                e.fields = e.fields.union(&op_set);
                e.time = Some(opts.now.to_string());
            }
            None => managed.entries.push(ManagerEntry {
                manager: opts.manager.to_string(),
                operation: Operation::Update,
                api_version: opts.api_version.to_string(),
                time: Some(opts.now.to_string()),
                subresource: opts.subresource.to_string(),
                fields: op_set,
            }),
        }
    }
    managed.entries.retain(|e| !e.fields.is_empty());
    managed.write_to(&mut out);
    Ok(out)
}

/// Server-side apply of `config` by `opts.manager` to `live` (`None`: the object does not
/// exist and is created from the configuration). Returns the new object with its
/// managedFields, or [`PatchError::Conflicts`].
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    ty: &Type,
    opts: &ApplyOptions,
) -> Result<Value, PatchError> {
    if !config.is_object() {
        return Err(PatchError::BadRequest(
            "the applied configuration must be an object".into(),
        ));
    }
    if config
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .is_some_and(|v| !v.is_null())
    {
        return Err(PatchError::BadRequest(
            "metadata.managedFields must be nil".into(),
        ));
    }
    let mut managed = live
        .map(ManagedFields::from_object)
        .transpose()
        .unwrap_or_default()
        .unwrap_or_default();
    let live_clean = match live {
        Some(l) => without_managed_fields(l),
        None => json!({}),
    };
    let merged = ssa::merge(&live_clean, config, ty)?;
    let new_set = strip(&ssa::to_field_set(config, ty)?).recursive_difference(&opts.ignored);

    let idx = managed.find(
        opts.manager,
        Operation::Apply,
        opts.api_version,
        opts.subresource,
    );
    let last = idx.map(|i| managed.entries[i].fields.clone());
    let previous_time = idx.and_then(|i| managed.entries[i].time.clone());
    if let Some(i) = idx {
        managed.entries.remove(i);
    }
    let applier = ManagerEntry {
        manager: opts.manager.to_string(),
        operation: Operation::Apply,
        api_version: opts.api_version.to_string(),
        time: previous_time.clone(),
        subresource: opts.subresource.to_string(),
        fields: new_set.clone(),
    };

    // Remove what the applier stopped applying and nobody owns.
    let mut result = merged.clone();
    if let Some(last) = last.filter(|l| !l.is_empty()) {
        let last_e = ssa::ensure_named_fields_are_members(&last, ty);
        let pruned = ssa::remove_items(&merged, ty, &last_e)?;
        let mut owned = new_set.clone();
        for e in &managed.entries {
            owned = owned.union(&e.fields);
        }
        let merged_set = ssa::ensure_named_fields_are_members(&ssa::to_field_set(&merged, ty)?, ty);
        let pruned_set = ssa::ensure_named_fields_are_members(&ssa::to_field_set(&pruned, ty)?, ty);
        let owned_e = ssa::ensure_named_fields_are_members(&owned, ty);
        let to_remove = merged_set
            .difference(&pruned_set)
            .difference(&owned_e)
            .intersection(&last_e);
        result = ssa::remove_items(&merged, ty, &to_remove)?;
    }
    ssa::strip_nulls(&mut result);

    // Conflicts with the other managers, and ownership of removed fields.
    let cmp = ssa::compare(&live_clean, &result, ty)?.filter(&opts.ignored);
    let changed = cmp.modified.union(&cmp.added);
    let mut conflicts = Vec::new();
    for e in &managed.entries {
        for path in e.fields.intersection(&changed).paths() {
            conflicts.push(Conflict {
                manager: e.display(),
                path,
            });
        }
    }
    if !conflicts.is_empty() && !opts.force {
        conflicts.sort_by(|a, b| a.manager.cmp(&b.manager).then_with(|| a.path.cmp(&b.path)));
        return Err(PatchError::Conflicts {
            message: conflict_message(&conflicts),
            conflicts,
        });
    }
    for e in managed.entries.iter_mut() {
        e.fields = e.fields.difference(&changed).difference(&cmp.removed);
    }
    let mut applier = applier;
    if live.is_none() || !cmp.is_same() || previous_time.is_none() {
        applier.time = Some(opts.now.to_string());
    }
    managed.entries.push(applier);
    managed.entries.retain(|e| !e.fields.is_empty());
    managed.write_to(&mut result);
    Ok(result)
}

/// Upstream's message: `Apply failed with 1 conflict: conflict with "m": .spec.x`, or for
/// several, grouped by manager: `Apply failed with 2 conflicts: conflicts with "m":\n- .a\n- .b`.
fn conflict_message(conflicts: &[Conflict]) -> String {
    if conflicts.len() == 1 {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            conflicts[0].manager, conflicts[0].path
        );
    }
    let mut lines = Vec::new();
    let mut current: Option<&str> = None;
    for c in conflicts {
        if current != Some(c.manager.as_str()) {
            lines.push(format!("conflicts with {}:", c.manager));
            current = Some(&c.manager);
        }
        lines.push(format!("- {}", c.path));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

#[cfg(test)]
mod create_fast_path {
    use super::*;
    use rkube_schema::{Gvk, catalog};

    fn ty(group: &str, version: &str, kind: &str) -> Type {
        catalog()
            .type_for_gvk(&Gvk::new(group, version, kind))
            .expect("type")
    }

    fn opts<'a>(subresource: &'a str, ignored: Set) -> UpdateOptions<'a> {
        UpdateOptions {
            manager: "kubectl-create",
            api_version: "v1",
            subresource,
            now: "2026-11-22T10:00:00Z",
            ignored,
        }
    }

    /// The create path gives exactly what comparing against an empty object gives.
    fn same(obj: Value, ty: &Type, subresource: &str, ignored: Set) {
        let o = opts(subresource, ignored);
        let fast = update_owned(None, obj.clone(), ty, &o).expect("fast");
        let slow = update_general(None, obj, ManagedFields::default(), ty, &o).expect("slow");
        assert_eq!(fast, slow);
    }

    #[test]
    fn matches_the_general_path() {
        let pod = ty("", "v1", "Pod");
        let status = field_set(&[&["status"]]);
        same(
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "p", "namespace": "d", "uid": "u",
                                "creationTimestamp": "2026-11-22T10:00:00Z",
                                "labels": {"app": "x", "tier": "y"}, "annotations": {}},
                   "spec": {"containers": [
                                {"name": "a", "image": "i", "ports": [
                                    {"containerPort": 80, "protocol": "TCP"},
                                    {"containerPort": 53, "protocol": "UDP", "name": "dns"}],
                                 "env": [{"name": "E", "value": "1"}],
                                 "command": ["sh", "-c"],
                                 "resources": {"requests": {"cpu": "10m"}}},
                                {"name": "b", "image": "j", "securityContext": null}],
                            "volumes": [],
                            "tolerations": [{"key": "k", "operator": "Exists"}],
                            "nodeSelector": {"disk": "ssd"},
                            "restartPolicy": "Always", "dnsPolicy": "ClusterFirst"},
                   "status": {"phase": "Pending"}}),
            &pod,
            "",
            status.clone(),
        );
        same(
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "p", "finalizers": ["a", "b"]},
                   "spec": null, "status": {"phase": "Running",
                   "conditions": [{"type": "Ready", "status": "True"}]}}),
            &pod,
            "status",
            field_set(&[&["spec"], &["metadata"]]),
        );
        same(
            json!({"metadata": {"name": "p"}, "spec": {}}),
            &pod,
            "",
            status,
        );
        let cm = ty("", "v1", "ConfigMap");
        same(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c",
                   "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "o",
                                        "uid": "1", "controller": true}]},
                   "data": {"a": "1", "b": ""}, "binaryData": {}, "immutable": false}),
            &cm,
            "",
            Set::new(),
        );
        let deploy = ty("apps", "v1", "Deployment");
        same(
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "d", "generation": 1},
                   "spec": {"replicas": 3, "selector": {"matchLabels": {"a": "b"},
                            "matchExpressions": [{"key": "k", "operator": "In", "values": ["v"]}]},
                            "strategy": {"type": "RollingUpdate",
                                         "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                            "template": {"metadata": {"labels": {"a": "b"}},
                                         "spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
            &deploy,
            "",
            field_set(&[&["status"]]),
        );
    }

    #[test]
    fn duplicate_list_keys_are_still_refused() {
        let pod = ty("", "v1", "Pod");
        let obj = json!({"metadata": {"name": "p"},
                         "spec": {"containers": [{"name": "a"}, {"name": "a"}]}});
        let err = update_owned(None, obj, &pod, &opts("", Set::new()));
        assert!(err.is_err());
    }
}
