//! Reads the prost-generated sources of the `k8s-pb` crate: every message of every proto
//! package with its fields' numbers, protobuf types and (for messages) element types, from
//! the `#[prost(...)]` attributes.

use std::collections::BTreeMap;
use std::path::Path;

/// The protobuf type of a field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PbType {
    String,
    Bytes,
    Bool,
    Int32,
    Int64,
    Double,
    /// A message, by full proto name (`k8s.io.api.core.v1.PodSpec`).
    Message(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Card {
    Optional,
    Repeated,
    /// `map<string, T>`.
    Map,
}

#[derive(Clone, Debug)]
pub struct PbField {
    /// The Rust (snake_case) field name, without `r#`.
    pub name: String,
    pub tag: u32,
    pub ty: PbType,
    pub card: Card,
}

#[derive(Clone, Debug)]
pub struct PbMessage {
    /// Full proto name: `k8s.io.api.core.v1.Pod`.
    pub name: String,
    pub fields: Vec<PbField>,
}

/// Every message of the crate, by full proto name.
pub fn read(src: &Path) -> Result<BTreeMap<String, PbMessage>, String> {
    let mut out = BTreeMap::new();
    let mut files = Vec::new();
    collect(src, &mut files)?;
    for file in files {
        let rel = file
            .parent()
            .and_then(|p| p.strip_prefix(src).ok())
            .ok_or("bad path")?;
        let module: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().to_string())
            .collect();
        let text = std::fs::read_to_string(&file).map_err(|e| format!("{file:?}: {e}"))?;
        if !text.contains("::prost::Message") {
            continue;
        }
        parse_file(&module, &text, &mut out).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    Ok(out)
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<(), String> {
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{dir:?}: {e}"))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.file_name().is_some_and(|n| n == "mod.rs") {
            out.push(path);
        }
    }
    out.sort();
    Ok(())
}

/// The proto package of a k8s-pb module path (`api/core/v1` → `k8s.io.api.core.v1`).
pub fn proto_package(module: &[String]) -> String {
    format!("k8s.io.{}", module.join("."))
}

fn parse_file(
    module: &[String],
    text: &str,
    out: &mut BTreeMap<String, PbMessage>,
) -> Result<(), String> {
    let package = proto_package(module);
    let mut current: Option<PbMessage> = None;
    let mut pending: Option<String> = None;
    let mut field_text = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("///") || t.starts_with("//") {
            continue;
        }
        if let Some(rest) = t.strip_prefix("pub struct ") {
            let name = rest
                .trim_end_matches('{')
                .trim_end_matches("{}")
                .trim()
                .to_string();
            let msg = PbMessage {
                name: format!("{package}.{name}"),
                fields: Vec::new(),
            };
            if t.ends_with("{}") {
                out.insert(msg.name.clone(), msg);
            } else {
                current = Some(msg);
            }
            continue;
        }
        if t == "}" {
            if let Some(msg) = current.take() {
                out.insert(msg.name.clone(), msg);
            }
            continue;
        }
        if let Some(attr) = t.strip_prefix("#[prost(") {
            pending = Some(attr.trim_end_matches(")]").to_string());
            field_text.clear();
            continue;
        }
        if let Some(attr) = &pending {
            field_text.push_str(t);
            let open = field_text.matches('<').count();
            let close = field_text.matches('>').count();
            if !field_text.ends_with(',') || open != close {
                continue;
            }
            let field_text = field_text.replace(",>", ">");
            let field = parse_field(module, attr, &field_text)?;
            current
                .as_mut()
                .ok_or("field outside a struct")?
                .fields
                .push(field);
            pending = None;
        }
    }
    Ok(())
}

fn parse_field(module: &[String], attr: &str, decl: &str) -> Result<PbField, String> {
    let decl = decl.trim_end_matches(',');
    let decl = decl
        .strip_prefix("pub ")
        .ok_or(format!("odd field {decl}"))?;
    let (name, rust_ty) = decl.split_once(':').ok_or(format!("odd field {decl}"))?;
    let name = name.trim().trim_start_matches("r#").to_string();
    let rust_ty = rust_ty.trim();
    let tag = attr
        .split("tag = \"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .and_then(|s| s.parse().ok())
        .ok_or(format!("no tag in {attr}"))?;
    let (card, kind) = if let Some(map) = attr.strip_prefix("btree_map = \"") {
        let inner = map.split('"').next().unwrap_or("");
        let value = inner.split(", ").nth(1).ok_or(format!("odd map {attr}"))?;
        (Card::Map, value.to_string())
    } else {
        let first = attr.split(',').next().unwrap_or("").trim();
        let kind = first.split(" =").next().unwrap_or(first).to_string();
        let card = if attr.contains("repeated") {
            Card::Repeated
        } else {
            Card::Optional
        };
        (card, kind)
    };
    let ty = match kind.as_str() {
        "string" => PbType::String,
        "bytes" => PbType::Bytes,
        "bool" => PbType::Bool,
        "int32" => PbType::Int32,
        "int64" => PbType::Int64,
        "double" => PbType::Double,
        "message" => PbType::Message(message_type(module, rust_ty)?),
        other => return Err(format!("unsupported prost type {other} in {attr}")),
    };
    Ok(PbField {
        name,
        tag,
        ty,
        card,
    })
}

/// The full proto name of the message a Rust field type refers to:
/// `Option<super::super::...::meta::v1::ObjectMeta>`, `Vec<Container>`,
/// `BTreeMap<String, Quantity>`, `Option<Box<JsonSchemaProps>>`.
fn message_type(module: &[String], rust_ty: &str) -> Result<String, String> {
    let mut inner = rust_ty;
    for wrapper in [
        "::core::option::Option<",
        "::prost::alloc::vec::Vec<",
        "::prost::alloc::boxed::Box<",
    ] {
        if let Some(rest) = inner.strip_prefix(wrapper) {
            inner = rest
                .strip_suffix('>')
                .ok_or(format!("odd type {rust_ty}"))?;
        }
    }
    if let Some(rest) = inner.strip_prefix("::prost::alloc::collections::BTreeMap<") {
        let rest = rest
            .strip_suffix('>')
            .ok_or(format!("odd type {rust_ty}"))?;
        inner = rest
            .split_once(',')
            .map(|(_, v)| v.trim())
            .ok_or(format!("odd map {rust_ty}"))?;
    }
    let mut path: Vec<String> = module.to_vec();
    let segments: Vec<&str> = inner.split("::").collect();
    let (name, prefix) = segments.split_last().ok_or("empty type")?;
    for seg in prefix {
        if *seg == "super" {
            path.pop().ok_or(format!("too many supers in {rust_ty}"))?;
        } else {
            path.push(seg.to_string());
        }
    }
    Ok(format!("{}.{name}", proto_package(&path)))
}
