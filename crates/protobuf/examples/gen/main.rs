//! Generates `crates/protobuf/src/generated.rs`, the table of every built-in message:
//! its fields' numbers, JSON names, protobuf types and Go representation.
//!
//! ```sh
//! cargo run -p rkube-protobuf --example gen --features gen
//! cargo run -p rkube-protobuf --example gen --features gen -- \
//!     --kubectl /usr/lib/google-cloud-sdk/bin/kubectl.1.33 --k8s-pb DIR/k8s-pb-0.9.0/src
//! ```
//!
//! Where the facts come from:
//! - field numbers and protobuf types: the prost sources of the `k8s-pb` crate (0.9), which
//!   are generated from upstream's `generated.proto` files (`pb.rs`);
//! - which fields exist in v1.33, their JSON names, `omitempty`, inlining, and whether the
//!   Go field is a pointer or a value: the Go type descriptors of an upstream `kubectl`
//!   v1.33 executable (`gobin.rs`). Go writes value fields to protobuf always and pointer
//!   fields only when set; its JSON output keeps zero values of pointers and drops those
//!   of `omitempty` values. The `.proto` files cannot say which is which;
//! - the two packages kubectl does not link (apiextensions, apiregistration): hand-written
//!   facts (`facts.rs`);
//! - cross-checks: every JSON name must be a property of the same definition in
//!   `rkube_schema::catalog()` (k8s-openapi v1_33), every definition's properties must be
//!   covered, and every k8s-pb field name must match its JSON name ignoring case and
//!   punctuation. The generator fails loudly on anything it cannot match.

mod facts;
mod gobin;
mod pb;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use gobin::{GoField, GoType, GoTypes};
use pb::{Card, PbMessage, PbType};

const DEFAULT_KUBECTL: &str = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33";

/// Proto packages outside the catalog that are still served or spoken in protobuf.
const EXTRA_PACKAGES: &[&str] = &[
    "k8s.io.apimachinery.pkg.apis.meta.v1",
    "k8s.io.apimachinery.pkg.api.resource",
    "k8s.io.apimachinery.pkg.util.intstr",
    "k8s.io.apimachinery.pkg.runtime",
    "k8s.io.api.apidiscovery.v2",
    "k8s.io.metrics.pkg.apis.metrics.v1beta1",
];

/// Messages the table leaves out: the envelope (handled by hand in `envelope.rs`) and
/// helper types that never appear on the wire.
const SKIP: &[&str] = &[
    "k8s.io.apimachinery.pkg.runtime.Unknown",
    "k8s.io.apimachinery.pkg.runtime.TypeMeta",
    "k8s.io.apimachinery.pkg.api.resource.QuantityValue",
    "k8s.io.apimachinery.pkg.apis.meta.v1.Patch",
    "k8s.io.apimachinery.pkg.apis.meta.v1.TypeMeta",
];

/// Go types with their own protobuf or JSON form.
const GO_SPECIALS: &[(&str, &str)] = &[
    ("k8s.io/apimachinery/pkg/apis/meta/v1.Time", "Time"),
    (
        "k8s.io/apimachinery/pkg/apis/meta/v1.MicroTime",
        "MicroTime",
    ),
    ("k8s.io/apimachinery/pkg/apis/meta/v1.Duration", "Duration"),
    ("k8s.io/apimachinery/pkg/apis/meta/v1.FieldsV1", "FieldsV1"),
    ("k8s.io/apimachinery/pkg/api/resource.Quantity", "Quantity"),
    (
        "k8s.io/apimachinery/pkg/util/intstr.IntOrString",
        "IntOrString",
    ),
    (
        "k8s.io/apimachinery/pkg/runtime.RawExtension",
        "RawExtension",
    ),
];

