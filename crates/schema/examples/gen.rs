//! Generates `crates/schema/src/generated.rs`, the built-in type table, from the sources of
//! the `k8s-openapi` crate (version 0.29, `v1_33`) in the cargo registry plus the
//! hand-written facts below that k8s-openapi does not carry.
//!
//! ```sh
//! cargo run -p rkube-schema --example gen            # finds k8s-openapi in ~/.cargo/registry
//! cargo run -p rkube-schema --example gen -- DIR     # DIR = .../k8s-openapi-0.29.0/src/v1_33
//! ```
//!
//! What comes from k8s-openapi: every definition, its fields' JSON names and types (from the
//! structs and their `Deserialize` impls), list/map strategies (from the `DeepMerge` impls:
//! `merge_strategies::list::{atomic,set,map}`, `merge_strategies::map::{atomic,granular}`)
//! and the GVK of top-level kinds (from `impl Resource`).
//!
//! What is hand-written (facts of upstream's OpenAPI, v1.33): strategic-merge-patch
//! metadata (`x-kubernetes-patch-strategy` / `-merge-key`), structs marked
//! `x-kubernetes-map-type: atomic`, list-map keys k8s-openapi reduces to one key, key
//! defaults, and field-level overrides.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// (definition, field, patch strategy, patch merge key).
const SMP: &[(&str, &str, &str, &str)] = &[
    // meta/v1
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
        "merge",
        "",
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "ownerReferences",
        "merge",
        "uid",
    ),
    // core/v1
    (
        "io.k8s.api.core.v1.PodSpec",
        "volumes",
        "merge,retainKeys",
        "name",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "initContainers",
        "merge",
        "name",
    ),
    ("io.k8s.api.core.v1.PodSpec", "containers", "merge", "name"),
    (
        "io.k8s.api.core.v1.PodSpec",
        "ephemeralContainers",
        "merge",
        "name",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "imagePullSecrets",
        "merge",
        "name",
    ),
    ("io.k8s.api.core.v1.PodSpec", "hostAliases", "merge", "ip"),
    (
        "io.k8s.api.core.v1.PodSpec",
        "topologySpreadConstraints",
        "merge",
        "topologyKey",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "schedulingGates",
        "merge",
        "name",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "resourceClaims",
        "merge,retainKeys",
        "name",
    ),
    (
        "io.k8s.api.core.v1.Container",
        "ports",
        "merge",
        "containerPort",
    ),
    ("io.k8s.api.core.v1.Container", "env", "merge", "name"),
    (
        "io.k8s.api.core.v1.Container",
        "volumeMounts",
        "merge",
        "mountPath",
    ),
    (
        "io.k8s.api.core.v1.Container",
        "volumeDevices",
        "merge",
        "devicePath",
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "ports",
        "merge",
        "containerPort",
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "env",
        "merge",
        "name",
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeMounts",
        "merge",
        "mountPath",
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeDevices",
        "merge",
        "devicePath",
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "conditions",
        "merge",
        "type",
    ),
    ("io.k8s.api.core.v1.PodStatus", "podIPs", "merge", "ip"),
    ("io.k8s.api.core.v1.PodStatus", "hostIPs", "merge", "ip"),
    (
        "io.k8s.api.core.v1.PodStatus",
        "resourceClaimStatuses",
        "merge,retainKeys",
        "name",
    ),
    (
        "io.k8s.api.core.v1.ContainerStatus",
        "allocatedResourcesStatus",
        "merge",
        "name",
    ),
    ("io.k8s.api.core.v1.NodeSpec", "podCIDRs", "merge", ""),
    (
        "io.k8s.api.core.v1.NodeStatus",
        "addresses",
        "merge",
        "type",
    ),
    (
        "io.k8s.api.core.v1.NodeStatus",
        "conditions",
        "merge",
        "type",
    ),
    (
        "io.k8s.api.core.v1.NamespaceStatus",
        "conditions",
        "merge",
        "type",
    ),
    (
        "io.k8s.api.core.v1.PersistentVolumeClaimStatus",
        "conditions",
        "merge",
        "type",
    ),
    (
        "io.k8s.api.core.v1.ReplicationControllerStatus",
        "conditions",
        "merge",
        "type",
    ),
    (
        "io.k8s.api.core.v1.ComponentStatus",
        "conditions",
        "merge",
        "type",
    ),
    (
        "io.k8s.api.core.v1.ServiceStatus",
        "conditions",
        "merge",
        "type",
    ),
    ("io.k8s.api.core.v1.ServiceSpec", "ports", "merge", "port"),
    (
        "io.k8s.api.core.v1.ServiceAccount",
        "secrets",
        "merge",
        "name",
    ),
    // apps/v1
    (
        "io.k8s.api.apps.v1.DeploymentSpec",
        "strategy",
        "retainKeys",
        "",
    ),
    (
        "io.k8s.api.apps.v1.DeploymentStatus",
        "conditions",
        "merge",
        "type",
    ),
    (
        "io.k8s.api.apps.v1.DaemonSetStatus",
        "conditions",
        "merge",
        "type",
    ),
    (
        "io.k8s.api.apps.v1.ReplicaSetStatus",
        "conditions",
        "merge",
        "type",
    ),
    (
        "io.k8s.api.apps.v1.StatefulSetStatus",
        "conditions",
        "merge",
        "type",
    ),
    // batch/v1
    (
        "io.k8s.api.batch.v1.JobStatus",
        "conditions",
        "merge",
        "type",
    ),
    // autoscaling/v2
    (
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus",
        "conditions",
        "merge",
        "type",
    ),
    // policy/v1
    (
        "io.k8s.api.policy.v1.PodDisruptionBudgetSpec",
        "selector",
        "replace",
        "",
    ),
    (
        "io.k8s.api.policy.v1.PodDisruptionBudgetStatus",
        "conditions",
        "merge",
        "type",
    ),
    // storage.k8s.io/v1
    (
        "io.k8s.api.storage.v1.CSINodeSpec",
        "drivers",
        "merge",
        "name",
    ),
    // admissionregistration.k8s.io
    (
        "io.k8s.api.admissionregistration.v1.MutatingWebhookConfiguration",
        "webhooks",
        "merge",
        "name",
    ),
    (
        "io.k8s.api.admissionregistration.v1.ValidatingWebhookConfiguration",
        "webhooks",
        "merge",
        "name",
    ),
    (
        "io.k8s.api.admissionregistration.v1.MutatingWebhook",
        "matchConditions",
        "merge",
        "name",
    ),
    (
        "io.k8s.api.admissionregistration.v1.ValidatingWebhook",
        "matchConditions",
        "merge",
        "name",
    ),
    (
        "io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicySpec",
        "matchConditions",
        "merge",
        "name",
    ),
    (
        "io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicySpec",
        "variables",
        "merge",
        "name",
    ),
    (
        "io.k8s.api.admissionregistration.v1beta1.ValidatingAdmissionPolicySpec",
        "matchConditions",
        "merge",
        "name",
    ),
    (
        "io.k8s.api.admissionregistration.v1beta1.ValidatingAdmissionPolicySpec",
        "variables",
        "merge",
        "name",
    ),
    // resource.k8s.io
    (
        "io.k8s.api.resource.v1alpha3.ResourceClaimStatus",
        "reservedFor",
        "merge",
        "uid",
    ),
    (
        "io.k8s.api.resource.v1beta1.ResourceClaimStatus",
        "reservedFor",
        "merge",
        "uid",
    ),
    (
        "io.k8s.api.resource.v1beta2.ResourceClaimStatus",
        "reservedFor",
        "merge",
        "uid",
    ),
    // apiregistration.k8s.io
    (
        "io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.APIServiceStatus",
        "conditions",
        "merge",
        "type",
    ),
];

