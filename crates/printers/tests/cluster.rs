//! The other printers: HPAs (both versions) and Scale, PDBs, leases, endpoint slices,
//! ingresses and ingress classes, network policies, RBAC, storage, priority and runtime
//! classes, CSRs, webhook configurations, and the default table of resources without one.

mod common;

use common::{ago, cells, headers};
use serde_json::{Value, json};

fn meta(name: &str) -> Value {
    json!({"name": name, "namespace": "default", "creationTimestamp": ago(2 * 86400)})
}

fn names(group: &str, resource: &str) -> Vec<&'static str> {
    headers(group, resource).iter().map(|h| h.0).collect()
}

fn hpa_v2(metrics: Value, current: Value) -> Value {
    json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": meta("web"),
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 2, "maxReplicas": 10, "metrics": metrics},
        "status": {"currentReplicas": 3, "desiredReplicas": 3, "currentMetrics": current},
    })
}

#[test]
fn horizontal_pod_autoscalers() {
    assert_eq!(
        names("autoscaling", "horizontalpodautoscalers"),
        [
            "Name",
            "Reference",
            "Targets",
            "MinPods",
            "MaxPods",
            "Replicas",
            "Age"
        ]
    );
    let cpu = json!({"type": "Resource", "resource": {"name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": 50}}});
    let h = hpa_v2(
        json!([cpu]),
        json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 37, "averageValue": "74m"}}}]),
    );
    assert_eq!(
        cells("autoscaling", "horizontalpodautoscalers", &h),
        vec![
            json!("web"),
            json!("Deployment/web"),
            json!("cpu: 37%/50%"),
            json!("2"),
            json!(10),
            json!(3),
            json!("2d"),
        ]
    );
    // No status yet.
    let h = hpa_v2(json!([cpu]), json!(null));
    assert_eq!(
        cells("autoscaling", "horizontalpodautoscalers", &h)[2],
        json!("cpu: <unknown>/50%")
    );
    // Every metric kind; more than two are cut.
    let h = hpa_v2(
        json!([
            {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1024Mi"}}},
            {"type": "Pods", "pods": {"metric": {"name": "rps"}, "target": {"type": "AverageValue", "averageValue": "1k"}}},
            {"type": "Object", "object": {"metric": {"name": "hits"}, "target": {"type": "Value", "value": "10"}}},
        ]),
        json!([
            {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "512Mi"}}},
            {"type": "Pods", "pods": {"metric": {"name": "rps"}, "current": {"averageValue": "250"}}},
            {"type": "Object", "object": {"metric": {"name": "hits"}, "current": {"value": "7"}}},
        ]),
    );
    assert_eq!(
        cells("autoscaling", "horizontalpodautoscalers", &h)[2],
        json!("memory: 512Mi/1Gi, 250/1k + 1 more...")
    );
    let h = hpa_v2(
        json!([
            {"type": "External", "external": {"metric": {"name": "queue"}, "target": {"type": "AverageValue", "averageValue": "30"}}},
            {"type": "Object", "object": {"metric": {"name": "q"}, "target": {"type": "Value", "value": "100m"}}},
        ]),
        json!([
            {"type": "External", "external": {"metric": {"name": "queue"}, "current": {"averageValue": "12"}}},
            {"type": "Object", "object": {"metric": {"name": "q"}, "current": {}}},
        ]),
    );
    assert_eq!(
        cells("autoscaling", "horizontalpodautoscalers", &h)[2],
        json!("12/30 (avg), <nil>/100m")
    );
    let h = hpa_v2(
        json!([
            {"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app",
                "target": {"type": "Utilization"}}},
            {"type": "Mystery"},
        ]),
        json!([]),
    );
    assert_eq!(
        cells("autoscaling", "horizontalpodautoscalers", &h)[2],
        json!("cpu: <unknown>/<auto>, <unknown type>")
    );
    // No metrics: autoscaling/v2 defaults to 80% CPU; minReplicas defaults to 1.
    let mut h = hpa_v2(json!(null), json!(null));
    h["spec"].as_object_mut().unwrap().remove("minReplicas");
    let c = cells("autoscaling", "horizontalpodautoscalers", &h);
    assert_eq!(c[2], json!("cpu: <unknown>/80%"));
    assert_eq!(c[3], json!("1"));
}