/// API groups by package directory (`k8s.io/api/<dir>/<version>`).
const GROUPS: &[(&str, &str)] = &[
    ("admission", "admission.k8s.io"),
    ("admissionregistration", "admissionregistration.k8s.io"),
    ("apidiscovery", "apidiscovery.k8s.io"),
    ("apiserverinternal", "internal.apiserver.k8s.io"),
    ("apps", "apps"),
    ("authentication", "authentication.k8s.io"),
    ("authorization", "authorization.k8s.io"),
    ("autoscaling", "autoscaling"),
    ("batch", "batch"),
    ("certificates", "certificates.k8s.io"),
    ("coordination", "coordination.k8s.io"),
    ("core", ""),
    ("discovery", "discovery.k8s.io"),
    ("events", "events.k8s.io"),
    ("flowcontrol", "flowcontrol.apiserver.k8s.io"),
    ("networking", "networking.k8s.io"),
    ("node", "node.k8s.io"),
    ("policy", "policy"),
    ("rbac", "rbac.authorization.k8s.io"),
    ("resource", "resource.k8s.io"),
    ("scheduling", "scheduling.k8s.io"),
    ("storage", "storage.k8s.io"),
    ("storagemigration", "storagemigration.k8s.io"),
    ("apiextensions", "apiextensions.k8s.io"),
    ("apiregistration", "apiregistration.k8s.io"),
    ("metrics", "metrics.k8s.io"),
];

/// Field names whose k8s-pb (snake_case) name does not match the JSON name.
const NAME_EXCEPTIONS: &[(&str, &str, &str)] = &[];

// Flags, as in `src/table.rs`.
const REPEATED: u8 = 1;
const MAP: u8 = 2;
const NILABLE: u8 = 4;
const OMITEMPTY: u8 = 8;
const INLINE: u8 = 16;

#[derive(Clone, Debug)]
struct Field {
    tag: u32,
    json: String,
    ty: PbType,
    flags: u8,
}

#[derive(Clone, Debug)]
struct Message {
    /// Full proto name with upstream's spelling (`k8s.io.api.core.v1.AWSElasticBlockStoreVolumeSource`).
    name: String,
    special: &'static str,
    fields: Vec<Field>,
}

