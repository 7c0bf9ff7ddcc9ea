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
            self.joined(&[".", name])
        }
    }

    /// The path followed by `parts` (paths are built for every field validated, error or
    /// not, so this avoids the formatting machinery).
    fn joined(&self, parts: &[&str]) -> Path {
        let len = self.0.len() + parts.iter().map(|p| p.len()).sum::<usize>();
        let mut s = String::with_capacity(len);
        s.push_str(&self.0);
        for p in parts {
            s.push_str(p);
        }
        Path(s)
    }

    /// Several children at once: `p.children(&["spec", "template"])`.
    pub fn children(&self, names: &[&str]) -> Path {
        names.iter().fold(self.clone(), |p, n| p.child(n))
    }

    /// `parent[i]`.
    pub fn index(&self, i: usize) -> Path {
        let digits = Digits::new(i);
        self.joined(&["[", digits.as_str(), "]"])
    }

    /// `parent[key]` (the key is not quoted, as upstream prints it).
    pub fn key(&self, key: &str) -> Path {
        self.joined(&["[", key, "]"])
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The decimal digits of an index, without allocating.
struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    fn new(mut n: usize) -> Digits {
        let mut buf = [0u8; 20];
        let mut start = buf.len();
        loop {
            start -= 1;
            buf[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        Digits { buf, start }
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits are written.
        std::str::from_utf8(&self.buf[self.start..]).unwrap_or("0")
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
        assert_eq!(Path::new("items").index(1207).to_string(), "items[1207]");
        assert_eq!(
            Path::new("x").index(usize::MAX).to_string(),
            format!("x[{}]", usize::MAX)
        );
    }
}