/// Structs upstream marks `x-kubernetes-map-type: atomic`.
const ATOMIC_STRUCTS: &[&str] = &[
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
    "io.k8s.api.core.v1.ConfigMapKeySelector",
    "io.k8s.api.core.v1.EndpointAddress",
    "io.k8s.api.core.v1.EndpointPort",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.NodeSelector",
    "io.k8s.api.core.v1.NodeSelectorTerm",
    "io.k8s.api.core.v1.ObjectFieldSelector",
    "io.k8s.api.core.v1.ObjectReference",
    "io.k8s.api.core.v1.ResourceFieldSelector",
    "io.k8s.api.core.v1.ScopeSelector",
    "io.k8s.api.core.v1.SecretKeySelector",
    "io.k8s.api.core.v1.SecretReference",
    "io.k8s.api.core.v1.TopologySelectorTerm",
    "io.k8s.api.core.v1.TypedLocalObjectReference",
    "io.k8s.api.autoscaling.v1.CrossVersionObjectReference",
    "io.k8s.api.discovery.v1.EndpointPort",
    "io.k8s.api.rbac.v1.RoleRef",
    "io.k8s.api.rbac.v1.Subject",
    "io.k8s.api.admissionregistration.v1.MatchResources",
    "io.k8s.api.admissionregistration.v1.NamedRuleWithOperations",
    "io.k8s.api.admissionregistration.v1.ParamKind",
    "io.k8s.api.admissionregistration.v1.ParamRef",
    "io.k8s.api.admissionregistration.v1.Variable",
    "io.k8s.api.admissionregistration.v1beta1.MatchResources",
    "io.k8s.api.admissionregistration.v1beta1.NamedRuleWithOperations",
    "io.k8s.api.admissionregistration.v1beta1.ParamKind",
    "io.k8s.api.admissionregistration.v1beta1.ParamRef",
    "io.k8s.api.admissionregistration.v1beta1.Variable",
];

