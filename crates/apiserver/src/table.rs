//! Server-side printing: `meta.k8s.io/v1` `Table` for `kubectl get`. The columns and cells
//! are `rkube-printers`' (upstream's printers; the default `Name`, `Created At` table for
//! resources without one); this module assembles the `Table` and its rows' objects.

use rkube_api::meta;
use rkube_api::resources::Resource;
use serde_json::{Value, json};

/// How a row's `object` is included (`includeObject`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Include {
    None,
    Metadata,
    Object,
}

impl Include {
    pub fn parse(v: Option<&str>) -> Result<Include, String> {
        match v {
            None | Some("") | Some("Metadata") => Ok(Include::Metadata),
            Some("None") => Ok(Include::None),
            Some("Object") => Ok(Include::Object),
            Some(other) => Err(format!(
                "includeObject: Unsupported value: {other:?}: supported values: \"Metadata\", \"None\", \"Object\""
            )),
        }
    }
}

/// The (group, resource) whose printer shows `objects`: the resource's own, or the `Scale`
/// printer for its `scale` subresource.
fn printer_of<'a>(resource: &'a Resource, objects: &[Value]) -> (&'a str, &'a str) {
    match objects.first() {
        Some(obj) if obj["kind"] == "Scale" && obj["apiVersion"] == "autoscaling/v1" => {
            ("autoscaling", "scales")
        }
        _ => (resource.group, resource.plural),
    }
}

/// A `Table` of `objects` (already in the served version).
pub fn table(resource: &Resource, objects: &[Value], include: Include, list_meta: Value) -> Value {
    let (group, plural) = printer_of(resource, objects);
    let defs: Vec<Value> = rkube_printers::columns(group, plural)
        .iter()
        .map(rkube_printers::Column::to_json)
        .collect();
    let now = meta::now().0;
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let mut row = rkube_printers::row(group, plural, obj, now).to_json();
            match include {
                Include::None => {}
                Include::Metadata => row["object"] = partial_metadata(obj),
                Include::Object => row["object"] = obj.clone(),
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": defs,
        "rows": rows,
    })
}

/// `PartialObjectMetadata` of an object.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
    })
}
