//! The catalog of built-in definitions, built once from the generated table.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use crate::generated::DEFINITIONS;
use crate::table::{self, K, L, M, T};
use crate::types::{
    Definition, Field, Gvk, ListKind, ListType, MapKind, MapType, PatchMeta, Scalar, StructType,
    Type,
};

/// Every definition rkube knows, by name and by GVK.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Looked up on every step of a walk through a type (hence the fast hasher).
    by_name: HashMap<String, Definition, foldhash::fast::RandomState>,
    by_gvk: HashMap<Gvk, String>,
}

/// The built-in catalog (Kubernetes v1.33), built on first use.
pub fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(Catalog::from_table)
}

impl Catalog {
    fn from_table() -> Catalog {
        let mut catalog = Catalog::default();
        for table::D(name, kind, gvks) in DEFINITIONS {
            let ty = match kind {
                K::Struct(atomic, fields) => {
                    let fields = fields
                        .iter()
                        .map(|table::F(fname, t, strategy, key, m)| {
                            let key = if key.is_empty() { None } else { Some(*key) };
                            (
                                fname.to_string(),
                                Field {
                                    name: fname.to_string(),
                                    ty: convert(t),
                                    patch: PatchMeta::from_strategy(strategy, key),
                                    map_kind: match m {
                                        M::Inherit => None,
                                        M::Granular => Some(MapKind::Granular),
                                        M::Atomic => Some(MapKind::Atomic),
                                    },
                                },
                            )
                        })
                        .collect();
                    Type::Struct(Arc::new(StructType {
                        fields,
                        map_kind: if *atomic {
                            MapKind::Atomic
                        } else {
                            MapKind::Granular
                        },
                        preserve_unknown: false,
                    }))
                }
                K::Other(t) => convert(t),
            };
            let gvks: Vec<Gvk> = gvks.iter().map(|(g, v, k)| Gvk::new(g, v, k)).collect();
            for gvk in &gvks {
                catalog.by_gvk.insert(gvk.clone(), name.to_string());
            }
            catalog.by_name.insert(
                name.to_string(),
                Definition {
                    name: name.to_string(),
                    ty,
                    gvks,
                },
            );
        }
        catalog
    }

    /// A definition by name (`io.k8s.api.apps.v1.Deployment`).
    pub fn definition(&self, name: &str) -> Option<&Definition> {
        self.by_name.get(name)
    }

    /// The definition of a top-level kind.
    pub fn definition_for_gvk(&self, gvk: &Gvk) -> Option<&Definition> {
        self.by_gvk.get(gvk).and_then(|n| self.by_name.get(n))
    }

    /// The type of a top-level kind, ready for the patch functions.
    pub fn type_for_gvk(&self, gvk: &Gvk) -> Option<Type> {
        self.by_gvk.get(gvk).map(|n| Type::named(n))
    }

    /// All definitions, in no particular order.
    pub fn definitions(&self) -> impl Iterator<Item = &Definition> {
        self.by_name.values()
    }

    /// All top-level kinds and their definition names.
    pub fn kinds(&self) -> impl Iterator<Item = (&Gvk, &str)> {
        self.by_gvk.iter().map(|(g, n)| (g, n.as_str()))
    }
}

fn convert(t: &T) -> Type {
    match t {
        T::Str => Type::Scalar(Scalar::String),
        T::Int => Type::Scalar(Scalar::Integer),
        T::Num => Type::Scalar(Scalar::Number),
        T::Bool => Type::Scalar(Scalar::Boolean),
        T::Untyped => Type::Scalar(Scalar::Untyped),
        T::Deduced => Type::Deduced,
        T::AtomicAny => Type::AtomicAny,
        T::Named(n) => Type::named(n),
        T::List(items, kind) => Type::List(Arc::new(ListType {
            items: convert(items),
            kind: match kind {
                L::Atomic => ListKind::Atomic,
                L::Set => ListKind::Set,
                L::Map(keys, defaults) => ListKind::Map {
                    keys: keys.iter().map(|k| k.to_string()).collect(),
                    key_defaults: defaults
                        .iter()
                        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
                        .collect::<BTreeMap<_, _>>(),
                },
            },
        })),
        T::Map(values, atomic) => Type::Map(Arc::new(MapType {
            values: convert(values),
            map_kind: if *atomic {
                MapKind::Atomic
            } else {
                MapKind::Granular
            },
        })),
    }
}
