//! Per-resource lifecycle rules of the generic registry, as upstream's registry stores have
//! them: which resources may be created by an update, return the deleted object, delete
//! gracefully, or expire. (What is reset or filled in on create and update — status,
//! generation, finalizers, QoS — is upstream's per-kind preparation in `rkube-validation`,
//! called through `crate::validation`.)

use rkube_api::meta;
use rkube_api::resources::Resource;
use serde_json::{Value, json};

/// How the generic registry treats one resource.
#[derive(Clone, Copy, Debug, Default)]
pub struct Strategy {
    /// A PUT of a missing object creates it.
    pub create_on_update: bool,
    /// DELETE answers with the deleted object rather than a `Status`.
    pub return_deleted: bool,
    /// DELETE honours a grace period (pods).
    pub graceful: bool,
    /// Objects expire on their own (events).
    pub ttl: bool,
}

/// The strategy of a resource.
pub fn of(r: &Resource) -> Strategy {
    Strategy {
        create_on_update: matches!(r.storage, "endpoints" | "events" | "leases"),
        return_deleted: r.plural == "pods",
        graceful: r.plural == "pods",
        ttl: r.storage == "events",
    }
}

/// What the server adds on top of upstream's per-kind preparation: every namespace is
/// labelled with its own name.
pub fn after_prepare(r: &Resource, obj: &mut Value) {
    if r.plural == "namespaces" {
        label_namespace(obj);
    }
}

/// Every namespace carries `kubernetes.io/metadata.name: <name>` (set by the server).
fn label_namespace(obj: &mut Value) {
    let Some(name) = meta::name(obj).map(String::from) else {
        return;
    };
    let m = meta::meta_mut(obj);
    let labels = m.entry("labels").or_insert_with(|| json!({}));
    if !labels.is_object() {
        *labels = json!({});
    }
    labels["kubernetes.io/metadata.name"] = name.into();
}

#[cfg(test)]
mod tests {
    use super::*;
    use rkube_api::resources::find;

    #[test]
    fn namespaces_are_labelled_with_their_name() {
        let ns = find("", "v1", "namespaces").unwrap();
        let mut obj = json!({"metadata": {"name": "x", "labels": {"a": "b"}}});
        after_prepare(ns, &mut obj);
        assert_eq!(
            obj["metadata"]["labels"],
            json!({"a": "b", "kubernetes.io/metadata.name": "x"})
        );
        assert!(of(find("", "v1", "pods").unwrap()).graceful);
        assert!(of(find("events.k8s.io", "v1", "events").unwrap()).ttl);
        assert!(of(find("coordination.k8s.io", "v1", "leases").unwrap()).create_on_update);
    }
}
