//! Upstream's controller expectations: after a sync asks for N creations and some
//! deletions, the controller does not act on that owner again until its informer has
//! seen them (or five minutes pass), so a lagging cache never causes double creates.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long expectations stay binding (upstream's `ExpectationsTimeout`).
pub const TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug)]
struct Entry {
    adds: i64,
    /// Keys of pods whose deletion has not been observed yet.
    dels: HashSet<String>,
    at: Instant,
}

/// Expectations per owner key.
#[derive(Debug, Default)]
pub struct Expectations {
    inner: Mutex<HashMap<String, Entry>>,
}

impl Expectations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the owner may be synced (all expected changes seen, expired, or none).
    pub fn satisfied(&self, key: &str) -> bool {
        match self.lock().get(key) {
            None => true,
            Some(e) => (e.adds <= 0 && e.dels.is_empty()) || e.at.elapsed() > TIMEOUT,
        }
    }

    /// Expects `adds` creations and the deletion of `dels`.
    pub fn expect(&self, key: &str, adds: usize, dels: impl IntoIterator<Item = String>) {
        self.lock().insert(
            key.to_string(),
            Entry {
                adds: adds as i64,
                dels: dels.into_iter().collect(),
                at: Instant::now(),
            },
        );
    }

    /// One expected creation was seen (or will never happen).
    pub fn creation_observed(&self, key: &str) {
        if let Some(e) = self.lock().get_mut(key) {
            e.adds -= 1;
        }
    }

    /// The deletion of `pod` was seen (or will never happen).
    pub fn deletion_observed(&self, key: &str, pod: &str) {
        if let Some(e) = self.lock().get_mut(key) {
            e.dels.remove(pod);
        }
    }

    /// Forgets the owner (it was deleted).
    pub fn delete(&self, key: &str) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn satisfied_after_observations() {
        let e = Expectations::default();
        assert!(e.satisfied("ns/a"));
        e.expect("ns/a", 2, ["ns/p1".to_string()]);
        assert!(!e.satisfied("ns/a"));
        e.creation_observed("ns/a");
        e.creation_observed("ns/a");
        assert!(!e.satisfied("ns/a"));
        e.deletion_observed("ns/a", "ns/p1");
        assert!(e.satisfied("ns/a"));
        e.expect("ns/a", 1, []);
        e.delete("ns/a");
        assert!(e.satisfied("ns/a"));
    }
}