/// Field-level map-type overrides: (definition, field, "granular" | "atomic").
const FIELD_MAP_KIND: &[(&str, &str, &str)] = &[(
    "io.k8s.api.core.v1.PersistentVolumeSpec",
    "claimRef",
    "granular",
)];

/// List-map keys where k8s-openapi keeps fewer keys than upstream, and key defaults:
/// (definition, field, keys, defaults).
#[allow(clippy::type_complexity)]
const LIST_MAP_KEYS: &[(&str, &str, &[&str], &[(&str, &str)])] = &[
    (
        "io.k8s.api.core.v1.Container",
        "ports",
        &["containerPort", "protocol"],
        &[("protocol", "TCP")],
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "ports",
        &["containerPort", "protocol"],
        &[("protocol", "TCP")],
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "ports",
        &["port", "protocol"],
        &[("protocol", "TCP")],
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "topologySpreadConstraints",
        &["topologyKey", "whenUnsatisfiable"],
        &[],
    ),
];

/// Lists upstream declares atomic although k8s-openapi keys them on a nested field.
const ATOMIC_LISTS: &[(&str, &str)] =
    &[("io.k8s.api.apps.v1.StatefulSetSpec", "volumeClaimTemplates")];

/// Non-struct definitions: (definition, what they are).
const OTHER: &[(&str, &str)] = &[
    ("io.k8s.apimachinery.pkg.api.resource.Quantity", "Untyped"),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.Time", "Untyped"),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime", "Untyped"),
    ("io.k8s.apimachinery.pkg.util.intstr.IntOrString", "Untyped"),
    ("io.k8s.apimachinery.pkg.runtime.RawExtension", "Deduced"),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1", "Deduced"),
    (
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON",
        "Deduced",
    ),
    (
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray",
        "Deduced",
    ),
    (
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool",
        "Deduced",
    ),
    (
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray",
        "Deduced",
    ),
    (
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceSubresourceStatus",
        "Deduced",
    ),
    (
        "io.k8s.api.apiserverinternal.v1alpha1.StorageVersionSpec",
        "Deduced",
    ),
];

/// Fields holding raw JSON that upstream treats as atomic: (definition, field).
const ATOMIC_ANY_FIELDS: &[(&str, &str)] = &[("io.k8s.api.apps.v1.ControllerRevision", "data")];

struct Parsed {
    name: String,
    rust_path: String,
    /// (rust name, rust type)
    fields: Vec<(String, String)>,
    rust_to_json: BTreeMap<String, String>,
    json_extra: Vec<String>,
    /// rust field -> strategy text ("list::atomic", "list::set", "list::map:key1,key2", "map::atomic", "map::granular")
    strategies: BTreeMap<String, String>,
    gvk: Option<(String, String, String)>,
    is_struct: bool,
}

