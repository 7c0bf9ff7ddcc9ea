//! The OpenAPI documents: `/openapi/v2` (Swagger 2.0) and `/openapi/v3` (an index, and one
//! OpenAPI 3.0 document per group/version), generated from the `k8s-openapi` types' schemas
//! (with upstream's field documentation, so `kubectl explain` prints it) plus the paths of
//! every resource and the `x-kubernetes-*` extensions clients read: the group/version/kind of
//! each type and operation, the list/map types and strategic-merge keys of every field
//! (from `rkube-schema`; kubectl's `apply` builds its patches from them), and
//! `fieldValidation` on writes (kubectl checks for it before
//! using server-side validation). Built once, on first use.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

use bytes::Bytes;
use http::Response;
use rkube_api::ApiError;
use rkube_api::resources::{BUILTIN, Resource, api_version};
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::State;
use crate::request::Query;
use crate::web::{Body, respond_bytes};

struct Docs {
    v2: Bytes,
    /// The same as gnostic protobuf.
    v2_pb: Bytes,
    v3_index: Bytes,
    /// By `api/v1` or `apis/<group>/<version>`.
    v3: HashMap<String, Bytes>,
}

static DOCS: OnceLock<Docs> = OnceLock::new();

fn docs() -> &'static Docs {
    DOCS.get_or_init(build)
}

/// The media type of the protobuf `/openapi/v2` response (clients ask with an `@` form that
/// is not a valid media type; the answer uses the dotted form).
const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

pub fn handle(
    _state: &State,
    rest: &[&str],
    accept: Option<&str>,
    _query: &Query,
) -> Result<Response<Body>, ApiError> {
    let d = docs();
    let wants_protobuf = accept.is_some_and(|a| {
        a.split(',').next().is_some_and(|first| {
            first
                .trim()
                .starts_with("application/com.github.proto-openapi.spec.v2")
        })
    });
    match rest {
        ["v2"] if wants_protobuf => Ok(respond_bytes(200, d.v2_pb.clone(), V2_PROTOBUF)),
        ["v2"] => Ok(respond_bytes(200, d.v2.clone(), "application/json")),
        ["v3"] => Ok(respond_bytes(200, d.v3_index.clone(), "application/json")),
        ["v3", path @ ..] => {
            d.v3.get(&path.join("/"))
                .map(|b| respond_bytes(200, b.clone(), "application/json"))
                .ok_or_else(ApiError::no_such_resource)
        }
        _ => Err(ApiError::no_such_resource()),
    }
}

