//! core/v1 kinds: defaults, invalid objects with upstream's messages, update rules.

mod common;

use common::*;
use serde_json::{Value, json};

fn pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"}, "spec": spec})
}

#[test]
fn pod_defaults() {
    let p = defaulted(pod(json!({"containers": [
        {"name": "a", "image": "nginx", "ports": [{"containerPort": 80}],
         "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
         "livenessProbe": {"httpGet": {"port": 80}}},
        {"name": "b", "image": "busybox:1.36"},
        {"name": "c", "image": "repo/x:latest"}
    ]})));
    let s = &p["spec"];
    assert_eq!(s["restartPolicy"], "Always");
    assert_eq!(s["terminationGracePeriodSeconds"], 30);
    assert_eq!(s["dnsPolicy"], "ClusterFirst");
    assert_eq!(s["schedulerName"], "default-scheduler");
    assert_eq!(s["securityContext"], json!({}));
    assert_eq!(s["enableServiceLinks"], true);
    let c = &s["containers"][0];
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(c["terminationMessagePolicy"], "File");
    assert_eq!(c["ports"][0]["protocol"], "TCP");
    assert_eq!(
        c["resources"]["requests"],
        json!({"cpu": "500m", "memory": "128Mi"})
    );
    assert_eq!(
        c["livenessProbe"],
        json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
               "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
    );
    assert_eq!(s["containers"][1]["imagePullPolicy"], "IfNotPresent");
    assert_eq!(s["containers"][2]["imagePullPolicy"], "Always");
    let created = prepared(pod(
        json!({"containers": [{"name": "a", "image": "nginx"}]}),
    ));
    assert_eq!(
        created["status"],
        json!({"phase": "Pending", "qosClass": "BestEffort"})
    );
}

#[test]
fn pod_volume_defaults_and_quantities() {
    let p = defaulted(pod(json!({
        "containers": [{"name": "a", "image": "x", "resources": {"requests": {"cpu": 1, "memory": "1024Mi"}}}],
        "volumes": [{"name": "v"}, {"name": "s", "secret": {"secretName": "x"}}, {"name": "c", "configMap": {"name": "x"}}]
    })));
    assert_eq!(p["spec"]["volumes"][0]["emptyDir"], json!({}));
    assert_eq!(p["spec"]["volumes"][1]["secret"]["defaultMode"], 420);
    assert_eq!(p["spec"]["volumes"][2]["configMap"]["defaultMode"], 420);
    assert_eq!(
        p["spec"]["containers"][0]["resources"]["requests"],
        json!({"cpu": "1", "memory": "1Gi"})
    );
}

#[test]
fn pod_invalid_messages() {
    let errs = create_errors(pod(json!({"restartPolicy": "Sometimes", "containers": [
        {"image": "nginx"},
        {"name": "b", "ports": [{"containerPort": 70000}],
         "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "2"}},
         "volumeMounts": [{"name": "data", "mountPath": "/data"}]}
    ]})));
    assert_has(&errs, "spec.containers[0].name: Required value");
    assert_has(&errs, "spec.containers[1].image: Required value");
    assert_has(
        &errs,
        "spec.containers[1].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
    );
    assert_has(
        &errs,
        "spec.containers[1].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1",
    );
    assert_has(
        &errs,
        "spec.containers[1].volumeMounts[0].name: Not found: \"data\"",
    );
    assert_has(
        &errs,
        "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
    );
    let errs = create_errors(pod(
        json!({"nodeName": "n1", "schedulingGates": [{"name": "example.com/wait"}],
        "containers": [{"name": "a", "image": "x"}]}),
    ));
    assert_has(
        &errs,
        "spec.nodeName: Forbidden: cannot be set until all schedulingGates have been cleared",
    );
}