fn main() {
    let dir = match std::env::args().nth(1) {
        Some(d) => PathBuf::from(d),
        None => find_source().unwrap_or_else(|| {
            eprintln!("k8s-openapi-0.29.0 not found in ~/.cargo/registry/src; pass its src/v1_33 directory");
            std::process::exit(2);
        }),
    };
    let mut files = Vec::new();
    collect(&dir, &mut files);
    files.sort();
    let mut parsed = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&dir).unwrap_or(f);
        if let Some(p) = parse_file(f, rel) {
            parsed.push(p);
        }
    }
    let by_path: BTreeMap<String, String> = parsed
        .iter()
        .map(|p| (p.rust_path.clone(), p.name.clone()))
        .collect();
    // Element type of each definition, to translate list-map keys from Rust to JSON names.
    let by_name: BTreeMap<String, &Parsed> = parsed.iter().map(|p| (p.name.clone(), p)).collect();

    let smp: BTreeMap<(&str, &str), (&str, &str)> = SMP
        .iter()
        .map(|(d, f, s, k)| ((*d, *f), (*s, *k)))
        .collect();
    let atomic: BTreeSet<&str> = ATOMIC_STRUCTS.iter().copied().collect();
    let mut used_smp = BTreeSet::new();

    let mut out = String::new();
    out.push_str("// @generated by `cargo run -p rkube-schema --example gen` from k8s-openapi 0.29 (v1_33)\n");
    out.push_str("// and the hand-written facts in examples/gen.rs. Do not edit.\n\n");
    out.push_str("use crate::table::{D, F, K, L, M, T};\n\n");
    out.push_str("pub(crate) static DEFINITIONS: &[D] = &[\n");
    let mut sorted: Vec<&Parsed> = parsed.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut count = 0;
    for p in sorted {
        let gvks = match &p.gvk {
            Some((g, v, k)) => format!("&[({g:?}, {v:?}, {k:?})]"),
            None => "&[]".to_string(),
        };
        if !p.is_struct {
            let what = OTHER.iter().find(|(n, _)| *n == p.name).map(|(_, w)| *w);
            match what {
                Some(w) => {
                    let _ = writeln!(out, "    D({:?}, K::Other(T::{w}), {gvks}),", p.name);
                    count += 1;
                }
                None => eprintln!("skipping non-struct definition {}", p.name),
            }
            continue;
        }
        let _ = writeln!(
            out,
            "    D({:?}, K::Struct({}, &[",
            p.name,
            atomic.contains(p.name.as_str())
        );
        let mut fields: Vec<(String, String)> = Vec::new();
        for (rust, ty) in &p.fields {
            let Some(json) = p.rust_to_json.get(rust) else {
                eprintln!("{}: no JSON name for field {rust}", p.name);
                continue;
            };
            let t = if ATOMIC_ANY_FIELDS.contains(&(p.name.as_str(), json.as_str())) {
                "T::AtomicAny".to_string()
            } else {
                type_expr(
                    ty,
                    p.strategies.get(rust).map(String::as_str),
                    &by_path,
                    &by_name,
                    &p.name,
                    json,
                )
            };
            fields.push((json.clone(), t));
        }
        for extra in &p.json_extra {
            fields.push((extra.clone(), "T::Str".to_string()));
        }
        fields.sort();
        for (json, t) in fields {
            let (s, k) = smp
                .get(&(p.name.as_str(), json.as_str()))
                .copied()
                .unwrap_or(("", ""));
            if !s.is_empty() {
                used_smp.insert((p.name.clone(), json.clone()));
            }
            let m = match FIELD_MAP_KIND
                .iter()
                .find(|(d, f, _)| *d == p.name && *f == json)
            {
                Some((_, _, "atomic")) => "M::Atomic",
                Some(_) => "M::Granular",
                None => "M::Inherit",
            };
            let _ = writeln!(out, "        F({json:?}, {t}, {s:?}, {k:?}, {m}),");
        }
        let _ = writeln!(out, "    ]), {gvks}),");
        count += 1;
    }
    out.push_str("];\n");
    for (d, f, _, _) in SMP {
        if !used_smp.contains(&(d.to_string(), f.to_string())) {
            eprintln!("warning: patch metadata for {d}.{f} matched no field");
        }
    }
    for a in ATOMIC_STRUCTS {
        if !by_name.contains_key(*a) {
            eprintln!("warning: atomic struct {a} not found");
        }
    }
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/generated.rs");
    if let Err(e) = std::fs::write(&target, out) {
        eprintln!("cannot write {}: {e}", target.display());
        std::process::exit(1);
    }
    eprintln!("wrote {count} definitions to {}", target.display());
}

