//! Image names as Kubernetes users write them, normalised the way Docker and containerd do:
//! `busybox` is `docker.io/library/busybox:latest`, `registry:5000/app` is
//! `registry:5000/app:latest`, a digest reference keeps its digest.

use oci_client::Reference;

use crate::{Error, Result};

/// Parses and normalises an image reference.
pub fn parse(name: &str) -> Result<Reference> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::InvalidReference {
            reference: name.into(),
            reason: "empty".into(),
        });
    }
    name.parse::<Reference>()
        .map_err(|e| Error::InvalidReference {
            reference: name.into(),
            reason: e.to_string(),
        })
}

/// The normalised `registry/repository:tag` (or `…@digest`) form of a name.
pub fn normalize(name: &str) -> Result<String> {
    Ok(parse(name)?.whole())
}

/// `registry/repository` of a reference (for repo digests).
pub fn repository(r: &Reference) -> String {
    format!("{}/{}", r.registry(), r.repository())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_docker() {
        assert_eq!(
            normalize("busybox").unwrap(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(normalize("a/b:1").unwrap(), "docker.io/a/b:1");
        assert_eq!(
            normalize("127.0.0.1:5000/x/y:v2").unwrap(),
            "127.0.0.1:5000/x/y:v2"
        );
        assert!(normalize("").is_err());
        assert!(normalize("library/UPPER").is_err());
        assert!(normalize("a b").is_err());
    }
}
