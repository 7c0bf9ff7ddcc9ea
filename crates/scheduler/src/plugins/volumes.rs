//! VolumeBinding, the part that needs no provisioning: a pod's PersistentVolumeClaims must
//! exist; an unbound claim with immediate binding makes the pod unschedulable (upstream's
//! "pod has unbound immediate PersistentVolumeClaims"); a bound claim's PersistentVolume
//! node affinity restricts the nodes. Claims of a `WaitForFirstConsumer` class are not
//! bound by the scheduler (no PV matching or provisioning yet): such pods are placed
//! without regard to them.

use k8s_openapi::api::core::v1::{NodeSelector, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use rkube_client::Store;

use super::{Code, Plugin, Status};
use crate::cache::{NodeInfo, PodInfo};
use crate::labels;

pub const ERR_UNBOUND_IMMEDIATE: &str = "pod has unbound immediate PersistentVolumeClaims";
pub const ERR_NODE_CONFLICT: &str = "node(s) had volume node affinity conflict";

/// The informer stores VolumeBinding reads.
#[derive(Clone, Default)]
pub struct Volumes {
    pub claims: Store<PersistentVolumeClaim>,
    pub volumes: Store<PersistentVolume>,
    pub classes: Store<StorageClass>,
}

/// PreFilter state: node affinities of the bound volumes.
#[derive(Default)]
pub struct State {
    node_affinities: Vec<NodeSelector>,
}

impl Volumes {
    pub fn pre_filter(&self, info: &PodInfo) -> Result<State, Status> {
        let mut state = State::default();
        let vols = info.pod.spec.as_ref().and_then(|s| s.volumes.as_ref());
        let reject = |msg: String| {
            Err(Status::new(
                Plugin::VolumeBinding,
                Code::UnschedulableAndUnresolvable,
                msg,
            ))
        };
        for v in vols.into_iter().flatten() {
            let (claim, ephemeral) = if let Some(pvc) = &v.persistent_volume_claim {
                (pvc.claim_name.clone(), false)
            } else if v.ephemeral.is_some() {
                (format!("{}-{}", info.name, v.name), true)
            } else {
                continue;
            };
            let Some(pvc) = self.claims.get(&format!("{}/{}", info.namespace, claim)) else {
                return if ephemeral {
                    reject(format!(
                        "waiting for ephemeral volume controller to create the persistentvolumeclaim \"{claim}\""
                    ))
                } else {
                    reject(format!("persistentvolumeclaim \"{claim}\" not found"))
                };
            };
            if pvc.metadata.deletion_timestamp.is_some() {
                return reject(format!(
                    "persistentvolumeclaim \"{claim}\" is being deleted"
                ));
            }
            let volume_name = pvc
                .spec
                .as_ref()
                .and_then(|s| s.volume_name.clone())
                .filter(|n| !n.is_empty());
            match volume_name {
                Some(pv_name) => {
                    if let Some(sel) = self
                        .volumes
                        .get(&pv_name)
                        .and_then(|pv| pv.spec.clone())
                        .and_then(|s| s.node_affinity)
                        .and_then(|a| a.required)
                    {
                        state.node_affinities.push(sel);
                    }
                }
                None => {
                    let class = pvc
                        .spec
                        .as_ref()
                        .and_then(|s| s.storage_class_name.clone())
                        .unwrap_or_default();
                    let delayed = !class.is_empty()
                        && self.classes.get(&class).is_some_and(|c| {
                            c.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer")
                        });
                    if !delayed {
                        return reject(ERR_UNBOUND_IMMEDIATE.to_string());
                    }
                }
            }
        }
        Ok(state)
    }
}

impl State {
    pub fn filter(&self, node: &NodeInfo) -> Result<(), Status> {
        let Some(n) = &node.node else {
            return Ok(());
        };
        if self
            .node_affinities
            .iter()
            .all(|sel| labels::node_selector_matches(sel, n))
        {
            Ok(())
        } else {
            Err(Status::new(
                Plugin::VolumeBinding,
                Code::UnschedulableAndUnresolvable,
                ERR_NODE_CONFLICT,
            ))
        }
    }
}