struct Args {
    kubectl: PathBuf,
    k8s_pb: Option<PathBuf>,
    out: PathBuf,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("gen: {e}");
        std::process::exit(1);
    }
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        kubectl: PathBuf::from(DEFAULT_KUBECTL),
        k8s_pb: None,
        out: Path::new(env!("CARGO_MANIFEST_DIR")).join("src/generated.rs"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let v = it.next().ok_or(format!("{a} needs a value"))?;
        match a.as_str() {
            "--kubectl" => args.kubectl = v.into(),
            "--k8s-pb" => args.k8s_pb = Some(v.into()),
            "--out" => args.out = v.into(),
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    Ok(args)
}

fn find_k8s_pb() -> Result<PathBuf, String> {
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|_| std::env::var("HOME").map(|h| Path::new(&h).join(".cargo")))
        .map_err(|_| "neither CARGO_HOME nor HOME is set")?;
    let registry = home.join("registry/src");
    for entry in std::fs::read_dir(&registry).map_err(|e| format!("{registry:?}: {e}"))? {
        let dir = entry
            .map_err(|e| e.to_string())?
            .path()
            .join("k8s-pb-0.9.0/src");
        if dir.is_dir() {
            return Ok(dir);
        }
    }
    Err(format!(
        "k8s-pb-0.9.0 not found under {registry:?}; build with --features gen or pass --k8s-pb"
    ))
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let pb_dir = match &args.k8s_pb {
        Some(d) => d.clone(),
        None => find_k8s_pb()?,
    };
    let pb = pb::read(&pb_dir)?;
    eprintln!("k8s-pb: {} messages from {}", pb.len(), pb_dir.display());

    let binary = std::fs::read(&args.kubectl).map_err(|e| format!("{:?}: {e}", args.kubectl))?;
    if !contains(&binary, b"v1.33.") {
        return Err(format!("{:?} is not a kubectl v1.33 build", args.kubectl));
    }
    let catalog = rkube_schema::catalog();
    let openapi_prefixes: BTreeSet<String> = catalog
        .definitions()
        .map(|d| {
            d.name
                .rsplit_once('.')
                .map(|(p, _)| p.to_string())
                .unwrap_or_default()
        })
        .collect();
    let packages: Vec<String> = pb
        .values()
        .map(|m| package_of(&m.name).to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|p| {
            openapi_prefixes.contains(&openapi_package(p)) || EXTRA_PACKAGES.contains(&p.as_str())
        })
        .collect();
    let go_packages: Vec<String> = packages.iter().map(|p| go_package(p)).collect();
    let go_refs: Vec<&str> = go_packages.iter().map(String::as_str).collect();
    let go = gobin::read(&binary, &go_refs)?;
    eprintln!(
        "kubectl ({}): {} structs, {} named slices",
        go.go_version,
        go.structs.len(),
        go.slices.len()
    );

    let mut errors = Vec::new();
    let mut notes = Vec::new();
    let mut messages: BTreeMap<String, Message> = BTreeMap::new();
    // pb name -> upstream-spelled name
    let mut renames: BTreeMap<String, String> = BTreeMap::new();
    for package in &packages {
        let go_pkg = go_package(package);
        let hand = facts::PACKAGES.contains(&package.as_str());
        for msg in pb.values().filter(|m| package_of(&m.name) == package) {
            if SKIP.contains(&msg.name.as_str()) {
                continue;
            }
            let short = short_name(&msg.name);
            let built = if hand {
                from_facts(package, msg, catalog, &mut errors, &mut notes)
            } else {
                match find_go(&go, &go_pkg, short) {
                    Some(GoDef::Struct(go_name, fields)) => {
                        from_go(package, msg, &go_name, fields, &go, &mut errors, &mut notes)
                    }
                    Some(GoDef::Slice(go_name)) => Some(Message {
                        name: format!("{package}.{}", short_of_go(&go_name)),
                        special: "Wrapper",
                        fields: vec![Field {
                            tag: 1,
                            json: "items".into(),
                            ty: PbType::String,
                            flags: REPEATED | NILABLE,
                        }],
                    }),
                    None => {
                        notes.push(format!("{}: not in kubectl v1.33, left out", msg.name));
                        None
                    }
                }
            };
            if let Some(m) = built {
                renames.insert(msg.name.clone(), m.name.clone());
                messages.insert(m.name.clone(), m);
            }
        }
    }

    // Wrapper element types come from k8s-pb's `items` field.
    for m in messages.values_mut() {
        if m.special == "Wrapper" {
            let pbm = pb
                .values()
                .find(|p| p.name.eq_ignore_ascii_case(&m.name))
                .ok_or(format!("{}: no k8s-pb message", m.name))?;
            let items = pbm
                .fields
                .iter()
                .find(|f| f.tag == 1 && f.card == Card::Repeated)
                .ok_or(format!("{}: wrapper without repeated field 1", m.name))?;
            m.fields[0].ty = items.ty.clone();
        }
    }

    // Resolve message references to upstream spelling and check they exist.
    let names: BTreeSet<String> = messages.keys().cloned().collect();
    for m in messages.values_mut() {
        for f in &mut m.fields {
            if let PbType::Message(target) = &f.ty {
                match renames.get(target) {
                    Some(r) if names.contains(r) => f.ty = PbType::Message(r.clone()),
                    _ => errors.push(format!(
                        "{}.{}: refers to {target}, which is not in the table",
                        m.name, f.json
                    )),
                }
            }
        }
    }

    check_catalog(&messages, catalog, &mut errors);
    let kinds = kinds(&messages, &go, catalog, &mut errors);

    for n in &notes {
        eprintln!("note: {n}");
    }
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("error: {e}");
        }
        return Err(format!("{} errors", errors.len()));
    }
    let out = render(&messages, &kinds, &go.go_version);
    std::fs::write(&args.out, out).map_err(|e| format!("{:?}: {e}", args.out))?;
    eprintln!(
        "wrote {} messages, {} kinds to {}",
        messages.len(),
        kinds.len(),
        args.out.display()
    );
    Ok(())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn package_of(name: &str) -> &str {
    name.rsplit_once('.').map(|(p, _)| p).unwrap_or("")
}

