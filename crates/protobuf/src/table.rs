//! The compact, `static` form of the message table that `examples/gen` writes into
//! `generated.rs`, and lookups over it.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::generated::{KINDS, MESSAGES};

/// The protobuf type of a field (of each item for lists, of each value for maps).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    Str,
    Bytes,
    Bool,
    I32,
    I64,
    F64,
    /// A message, by index into [`MESSAGES`].
    Msg(u16),
}

/// `repeated`.
pub(crate) const REPEATED: u8 = 1;
/// `map<string, T>`.
pub(crate) const MAP: u8 = 2;
/// A Go pointer (or slice, map, `[]byte`): written only when set, and in JSON only when set.
pub(crate) const NILABLE: u8 = 4;
/// The Go JSON tag says `omitempty`: a zero value is left out of JSON.
pub(crate) const OMITEMPTY: u8 = 8;
/// The Go JSON tag inlines the field: its message's fields are the parent object's.
pub(crate) const INLINE: u8 = 16;

/// A field: number, JSON name, type, flags.
#[derive(Debug)]
pub(crate) struct F(pub u32, pub &'static str, pub Ty, pub u8);

impl F {
    pub(crate) fn tag(&self) -> u32 {
        self.0
    }
    pub(crate) fn json(&self) -> &'static str {
        self.1
    }
    pub(crate) fn ty(&self) -> Ty {
        self.2
    }
    pub(crate) fn has(&self, flag: u8) -> bool {
        self.3 & flag != 0
    }
}

/// Messages whose JSON (or wire) form is not the plain field-by-field one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum S {
    Plain,
    /// `metav1.Time`: RFC 3339 seconds; empty message for the zero time.
    Time,
    /// `metav1.MicroTime`: RFC 3339 with microseconds.
    MicroTime,
    /// `metav1.Duration`: Go duration string, nanoseconds on the wire.
    Duration,
    /// `resource.Quantity`: its string.
    Quantity,
    /// `intstr.IntOrString`: a number or a string.
    IntOrString,
    /// `runtime.RawExtension`: embedded JSON (or an embedded protobuf object).
    RawExtension,
    /// `metav1.FieldsV1`: embedded JSON.
    FieldsV1,
    /// apiextensions `JSON`: embedded JSON.
    Json,
    /// apiextensions `JSONSchemaPropsOrArray`: a schema or a list of schemas.
    SchemaOrArray,
    /// apiextensions `JSONSchemaPropsOrBool`: a schema or a boolean.
    SchemaOrBool,
    /// apiextensions `JSONSchemaPropsOrStringArray`: a schema or a list of strings.
    SchemaOrStringArray,
    /// A Go named slice (`metav1.Verbs`, `ExtraValue`): a JSON list of its field 1.
    Wrapper,
}

/// A message: full proto name, JSON form, fields sorted by number.
#[derive(Debug)]
pub(crate) struct M(pub &'static str, pub S, pub &'static [F]);

impl M {
    pub(crate) fn name(&self) -> &'static str {
        self.0
    }
    pub(crate) fn special(&self) -> S {
        self.1
    }
    pub(crate) fn fields(&self) -> &'static [F] {
        self.2
    }
    pub(crate) fn field(&self, tag: u32) -> Option<&'static F> {
        self.2
            .binary_search_by_key(&tag, |f| f.0)
            .ok()
            .map(|i| &self.2[i])
    }
}

/// A top-level kind: apiVersion, kind, message index.
#[derive(Debug)]
pub(crate) struct K(pub &'static str, pub &'static str, pub u16);

pub(crate) fn message(index: u16) -> &'static M {
    &MESSAGES[index as usize]
}

/// A message by full proto name.
pub(crate) fn message_named(name: &str) -> Option<u16> {
    MESSAGES
        .binary_search_by(|m| m.0.cmp(name))
        .ok()
        .map(|i| i as u16)
}

/// Kinds of `meta.k8s.io/v1` that every group version accepts (request options, watch
/// events) or that are served under the core `v1` regardless of group.
const ANY_VERSION_KINDS: &[&str] = &[
    "APIGroup",
    "APIGroupList",
    "APIResourceList",
    "APIVersions",
    "ApplyOptions",
    "CreateOptions",
    "DeleteOptions",
    "GetOptions",
    "List",
    "ListOptions",
    "PartialObjectMetadata",
    "PartialObjectMetadataList",
    "PatchOptions",
    "Status",
    "TableOptions",
    "UpdateOptions",
    "WatchEvent",
];

/// The message of a top-level kind.
pub(crate) fn kind(api_version: &str, kind: &str) -> Option<u16> {
    static INDEX: OnceLock<HashMap<(&'static str, &'static str), u16>> = OnceLock::new();
    let index = INDEX.get_or_init(|| KINDS.iter().map(|k| ((k.0, k.1), k.2)).collect());
    if let Some(m) = index.get(&(api_version, kind)) {
        return Some(*m);
    }
    if ANY_VERSION_KINDS.contains(&kind) {
        return message_named(&format!("k8s.io.apimachinery.pkg.apis.meta.v1.{kind}"));
    }
    None
}