fn find_source() -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let src = home.join("registry/src");
    for entry in std::fs::read_dir(src).ok()?.flatten() {
        let candidate = entry.path().join("k8s-openapi-0.29.0/src/v1_33");
        if candidate.is_dir() {
            return Some(candidate);
        }
    }
    None
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs")
            && p.file_name()
                .is_some_and(|n| n != "mod.rs" && n != "list.rs")
        {
            out.push(p);
        }
    }
}

fn parse_file(path: &Path, rel: &Path) -> Option<Parsed> {
    let text = std::fs::read_to_string(path).ok()?;
    let first = text.lines().next()?;
    let name = first
        .strip_prefix("// Generated from definition ")?
        .trim()
        .to_string();
    let module: Vec<String> = rel
        .parent()
        .map(|p| p.iter().map(|c| c.to_string_lossy().to_string()).collect())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    // The struct.
    let mut struct_name = None;
    let mut fields = Vec::new();
    let mut is_struct = false;
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if let Some(rest) = l.strip_prefix("pub struct ") {
            let n: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            struct_name = Some(n);
            if rest.trim_end().ends_with('{') {
                is_struct = true;
                i += 1;
                while i < lines.len() && lines[i] != "}" {
                    let t = lines[i].trim();
                    if let Some(f) = t.strip_prefix("pub ")
                        && let Some((fname, fty)) = f.split_once(": ")
                    {
                        fields.push((fname.to_string(), fty.trim_end_matches(',').to_string()));
                    }
                    i += 1;
                }
            }
            break;
        }
        if let Some(rest) = l.strip_prefix("pub enum ") {
            let n: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            struct_name = Some(n);
            break;
        }
        i += 1;
    }
    let struct_name = struct_name?;
    let rust_path = format!("crate::{}::{}", module.join("::"), struct_name);
    // JSON names.
    let mut rust_to_json = BTreeMap::new();
    let mut json_extra = Vec::new();
    let field_names: BTreeSet<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
    for l in &lines {
        let t = l.trim();
        if let Some((lhs, rhs)) = t.split_once(" => Field::Key_")
            && lhs.starts_with('"')
            && lhs.ends_with('"')
            && lhs.len() >= 2
        {
            let json = lhs[1..lhs.len() - 1].to_string();
            let rust = rhs.trim_end_matches(',').to_string();
            if field_names.contains(rust.as_str()) {
                rust_to_json.insert(rust, json);
            } else if json == "apiVersion" || json == "kind" {
                json_extra.push(json);
            }
        }
    }
    // Strategies from DeepMerge.
    let mut strategies = BTreeMap::new();
    let mut j = 0;
    while j < lines.len() {
        let t = lines[j].trim();
        if let Some(rest) = t.strip_prefix("crate::merge_strategies::") {
            let (kind, args) = rest.split_once('(').unwrap_or((rest, ""));
            // Field name: `&mut self.X` on this line or the next.
            let mut field = extract_self_field(args);
            let mut k = j + 1;
            if field.is_none() && k < lines.len() {
                field = extract_self_field(lines[k]);
                k += 1;
            }
            let Some(field) = field else {
                j += 1;
                continue;
            };
            let mut strategy = kind.to_string();
            if kind == "list::map" {
                // Keys on the `&[|lhs, rhs| ...]` line.
                while k < lines.len() && !lines[k].trim().starts_with("&[") {
                    k += 1;
                }
                if k < lines.len() {
                    let keys: Vec<String> = lines[k]
                        .split("lhs.")
                        .skip(1)
                        .map(|s| s.split(" ==").next().unwrap_or("").to_string())
                        .collect();
                    strategy = format!("list::map:{}", keys.join(","));
                }
            }
            strategies.insert(field, strategy);
        }
        j += 1;
    }
    // GVK.
    let mut gvk = None;
    if let Some(pos) = text.find("impl crate::Resource for ") {
        let block = &text[pos..];
        let get = |c: &str| -> Option<String> {
            let p = block.find(&format!("const {c}: &'static str = \""))?;
            let s = &block[p..];
            let start = s.find('"')? + 1;
            let end = s[start..].find('"')? + start;
            Some(s[start..end].to_string())
        };
        if let (Some(g), Some(v), Some(k)) = (get("GROUP"), get("VERSION"), get("KIND")) {
            gvk = Some((g, v, k));
        }
    }
    Some(Parsed {
        name,
        rust_path,
        fields,
        rust_to_json,
        json_extra,
        strategies,
        gvk,
        is_struct,
    })
}

