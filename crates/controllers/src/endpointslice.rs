//! The EndpointSlice controller: for every Service with a selector, EndpointSlices
//! (addressType IPv4, at most [`MAX_ENDPOINTS`] endpoints each, one port set per slice)
//! labelled `kubernetes.io/service-name` and `endpointslice.kubernetes.io/managed-by:
//! endpointslice-controller.k8s.io`, owned by the Service, listing the matching pods with
//! an IP: `ready` (ready and not terminating, or always with publishNotReadyAddresses),
//! `serving` (ready) and `terminating` conditions, nodeName, zone (the node's
//! `topology.kubernetes.io/zone`) and a targetRef. Existing slices are reused in order;
//! surplus ones are deleted. Slices of other managers are left alone.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::watcher;
use rkube_client::{Change, Informer, RateLimiter, Store, WorkQueue, strip_managed_fields};

use crate::base::{self, Error, Tasks, is_not_found};
use crate::endpoints::{self, Inputs, TRIGGER_TIME};
use crate::shared::Shared;

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// Upstream's default `--max-endpoints-per-slice`.
pub const MAX_ENDPOINTS: usize = 100;

const BY_SERVICE: &str = "service";

/// A slice's port set: (name, port, protocol), sorted.
type PortKey = Vec<(String, i32, String)>;

/// One desired slice: its ports and endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct SliceContent {
    pub ports: Vec<EndpointPort>,
    pub endpoints: Vec<Endpoint>,
}

/// The slices' contents for a Service, its namespace's pods and node zones.
pub fn desired_slices(
    svc: &Service,
    pods: &[Arc<Pod>],
    zone_of: &dyn Fn(&str) -> Option<String>,
    max: usize,
) -> Vec<SliceContent> {
    let Some(sel) = endpoints::selector(svc) else {
        return Vec::new();
    };
    let spec = svc.spec.clone().unwrap_or_default();
    let publish = spec.publish_not_ready_addresses.unwrap_or(false);
    let ports = spec.ports.unwrap_or_default();
    let mut groups: BTreeMap<PortKey, Vec<(String, Endpoint)>> = BTreeMap::new();
    for pod in pods {
        if !endpoints::selector_matches(sel, pod.metadata.labels.as_ref())
            || !endpoints::should_be_in_endpoints(pod, true)
        {
            continue;
        }
        let Some(ip) = endpoints::pod_ip(pod) else {
            continue;
        };
        let mut key: Vec<(String, i32, String)> = ports
            .iter()
            .filter_map(|p| {
                endpoints::resolve_target_port(p, pod).map(|n| {
                    (
                        p.name.clone().unwrap_or_default(),
                        n,
                        p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    )
                })
            })
            .collect();
        if key.is_empty() && !ports.is_empty() {
            continue;
        }
        key.sort();
        let terminating = pod.metadata.deletion_timestamp.is_some();
        let serving = endpoints::pod_ready(pod);
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
        let ep = Endpoint {
            addresses: vec![ip.to_string()],
            conditions: Some(EndpointConditions {
                ready: Some(publish || (serving && !terminating)),
                serving: Some(serving),
                terminating: Some(terminating),
            }),
            hostname: endpoints::hostname_for(pod, svc),
            zone: node.as_deref().and_then(zone_of),
            node_name: node,
            target_ref: Some(endpoints::pod_reference(pod)),
            ..Default::default()
        };
        groups
            .entry(key)
            .or_default()
            .push((pod.metadata.name.clone().unwrap_or_default(), ep));
    }
    let mut out = Vec::new();
    for (key, mut eps) in groups {
        eps.sort_by(|a, b| a.0.cmp(&b.0));
        let ports: Vec<EndpointPort> = key
            .into_iter()
            .map(|(name, port, protocol)| EndpointPort {
                name: Some(name),
                port: Some(port),
                protocol: Some(protocol),
                app_protocol: None,
            })
            .collect();
        for chunk in eps.chunks(max.max(1)) {
            out.push(SliceContent {
                ports: ports.clone(),
                endpoints: chunk.iter().map(|(_, e)| e.clone()).collect(),
            });
        }
    }
    out
}

/// Runs the controller until dropped.
pub async fn run(client: kube::Client, shared: Arc<Shared>) {
    let queue: WorkQueue<String> = WorkQueue::new(RateLimiter::default_controller());
    let mut tasks = Tasks::new();
    let inputs = Arc::new(endpoints::inputs(&shared, &queue));
    let q = queue.clone();
    let slices_informer = Informer::new(
        Api::<EndpointSlice>::all(client.clone()),
        watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}")),
    )
    .with_transform(strip_managed_fields)
    .with_index(BY_SERVICE, |s: &EndpointSlice| {
        let svc = s
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
            .cloned()
            .unwrap_or_default();
        vec![format!("{}/{svc}", base::ns_of(s))]
    })
    .on_change(move |c: &Change<EndpointSlice>| {
        if !matches!(c, Change::Added(_)) {
            let s = c.object();
            if let Some(svc) = s
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
            {
                q.add(format!("{}/{svc}", base::ns_of(s.as_ref())));
            }
        }
    });
    let slices = slices_informer.store();
    let nodes = shared.nodes.store();
    tasks.spawn(slices_informer.run());
    inputs.synced(&shared).await;
    shared.nodes.start().await;
    slices.wait_synced().await;
    base::spawn_workers(&mut tasks, "endpointslice", &queue, 4, move |key| {
        let (client, inputs, slices, nodes) = (
            client.clone(),
            inputs.clone(),
            slices.clone(),
            nodes.clone(),
        );
        async move { reconcile(&client, &inputs, &slices, &nodes, &key).await }
    });
    tasks.join().await;
}

