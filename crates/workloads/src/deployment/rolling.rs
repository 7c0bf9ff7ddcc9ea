//! The rolling-update arithmetic of upstream's deployment controller, as pure functions:
//! maxSurge/maxUnavailable resolution (percentages of the desired replicas, surge rounded
//! up and unavailability down, never both zero), how far the new ReplicaSet may grow, how
//! far the old ones may shrink, and proportional scaling of a Deployment mid-rollout.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::Error;

/// An IntOrString as a count of `total`: an int as is, a percentage rounded up or down.
pub fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> Result<i32, Error> {
    match v {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(s) => {
            let pct: i64 = s
                .strip_suffix('%')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "invalid value for IntOrString: invalid value {s:?}"
                    ))
                })?;
            let product = pct * i64::from(total);
            let v = if round_up {
                (product + 99).div_euclid(100)
            } else {
                product.div_euclid(100)
            };
            Ok(v as i32)
        }
    }
}

/// Upstream's `ResolveFenceposts`: (maxSurge, maxUnavailable) for `desired` replicas;
/// defaults 25 % each; if both resolve to 0, maxUnavailable is 1.
pub fn resolve_fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i32,
) -> Result<(i32, i32), Error> {
    let quarter = IntOrString::String("25%".into());
    let surge = scaled_value(max_surge.unwrap_or(&quarter), desired, true)?;
    let unavailable = scaled_value(max_unavailable.unwrap_or(&quarter), desired, false)?;
    if surge == 0 && unavailable == 0 {
        return Ok((0, 1));
    }
    Ok((surge, unavailable))
}

/// The new ReplicaSet's size for a rolling update: grow by what maxSurge leaves over the
/// current total of all ReplicaSets' `spec.replicas`, never past `desired`.
pub fn new_rs_replicas(desired: i32, max_surge: i32, total_spec: i32, new_spec: i32) -> i32 {
    let max_total = desired + max_surge;
    if total_spec >= max_total {
        return new_spec;
    }
    let up = (max_total - total_spec).min(desired - new_spec).max(0);
    new_spec + up
}

/// How many old pods may go at most while keeping `desired - maxUnavailable` available,
/// counting the new ReplicaSet's not-yet-available pods as unavailable.
pub fn max_scaled_down(
    desired: i32,
    max_unavailable: i32,
    total_spec: i32,
    new_spec: i32,
    new_available: i32,
) -> i32 {
    let min_available = desired - max_unavailable;
    let new_unavailable = new_spec - new_available;
    total_spec - min_available - new_unavailable
}

/// An old ReplicaSet's numbers: `spec.replicas` and `status.availableReplicas`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OldRs {
    pub spec: i32,
    pub available: i32,
}

/// Upstream's `reconcileOldReplicaSets` plan: first remove unhealthy old pods (oldest
/// ReplicaSet first) within `max_scaled_down`, then scale healthy ones down while more than
/// `desired - maxUnavailable` pods are available. `old` is ordered oldest first; returns
/// each one's new size. `all_available` counts every ReplicaSet's available pods.
pub fn scale_down_old(
    desired: i32,
    max_unavailable: i32,
    max_scaled_down: i32,
    all_available: i32,
    old: &[OldRs],
) -> Vec<i32> {
    let mut sizes: Vec<i32> = old.iter().map(|r| r.spec).collect();
    if max_scaled_down <= 0 {
        return sizes;
    }
    let mut budget = max_scaled_down;
    for (i, r) in old.iter().enumerate() {
        if budget <= 0 {
            break;
        }
        let unhealthy = (r.spec - r.available).max(0);
        let n = unhealthy.min(budget);
        sizes[i] -= n;
        budget -= n;
    }
    let min_available = desired - max_unavailable;
    if all_available <= min_available {
        return sizes;
    }
    // Never below the availability floor by the spec count either (stale status).
    let mut total = (all_available - min_available).min(budget);
    for (i, r) in old.iter().enumerate() {
        if total <= 0 {
            break;
        }
        let healthy = sizes[i].min(r.available);
        let n = healthy.min(total).min(sizes[i]);
        sizes[i] -= n;
        total -= n;
    }
    sizes
}