#[test]
fn pod_probe_toleration_and_meta_messages() {
    let mut p = pod(json!({"containers": [{"name": "a", "image": "x",
        "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": -1}}],
        "tolerations": [{"operator": "Equal", "value": "x"}]}));
    p["metadata"]["labels"] = json!({"bad key": "v"});
    p["metadata"]["name"] = json!("Bad_Name");
    let errs = create_errors(p);
    assert_has(
        &errs,
        "spec.containers[0].readinessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0",
    );
    assert_has(
        &errs,
        "spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
    );
    assert_starts(
        &errs,
        "metadata.labels: Invalid value: \"bad key\": name part must consist of alphanumeric characters",
    );
    assert_has(
        &errs,
        "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    );
}

#[test]
fn pod_updates() {
    let old = pod(
        json!({"containers": [{"name": "a", "image": "nginx:1"}], "tolerations": [{"key": "k", "operator": "Exists"}]}),
    );
    // Image changes and toleration additions are allowed.
    let new = pod(json!({"containers": [{"name": "a", "image": "nginx:2"}],
        "tolerations": [{"key": "k", "operator": "Exists"}, {"key": "j", "operator": "Exists"}]}));
    assert_valid(update_errors(old.clone(), new));
    // Anything else is forbidden.
    let new = pod(
        json!({"containers": [{"name": "a", "image": "nginx:1", "command": ["sh"]}], "tolerations": [{"key": "k", "operator": "Exists"}]}),
    );
    let errs = update_errors(old.clone(), new);
    assert_starts(
        &errs,
        "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
    );
    // Removing a toleration is forbidden.
    let new = pod(json!({"containers": [{"name": "a", "image": "nginx:1"}]}));
    assert_has(
        &update_errors(old.clone(), new),
        "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds",
    );
    // Adding a container is forbidden.
    let new = pod(
        json!({"containers": [{"name": "a", "image": "nginx:1"}, {"name": "b", "image": "x"}], "tolerations": [{"key": "k", "operator": "Exists"}]}),
    );
    assert_has(
        &update_errors(old.clone(), new),
        "spec.containers: Forbidden: pod updates may not add or remove containers",
    );
    // Status updates may not move the pod.
    let mut new = old.clone();
    new["spec"]["nodeName"] = json!("n1");
    new["status"] =
        json!({"phase": "Running", "podIP": "10.42.0.5", "podIPs": [{"ip": "10.42.0.5"}]});
    assert_valid(status_errors(old.clone(), new.clone()));
    new["status"]["podIPs"] = json!([{"ip": "not-an-ip"}]);
    assert_has(
        &status_errors(old, new),
        "status.podIPs[0].ip: Invalid value: \"not-an-ip\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
    );
}

fn service(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"}, "spec": spec})
}

#[test]
fn service_defaults() {
    let s = defaulted(service(
        json!({"selector": {"app": "web"}, "ports": [{"port": 80}]}),
    ));
    assert_eq!(s["spec"]["type"], "ClusterIP");
    assert_eq!(s["spec"]["sessionAffinity"], "None");
    assert_eq!(
        s["spec"]["ports"][0],
        json!({"port": 80, "protocol": "TCP", "targetPort": 80})
    );
    assert_eq!(s["spec"]["ipFamilies"], json!(["IPv4"]));
    assert_eq!(s["spec"]["ipFamilyPolicy"], "SingleStack");
    assert_eq!(s["spec"]["internalTrafficPolicy"], "Cluster");
    let lb = defaulted(service(
        json!({"type": "LoadBalancer", "ports": [{"port": 80, "targetPort": "http"}]}),
    ));
    assert_eq!(lb["spec"]["externalTrafficPolicy"], "Cluster");
    assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
    assert_eq!(lb["spec"]["ports"][0]["targetPort"], "http");
    let aff = defaulted(service(
        json!({"sessionAffinity": "ClientIP", "ports": [{"port": 80}]}),
    ));
    assert_eq!(
        aff["spec"]["sessionAffinityConfig"],
        json!({"clientIP": {"timeoutSeconds": 10800}})
    );
}