async fn reconcile(
    client: &kube::Client,
    inputs: &Inputs,
    slices: &Store<EndpointSlice>,
    nodes: &Store<Node>,
    key: &str,
) -> Result<(), Error> {
    let (ns, name) = base::split_key(key);
    let ns = ns.unwrap_or("default");
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    let mut existing = slices.by_index(BY_SERVICE, key);
    existing.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let svc = inputs.services.get(key);
    let desired = match &svc {
        Some(svc) if endpoints::selector(svc).is_some() => {
            let zone_of = |node: &str| {
                nodes
                    .get(node)
                    .and_then(|n| n.metadata.labels.as_ref()?.get(ZONE_LABEL).cloned())
            };
            desired_slices(svc, &inputs.pods_in(ns), &zone_of, MAX_ENDPOINTS)
        }
        // Gone or selector-less: our slices go (the garbage collector would too).
        _ => Vec::new(),
    };
    let Some(svc) = svc.filter(|s| endpoints::selector(s).is_some()) else {
        for s in existing {
            delete(&api, &s).await?;
        }
        return Ok(());
    };
    let mut labels = endpoints::service_labels(&svc);
    labels.insert(SERVICE_NAME_LABEL.into(), name.into());
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    let owner = OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: name.into(),
        uid: svc.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let trigger = inputs.trigger(key);
    // Upstream keeps one (empty) slice for a Service with no endpoints.
    let desired = if desired.is_empty() {
        vec![SliceContent {
            ports: Vec::new(),
            endpoints: Vec::new(),
        }]
    } else {
        desired
    };
    let mut existing = existing.into_iter();
    for content in desired {
        let current = existing.next();
        let up_to_date = current.as_ref().is_some_and(|c| {
            c.endpoints == content.endpoints
                && c.ports.clone().unwrap_or_default() == content.ports
                && c.metadata.labels.as_ref() == Some(&labels)
                && c.address_type == "IPv4"
        });
        if up_to_date {
            continue;
        }
        let mut annotations = current
            .as_ref()
            .and_then(|c| c.metadata.annotations.clone())
            .unwrap_or_default();
        if let Some(t) = &trigger {
            annotations.insert(TRIGGER_TIME.into(), t.clone());
        }
        let slice = EndpointSlice {
            metadata: ObjectMeta {
                name: current.as_ref().and_then(|c| c.metadata.name.clone()),
                generate_name: Some(format!("{name}-")),
                namespace: Some(ns.into()),
                labels: Some(labels.clone()),
                annotations: (!annotations.is_empty()).then_some(annotations),
                owner_references: Some(vec![owner.clone()]),
                resource_version: current
                    .as_ref()
                    .and_then(|c| c.metadata.resource_version.clone()),
                ..Default::default()
            },
            address_type: "IPv4".into(),
            endpoints: content.endpoints,
            ports: Some(content.ports),
        };
        let result = match &current {
            Some(c) => {
                let n = c.metadata.name.clone().unwrap_or_default();
                api.replace(&n, &PostParams::default(), &slice)
                    .await
                    .map(|_| ())
            }
            None => api.create(&PostParams::default(), &slice).await.map(|_| ()),
        };
        match result {
            Ok(()) => {}
            Err(kube::Error::Api(s)) if s.code == 403 && current.is_none() => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    for surplus in existing {
        delete(&api, &surplus).await?;
    }
    Ok(())
}

async fn delete(api: &Api<EndpointSlice>, s: &EndpointSlice) -> Result<(), Error> {
    let n = s.metadata.name.clone().unwrap_or_default();
    match api.delete(&n, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(i: usize, ready: bool, deleting: bool) -> Arc<Pod> {
        let mut meta =
            json!({"name": format!("p{i:03}"), "namespace": "ns", "labels": {"app": "web"}});
        if deleting {
            meta["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
        }
        Arc::new(
            serde_json::from_value(json!({
                "metadata": meta,
                "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "x"}]},
                "status": {"phase": "Running", "podIP": format!("10.42.{}.{}", i / 200, i % 200 + 1),
                    "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]},
            }))
            .unwrap(),
        )
    }

    #[test]
    fn slices_hold_at_most_the_maximum_and_carry_conditions() {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        }))
        .unwrap();
        let mut pods: Vec<Arc<Pod>> = (0..250).map(|i| pod(i, true, false)).collect();
        pods.push(pod(250, false, false));
        pods.push(pod(251, true, true));
        let zone = |_: &str| Some("zone-a".to_string());
        let slices = desired_slices(&svc, &pods, &zone, MAX_ENDPOINTS);
        let sizes: Vec<usize> = slices.iter().map(|s| s.endpoints.len()).collect();
        assert_eq!(sizes, [100, 100, 52]);
        assert_eq!(slices[0].ports[0].port, Some(8080));
        let last = &slices[2].endpoints;
        let c = |i: usize| last[i].conditions.clone().unwrap();
        // p250: not ready; p251: ready but terminating.
        assert_eq!(
            (c(50).ready, c(50).serving, c(50).terminating),
            (Some(false), Some(false), Some(false))
        );
        assert_eq!(
            (c(51).ready, c(51).serving, c(51).terminating),
            (Some(false), Some(true), Some(true))
        );
        assert_eq!(last[0].zone.as_deref(), Some("zone-a"));
        assert_eq!(last[0].node_name.as_deref(), Some("n1"));
    }
}