fn short_name(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

fn short_of_go(go_name: &str) -> &str {
    go_name.rsplit('.').next().unwrap_or(go_name)
}

/// `k8s.io.api.core.v1` → `k8s.io/api/core/v1`.
fn go_package(package: &str) -> String {
    let rest = package.strip_prefix("k8s.io.").unwrap_or(package);
    format!("k8s.io/{}", rest.replace('.', "/").replace('_', "-"))
}

/// `k8s.io.api.core.v1` → `io.k8s.api.core.v1` (the OpenAPI definition prefix).
fn openapi_package(package: &str) -> String {
    let rest = package.strip_prefix("k8s.io.").unwrap_or(package);
    format!("io.k8s.{}", rest.replace('_', "-"))
}

fn normalize(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

enum GoDef<'a> {
    Struct(String, &'a [GoField]),
    Slice(String),
}

fn find_go<'a>(go: &'a GoTypes, go_pkg: &str, short: &str) -> Option<GoDef<'a>> {
    let prefix = format!("{go_pkg}.");
    let matches: Vec<_> = go
        .structs
        .iter()
        .filter(|(n, _)| {
            n.strip_prefix(&prefix)
                .is_some_and(|s| s.eq_ignore_ascii_case(short))
        })
        .collect();
    if let [(name, fields)] = matches.as_slice() {
        return Some(GoDef::Struct(name.to_string(), fields));
    }
    go.slices
        .keys()
        .find(|n| {
            n.strip_prefix(&prefix)
                .is_some_and(|s| s.eq_ignore_ascii_case(short))
        })
        .map(|n| GoDef::Slice(n.clone()))
}

/// The parts of a Go `protobuf:"bytes,1,opt,name=metadata"` tag: (number, name).
fn proto_tag(tag: &str) -> Option<(u32, String)> {
    let mut parts = tag.split(',');
    parts.next()?;
    let number = parts.next()?.parse().ok()?;
    let name = parts
        .find_map(|p| p.strip_prefix("name="))
        .unwrap_or("")
        .to_string();
    Some((number, name))
}

/// JSON tag: (name, omitempty, inline).
fn json_tag(field: &GoField) -> (String, bool, bool) {
    let tag = field.tag_value("json").unwrap_or_default();
    let mut parts = tag.split(',');
    let name = parts.next().unwrap_or("").to_string();
    let opts: Vec<&str> = parts.collect();
    let inline = name.is_empty() && (field.embedded || opts.contains(&"inline"));
    let name = if name.is_empty() && !inline {
        field.name.clone()
    } else {
        name
    };
    (name, opts.contains(&"omitempty"), inline)
}

