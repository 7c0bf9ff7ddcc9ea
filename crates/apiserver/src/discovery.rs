//! Discovery documents, generated from the resource table: `/api`, `/apis`, the per group
//! and group/version lists, and aggregated discovery (`apidiscovery.k8s.io/v2`
//! `APIGroupDiscoveryList`, which kubectl 1.30+ asks for on `/api` and `/apis`).

use rkube_api::resources::{self, BUILTIN, Resource, Scope};
use serde_json::{Value, json};

/// The content type that marks an aggregated discovery response (clients check it).
pub const AGGREGATED_V2: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
pub const AGGREGATED_V2BETA1: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

/// Which aggregated discovery version an `Accept` header asks for, if any.
pub fn wants_aggregated(accept: Option<&str>) -> Option<&'static str> {
    let accept = accept?;
    for item in accept.split(',') {
        let params: Vec<&str> = item.split(';').map(str::trim).collect();
        let has = |p: &str| params.contains(&p);
        if has("g=apidiscovery.k8s.io") && has("as=APIGroupDiscoveryList") {
            if has("v=v2") {
                return Some("v2");
            }
            if has("v=v2beta1") {
                return Some("v2beta1");
            }
        }
        if params
            .first()
            .is_some_and(|m| *m == "application/json" || *m == "*/*")
            && !item.contains("as=")
        {
            // Plain JSON comes first: the unaggregated form.
            return None;
        }
    }
    None
}

fn scope(r: &Resource) -> &'static str {
    match r.scope {
        Scope::Namespaced => "Namespaced",
        Scope::Cluster => "Cluster",
    }
}

/// `/api`.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_json(group: &str, versions: &[&str]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": vs,
        "preferredVersion": {"groupVersion": format!("{group}/{}", versions[0]), "version": versions[0]},
    })
}

/// `/apis`.
pub fn api_group_list() -> Value {
    let groups: Vec<Value> = resources::groups()
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| group_json(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`.
pub fn api_group(group: &str) -> Option<Value> {
    let groups = resources::groups();
    let (g, vs) = groups.iter().find(|(g, _)| *g == group && !g.is_empty())?;
    let mut doc = group_json(g, vs);
    doc["kind"] = "APIGroup".into();
    doc["apiVersion"] = "v1".into();
    Some(doc)
}

/// `/api/v1` or `/apis/<group>/<version>`.
pub fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    let rs: Vec<&Resource> = BUILTIN
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if rs.is_empty() {
        return None;
    }
    let mut list = Vec::new();
    for r in rs {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced(),
            "kind": r.kind,
            "verbs": r.verbs,
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        entry["storageVersionHash"] = storage_version_hash(r).into();
        list.push(entry);
        for s in r.subresources {
            let mut sub = json!({
                "name": format!("{}/{}", r.plural, s.name),
                "singularName": "",
                "namespaced": r.namespaced(),
                "kind": s.kind,
                "verbs": s.verbs,
            });
            if let (Some(g), Some(v)) = (s.group, s.version) {
                sub["group"] = g.into();
                sub["version"] = v.into();
            }
            list.push(sub);
        }
    }
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": resources::api_version(group, version),
        "resources": list,
    }))
}

/// A short stable hash of the storage identity (group, storage version, kind), as upstream
/// publishes so clients notice storage changes.
fn storage_version_hash(r: &Resource) -> String {
    let text = format!("{}/{}/{}", r.storage_version.0, r.storage_version.1, r.kind);
    // FNV-1a, base64 of the first 8 bytes.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = h.to_be_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |acc, &b| (acc << 8) | b as u32) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    while !out.len().is_multiple_of(4) {
        out.push('=');
    }
    out
}

/// Aggregated discovery for `/api` (`core = true`) or `/apis`.
pub fn aggregated(core: bool, version: &str) -> Value {
    let mut items = Vec::new();
    for (group, versions) in resources::groups() {
        if core != group.is_empty() {
            continue;
        }
        let vs: Vec<Value> = versions
            .iter()
            .map(|v| {
                let resources: Vec<Value> = BUILTIN
                    .iter()
                    .filter(|r| r.group == group && r.version == *v)
                    .map(|r| {
                        let mut res = json!({
                            "resource": r.plural,
                            "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
                            "scope": scope(r),
                            "singularResource": r.singular,
                            "verbs": r.verbs,
                        });
                        if !r.short_names.is_empty() {
                            res["shortNames"] = json!(r.short_names);
                        }
                        if !r.categories.is_empty() {
                            res["categories"] = json!(r.categories);
                        }
                        if !r.subresources.is_empty() {
                            let subs: Vec<Value> = r
                                .subresources
                                .iter()
                                .map(|s| {
                                    json!({
                                        "subresource": s.name,
                                        "responseKind": {
                                            "group": s.group.unwrap_or(r.group),
                                            "version": s.version.unwrap_or(r.version),
                                            "kind": s.kind,
                                        },
                                        "verbs": s.verbs,
                                    })
                                })
                                .collect();
                            res["subresources"] = subs.into();
                        }
                        res
                    })
                    .collect();
                json!({"version": v, "resources": resources, "freshness": "Current"})
            })
            .collect();
        let mut item = json!({"metadata": {}, "versions": vs});
        if !group.is_empty() {
            item["metadata"]["name"] = group.into();
        }
        items.push(item);
    }
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents() {
        let core = api_resource_list("", "v1").unwrap();
        let pods = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "pods")
            .unwrap();
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
        assert!(
            core["resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["name"] == "pods/status")
        );
        let apps = api_resource_list("apps", "v1").unwrap();
        let scale = apps["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "deployments/scale")
            .unwrap();
        assert_eq!(scale["group"], "autoscaling");
        assert!(api_resource_list("apps", "v9").is_none());
        let groups = api_group_list();
        let autoscaling = groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == "autoscaling")
            .unwrap();
        assert_eq!(autoscaling["preferredVersion"]["version"], "v2");
        let agg = aggregated(false, "v2");
        assert!(
            agg["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["metadata"]["name"] == "apps")
        );
        let core = aggregated(true, "v2");
        assert_eq!(core["items"].as_array().unwrap().len(), 1);
        assert_eq!(storage_version_hash(BUILTIN.first().unwrap()).len(), 12);
    }

    #[test]
    fn accept_for_aggregated() {
        let kubectl = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(wants_aggregated(Some(kubectl)), Some("v2"));
        assert_eq!(wants_aggregated(Some("application/json")), None);
        assert_eq!(wants_aggregated(None), None);
    }
}
