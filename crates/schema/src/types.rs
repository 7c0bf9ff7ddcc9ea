//! The runtime model of a type's structure: what a value at some place in an object is
//! (scalar, struct with named fields, map, list), how lists and maps merge under server-side
//! apply, and the strategic-merge-patch metadata of each field.
//!
//! The same model describes built-in types (from the generated table, see [`crate::builtin`])
//! and custom resources (built from a CRD's OpenAPI v3 schema, see [`crate::crd`]).

use std::collections::BTreeMap;
use std::sync::Arc;

/// The kind of a scalar value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar {
    String,
    Integer,
    Number,
    Boolean,
    /// A value with its own JSON form that is still a leaf: `IntOrString`, `Quantity`,
    /// `Time`, `MicroTime` (upstream's `scalar: untyped`).
    Untyped,
}

/// Whether a struct or a map is merged field by field (`granular`, upstream's `separable`)
/// or replaced as a whole (`atomic`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MapKind {
    #[default]
    Granular,
    Atomic,
}

/// How a list merges under server-side apply (`x-kubernetes-list-type`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListKind {
    /// Replaced as a whole (the default for lists without a marker).
    Atomic,
    /// A set of scalars: items are merged by value.
    Set,
    /// A map keyed by the given fields of its items (`x-kubernetes-list-map-keys`).
    Map {
        keys: Vec<String>,
        /// Values used for key fields an item leaves out (upstream's schema defaults on key
        /// fields, e.g. `protocol: TCP` for container ports).
        key_defaults: BTreeMap<String, serde_json::Value>,
    },
}

/// Strategic-merge-patch metadata of a field (`x-kubernetes-patch-strategy` and
/// `x-kubernetes-patch-merge-key`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PatchMeta {
    /// `merge`: lists merge by `merge_key` (or, for lists of scalars, by value).
    pub merge: bool,
    /// `retainKeys`: a patch's `$retainKeys` directive clears fields it does not list.
    pub retain_keys: bool,
    /// `replace`: the field is always replaced by the patch's value.
    pub replace: bool,
    /// The field items of a merging list are matched on.
    pub merge_key: Option<String>,
}

impl PatchMeta {
    /// The strategy as upstream writes it in `x-kubernetes-patch-strategy`
    /// (`merge`, `retainKeys`, `merge,retainKeys`, `replace`), if any.
    pub fn strategy_string(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.merge {
            parts.push("merge");
        }
        if self.retain_keys {
            parts.push("retainKeys");
        }
        if self.replace {
            parts.push("replace");
        }
        if parts.is_empty() {
            None
        } else {
            Some(parts.join(","))
        }
    }

    /// Parses `x-kubernetes-patch-strategy` (comma-separated strategies).
    pub fn from_strategy(strategy: &str, merge_key: Option<&str>) -> Self {
        let mut meta = PatchMeta {
            merge_key: merge_key.map(str::to_string),
            ..PatchMeta::default()
        };
        for part in strategy.split(',').map(str::trim) {
            match part {
                "merge" => meta.merge = true,
                "retainKeys" => meta.retain_keys = true,
                "replace" => meta.replace = true,
                _ => {}
            }
        }
        meta
    }

    pub fn is_empty(&self) -> bool {
        !self.merge && !self.retain_keys && !self.replace && self.merge_key.is_none()
    }
}

/// What a value is.
#[derive(Clone, Debug, PartialEq)]
pub enum Type {
    Scalar(Scalar),
    /// A definition of the built-in catalog, by name (`io.k8s.api.core.v1.PodSpec`).
    Named(Arc<str>),
    /// An object with declared fields.
    Struct(Arc<StructType>),
    /// An object with arbitrary keys whose values all have one type.
    Map(Arc<MapType>),
    List(Arc<ListType>),
    /// Any JSON, structure deduced from the value: objects merge granularly, lists are
    /// atomic (upstream's `__untyped_deduced_`; `x-kubernetes-preserve-unknown-fields`).
    Deduced,
    /// Any JSON, always replaced as a whole (upstream's `__untyped_atomic_`).
    AtomicAny,
}

/// An object with declared fields.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct StructType {
    pub fields: BTreeMap<String, Field>,
    pub map_kind: MapKind,
    /// Fields not declared here are kept and merged as [`Type::Deduced`]
    /// (`x-kubernetes-preserve-unknown-fields: true` next to `properties`).
    pub preserve_unknown: bool,
}

/// A declared field of a struct.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: String,
    pub ty: Type,
    pub patch: PatchMeta,
    /// Overrides the map kind of the field's (struct) type at this place, as upstream's
    /// field-level `x-kubernetes-map-type` does (e.g. `PersistentVolumeSpec.claimRef`).
    pub map_kind: Option<MapKind>,
}

/// An object with arbitrary keys.
#[derive(Clone, Debug, PartialEq)]
pub struct MapType {
    pub values: Type,
    pub map_kind: MapKind,
}

/// A list.
#[derive(Clone, Debug, PartialEq)]
pub struct ListType {
    pub items: Type,
    pub kind: ListKind,
}