fn from_go(
    package: &str,
    msg: &PbMessage,
    go_name: &str,
    go_fields: &[GoField],
    go: &GoTypes,
    errors: &mut Vec<String>,
    notes: &mut Vec<String>,
) -> Option<Message> {
    let name = format!("{package}.{}", short_of_go(go_name));
    let special = GO_SPECIALS
        .iter()
        .find(|(n, _)| *n == go_name)
        .map(|(_, s)| *s)
        .unwrap_or("Plain");
    if special != "Plain" {
        return Some(Message {
            name,
            special,
            fields: wire_fields(msg),
        });
    }
    let mut fields = Vec::new();
    let mut seen = BTreeSet::new();
    for gf in go_fields {
        let Some(ptag) = gf.tag_value("protobuf").filter(|t| t != "-") else {
            continue;
        };
        let Some((tag, proto_name)) = proto_tag(&ptag) else {
            errors.push(format!("{name}.{}: odd protobuf tag {ptag:?}", gf.name));
            continue;
        };
        let derived;
        let pf = match msg.fields.iter().find(|f| f.tag == tag) {
            Some(pf) => pf,
            None => match field_from_go(package, gf, tag, &proto_name) {
                Some(f) => {
                    notes.push(format!(
                        "{name}.{}: field {tag} is not in k8s-pb (removed after v1.33); \
                         its type comes from Go",
                        gf.name
                    ));
                    derived = f;
                    &derived
                }
                None => {
                    errors.push(format!(
                        "{name}.{}: field {tag} is not in k8s-pb's {} and its Go type {:?} \
                         has no obvious protobuf type",
                        gf.name, msg.name, gf.ty
                    ));
                    continue;
                }
            },
        };
        seen.insert(tag);
        if !proto_name.is_empty() && normalize(&pf.name) != normalize(&proto_name) {
            errors.push(format!(
                "{name}: field {tag} is {} in k8s-pb but {proto_name} in Go",
                pf.name
            ));
        }
        let (json, omitempty, inline) = json_tag(gf);
        let mut flags = 0;
        if omitempty {
            flags |= OMITEMPTY;
        }
        if inline {
            flags |= INLINE;
        }
        if json == "-" && special == "Plain" {
            errors.push(format!("{name}.{}: on the wire but not in JSON", gf.name));
        }
        if !inline
            && json != "-"
            && normalize(&json) != normalize(&pf.name)
            && !NAME_EXCEPTIONS.contains(&(name.as_str(), pf.name.as_str(), json.as_str()))
        {
            errors.push(format!(
                "{name}: k8s-pb field {} does not match JSON name {json}",
                pf.name
            ));
        }
        // Go representation.
        let mut ty = &gf.ty;
        if let GoType::Ptr(inner) = ty {
            flags |= NILABLE;
            ty = inner;
        }
        let shape = match ty {
            GoType::Slice(elem, _) if matches!(**elem, GoType::Scalar(gobin::KIND_UINT8, _)) => {
                flags |= NILABLE;
                "bytes"
            }
            GoType::Slice(_, slice_name)
                if !slice_name.is_empty()
                    && pf.card == Card::Optional
                    && matches!(pf.ty, PbType::Message(_)) =>
            {
                // A named slice written as a wrapper message (`metav1.Verbs`).
                if !go.slices.contains_key(slice_name) {
                    errors.push(format!("{name}.{}: unknown slice {slice_name}", gf.name));
                }
                flags |= NILABLE;
                "message"
            }
            GoType::Slice(..) => {
                flags |= REPEATED | NILABLE;
                "repeated"
            }
            GoType::Map(..) => {
                flags |= MAP | NILABLE;
                "map"
            }
            GoType::Struct(_) => "message",
            GoType::Scalar(..) => "scalar",
            GoType::Ptr(_) | GoType::Other(_) => {
                errors.push(format!(
                    "{name}.{}: unsupported Go type {:?}",
                    gf.name, gf.ty
                ));
                continue;
            }
        };
        let card_ok = match shape {
            "repeated" => pf.card == Card::Repeated,
            "map" => pf.card == Card::Map,
            _ => pf.card == Card::Optional,
        };
        if !card_ok {
            errors.push(format!(
                "{name}.{}: Go shape {shape} but k8s-pb {:?}",
                gf.name, pf.card
            ));
        }
        // Scalar kinds must agree.
        let base = match ty {
            GoType::Slice(e, _) if shape == "repeated" => &**e,
            GoType::Map(_, v, _) => &**v,
            other => other,
        };
        let base = match base {
            GoType::Ptr(inner) => &**inner,
            other => other,
        };
        let kind_ok = match (&pf.ty, base) {
            (PbType::String, GoType::Scalar(k, _)) => *k == gobin::KIND_STRING,
            (PbType::Bool, GoType::Scalar(k, _)) => *k == gobin::KIND_BOOL,
            (PbType::Int32, GoType::Scalar(k, _)) => *k == gobin::KIND_INT32,
            (PbType::Int64, GoType::Scalar(k, _)) => *k == gobin::KIND_INT64,
            (PbType::Double, GoType::Scalar(k, _)) => *k == gobin::KIND_FLOAT64,
            (PbType::Bytes, GoType::Slice(e, _)) => {
                matches!(**e, GoType::Scalar(gobin::KIND_UINT8, _))
            }
            (PbType::Message(m), GoType::Struct(s)) => {
                short_name(m).eq_ignore_ascii_case(short_of_go(s))
            }
            (PbType::Message(m), GoType::Slice(_, s)) => {
                short_name(m).eq_ignore_ascii_case(short_of_go(s))
            }
            _ => false,
        };
        if !kind_ok {
            errors.push(format!(
                "{name}.{}: Go type {:?} does not match k8s-pb {:?}",
                gf.name, gf.ty, pf.ty
            ));
        }
        fields.push(Field {
            tag,
            json,
            ty: pf.ty.clone(),
            flags,
        });
    }
    for pf in &msg.fields {
        if !seen.contains(&pf.tag) {
            notes.push(format!(
                "{name}: k8s-pb field {} ({}) is not in v1.33, left out",
                pf.name, pf.tag
            ));
        }
    }
    fields.sort_by_key(|f| f.tag);
    Some(Message {
        name,
        special,
        fields,
    })
}