#[test]
fn horizontal_pod_autoscalers_served_as_v1() {
    let h = json!({
        "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "creationTimestamp": ago(60), "annotations": {
            "autoscaling.alpha.kubernetes.io/metrics": "[{\"type\":\"Resource\",\"resource\":{\"name\":\"memory\",\"target\":{\"type\":\"AverageValue\",\"averageValue\":\"1Gi\"}}}]",
        }},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1,
                 "maxReplicas": 5, "targetCPUUtilizationPercentage": 60},
        "status": {"currentReplicas": 1, "desiredReplicas": 1, "currentCPUUtilizationPercentage": 12},
    });
    assert_eq!(
        cells("autoscaling", "horizontalpodautoscalers", &h),
        vec![
            json!("web"),
            json!("Deployment/web"),
            json!("cpu: 12%/60%, memory: <unknown>/1Gi"),
            json!("1"),
            json!(5),
            json!(1),
            json!("60s"),
        ]
    );
}

#[test]
fn scale_subresource() {
    assert_eq!(
        headers("autoscaling", "scales"),
        [("Name", 0), ("Desired", 0), ("Available", 0), ("Age", 0)]
    );
    assert_eq!(
        rkube_printers::columns("autoscaling", "scales")[0].format,
        ""
    );
    let s = json!({"kind": "Scale", "metadata": meta("web"), "spec": {"replicas": 3}, "status": {"replicas": 2, "selector": "app=web"}});
    assert_eq!(
        cells("autoscaling", "scales", &s),
        vec![json!("web"), json!(3), json!(2), json!("2d")]
    );
}

#[test]
fn pod_disruption_budgets_and_leases() {
    assert_eq!(
        names("policy", "poddisruptionbudgets"),
        [
            "Name",
            "Min Available",
            "Max Unavailable",
            "Allowed Disruptions",
            "Age"
        ]
    );
    let pdb = json!({"metadata": meta("web"), "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
                     "status": {"disruptionsAllowed": 1, "currentHealthy": 3, "desiredHealthy": 2}});
    assert_eq!(
        cells("policy", "poddisruptionbudgets", &pdb),
        vec![
            json!("web"),
            json!("2"),
            json!("N/A"),
            json!(1),
            json!("2d")
        ]
    );
    let pdb = json!({"metadata": meta("db"), "spec": {"maxUnavailable": "25%"}});
    assert_eq!(
        cells("policy", "poddisruptionbudgets", &pdb)[1..4],
        [json!("N/A"), json!("25%"), json!(0)]
    );

    let lease = json!({"metadata": meta("kube-scheduler"),
                       "spec": {"holderIdentity": "server-1_4b0c", "leaseDurationSeconds": 15}});
    assert_eq!(
        cells("coordination.k8s.io", "leases", &lease),
        vec![json!("kube-scheduler"), json!("server-1_4b0c"), json!("2d")]
    );
    assert_eq!(
        cells(
            "coordination.k8s.io",
            "leases",
            &json!({"metadata": meta("free"), "spec": {}})
        )[1],
        json!("")
    );
}

#[test]
fn endpoint_slices() {
    assert_eq!(
        names("discovery.k8s.io", "endpointslices"),
        ["Name", "AddressType", "Ports", "Endpoints", "Age"]
    );
    let eps = json!({
        "metadata": meta("web-abc12"),
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "metrics"}, {}, {"port": 8443}],
        "endpoints": [
            {"addresses": ["10.42.0.5"], "conditions": {"ready": true}},
            {"addresses": ["10.42.1.6", "10.42.1.7"]},
            {"addresses": ["10.42.2.8"]},
        ],
    });
    assert_eq!(
        cells("discovery.k8s.io", "endpointslices", &eps),
        vec![
            json!("web-abc12"),
            json!("IPv4"),
            json!("80,metrics,* + 1 more..."),
            json!("10.42.0.5,10.42.1.6,10.42.1.7 + 1 more..."),
            json!("2d"),
        ]
    );
    let empty = json!({"metadata": meta("e"), "addressType": "IPv6", "endpoints": []});
    assert_eq!(
        cells("discovery.k8s.io", "endpointslices", &empty)[2..4],
        [json!("<unset>"), json!("<unset>")]
    );
}

