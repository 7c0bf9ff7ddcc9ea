//! Errors, and the field path (`spec.containers[0].image`) they and unknown-field reports
//! name.

use std::fmt;

/// Why bytes could not be decoded or a JSON object could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The data does not start with the `k8s\0` magic of the Kubernetes protobuf envelope.
    #[error(
        "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
    )]
    NotProtobuf,
    /// The envelope carries no kind or no apiVersion.
    #[error("object has no {0} in its type information")]
    MissingTypeMeta(&'static str),
    /// No built-in type has this apiVersion and kind (custom resources have no protobuf form).
    #[error("no protobuf type is known for apiVersion {api_version:?}, kind {kind:?}")]
    UnknownKind { api_version: String, kind: String },
    /// The envelope says the payload is compressed or in a format this crate cannot read.
    #[error("unsupported {what} {value:?} in the protobuf envelope")]
    Unsupported { what: &'static str, value: String },
    /// The bytes are not a valid encoding of the message.
    #[error("malformed protobuf at {path}: {reason}")]
    Malformed { path: String, reason: String },
    /// A JSON value cannot be encoded (wrong type, out of range, bad timestamp, …).
    #[error("cannot encode {path}: {reason}")]
    InvalidValue { path: String, reason: String },
    /// A watch-stream frame announces more bytes than allowed.
    #[error("protobuf frame of {0} bytes is larger than the limit of {1} bytes")]
    FrameTooLarge(usize, usize),
}

/// One step of a path into an object.
#[derive(Clone, Debug)]
pub(crate) enum Seg {
    Field(&'static str),
    Index(usize),
    Key(String),
    /// An unknown field number.
    Number(u32),
    /// An object embedded in a `RawExtension` (its own envelope).
    Embedded,
}

/// The path from the top of the object to the value being worked on.
#[derive(Clone, Debug, Default)]
pub(crate) struct Path(Vec<Seg>);

impl Path {
    pub(crate) fn push(&mut self, seg: Seg) {
        self.0.push(seg);
    }

    pub(crate) fn pop(&mut self) {
        self.0.pop();
    }

    pub(crate) fn malformed(&self, reason: impl fmt::Display) -> Error {
        Error::Malformed {
            path: self.to_string(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn invalid(&self, reason: impl fmt::Display) -> Error {
        Error::InvalidValue {
            path: self.to_string(),
            reason: reason.to_string(),
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("<root>");
        }
        let mut first = true;
        for seg in &self.0 {
            match seg {
                Seg::Field(name) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    f.write_str(name)?;
                }
                Seg::Number(n) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    write!(f, "#{n}")?;
                }
                Seg::Index(i) => write!(f, "[{i}]")?,
                Seg::Key(k) => write!(f, "[{k:?}]")?,
                Seg::Embedded => {}
            }
            first = false;
        }
        Ok(())
    }
}