/// The fields of a message with its own JSON form, as k8s-pb has them (the code in
/// `special.rs` reads and writes them).
fn wire_fields(msg: &PbMessage) -> Vec<Field> {
    msg.fields
        .iter()
        .map(|f| Field {
            tag: f.tag,
            json: f.name.clone(),
            ty: f.ty.clone(),
            flags: match f.card {
                Card::Repeated => REPEATED | NILABLE,
                Card::Map => MAP | NILABLE,
                Card::Optional if matches!(f.ty, PbType::Message(_) | PbType::Bytes) => NILABLE,
                Card::Optional => 0,
            },
        })
        .collect()
}

/// A field k8s-pb (v1.34) no longer has, from its Go type: scalars and same-package
/// messages only.
fn field_from_go(package: &str, gf: &GoField, tag: u32, proto_name: &str) -> Option<pb::PbField> {
    let (card, base) = match &gf.ty {
        GoType::Ptr(inner) => (Card::Optional, &**inner),
        GoType::Slice(elem, n) if n.is_empty() => (Card::Repeated, &**elem),
        other => (Card::Optional, other),
    };
    let ty = match base {
        GoType::Scalar(gobin::KIND_STRING, _) => PbType::String,
        GoType::Scalar(gobin::KIND_BOOL, _) => PbType::Bool,
        GoType::Scalar(gobin::KIND_INT32, _) => PbType::Int32,
        GoType::Scalar(gobin::KIND_INT64, _) => PbType::Int64,
        GoType::Struct(s) if s.starts_with(&format!("{}.", go_package(package))) => {
            PbType::Message(format!("{package}.{}", short_of_go(s)))
        }
        _ => return None,
    };
    Some(pb::PbField {
        name: proto_name.to_string(),
        tag,
        ty,
        card,
    })
}

fn from_facts(
    package: &str,
    msg: &PbMessage,
    catalog: &rkube_schema::Catalog,
    errors: &mut Vec<String>,
    notes: &mut Vec<String>,
) -> Option<Message> {
    let short = short_name(&msg.name);
    let def = catalog.definitions().find(|d| {
        d.name
            .eq_ignore_ascii_case(&format!("{}.{short}", openapi_package(package)))
    });
    let Some(def) = def else {
        if short.ends_with("List") {
            // Lists are not in the catalog: `metadata` (a ListMeta value) and `items`.
            let mut fields = Vec::new();
            for f in &msg.fields {
                let (json, flags) = match (f.name.as_str(), f.card) {
                    ("metadata", Card::Optional) => ("metadata", OMITEMPTY),
                    ("items", Card::Repeated) => ("items", REPEATED | NILABLE),
                    _ => {
                        errors.push(format!("{}: odd list field {}", msg.name, f.name));
                        continue;
                    }
                };
                fields.push(Field {
                    tag: f.tag,
                    json: json.into(),
                    ty: f.ty.clone(),
                    flags,
                });
            }
            let item = short.trim_end_matches("List");
            let upstream = catalog
                .definitions()
                .find(|d| {
                    d.name
                        .eq_ignore_ascii_case(&format!("{}.{item}", openapi_package(package)))
                })
                .map(|d| format!("{}List", short_name(&d.name)))
                .unwrap_or_else(|| short.to_string());
            return Some(Message {
                name: format!("{package}.{upstream}"),
                special: "Plain",
                fields,
            });
        }
        notes.push(format!("{}: not in the v1.33 catalog, left out", msg.name));
        return None;
    };
    let upstream_short = short_name(&def.name).to_string();
    let name = format!("{package}.{upstream_short}");
    if let Some((_, s)) = facts::SPECIALS.iter().find(|(n, _)| *n == upstream_short) {
        return Some(Message {
            name,
            special: s,
            fields: wire_fields(msg),
        });
    }
    let Some(fact) = facts::lookup(package, &upstream_short) else {
        errors.push(format!("{name}: no hand-written facts"));
        return None;
    };
    let reprs: BTreeMap<&str, &str> = fact
        .split_whitespace()
        .filter_map(|p| p.split_once(':'))
        .collect();
    let json_names: Vec<String> = def
        .fields()
        .map(|f| f.keys().cloned().collect())
        .unwrap_or_default();
    let mut fields = Vec::new();
    let mut used = BTreeSet::new();
    for pf in &msg.fields {
        let candidates: Vec<&String> = json_names
            .iter()
            .filter(|j| normalize(j) == normalize(&pf.name))
            .collect();
        let json = match candidates.as_slice() {
            [one] => (*one).clone(),
            [] => {
                notes.push(format!(
                    "{name}: k8s-pb field {} is not in the v1.33 catalog, left out",
                    pf.name
                ));
                continue;
            }
            _ => {
                errors.push(format!("{name}: k8s-pb field {} is ambiguous", pf.name));
                continue;
            }
        };
        let flags = match pf.card {
            Card::Repeated => REPEATED | NILABLE | OMITEMPTY,
            Card::Map => MAP | NILABLE | OMITEMPTY,
            Card::Optional if pf.ty == PbType::Bytes => NILABLE | OMITEMPTY,
            Card::Optional => {
                used.insert(json.clone());
                match reprs.get(json.as_str()) {
                    Some(&"v") => 0,
                    Some(&"vo") => OMITEMPTY,
                    Some(&"p") => NILABLE | OMITEMPTY,
                    _ => {
                        errors.push(format!("{name}.{json}: no fact"));
                        continue;
                    }
                }
            }
        };
        fields.push(Field {
            tag: pf.tag,
            json,
            ty: pf.ty.clone(),
            flags,
        });
    }
    for k in reprs.keys() {
        if !used.contains(*k) {
            errors.push(format!("{name}.{k}: fact for a field k8s-pb does not have"));
        }
    }
    fields.sort_by_key(|f| f.tag);
    Some(Message {
        name,
        special: "Plain",
        fields,
    })
}