/// A resolved view of a [`Type`]: named types looked up, field-level overrides applied.
#[derive(Clone, Debug)]
pub enum Resolved<'a> {
    Scalar(Scalar),
    Struct(&'a StructType, MapKind),
    Map(&'a MapType),
    List(&'a ListType),
    Deduced,
    AtomicAny,
}

impl Type {
    /// Resolves named types through the built-in catalog. An unknown name resolves to
    /// [`Resolved::Deduced`] (it cannot happen for names the catalog itself hands out).
    pub fn resolve(&self) -> Resolved<'_> {
        match self {
            Type::Scalar(s) => Resolved::Scalar(*s),
            Type::Named(name) => match crate::builtin::catalog().definition(name) {
                Some(def) => def.ty.resolve(),
                None => Resolved::Deduced,
            },
            Type::Struct(s) => Resolved::Struct(s, s.map_kind),
            Type::Map(m) => Resolved::Map(m),
            Type::List(l) => Resolved::List(l),
            Type::Deduced => Resolved::Deduced,
            Type::AtomicAny => Resolved::AtomicAny,
        }
    }

    /// The type of the value under `key` when this type is an object (struct field, map
    /// value, or deduced), with the field's metadata when it is a declared field.
    /// `None` when the object does not accept the key (a struct without that field that
    /// does not preserve unknown fields) or when this type is not an object.
    pub fn child(&self, key: &str) -> Option<Child<'_>> {
        match self.resolve() {
            Resolved::Struct(s, _) => match s.fields.get(key) {
                Some(f) => Some(Child {
                    ty: &f.ty,
                    field: Some(f),
                }),
                None if s.preserve_unknown => Some(Child {
                    ty: &DEDUCED,
                    field: None,
                }),
                None => None,
            },
            Resolved::Map(m) => Some(Child {
                ty: &m.values,
                field: None,
            }),
            Resolved::Deduced => Some(Child {
                ty: &DEDUCED,
                field: None,
            }),
            Resolved::AtomicAny => Some(Child {
                ty: &ATOMIC_ANY,
                field: None,
            }),
            _ => None,
        }
    }

    /// The effective map kind of a value of this type placed in `field` (applying the
    /// field-level override), for structs and maps.
    pub fn map_kind_in(&self, field: Option<&Field>) -> Option<MapKind> {
        if let Some(k) = field.and_then(|f| f.map_kind) {
            return Some(k);
        }
        match self.resolve() {
            Resolved::Struct(_, k) => Some(k),
            Resolved::Map(m) => Some(m.map_kind),
            Resolved::Deduced => Some(MapKind::Granular),
            Resolved::AtomicAny => Some(MapKind::Atomic),
            _ => None,
        }
    }

    /// Shorthand constructors, mostly for tests and the CRD builder.
    pub fn list(items: Type, kind: ListKind) -> Type {
        Type::List(Arc::new(ListType { items, kind }))
    }

    pub fn map(values: Type, map_kind: MapKind) -> Type {
        Type::Map(Arc::new(MapType { values, map_kind }))
    }

    pub fn named(name: &str) -> Type {
        Type::Named(Arc::from(name))
    }
}

/// The type of a value inside an object, with its field's metadata when declared.
#[derive(Clone, Copy, Debug)]
pub struct Child<'a> {
    pub ty: &'a Type,
    pub field: Option<&'a Field>,
}

impl<'a> Child<'a> {
    /// Strategic-merge-patch metadata of the place (empty for map values and unknown
    /// fields).
    pub fn patch(&self) -> PatchMeta {
        self.field.map(|f| f.patch.clone()).unwrap_or_default()
    }
}

static DEDUCED: Type = Type::Deduced;
static ATOMIC_ANY: Type = Type::AtomicAny;

impl ListKind {
    /// A list-map with the given keys and no key defaults.
    pub fn map_keys<I: IntoIterator<Item = S>, S: Into<String>>(keys: I) -> ListKind {
        ListKind::Map {
            keys: keys.into_iter().map(Into::into).collect(),
            key_defaults: BTreeMap::new(),
        }
    }
}

/// Group, version and kind of a top-level type.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gvk {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl Gvk {
    pub fn new(group: &str, version: &str, kind: &str) -> Gvk {
        Gvk {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
        }
    }

    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Parses an `apiVersion` (`apps/v1`, `v1`) and a kind.
    pub fn from_api_version(api_version: &str, kind: &str) -> Gvk {
        match api_version.split_once('/') {
            Some((g, v)) => Gvk::new(g, v, kind),
            None => Gvk::new("", api_version, kind),
        }
    }
}

/// A named definition of the catalog.
#[derive(Clone, Debug)]
pub struct Definition {
    /// `io.k8s.api.apps.v1.Deployment`.
    pub name: String,
    pub ty: Type,
    /// The kinds this definition is the top-level type of (usually one; empty for
    /// definitions that are only parts of other types).
    pub gvks: Vec<Gvk>,
}

impl Definition {
    /// The declared fields, when the definition is a struct.
    pub fn fields(&self) -> Option<&BTreeMap<String, Field>> {
        match &self.ty {
            Type::Struct(s) => Some(&s.fields),
            _ => None,
        }
    }
}