/// Upstream's proportional share for one ReplicaSet when a Deployment is resized
/// mid-rollout: its size scaled by `(desired + maxSurge) / annotated max-replicas`,
/// minus its size, bounded by what is left to add or remove.
pub fn proportion(
    rs_spec: i32,
    annotated_max: i32,
    desired: i32,
    max_surge: i32,
    to_add: i32,
    added: i32,
) -> i32 {
    if rs_spec == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = if desired == 0 {
        -rs_spec
    } else if annotated_max == 0 {
        0
    } else {
        let size = f64::from(rs_spec) * f64::from(desired + max_surge) / f64::from(annotated_max);
        size.round() as i32 - rs_spec
    };
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> IntOrString {
        IntOrString::String(v.into())
    }

    #[test]
    fn fenceposts_round_as_upstream() {
        assert_eq!(resolve_fenceposts(None, None, 10).unwrap(), (3, 2));
        assert_eq!(resolve_fenceposts(None, None, 1).unwrap(), (1, 0));
        assert_eq!(
            resolve_fenceposts(Some(&IntOrString::Int(0)), Some(&s("10%")), 5).unwrap(),
            (0, 1)
        );
        assert_eq!(
            resolve_fenceposts(Some(&s("50%")), Some(&s("50%")), 5).unwrap(),
            (3, 2)
        );
        assert!(resolve_fenceposts(Some(&s("x%")), None, 5).is_err());
    }

    #[test]
    fn new_rs_grows_within_surge() {
        // 10 desired, surge 3, old still at 10: grow to 3.
        assert_eq!(new_rs_replicas(10, 3, 10, 0), 3);
        // At the ceiling: stay.
        assert_eq!(new_rs_replicas(10, 3, 13, 3), 3);
        // Never past desired.
        assert_eq!(new_rs_replicas(10, 3, 10, 9), 10);
    }

    #[test]
    fn old_rs_shrinks_within_unavailability() {
        // 10 desired, maxUnavailable 2: old 10 available + new 3 unavailable: 2 may go.
        let msd = max_scaled_down(10, 2, 13, 3, 0);
        assert_eq!(msd, 2);
        assert_eq!(
            scale_down_old(
                10,
                2,
                msd,
                10,
                &[OldRs {
                    spec: 10,
                    available: 10
                }]
            ),
            vec![8]
        );
        // Stale status claiming more available pods never breaks the spec-based bound.
        assert_eq!(
            scale_down_old(
                10,
                2,
                0,
                13,
                &[OldRs {
                    spec: 8,
                    available: 10
                }]
            ),
            vec![8]
        );
        // New pods available: 13 available, floor 8 -> remove 5.
        let msd = max_scaled_down(10, 2, 13, 3, 3);
        assert_eq!(msd, 5);
        assert_eq!(
            scale_down_old(
                10,
                2,
                msd,
                13,
                &[OldRs {
                    spec: 10,
                    available: 10
                }]
            ),
            vec![5]
        );
        // Unhealthy old pods go first, oldest ReplicaSet first.
        assert_eq!(
            scale_down_old(
                10,
                2,
                3,
                8,
                &[
                    OldRs {
                        spec: 2,
                        available: 0
                    },
                    OldRs {
                        spec: 8,
                        available: 8
                    }
                ]
            ),
            vec![0, 8]
        );
    }

    #[test]
    fn proportional_scaling() {
        // RS of 5 annotated for max 13 (10 + 3), deployment now 20 (+5 surge): 5*25/13 ≈ 10.
        assert_eq!(proportion(5, 13, 20, 5, 12, 0), 5);
        assert_eq!(proportion(0, 13, 20, 5, 12, 0), 0);
        assert_eq!(proportion(5, 13, 0, 0, -5, 0), -5);
    }
}