/// The JSON property names a message produces (inline fields contribute their message's).
fn json_names(messages: &BTreeMap<String, Message>, m: &Message, out: &mut BTreeSet<String>) {
    for f in &m.fields {
        if f.flags & INLINE != 0 {
            if let PbType::Message(t) = &f.ty
                && let Some(inner) = messages.get(t)
            {
                json_names(messages, inner, out);
            }
        } else if f.json != "-" {
            out.insert(f.json.clone());
        }
    }
}

fn check_catalog(
    messages: &BTreeMap<String, Message>,
    catalog: &rkube_schema::Catalog,
    errors: &mut Vec<String>,
) {
    let mut checked = 0;
    for m in messages.values() {
        if m.special != "Plain" {
            continue;
        }
        let def_name = format!(
            "{}.{}",
            openapi_package(package_of(&m.name)),
            short_name(&m.name)
        );
        let Some(def) = catalog.definition(&def_name) else {
            continue;
        };
        let Some(def_fields) = def.fields() else {
            continue;
        };
        checked += 1;
        let mut ours = BTreeSet::new();
        json_names(messages, m, &mut ours);
        let theirs: BTreeSet<String> = def_fields.keys().cloned().collect();
        for missing in theirs
            .difference(&ours)
            .filter(|k| *k != "apiVersion" && *k != "kind")
        {
            errors.push(format!(
                "{}: catalog field {missing} is not on the wire",
                m.name
            ));
        }
        for extra in ours.difference(&theirs) {
            errors.push(format!("{}: field {extra} is not in the catalog", m.name));
        }
    }
    eprintln!("checked {checked} messages against the catalog");
}