#[test]
fn ingresses_classes_and_network_policies() {
    assert_eq!(
        names("networking.k8s.io", "ingresses"),
        ["Name", "Class", "Hosts", "Address", "Ports", "Age"]
    );
    let ing = json!({
        "metadata": meta("web"),
        "spec": {"ingressClassName": "rkube",
                 "tls": [{"hosts": ["web.example.com"], "secretName": "web-tls"}],
                 "rules": [{"host": "web.example.com"}, {"host": "api.example.com"}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "192.168.1.10"}, {"ip": "192.168.1.11"}]}},
    });
    assert_eq!(
        cells("networking.k8s.io", "ingresses", &ing),
        vec![
            json!("web"),
            json!("rkube"),
            json!("web.example.com,api.example.com"),
            json!("192.168.1.10,192.168.1.11"),
            json!("80, 443"),
            json!("2d"),
        ]
    );
    let catch_all =
        json!({"metadata": meta("all"), "spec": {"defaultBackend": {}, "rules": [{"http": {}}]}});
    assert_eq!(
        cells("networking.k8s.io", "ingresses", &catch_all)[1..5],
        [json!("<none>"), json!("*"), json!(""), json!("80")]
    );
    let many = json!({"metadata": meta("m"), "spec": {"rules": [
        {"host": "a"}, {"host": "b"}, {"host": "c"}, {"host": "d"}, {"http": {}}]}});
    assert_eq!(
        cells("networking.k8s.io", "ingresses", &many)[2],
        json!("a,b,c + 2 more...")
    );

    let class = json!({"metadata": {"name": "rkube", "creationTimestamp": ago(30)},
        "spec": {"controller": "rkube.io/ingress",
                 "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}}});
    assert_eq!(
        cells("networking.k8s.io", "ingressclasses", &class),
        vec![
            json!("rkube"),
            json!("rkube.io/ingress"),
            json!("IngressParameters.k8s.example.com/external-lb"),
            json!("30s"),
        ]
    );
    let core_params = json!({"metadata": {"name": "c"},
        "spec": {"controller": "x", "parameters": {"kind": "ConfigMap", "name": "cfg"}}});
    assert_eq!(
        cells("networking.k8s.io", "ingressclasses", &core_params)[2],
        json!("ConfigMap/cfg")
    );
    let plain = json!({"metadata": {"name": "p"}, "spec": {"controller": "x"}});
    assert_eq!(
        cells("networking.k8s.io", "ingressclasses", &plain)[2],
        json!("<none>")
    );

    let np =
        json!({"metadata": meta("deny"), "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}});
    assert_eq!(
        cells("networking.k8s.io", "networkpolicies", &np),
        vec![json!("deny"), json!("<none>"), json!("2d")]
    );
    let np =
        json!({"metadata": meta("db"), "spec": {"podSelector": {"matchLabels": {"role": "db"}}}});
    assert_eq!(
        cells("networking.k8s.io", "networkpolicies", &np)[1],
        json!("role=db")
    );
}

#[test]
fn rbac() {
    assert_eq!(
        headers("rbac.authorization.k8s.io", "rolebindings"),
        [
            ("Name", 0),
            ("Role", 0),
            ("Age", 0),
            ("Users", 1),
            ("Groups", 1),
            ("ServiceAccounts", 1),
        ]
    );
    let rb = json!({
        "metadata": meta("read-pods"),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
        "subjects": [
            {"kind": "User", "name": "jane"},
            {"kind": "User", "name": "joe"},
            {"kind": "Group", "name": "devs"},
            {"kind": "ServiceAccount", "name": "builder", "namespace": "ci"},
            {"kind": "Robot", "name": "r2"},
        ],
    });
    assert_eq!(
        cells("rbac.authorization.k8s.io", "rolebindings", &rb),
        vec![
            json!("read-pods"),
            json!("Role/pod-reader"),
            json!("2d"),
            json!("jane, joe"),
            json!("devs"),
            json!("ci/builder"),
        ]
    );
    let crb = json!({
        "metadata": {"name": "cluster-admin", "creationTimestamp": ago(60)},
        "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "Group", "name": "system:masters"}],
    });
    assert_eq!(
        cells("rbac.authorization.k8s.io", "clusterrolebindings", &crb),
        vec![
            json!("cluster-admin"),
            json!("ClusterRole/cluster-admin"),
            json!("60s"),
            json!(""),
            json!("system:masters"),
            json!(""),
        ]
    );
    assert_eq!(
        rkube_printers::columns("rbac.authorization.k8s.io", "clusterrolebindings")[3].description,
        "Users in the clusterRoleBinding"
    );
    // Roles and cluster roles: the default table.
    for resource in ["roles", "clusterroles"] {
        assert_eq!(
            headers("rbac.authorization.k8s.io", resource),
            [("Name", 0), ("Created At", 0)]
        );
    }
    let role = json!({"metadata": {"name": "admin", "creationTimestamp": "2025-05-30T00:00:00Z"}, "rules": []});
    assert_eq!(
        cells("rbac.authorization.k8s.io", "clusterroles", &role),
        vec![json!("admin"), json!("2025-05-30T00:00:00Z")]
    );
}

#[test]
fn storage() {
    assert_eq!(
        names("storage.k8s.io", "storageclasses"),
        [
            "Name",
            "Provisioner",
            "ReclaimPolicy",
            "VolumeBindingMode",
            "AllowVolumeExpansion",
            "Age"
        ]
    );
    let sc = json!({"metadata": {"name": "local-path", "creationTimestamp": ago(3600),
                    "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                    "provisioner": "rkube.io/local-path", "reclaimPolicy": "Delete",
                    "volumeBindingMode": "WaitForFirstConsumer"});
    assert_eq!(
        cells("storage.k8s.io", "storageclasses", &sc),
        vec![
            json!("local-path (default)"),
            json!("rkube.io/local-path"),
            json!("Delete"),
            json!("WaitForFirstConsumer"),
            json!(false),
            json!("60m"),
        ]
    );
    let plain = json!({"metadata": {"name": "fast", "annotations": {
        "storageclass.beta.kubernetes.io/is-default-class": "false"}},
        "provisioner": "x", "allowVolumeExpansion": true});
    assert_eq!(
        cells("storage.k8s.io", "storageclasses", &plain)[..5],
        [
            json!("fast"),
            json!("x"),
            json!("Delete"),
            json!("Immediate"),
            json!(true)
        ]
    );
    let beta_default = json!({"metadata": {"name": "old", "annotations": {
        "storageclass.beta.kubernetes.io/is-default-class": "true"}}, "provisioner": "x"});
    assert_eq!(
        cells("storage.k8s.io", "storageclasses", &beta_default)[0],
        json!("old (default)")
    );

    let va = json!({"metadata": {"name": "csi-1a2b", "creationTimestamp": ago(10)},
        "spec": {"attacher": "csi.example.com", "nodeName": "node-1",
                 "source": {"persistentVolumeName": "pv-1"}},
        "status": {"attached": true}});
    assert_eq!(
        cells("storage.k8s.io", "volumeattachments", &va),
        vec![
            json!("csi-1a2b"),
            json!("csi.example.com"),
            json!("pv-1"),
            json!("node-1"),
            json!(true),
            json!("10s"),
        ]
    );
    assert_eq!(
        headers("storage.k8s.io", "volumeattachments")[1..5]
            .iter()
            .map(|h| h.0)
            .collect::<Vec<_>>(),
        ["Attacher", "PV", "Node", "Attached"]
    );

    assert_eq!(
        names("storage.k8s.io", "csidrivers"),
        [
            "Name",
            "AttachRequired",
            "PodInfoOnMount",
            "StorageCapacity",
            "TokenRequests",
            "RequiresRepublish",
            "Modes",
            "Age"
        ]
    );
    let driver = json!({"metadata": {"name": "csi.example.com", "creationTimestamp": ago(10)},
        "spec": {"attachRequired": false, "podInfoOnMount": true,
                 "volumeLifecycleModes": ["Persistent", "Ephemeral"],
                 "tokenRequests": [{"audience": "vault"}, {"audience": "gcp", "expirationSeconds": 3600}]}});
    assert_eq!(
        cells("storage.k8s.io", "csidrivers", &driver),
        vec![
            json!("csi.example.com"),
            json!(false),
            json!(true),
            json!(false),
            json!("vault,gcp"),
            json!(false),
            json!("Persistent,Ephemeral"),
            json!("10s"),
        ]
    );
    let defaults = json!({"metadata": {"name": "d"}, "spec": {}});
    assert_eq!(
        cells("storage.k8s.io", "csidrivers", &defaults)[1..7],
        [
            json!(true),
            json!(false),
            json!(false),
            json!("<unset>"),
            json!(false),
            json!("Persistent")
        ]
    );

    let csinode = json!({"metadata": {"name": "node-1", "creationTimestamp": ago(10)},
        "spec": {"drivers": [{"name": "csi.example.com", "nodeID": "node-1"}]}});
    assert_eq!(
        cells("storage.k8s.io", "csinodes", &csinode),
        vec![json!("node-1"), json!(1), json!("10s")]
    );
}

#[test]
fn scheduling_node_certificates_admission() {
    assert_eq!(
        headers("scheduling.k8s.io", "priorityclasses"),
        [
            ("Name", 0),
            ("Value", 0),
            ("Global-Default", 0),
            ("Age", 0),
            ("PreemptionPolicy", 0)
        ]
    );
    let pc = json!({"metadata": {"name": "system-node-critical", "creationTimestamp": ago(120)},
                    "value": 2000001000, "preemptionPolicy": "PreemptLowerPriority"});
    assert_eq!(
        cells("scheduling.k8s.io", "priorityclasses", &pc),
        vec![
            json!("system-node-critical"),
            json!(2000001000),
            json!(false),
            json!("2m"),
            json!("PreemptLowerPriority"),
        ]
    );
    let pc = json!({"metadata": {"name": "batch"}, "value": -10, "globalDefault": true, "preemptionPolicy": "Never"});
    assert_eq!(
        cells("scheduling.k8s.io", "priorityclasses", &pc)[1..],
        [json!(-10), json!(true), json!("<unknown>"), json!("Never")]
    );

    let rc =
        json!({"metadata": {"name": "gvisor", "creationTimestamp": ago(5)}, "handler": "runsc"});
    assert_eq!(
        cells("node.k8s.io", "runtimeclasses", &rc),
        vec![json!("gvisor"), json!("runsc"), json!("5s")]
    );
    assert_eq!(
        rkube_printers::columns("node.k8s.io", "runtimeclasses")[1].description,
        ""
    );

    assert_eq!(
        names("certificates.k8s.io", "certificatesigningrequests"),
        [
            "Name",
            "Age",
            "SignerName",
            "Requestor",
            "RequestedDuration",
            "Condition"
        ]
    );
    let csr = json!({"metadata": {"name": "node-csr-abc", "creationTimestamp": ago(300)},
        "spec": {"signerName": "kubernetes.io/kube-apiserver-client-kubelet",
                 "username": "system:node:node-1", "expirationSeconds": 86400, "request": "LS0t",
                 "usages": ["client auth"]},
        "status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "LS0t"}});
    assert_eq!(
        cells("certificates.k8s.io", "certificatesigningrequests", &csr),
        vec![
            json!("node-csr-abc"),
            json!("5m"),
            json!("kubernetes.io/kube-apiserver-client-kubelet"),
            json!("system:node:node-1"),
            json!("24h"),
            json!("Approved,Issued"),
        ]
    );
    let pending = json!({"metadata": {"name": "p"}, "spec": {"username": "jane"}});
    assert_eq!(
        cells(
            "certificates.k8s.io",
            "certificatesigningrequests",
            &pending
        )[2..],
        [
            json!("<none>"),
            json!("jane"),
            json!("<none>"),
            json!("Pending")
        ]
    );
    let denied = json!({"metadata": {"name": "d"}, "spec": {},
        "status": {"conditions": [{"type": "Approved"}, {"type": "Denied"}, {"type": "Failed"}]}});
    assert_eq!(
        cells("certificates.k8s.io", "certificatesigningrequests", &denied)[5],
        json!("Denied,Failed")
    );

    for resource in [
        "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations",
    ] {
        assert_eq!(
            headers("admissionregistration.k8s.io", resource),
            [("Name", 0), ("Webhooks", 0), ("Age", 0)]
        );
        let cfg = json!({"metadata": {"name": "policy", "creationTimestamp": ago(7)},
            "webhooks": [{"name": "a.example.com"}, {"name": "b.example.com"}]});
        assert_eq!(
            cells("admissionregistration.k8s.io", resource, &cfg),
            vec![json!("policy"), json!(2), json!("7s")]
        );
    }
}

#[test]
fn default_tables() {
    // Upstream has no printer for these; the default convertor prints name and creation time.
    for (group, resource) in [
        ("apiextensions.k8s.io", "customresourcedefinitions"),
        ("", "limitranges"),
        ("rbac.authorization.k8s.io", "roles"),
        ("rbac.authorization.k8s.io", "clusterroles"),
    ] {
        assert!(!rkube_printers::has_printer(group, resource));
        let cols = rkube_printers::columns(group, resource);
        assert_eq!(cols.len(), 2);
        assert_eq!((cols[0].name, cols[0].format), ("Name", "name"));
        assert_eq!(
            (cols[1].name, cols[1].ty, cols[1].format),
            ("Created At", "date", "")
        );
        assert!(
            cols[1]
                .description
                .starts_with("CreationTimestamp is a timestamp")
        );
    }
    let crd = json!({"metadata": {"name": "widgets.example.com", "creationTimestamp": "2025-04-01T10:20:30Z"}});
    assert_eq!(
        cells("apiextensions.k8s.io", "customresourcedefinitions", &crd),
        vec![json!("widgets.example.com"), json!("2025-04-01T10:20:30Z")]
    );
}