#[test]
fn service_invalid_messages() {
    let errs = create_errors(service(json!({"type": "Foo", "ports": [{"port": 0}]})));
    assert_has(
        &errs,
        "spec.type: Unsupported value: \"Foo\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
    );
    assert_has(
        &errs,
        "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
    );
    let errs = create_errors(service(json!({})));
    assert_has(&errs, "spec.ports: Required value");
    let errs = create_errors(service(json!({"ports": [{"port": 80}, {"port": 81}]})));
    assert_has(&errs, "spec.ports[0].name: Required value");
    let mut bad = service(json!({"ports": [{"port": 80}]}));
    bad["metadata"]["name"] = json!("1web");
    assert_starts(
        &create_errors(bad),
        "metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters",
    );
    let errs = create_errors(service(json!({"type": "ExternalName"})));
    assert_has(&errs, "spec.externalName: Required value");
}

#[test]
fn service_cluster_ip_is_immutable() {
    let old = service(json!({"clusterIP": "10.43.0.11", "ports": [{"port": 80}]}));
    // Leaving clusterIP out keeps the allocated one, as upstream's REST layer does.
    assert_valid(update_errors(
        old.clone(),
        service(json!({"ports": [{"port": 80}, {"port": 81, "name": "b"}]})).tap_name(),
    ));
    let errs = update_errors(
        old,
        service(json!({"clusterIP": "10.43.0.12", "ports": [{"port": 80}]})),
    );
    assert_has(
        &errs,
        "spec.clusterIPs[0]: Invalid value: []string{\"10.43.0.12\"}: may not change once set",
    );
}

trait TapName {
    fn tap_name(self) -> Value;
}
impl TapName for Value {
    fn tap_name(mut self) -> Value {
        self["spec"]["ports"][0]["name"] = json!("a");
        self
    }
}

#[test]
fn namespace_defaults_and_names() {
    let ns =
        prepared(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}));
    assert_eq!(
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "team-a"
    );
    assert_eq!(ns["status"]["phase"], "Active");
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    let errs = create_errors(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a.b"}}),
    );
    assert_has(
        &errs,
        "metadata.name: Invalid value: \"a.b\": must not contain dots",
    );
    let errs = create_errors(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x", "namespace": "y"}}),
    );
    assert_has(
        &errs,
        "metadata.namespace: Forbidden: not allowed on this type",
    );
    let errs = create_errors(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {}}));
    assert_has(
        &errs,
        "metadata.name: Required value: name or generateName is required",
    );
}

#[test]
fn config_map_keys_and_immutability() {
    let cm = |data: Value, immutable: bool| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "default"}, "data": data, "immutable": immutable})
    };
    let errs = create_errors(cm(json!({"a b": "x"}), false));
    assert_has(
        &errs,
        "data[a b]: Invalid value: \"a b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
    );
    assert_valid(update_errors(
        cm(json!({"a": "1"}), false),
        cm(json!({"a": "2"}), false),
    ));
    let errs = update_errors(cm(json!({"a": "1"}), true), cm(json!({"a": "2"}), true));
    assert_has(
        &errs,
        "data: Forbidden: field is immutable when `immutable` is set",
    );
    let big = "x".repeat(1024 * 1024 + 1);
    assert_has(
        &create_errors(cm(json!({"a": big}), false)),
        ": Too long: must have at most 1048576 bytes",
    );
}

#[test]
fn secret_defaults_types_and_immutability() {
    let s = defaulted(
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"},
        "stringData": {"password": "hunter2"}}),
    );
    assert_eq!(s["type"], "Opaque");
    assert_eq!(s["data"]["password"], "aHVudGVyMg==");
    assert!(s.get("stringData").is_none());
    let tls = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"}, "type": "kubernetes.io/tls"});
    let errs = create_errors(tls.clone());
    assert_has(&errs, "data[tls.crt]: Required value");
    assert_has(&errs, "data[tls.key]: Required value");
    let opaque = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"}, "data": {"tls.crt": "eA==", "tls.key": "eA=="}});
    let mut new = opaque.clone();
    new["type"] = json!("kubernetes.io/tls");
    assert_has(
        &update_errors(opaque, new),
        "type: Invalid value: \"kubernetes.io/tls\": field is immutable",
    );
}