fn extract_self_field(s: &str) -> Option<String> {
    let p = s.find("&mut self.")?;
    let rest = &s[p + "&mut self.".len()..];
    let name: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if name.is_empty() { None } else { Some(name) }
}

fn strip_wrapper<'a>(ty: &'a str, wrapper: &str) -> Option<&'a str> {
    ty.strip_prefix(wrapper)?.strip_suffix('>')
}

fn type_expr(
    ty: &str,
    strategy: Option<&str>,
    by_path: &BTreeMap<String, String>,
    by_name: &BTreeMap<String, &Parsed>,
    def: &str,
    json: &str,
) -> String {
    let ty = ty.trim();
    if let Some(inner) = strip_wrapper(ty, "Option<") {
        return type_expr(inner, strategy, by_path, by_name, def, json);
    }
    if let Some(inner) = strip_wrapper(ty, "std::boxed::Box<") {
        return type_expr(inner, strategy, by_path, by_name, def, json);
    }
    if let Some(inner) = strip_wrapper(ty, "std::vec::Vec<") {
        let item = type_expr(inner, None, by_path, by_name, def, json);
        let kind = list_kind(strategy, inner, by_path, by_name, def, json);
        return format!("T::List(&{item}, {kind})");
    }
    if let Some(inner) = strip_wrapper(ty, "std::collections::BTreeMap<std::string::String, ") {
        let value = type_expr(inner, None, by_path, by_name, def, json);
        let atomic = strategy == Some("map::atomic");
        return format!("T::Map(&{value}, {atomic})");
    }
    match ty {
        "std::string::String" | "crate::ByteString" => "T::Str".to_string(),
        "i32" | "i64" => "T::Int".to_string(),
        "f64" => "T::Num".to_string(),
        "bool" => "T::Bool".to_string(),
        "crate::serde_json::Value" | "serde_json::Value" => "T::Deduced".to_string(),
        other => match by_path.get(other) {
            Some(name) => format!("T::Named({name:?})"),
            None => {
                eprintln!("{def}.{json}: unknown type {other}, treated as deduced");
                "T::Deduced".to_string()
            }
        },
    }
}

fn list_kind(
    strategy: Option<&str>,
    item_ty: &str,
    by_path: &BTreeMap<String, String>,
    by_name: &BTreeMap<String, &Parsed>,
    def: &str,
    json: &str,
) -> String {
    if ATOMIC_LISTS.contains(&(def, json)) {
        return "L::Atomic".to_string();
    }
    if let Some((_, _, keys, defaults)) = LIST_MAP_KEYS
        .iter()
        .find(|(d, f, _, _)| *d == def && *f == json)
    {
        return format!("L::Map(&{keys:?}, &{defaults:?})");
    }
    match strategy {
        Some("list::set") => "L::Set".to_string(),
        Some(s) if s.starts_with("list::map:") => {
            let rust_keys: Vec<&str> = s["list::map:".len()..].split(',').collect();
            let item = by_path.get(item_ty.trim()).and_then(|n| by_name.get(n));
            let mut keys = Vec::new();
            for rk in &rust_keys {
                match item.and_then(|p| p.rust_to_json.get(*rk)) {
                    Some(j) => keys.push(j.clone()),
                    None => {
                        eprintln!(
                            "{def}.{json}: list-map key {rk} not a field of the item, list treated as atomic"
                        );
                        return "L::Atomic".to_string();
                    }
                }
            }
            format!("L::Map(&{keys:?}, &[])")
        }
        _ => "L::Atomic".to_string(),
    }
}
