//! Field paths as upstream's `field.Path` prints them: `spec.containers[0].image`,
//! `metadata.labels[app]`.

use std::fmt;

/// A path to a field, built from a root by [`Path::child`], [`Path::index`] and [`Path::key`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path(String);

impl Path {
    /// A root path (`metadata`, `spec`, …). An empty root is allowed and prints nothing.
    pub fn new(root: &str) -> Self {
        Path(root.to_string())
    }

    /// `parent.name` (or just `name` under an empty root).
    pub fn child(&self, name: &str) -> Path {
        if self.0.is_empty() {
            Path(name.to_string())
        } else {
            Path(format!("{}.{name}", self.0))
        }
    }

    /// Several children at once: `p.children(&["spec", "template"])`.
    pub fn children(&self, names: &[&str]) -> Path {
        names.iter().fold(self.clone(), |p, n| p.child(n))
    }

    /// `parent[i]`.
    pub fn index(&self, i: usize) -> Path {
        Path(format!("{}[{i}]", self.0))
    }

    /// `parent[key]` (the key is not quoted, as upstream prints it).
    pub fn key(&self, key: &str) -> Path {
        Path(format!("{}[{key}]", self.0))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Path;

    #[test]
    fn prints_like_upstream() {
        let p = Path::new("spec")
            .child("containers")
            .index(0)
            .child("image");
        assert_eq!(p.to_string(), "spec.containers[0].image");
        assert_eq!(
            Path::new("metadata").child("labels").key("app").to_string(),
            "metadata.labels[app]"
        );
        assert_eq!(Path::new("").child("spec").to_string(), "spec");
    }
}