#[test]
fn service_account_node_endpoints() {
    let errs = create_errors(
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "Bad", "namespace": "default"}}),
    );
    assert_starts(
        &errs,
        "metadata.name: Invalid value: \"Bad\": a lowercase RFC 1123 subdomain",
    );
    let errs = create_errors(
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
        "spec": {"taints": [{"key": "k", "effect": "Sometimes"}]}}),
    );
    assert_has(
        &errs,
        "spec.taints[0].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
    );
    let n = defaulted(
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}, "status": {"capacity": {"cpu": "2", "pods": "110"}}}),
    );
    assert_eq!(
        n["status"]["allocatable"],
        json!({"cpu": "2", "pods": "110"})
    );
    let ep = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "e", "namespace": "default"},
        "subsets": [{"ports": [{"port": 80}]}, {"addresses": [{"ip": "10.42.0.300"}], "ports": [{"port": 80}]}]});
    let errs = create_errors(ep.clone());
    assert_has(
        &errs,
        "subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`",
    );
    assert_has(
        &errs,
        "subsets[1].addresses[0].ip: Invalid value: \"10.42.0.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
    );
    assert_eq!(defaulted(ep)["subsets"][0]["ports"][0]["protocol"], "TCP");
}

#[test]
fn core_event() {
    let ev = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e.1", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "other"}, "reason": "Started"});
    assert_has(
        &create_errors(ev),
        "involvedObject.namespace: Invalid value: \"other\": does not match event.namespace",
    );
    let ok = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e.1", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"}, "reason": "Started"});
    assert_valid(create_errors(ok));
}

#[test]
fn limit_range_and_quota() {
    let lr = json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "l", "namespace": "default"},
        "spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}}]}});
    let d = defaulted(lr);
    assert_eq!(d["spec"]["limits"][0]["default"], json!({"cpu": "2"}));
    assert_eq!(
        d["spec"]["limits"][0]["defaultRequest"],
        json!({"cpu": "2", "memory": "64Mi"})
    );
    let bad = json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "l", "namespace": "default"},
        "spec": {"limits": [{"type": "Container", "max": {"cpu": "1"}, "min": {"cpu": "2"}}]}});
    assert_has(
        &create_errors(bad),
        "spec.limits[0].min[cpu]: Invalid value: 2: min value 2 is greater than max value 1",
    );
    let q = json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q", "namespace": "default"},
        "spec": {"hard": {"pods": "-1", "bogus": "1"}}});
    let errs = create_errors(q);
    assert_has(
        &errs,
        "spec.hard[pods]: Invalid value: \"-1\": must be greater than or equal to 0",
    );
    assert_has(
        &errs,
        "spec.hard[bogus]: Invalid value: \"bogus\": must be a standard resource for quota",
    );
}

fn pv(extra: Value) -> Value {
    let mut v = json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv1"},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/data"}}});
    if let Value::Object(m) = extra {
        for (k, x) in m {
            v["spec"][k] = x;
        }
    }
    v
}

#[test]
fn persistent_volumes() {
    let d = prepared(pv(json!({})));
    assert_eq!(d["spec"]["persistentVolumeReclaimPolicy"], "Retain");
    assert_eq!(d["spec"]["volumeMode"], "Filesystem");
    assert_eq!(d["status"]["phase"], "Pending");
    assert_eq!(d["spec"]["hostPath"]["type"], "");
    assert_valid(create_errors(pv(json!({}))));
    let errs = create_errors(
        json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv1"}, "spec": {"hostPath": {"path": "/x"}}}),
    );
    assert_has(&errs, "spec.accessModes: Required value");
    assert_has(&errs, "spec.capacity: Required value");
    let errs = update_errors(pv(json!({})), pv(json!({"hostPath": {"path": "/other"}})));
    assert_starts(
        &errs,
        "spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation",
    );
    assert_valid(update_errors(
        pv(json!({})),
        pv(json!({"persistentVolumeReclaimPolicy": "Delete"})),
    ));
}

