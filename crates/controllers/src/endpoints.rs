//! The Endpoints controller: for every Service with a selector, an Endpoints object of the
//! same name listing the matching pods that have an IP — ready ones under `addresses`,
//! others under `notReadyAddresses` (all under `addresses` with
//! `publishNotReadyAddresses`) — with each Service port's target resolved per pod (named
//! target ports looked up in the pod's containers), grouped into subsets by port set. The
//! `endpoints.kubernetes.io/last-change-trigger-time` annotation records when the change
//! that caused the update was observed. Services without a selector are left alone; the
//! Endpoints of a deleted Service are deleted.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
    ServicePort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::watcher;
use rkube_client::{Change, Informer, RateLimiter, Store, WorkQueue, key_of, strip_managed_fields};

use crate::base::{self, Error, Tasks, is_conflict, is_not_found};
use crate::shared::Shared;

pub const TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

/// Whether a label selector map matches labels.
pub fn selector_matches(
    selector: &BTreeMap<String, String>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The Service's selector, when it has a non-empty one.
pub fn selector(svc: &Service) -> Option<&BTreeMap<String, String>> {
    svc.spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .filter(|s| !s.is_empty())
}

/// Whether the pod's Ready condition is True.
pub fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub fn pod_ip(pod: &Pod) -> Option<&str> {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .filter(|ip| !ip.is_empty())
}

pub fn terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// Upstream's `ShouldPodBeInEndpoints`.
pub fn should_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    if terminal(pod) || pod_ip(pod).is_none() {
        return false;
    }
    include_terminating || pod.metadata.deletion_timestamp.is_none()
}

/// The port a Service port targets on `pod`: a number, a container port found by name
/// (and protocol), or the Service port itself when no target is given.
pub fn resolve_target_port(port: &ServicePort, pod: &Pod) -> Option<i32> {
    let protocol = port.protocol.as_deref().unwrap_or("TCP");
    match &port.target_port {
        None => Some(port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            let spec = pod.spec.as_ref()?;
            spec.containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
                .or_else(|| name.parse().ok())
        }
    }
}

pub fn pod_reference(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        ..Default::default()
    }
}

/// The pod's hostname for a Service: set when its `hostname` is set and its `subdomain`
/// names the Service.
pub fn hostname_for(pod: &Pod, svc: &Service) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let host = spec.hostname.as_ref().filter(|h| !h.is_empty())?;
    (spec.subdomain.as_deref() == svc.metadata.name.as_deref()).then(|| host.clone())
}