/// Every definition, by schema name, for one flavour (v2: `#/definitions/`, v3:
/// `#/components/schemas/`), with group/version/kind extensions on the kinds.
fn definitions(settings: SchemaSettings) -> Map<String, Value> {
    let mut generator = schemars::SchemaGenerator::new(settings);
    let kinds = crate::typed::register_schemas(&mut generator);
    let mut defs = generator.take_definitions(true);
    let mut gvks: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (g, v, k, name) in kinds {
        gvks.entry(name)
            .or_default()
            .push(json!({"group": g, "version": v, "kind": k}));
    }
    for (name, list) in gvks {
        if let Some(Value::Object(schema)) = defs.get_mut(&name) {
            schema.insert("x-kubernetes-group-version-kind".into(), Value::Array(list));
        }
    }
    defs
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn camel(s: &str) -> String {
    s.split(['.', '-'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The query parameters of a write, as upstream documents them.
fn write_params(v3: bool, patch: bool) -> Vec<Value> {
    let p = |name: &str, desc: &str| {
        if v3 {
            json!({"name": name, "in": "query", "description": desc, "schema": {"type": "string", "uniqueItems": true}})
        } else {
            json!({"name": name, "in": "query", "description": desc, "type": "string", "uniqueItems": true})
        }
    };
    let mut params = vec![
        p(
            "dryRun",
            "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed",
        ),
        p(
            "fieldManager",
            "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.",
        ),
        p(
            "fieldValidation",
            "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.",
        ),
    ];
    if patch {
        params.push(if v3 {
            json!({"name": "force", "in": "query", "description": "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.", "schema": {"type": "boolean", "uniqueItems": true}})
        } else {
            json!({"name": "force", "in": "query", "description": "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.", "type": "boolean", "uniqueItems": true})
        });
    }
    params
}

/// The paths of one resource.
fn resource_paths(r: &Resource, schema: &str, v3: bool, refp: &str) -> Vec<(String, Value)> {
    let base = format!("/{}", gv_path(r.group, r.version));
    let ns_part = if r.namespaced() {
        "/namespaces/{namespace}"
    } else {
        ""
    };
    let collection = format!("{base}{ns_part}/{}", r.plural);
    let item = format!("{collection}/{{name}}");
    let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
    let scope = if r.namespaced() { "Namespaced" } else { "" };
    let id = |verb: &str, list: bool| {
        format!(
            "{verb}{}{}{scope}{}{}",
            camel(if r.group.is_empty() {
                "core"
            } else {
                r.group.trim_end_matches(".k8s.io")
            }),
            camel(r.version),
            r.kind,
            if list { "List" } else { "" }
        )
    };
    let obj_ref = json!({"$ref": format!("{refp}{schema}")});
    let ok = |desc: &str| {
        if v3 {
            json!({"200": {"description": desc, "content": {"application/json": {"schema": obj_ref.clone()}}}})
        } else {
            json!({"200": {"description": desc, "schema": obj_ref.clone()}})
        }
    };
    let body = |ctypes: &[&str]| {
        if v3 {
            let content: Map<String, Value> = ctypes
                .iter()
                .map(|c| (c.to_string(), json!({"schema": obj_ref.clone()})))
                .collect();
            json!({"content": content, "required": true})
        } else {
            json!({"name": "body", "in": "body", "required": true, "schema": obj_ref.clone()})
        }
    };
    let with_body = |mut op: Value, ctypes: &[&str], patch: bool| {
        let mut params = write_params(v3, patch);
        if v3 {
            op["requestBody"] = body(ctypes);
        } else {
            params.insert(0, body(ctypes));
            op["consumes"] = json!(ctypes);
        }
        op["parameters"] = Value::Array(params);
        op
    };
    let mut collection_ops = Map::new();
    let mut item_ops = Map::new();
    let op = |action: &str, opid: String, desc: &str| {
        json!({"description": desc, "operationId": opid, "x-kubernetes-action": action,
               "x-kubernetes-group-version-kind": gvk.clone(), "tags": [gv_path(r.group, r.version)],
               "responses": ok("OK")})
    };
    for verb in r.verbs {
        match *verb {
            "list" => {
                collection_ops.insert(
                    "get".into(),
                    op(
                        "list",
                        id("list", false),
                        &format!("list or watch objects of kind {}", r.kind),
                    ),
                );
            }
            "create" => {
                collection_ops.insert(
                    "post".into(),
                    with_body(
                        op("post", id("create", false), &format!("create a {}", r.kind)),
                        &["application/json", "application/yaml"],
                        false,
                    ),
                );
            }
            "deletecollection" => {
                collection_ops.insert(
                    "delete".into(),
                    op(
                        "deletecollection",
                        id("deletecollection", false),
                        &format!("delete collection of {}", r.kind),
                    ),
                );
            }
            "get" => {
                item_ops.insert(
                    "get".into(),
                    op(
                        "get",
                        id("read", false),
                        &format!("read the specified {}", r.kind),
                    ),
                );
            }
            "update" => {
                item_ops.insert(
                    "put".into(),
                    with_body(
                        op(
                            "put",
                            id("replace", false),
                            &format!("replace the specified {}", r.kind),
                        ),
                        &["application/json", "application/yaml"],
                        false,
                    ),
                );
            }
            "patch" => {
                item_ops.insert(
                    "patch".into(),
                    with_body(
                        op(
                            "patch",
                            id("patch", false),
                            &format!("partially update the specified {}", r.kind),
                        ),
                        &[
                            "application/json-patch+json",
                            "application/merge-patch+json",
                            "application/strategic-merge-patch+json",
                            "application/apply-patch+yaml",
                        ],
                        true,
                    ),
                );
            }
            "delete" => {
                item_ops.insert(
                    "delete".into(),
                    op(
                        "delete",
                        id("delete", false),
                        &format!("delete a {}", r.kind),
                    ),
                );
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    let path_param = |name: &str, desc: &str| {
        if v3 {
            json!({"name": name, "in": "path", "required": true, "description": desc, "schema": {"type": "string", "uniqueItems": true}})
        } else {
            json!({"name": name, "in": "path", "required": true, "description": desc, "type": "string", "uniqueItems": true})
        }
    };
    let ns_param = path_param(
        "namespace",
        "object name and auth scope, such as for teams and projects",
    );
    let name_param = path_param("name", &format!("name of the {}", r.kind));
    if !collection_ops.is_empty() {
        if r.namespaced() {
            collection_ops.insert("parameters".into(), json!([ns_param.clone()]));
        }
        out.push((collection, Value::Object(collection_ops)));
    }
    if !item_ops.is_empty() {
        let mut params = vec![name_param];
        if r.namespaced() {
            params.push(ns_param);
        }
        item_ops.insert("parameters".into(), Value::Array(params));
        out.push((item, Value::Object(item_ops)));
    }
    out
}

/// The names of every definition `value` refers to, transitively.
fn closure(defs: &Map<String, Value>, roots: &[String], refp: &str) -> BTreeSet<String> {
    fn refs(v: &Value, refp: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref")
                    && let Some(name) = r.strip_prefix(refp)
                {
                    out.push(name.to_string());
                }
                for x in m.values() {
                    refs(x, refp, out);
                }
            }
            Value::Array(a) => {
                for x in a {
                    refs(x, refp, out);
                }
            }
            _ => {}
        }
    }
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = roots.to_vec();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(d) = defs.get(&name) {
            let mut found = Vec::new();
            refs(d, refp, &mut found);
            todo.extend(found);
        }
    }
    seen
}

/// The schema name of a resource's kind.
fn schema_name(defs: &Map<String, Value>, r: &Resource) -> Option<String> {
    defs.iter()
        .find(|(_, d)| {
            d["x-kubernetes-group-version-kind"]
                .as_array()
                .is_some_and(|l| {
                    l.iter().any(|g| {
                        g["group"] == r.group && g["version"] == r.version && g["kind"] == r.kind
                    })
                })
        })
        .map(|(n, _)| n.clone())
}

/// `{"allOf": [{"$ref": X}], …}` → `{"$ref": X, …}`, everywhere in a schema.
fn unwrap_single_ref_all_of(v: &mut Value) {
    match v {
        Value::Object(m) => {
            let single_ref = match m.get("allOf") {
                Some(Value::Array(a)) if a.len() == 1 => a[0]
                    .as_object()
                    .filter(|r| r.len() == 1)
                    .and_then(|r| r.get("$ref"))
                    .cloned(),
                _ => None,
            };
            if let Some(r) = single_ref {
                m.remove("allOf");
                m.insert("$ref".into(), r);
            }
            for child in m.values_mut() {
                unwrap_single_ref_all_of(child);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(unwrap_single_ref_all_of),
        _ => {}
    }
}

fn hash(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    format!("{h:016X}")
}

fn build() -> Docs {
    let info = json!({"title": "Kubernetes", "version": format!("v{}.{}.{}", crate::nonresource::KUBE_MAJOR, crate::nonresource::KUBE_MINOR, crate::nonresource::KUBE_PATCH)});
    // v3: one document per group/version.
    let defs3 = definitions(SchemaSettings::openapi3());
    let ref3 = "#/components/schemas/";
    let mut by_gv: BTreeMap<String, Vec<&Resource>> = BTreeMap::new();
    for r in BUILTIN {
        by_gv
            .entry(gv_path(r.group, r.version))
            .or_default()
            .push(r);
    }
    let mut v3 = HashMap::new();
    let mut index = Map::new();
    for (gv, resources) in &by_gv {
        let mut paths = Map::new();
        let mut roots = Vec::new();
        for r in resources {
            let Some(schema) = schema_name(&defs3, r) else {
                continue;
            };
            roots.push(schema.clone());
            for (p, ops) in resource_paths(r, &schema, true, ref3) {
                paths.insert(p, ops);
            }
        }
        let schemas: Map<String, Value> = closure(&defs3, &roots, ref3)
            .into_iter()
            .filter_map(|n| defs3.get(&n).map(|d| (n, d.clone())))
            .collect();
        let mut doc = json!({"openapi": "3.0.0", "info": info, "paths": paths, "components": {"schemas": schemas}});
        rkube_schema::catalog().augment_openapi_v3(&mut doc);
        let bytes = Bytes::from(doc.to_string());
        index.insert(
            gv.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash={}", hash(&bytes))}),
        );
        v3.insert(gv.clone(), bytes);
    }
    // v2: everything in one document, with references written as upstream's v2 document
    // writes them (`$ref` beside `description`, not wrapped in `allOf`; kube-openapi's v2
    // reader does not follow `allOf`).
    let mut defs2 = definitions(SchemaSettings::draft07());
    for schema in defs2.values_mut() {
        unwrap_single_ref_all_of(schema);
    }
    let ref2 = "#/definitions/";
    let mut paths2 = Map::new();
    for r in BUILTIN {
        let Some(schema) = schema_name(&defs2, r) else {
            continue;
        };
        for (p, ops) in resource_paths(r, &schema, false, ref2) {
            paths2.insert(p, ops);
        }
    }
    let mut v2 = json!({"swagger": "2.0", "info": info, "paths": paths2, "definitions": defs2});
    rkube_schema::catalog().augment_openapi_v2(&mut v2);
    let _ = api_version;
    Docs {
        v2_pb: Bytes::from(crate::openapi_pb::encode_v2(&v2)),
        v2: Bytes::from(v2.to_string()),
        v3_index: Bytes::from(json!({"paths": index}).to_string()),
        v3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_describe_every_resource() {
        let d = docs();
        let index: Value = serde_json::from_slice(&d.v3_index).unwrap();
        assert!(
            index["paths"]["apis/apps/v1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .starts_with("/openapi/v3/apis/apps/v1?hash=")
        );
        let apps: Value = serde_json::from_slice(&d.v3["apis/apps/v1"]).unwrap();
        let deploy = &apps["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            deploy["x-kubernetes-group-version-kind"][0]["kind"],
            "Deployment"
        );
        assert!(
            deploy["description"]
                .as_str()
                .unwrap()
                .contains("Deployment")
        );
        let strategy = &apps["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentStrategy"];
        assert!(strategy["properties"]["rollingUpdate"].is_object());
        let patch =
            &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        // Only what the group references: no Pods in apps/v1... but PodSpec yes.
        assert!(
            apps["components"]["schemas"]
                .get("io.k8s.api.core.v1.PodSpec")
                .is_some()
        );
        let v2: Value = serde_json::from_slice(&d.v2).unwrap();
        assert_eq!(v2["swagger"], "2.0");
        let template =
            &v2["definitions"]["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["template"];
        assert_eq!(
            template["$ref"],
            "#/definitions/io.k8s.api.core.v1.PodTemplateSpec"
        );
        assert!(template.get("allOf").is_none());
        assert!(v2["definitions"]["io.k8s.api.core.v1.Pod"].is_object());
    }
}