fn pvc(storage: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "c", "namespace": "default"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}}})
}

#[test]
fn persistent_volume_claims() {
    let d = prepared(pvc("1Gi"));
    assert_eq!(d["spec"]["volumeMode"], "Filesystem");
    assert_eq!(d["status"]["phase"], "Pending");
    let errs = create_errors(
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "c", "namespace": "default"}, "spec": {}}),
    );
    assert_has(
        &errs,
        "spec.accessModes: Required value: at least 1 access mode is required",
    );
    assert_has(&errs, "spec.resources[storage]: Required value");
    let mut bad = pvc("1Gi");
    bad["spec"]["accessModes"] = json!(["ReadWriteSometimes"]);
    assert_has(
        &create_errors(bad),
        "spec.accessModes: Unsupported value: \"ReadWriteSometimes\": supported values: \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOnce\", \"ReadWriteOncePod\"",
    );
    // Unbound claims may not change their spec; binding (volumeName) is allowed once.
    let errs = update_errors(pvc("1Gi"), pvc("2Gi"));
    assert_starts(
        &errs,
        "spec: Forbidden: spec is immutable after creation except resources.requests for bound claims",
    );
    let mut bound = pvc("1Gi");
    bound["spec"]["volumeName"] = json!("pv1");
    assert_valid(update_errors(pvc("1Gi"), bound));
}

#[test]
fn replication_controllers_and_pod_templates() {
    let rc = json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "r", "namespace": "default"},
        "spec": {"template": {"metadata": {"labels": {"app": "r"}}, "spec": {"containers": [{"name": "a", "image": "x"}]}}}});
    let d = defaulted(rc.clone());
    assert_eq!(d["spec"]["selector"], json!({"app": "r"}));
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(d["metadata"]["labels"], json!({"app": "r"}));
    assert_valid(create_errors(rc.clone()));
    let mut bad = rc;
    bad["spec"]["replicas"] = json!(-1);
    bad["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    let errs = create_errors(bad);
    assert_has(
        &errs,
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
    );
    assert_has(
        &errs,
        "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
    );
    let pt = json!({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t", "namespace": "default"},
        "template": {"spec": {"containers": [{"name": "a"}]}}});
    assert_has(
        &create_errors(pt),
        "template.spec.containers[0].image: Required value",
    );
}

#[test]
fn quantities_are_canonicalized_and_malformed_ones_rejected() {
    let p = defaulted(pod(json!({
        "containers": [{"name": "a", "image": "i",
                        "resources": {"limits": {"cpu": "0.5", "memory": "1024Mi"},
                                      "requests": {"cpu": 1}}}],
        "overhead": {"memory": "2048Ki"}
    })));
    let c = &p["spec"]["containers"][0]["resources"];
    assert_eq!(c["limits"], json!({"cpu": "500m", "memory": "1Gi"}));
    assert_eq!(c["requests"]["cpu"], "1");
    assert_eq!(p["spec"]["overhead"]["memory"], "2Mi");
    // Outside the paths that hold quantities nothing is rewritten.
    assert_eq!(p["metadata"]["name"], "p");

    let mut bad = pod(json!({"containers": [{"name": "a", "image": "i",
        "resources": {"limits": {"cpu": "x1"}}}]}));
    let err = rkube_validation::default_object(gvk("v1", "Pod"), &mut bad).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Pod in version \"v1\" cannot be handled as a Pod: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    );
    // A ResourceQuota's hard limits are quantities too.
    let q = defaulted(json!({"apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": "q", "namespace": "default"},
        "spec": {"hard": {"requests.cpu": "1000m", "pods": 10}}}));
    assert_eq!(
        q["spec"]["hard"],
        json!({"requests.cpu": "1", "pods": "10"})
    );
}