/// Top-level kinds: every Go struct that embeds `metav1.TypeMeta`, with its group from the
/// package (checked against the catalog's GVKs), plus the two hand-fact packages' kinds.
fn kinds(
    messages: &BTreeMap<String, Message>,
    go: &GoTypes,
    catalog: &rkube_schema::Catalog,
    errors: &mut Vec<String>,
) -> Vec<(String, String, String)> {
    let mut out = BTreeSet::new();
    for m in messages.values() {
        let package = package_of(&m.name);
        let short = short_name(&m.name);
        let go_name = format!("{}.{short}", go_package(package));
        let is_kind = match go.structs.get(&go_name) {
            Some(fields) => fields.iter().any(|f| {
                f.embedded
                    && matches!(&f.ty, GoType::Struct(s) if s == "k8s.io/apimachinery/pkg/apis/meta/v1.TypeMeta")
            }),
            None => facts::PACKAGES.contains(&package)
                && m.fields.iter().any(|f| f.json == "metadata"),
        };
        if !is_kind {
            continue;
        }
        let def_name = format!("{}.{short}", openapi_package(package));
        let catalog_gvks: Vec<_> = catalog
            .definition(&def_name)
            .map(|d| d.gvks.clone())
            .unwrap_or_default();
        if package.starts_with("k8s.io.apimachinery") {
            // meta/v1 kinds: the catalog's, else the core `v1` (Status, APIGroup, ...);
            // options kinds are looked up by kind alone at run time.
            for g in &catalog_gvks {
                out.insert((g.api_version(), g.kind.clone(), m.name.clone()));
            }
            continue;
        }
        let parts: Vec<&str> = package.split('.').collect();
        let version = parts.last().copied().unwrap_or("");
        let dir = if parts.get(2) == Some(&"api") {
            parts.get(3).copied().unwrap_or("")
        } else {
            parts
                .get(parts.len().saturating_sub(2))
                .copied()
                .unwrap_or("")
        };
        let Some((_, group)) = GROUPS.iter().find(|(d, _)| *d == dir) else {
            errors.push(format!(
                "{}: no API group for package directory {dir}",
                m.name
            ));
            continue;
        };
        let api_version = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        for g in &catalog_gvks {
            if g.api_version() != api_version || g.kind != short {
                errors.push(format!(
                    "{}: catalog says {}/{} but the package says {api_version}",
                    m.name,
                    g.api_version(),
                    g.kind
                ));
            }
        }
        out.insert((api_version, short.to_string(), m.name.clone()));
    }
    out.into_iter().collect()
}

fn rust_ty(ty: &PbType, index: &BTreeMap<&str, usize>) -> String {
    match ty {
        PbType::String => "Str".into(),
        PbType::Bytes => "Bytes".into(),
        PbType::Bool => "Bool".into(),
        PbType::Int32 => "I32".into(),
        PbType::Int64 => "I64".into(),
        PbType::Double => "F64".into(),
        PbType::Message(m) => format!("Msg({})", index[m.as_str()]),
    }
}

fn render(
    messages: &BTreeMap<String, Message>,
    kinds: &[(String, String, String)],
    go_version: &str,
) -> String {
    let index: BTreeMap<&str, usize> = messages
        .keys()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "// @generated by `cargo run -p rkube-protobuf --example gen --features gen` from k8s-pb 0.9\n\
         // and the type descriptors of kubectl v1.33 ({go_version}); do not edit.\n\
         // Fields: (number, JSON name, type, flags); flags: 1 repeated, 2 map, 4 pointer (set or\n\
         // absent), 8 omitempty, 16 inline. Messages are sorted by name; `Msg(n)` is an index.\n"
    );
    let _ = writeln!(s, "use crate::table::{{F, K, M, S, Ty::*}};\n");
    let _ = writeln!(s, "pub(crate) static MESSAGES: &[M] = &[");
    for (i, m) in messages.values().enumerate() {
        let _ = write!(s, "    // {i}\n    M(\"{}\", S::{}, &[", m.name, m.special);
        for (j, f) in m.fields.iter().enumerate() {
            if j > 0 {
                s.push_str(", ");
            }
            let _ = write!(
                s,
                "F({}, {:?}, {}, {})",
                f.tag,
                f.json,
                rust_ty(&f.ty, &index),
                f.flags
            );
        }
        s.push_str("]),\n");
    }
    s.push_str("];\n\n");
    let _ = writeln!(
        s,
        "/// (apiVersion, kind, message), sorted.\npub(crate) static KINDS: &[K] = &["
    );
    for (av, k, m) in kinds {
        let _ = writeln!(s, "    K({av:?}, {k:?}, {}),", index[m.as_str()]);
    }
    s.push_str("];\n");
    s
}
