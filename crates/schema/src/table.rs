//! The compact, `static` form of the built-in type table that `examples/gen.rs` writes into
//! `generated.rs`. [`crate::builtin`] turns it into the runtime model of [`crate::types`].

/// A type in the table.
pub(crate) enum T {
    Str,
    Int,
    Num,
    Bool,
    Untyped,
    Deduced,
    AtomicAny,
    Named(&'static str),
    /// Items and list kind.
    List(&'static T, L),
    /// Values, and whether the map is atomic.
    Map(&'static T, bool),
}

/// A list kind in the table.
pub(crate) enum L {
    Atomic,
    Set,
    /// Keys, and defaults (key field, string value) for key fields items may leave out.
    Map(
        &'static [&'static str],
        &'static [(&'static str, &'static str)],
    ),
}

/// Field-level map kind override.
#[derive(Clone, Copy)]
pub(crate) enum M {
    Inherit,
    Granular,
    /// No built-in field needs it today; kept so the generator can express it.
    #[allow(dead_code)]
    Atomic,
}

/// A field: JSON name, type, patch strategy (`""` for none), patch merge key (`""` for
/// none), map kind override.
pub(crate) struct F(
    pub &'static str,
    pub T,
    pub &'static str,
    pub &'static str,
    pub M,
);

/// What a definition is.
pub(crate) enum K {
    /// A struct: atomic or not, and its fields.
    Struct(bool, &'static [F]),
    /// A non-struct definition (`Quantity`, `RawExtension`, ...).
    Other(T),
}

/// A definition: name, shape, and the (group, version, kind)s it is the top-level type of.
pub(crate) struct D(
    pub &'static str,
    pub K,
    pub &'static [(&'static str, &'static str, &'static str)],
);