/// The Endpoints subsets for a Service and its namespace's pods.
pub fn desired_subsets(svc: &Service, pods: &[Arc<Pod>]) -> Vec<EndpointSubset> {
    let Some(sel) = selector(svc) else {
        return Vec::new();
    };
    let spec = svc.spec.clone().unwrap_or_default();
    let publish = spec.publish_not_ready_addresses.unwrap_or(false);
    let ports = spec.ports.unwrap_or_default();
    // Port set (sorted) → (ready, not ready) addresses.
    type Group = (Vec<EndpointAddress>, Vec<EndpointAddress>);
    let mut groups: BTreeMap<Vec<(String, i32, String)>, Group> = BTreeMap::new();
    for pod in pods {
        if !selector_matches(sel, pod.metadata.labels.as_ref())
            || !should_be_in_endpoints(pod, publish)
        {
            continue;
        }
        let Some(ip) = pod_ip(pod) else { continue };
        let mut key: Vec<(String, i32, String)> = ports
            .iter()
            .filter_map(|p| {
                resolve_target_port(p, pod).map(|n| {
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
        let addr = EndpointAddress {
            ip: ip.to_string(),
            hostname: hostname_for(pod, svc),
            node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            target_ref: Some(pod_reference(pod)),
        };
        let group = groups.entry(key).or_default();
        if publish || pod_ready(pod) {
            group.0.push(addr);
        } else {
            group.1.push(addr);
        }
    }
    groups
        .into_iter()
        .map(|(ports, (mut ready, mut not_ready))| {
            ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            not_ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            EndpointSubset {
                addresses: (!ready.is_empty()).then_some(ready),
                not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                ports: (!ports.is_empty()).then(|| {
                    ports
                        .into_iter()
                        .map(|(name, port, protocol)| EndpointPort {
                            name: (!name.is_empty()).then_some(name),
                            port,
                            protocol: Some(protocol),
                            app_protocol: None,
                        })
                        .collect()
                }),
            }
        })
        .collect()
}

/// The labels an Endpoints (or EndpointSlice) of a Service carries.
pub fn service_labels(svc: &Service) -> BTreeMap<String, String> {
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    let headless = svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None");
    if headless {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    } else {
        labels.remove(HEADLESS_LABEL);
    }
    labels
}

/// RFC 3339 with nanoseconds, as upstream writes trigger times.
pub fn trigger_time_now() -> String {
    Timestamp::now().to_string()
}

/// What the Endpoints and EndpointSlice controllers both watch: Services and pods, with
/// pods indexed by namespace, and the last time a change for each Service was seen.
pub(crate) struct Inputs {
    pub services: Store<Service>,
    pub pods: Store<Pod>,
    pub triggers: Arc<Mutex<HashMap<String, String>>>,
}

const BY_NAMESPACE: &str = "namespace";

/// Registers handlers on the shared Service and pod informers feeding `queue` with
/// Service keys.
pub(crate) fn inputs(shared: &Shared, queue: &WorkQueue<String>) -> Inputs {
    let triggers: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    shared
        .services
        .index(BY_NAMESPACE, |s: &Service| vec![base::ns_of(s)]);
    shared
        .pods
        .index(BY_NAMESPACE, |p: &Pod| vec![base::ns_of(p)]);
    let services = shared.services.store();
    let (q, t) = (queue.clone(), triggers.clone());
    shared.services.on_change(move |c: &Change<Service>| {
        let key = key_of(c.object().as_ref());
        if !matches!(c, Change::Deleted(_)) {
            lock(&t).insert(key.clone(), trigger_time_now());
        }
        q.add(key);
    });
    let (q, t, svc) = (queue.clone(), triggers.clone(), services.clone());
    shared.pods.on_change(move |c: &Change<Pod>| {
        let (old, new) = match c {
            Change::Added(p) | Change::Deleted(p) => (None, p),
            Change::Updated { old, new } => (Some(old), new),
        };
        let ns = base::ns_of(new.as_ref());
        for s in svc.by_index(BY_NAMESPACE, &ns) {
            let Some(sel) = selector(&s) else { continue };
            let hit = selector_matches(sel, new.metadata.labels.as_ref())
                || old.is_some_and(|o| selector_matches(sel, o.metadata.labels.as_ref()));
            if hit {
                let key = key_of(s.as_ref());
                lock(&t).insert(key.clone(), trigger_time_now());
                q.add(key);
            }
        }
    });
    Inputs {
        services,
        pods: shared.pods.store(),
        triggers,
    }
}

impl Inputs {
    pub async fn synced(&self, shared: &Shared) {
        shared.services.start().await;
        shared.pods.start().await;
    }

    pub fn pods_in(&self, ns: &str) -> Vec<Arc<Pod>> {
        self.pods.by_index(BY_NAMESPACE, ns)
    }

    pub fn trigger(&self, key: &str) -> Option<String> {
        lock(&self.triggers).get(key).cloned()
    }

    pub fn forget_trigger(&self, key: &str) {
        lock(&self.triggers).remove(key);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs the controller until dropped.
pub async fn run(client: kube::Client, shared: Arc<Shared>) {
    let queue: WorkQueue<String> = WorkQueue::new(RateLimiter::default_controller());
    let mut tasks = Tasks::new();
    let inputs = Arc::new(inputs(&shared, &queue));
    let endpoints_informer = Informer::new(
        Api::<Endpoints>::all(client.clone()),
        watcher::Config::default(),
    )
    .with_transform(strip_managed_fields);
    let endpoints = endpoints_informer.store();
    let q = queue.clone();
    let endpoints_informer = endpoints_informer.on_change(move |c: &Change<Endpoints>| {
        // Someone else changed or deleted ours: put it right.
        if !matches!(c, Change::Added(_)) {
            q.add(key_of(c.object().as_ref()));
        }
    });
    tasks.spawn(endpoints_informer.run());
    inputs.synced(&shared).await;
    endpoints.wait_synced().await;
    base::spawn_workers(&mut tasks, "endpoints", &queue, 4, move |key| {
        let (client, inputs, endpoints) = (client.clone(), inputs.clone(), endpoints.clone());
        async move { reconcile(&client, &inputs, &endpoints, &key).await }
    });
    tasks.join().await;
}

async fn reconcile(
    client: &kube::Client,
    inputs: &Inputs,
    endpoints: &Store<Endpoints>,
    key: &str,
) -> Result<(), Error> {
    let (ns, name) = base::split_key(key);
    let ns = ns.unwrap_or("default");
    let api: Api<Endpoints> = Api::namespaced(client.clone(), ns);
    let current = endpoints.get(key);
    let Some(svc) = inputs.services.get(key) else {
        inputs.forget_trigger(key);
        // The Service is gone: so are its Endpoints (only those a selector made).
        if current.is_some() {
            match api.delete(name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        return Ok(());
    };
    if selector(&svc).is_none() {
        return Ok(());
    }
    let subsets = desired_subsets(&svc, &inputs.pods_in(ns));
    let labels = service_labels(&svc);
    if let Some(cur) = &current {
        let same_subsets = cur.subsets.clone().unwrap_or_default() == subsets;
        let same_labels = cur.metadata.labels.clone().unwrap_or_default() == labels;
        if same_subsets && same_labels {
            return Ok(());
        }
    }
    let mut annotations = current
        .as_ref()
        .and_then(|c| c.metadata.annotations.clone())
        .unwrap_or_default();
    if let Some(t) = inputs.trigger(key) {
        annotations.insert(TRIGGER_TIME.into(), t);
    }
    let mut ep = Endpoints {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..Default::default()
        },
        subsets: (!subsets.is_empty()).then_some(subsets),
    };
    let result = match &current {
        None => api.create(&PostParams::default(), &ep).await.map(|_| ()),
        Some(cur) => {
            ep.metadata.resource_version = cur.metadata.resource_version.clone();
            api.replace(name, &PostParams::default(), &ep)
                .await
                .map(|_| ())
        }
    };
    match result {
        Ok(()) => Ok(()),
        // A namespace going away refuses new content.
        Err(kube::Error::Api(s)) if s.code == 403 && current.is_none() => Ok(()),
        Err(e) if is_conflict(&e) => Err(e.into()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, ip: &str, ready: bool, labels: serde_json::Value) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"), "labels": labels},
                "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "x",
                    "ports": [{"name": "http", "containerPort": 8080}]}]},
                "status": {"phase": "Running", "podIP": ip,
                    "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]},
            }))
            .unwrap(),
        )
    }

    fn svc(publish: bool) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"selector": {"app": "web"}, "publishNotReadyAddresses": publish,
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        }))
        .unwrap()
    }

    #[test]
    fn ready_and_not_ready_pods_with_named_ports() {
        let pods = vec![
            pod("a", "10.42.0.3", true, json!({"app": "web"})),
            pod("b", "10.42.0.2", false, json!({"app": "web"})),
            pod("c", "10.42.0.4", true, json!({"app": "other"})),
        ];
        let subsets = desired_subsets(&svc(false), &pods);
        assert_eq!(subsets.len(), 1);
        let s = &subsets[0];
        let ready: Vec<&str> = s
            .addresses
            .iter()
            .flatten()
            .map(|a| a.ip.as_str())
            .collect();
        let not_ready: Vec<&str> = s
            .not_ready_addresses
            .iter()
            .flatten()
            .map(|a| a.ip.as_str())
            .collect();
        assert_eq!(ready, ["10.42.0.3"]);
        assert_eq!(not_ready, ["10.42.0.2"]);
        assert_eq!(s.ports.as_ref().unwrap()[0].port, 8080);
        assert_eq!(
            s.addresses.as_ref().unwrap()[0]
                .target_ref
                .as_ref()
                .unwrap()
                .name
                .as_deref(),
            Some("a")
        );
        let published = desired_subsets(&svc(true), &pods);
        assert_eq!(published[0].addresses.as_ref().unwrap().len(), 2);
        assert!(published[0].not_ready_addresses.is_none());
    }

    #[test]
    fn selectorless_services_have_no_subsets() {
        let mut s = svc(false);
        s.spec.as_mut().unwrap().selector = None;
        assert!(selector(&s).is_none());
        assert!(
            desired_subsets(&s, &[pod("a", "10.0.0.1", true, json!({"app": "web"}))]).is_empty()
        );
    }
}
