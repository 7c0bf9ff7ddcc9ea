//! Core printers: services, endpoints, nodes, namespaces, secrets, service accounts,
//! persistent volumes and claims, config maps, resource quotas and limit ranges.

mod common;

use common::{ago, cells, headers};
use serde_json::{Value, json};

fn meta(name: &str) -> Value {
    json!({"name": name, "namespace": "default", "creationTimestamp": ago(7 * 3600 + 59 * 60)})
}

fn svc(spec: Value, status: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": meta("web"), "spec": spec, "status": status})
}

/// (TYPE, CLUSTER-IP, EXTERNAL-IP, PORT(S)) of a service.
fn svc_summary(s: &Value) -> [String; 4] {
    let c = cells("", "services", s);
    [1, 2, 3, 4].map(|i| c[i].as_str().unwrap().to_string())
}

#[test]
fn services() {
    assert_eq!(
        headers("", "services"),
        [
            ("Name", 0),
            ("Type", 0),
            ("Cluster-IP", 0),
            ("External-IP", 0),
            ("Port(s)", 0),
            ("Age", 0),
            ("Selector", 1),
        ]
    );
    let dns = svc(
        json!({"type": "ClusterIP", "clusterIP": "10.43.0.10", "clusterIPs": ["10.43.0.10"],
               "selector": {"k8s-app": "kube-dns"},
               "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                         {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                         {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}]}),
        json!({"loadBalancer": {}}),
    );
    assert_eq!(
        cells("", "services", &dns),
        vec![
            json!("web"),
            json!("ClusterIP"),
            json!("10.43.0.10"),
            json!("<none>"),
            json!("53/UDP,53/TCP,9153/TCP"),
            json!("7h59m"),
            json!("k8s-app=kube-dns"),
        ]
    );

    let node_port = svc(
        json!({"type": "NodePort", "clusterIPs": ["10.43.12.1", "fd00::1"],
               "externalIPs": ["192.0.2.10", "192.0.2.11"],
               "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 443}]}),
        json!({}),
    );
    assert_eq!(
        svc_summary(&node_port),
        [
            "NodePort",
            "10.43.12.1",
            "192.0.2.10,192.0.2.11",
            "80:30080/TCP,443/TCP"
        ]
    );

    let pending = svc(
        json!({"type": "LoadBalancer", "clusterIP": "10.43.5.5", "clusterIPs": ["10.43.5.5"],
               "ports": [{"port": 80, "nodePort": 31000, "protocol": "TCP"}]}),
        json!({"loadBalancer": {}}),
    );
    assert_eq!(
        svc_summary(&pending),
        ["LoadBalancer", "10.43.5.5", "<pending>", "80:31000/TCP"]
    );
    // Load balancer points are sorted and de-duplicated; never shortened server-side.
    let lb = svc(
        json!({"type": "LoadBalancer", "clusterIPs": ["10.43.5.5"],
               "ports": [{"port": 80, "nodePort": 31000, "protocol": "TCP"}]}),
        json!({"loadBalancer": {"ingress": [
            {"ip": "203.0.113.9"}, {"hostname": "a1b2c3d4e5f6.elb.example.com"},
            {"ip": "203.0.113.2"}, {"ip": "203.0.113.9"}, {}]}}),
    );
    assert_eq!(
        svc_summary(&lb)[2],
        "203.0.113.2,203.0.113.9,a1b2c3d4e5f6.elb.example.com"
    );
    let lb_and_external = svc(
        json!({"type": "LoadBalancer", "clusterIPs": ["10.43.5.5"], "externalIPs": ["192.0.2.1"]}),
        json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}]}}),
    );
    assert_eq!(svc_summary(&lb_and_external)[2], "203.0.113.9,192.0.2.1");
    let external_only = svc(
        json!({"type": "LoadBalancer", "clusterIPs": ["10.43.5.5"], "externalIPs": ["192.0.2.1"]}),
        json!({}),
    );
    assert_eq!(svc_summary(&external_only)[2], "192.0.2.1");

    let external_name = svc(
        json!({"type": "ExternalName", "externalName": "db.example.com"}),
        json!({}),
    );
    assert_eq!(
        svc_summary(&external_name),
        ["ExternalName", "<none>", "db.example.com", "<none>"]
    );
    assert_eq!(cells("", "services", &external_name)[6], json!("<none>"));

    let headless = svc(
        json!({"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"],
               "selector": {"app": "db", "tier": "data"}, "ports": [{"port": 5432, "protocol": "TCP"}]}),
        json!({}),
    );
    assert_eq!(
        svc_summary(&headless),
        ["ClusterIP", "None", "<none>", "5432/TCP"]
    );
    assert_eq!(
        cells("", "services", &headless)[6],
        json!("app=db,tier=data")
    );

    // Defaults: type ClusterIP, protocol TCP; clusterIP alone still shows.
    let bare = svc(
        json!({"clusterIP": "10.43.0.1", "ports": [{"port": 443}]}),
        json!({}),
    );
    assert_eq!(
        svc_summary(&bare),
        ["ClusterIP", "10.43.0.1", "<none>", "443/TCP"]
    );
    let odd = svc(json!({"type": "Weird"}), json!({}));
    assert_eq!(svc_summary(&odd)[2], "<unknown>");
}

#[test]
fn endpoints() {
    let ep = |subsets: Value| json!({"metadata": meta("web"), "subsets": subsets});
    assert_eq!(cells("", "endpoints", &ep(json!(null)))[1], json!("<none>"));
    assert_eq!(
        cells(
            "",
            "endpoints",
            &ep(
                json!([{"addresses": [{"ip": "10.42.0.5"}, {"ip": "10.42.1.6"}],
                                             "ports": [{"port": 8080, "protocol": "TCP"}]}])
            )
        ),
        vec![
            json!("web"),
            json!("10.42.0.5:8080,10.42.1.6:8080"),
            json!("7h59m")
        ]
    );
    // More than three: "+ N more...", counting every address and port.
    let many = ep(json!([
        {"addresses": [{"ip": "10.42.0.1"}, {"ip": "10.42.0.2"}],
         "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]},
        {"addresses": [{"ip": "10.42.0.3"}], "notReadyAddresses": [{"ip": "10.42.0.4"}],
         "ports": [{"port": 80}]},
    ]));
    assert_eq!(
        cells("", "endpoints", &many)[1],
        json!("10.42.0.1:80,10.42.0.2:80,10.42.0.1:443 + 2 more...")
    );
    // Headless without ports; IPv6 addresses get brackets with ports.
    let headless = ep(json!([{"addresses": [{"ip": "10.42.0.9"}]}]));
    assert_eq!(cells("", "endpoints", &headless)[1], json!("10.42.0.9"));
    let v6 = ep(json!([{"addresses": [{"ip": "fd00::9"}], "ports": [{"port": 53}]}]));
    assert_eq!(cells("", "endpoints", &v6)[1], json!("[fd00::9]:53"));
    // Only not-ready addresses: nothing to show.
    let unready =
        ep(json!([{"notReadyAddresses": [{"ip": "10.42.0.9"}], "ports": [{"port": 53}]}]));
    assert_eq!(cells("", "endpoints", &unready)[1], json!(""));
}

fn node(labels: Value, spec: Value, status: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Node",
           "metadata": {"name": "node-1", "labels": labels, "creationTimestamp": ago(86400 * 40)},
           "spec": spec, "status": status})
}

#[test]
fn nodes() {
    assert_eq!(
        headers("", "nodes"),
        [
            ("Name", 0),
            ("Status", 0),
            ("Roles", 0),
            ("Age", 0),
            ("Version", 0),
            ("Internal-IP", 1),
            ("External-IP", 1),
            ("OS-Image", 1),
            ("Kernel-Version", 1),
            ("Container-Runtime", 1),
        ]
    );
    let n = node(
        json!({"kubernetes.io/hostname": "node-1", "node-role.kubernetes.io/control-plane": "",
               "node-role.kubernetes.io/master": "true", "node-role.kubernetes.io/": "x"}),
        json!({"podCIDR": "10.42.0.0/24"}),
        json!({
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "True", "reason": "KubeletReady"},
            ],
            "addresses": [{"type": "Hostname", "address": "node-1"},
                          {"type": "InternalIP", "address": "192.168.1.10"},
                          {"type": "InternalIP", "address": "192.168.1.11"}],
            "nodeInfo": {"kubeletVersion": "v1.33.1+rkube", "osImage": "Debian GNU/Linux 12 (bookworm)",
                         "kernelVersion": "6.1.0-18-amd64", "containerRuntimeVersion": "rkube://0.1.0"},
        }),
    );
    assert_eq!(
        cells("", "nodes", &n),
        vec![
            json!("node-1"),
            json!("Ready"),
            json!("control-plane,master"),
            json!("40d"),
            json!("v1.33.1+rkube"),
            json!("192.168.1.10"),
            json!("<none>"),
            json!("Debian GNU/Linux 12 (bookworm)"),
            json!("6.1.0-18-amd64"),
            json!("rkube://0.1.0"),
        ]
    );

    let cordoned = node(
        json!({"kubernetes.io/role": "worker"}),
        json!({"unschedulable": true}),
        json!({"conditions": [{"type": "Ready", "status": "Unknown"}],
               "addresses": [{"type": "ExternalIP", "address": "198.51.100.4"}]}),
    );
    let c = cells("", "nodes", &cordoned);
    assert_eq!(
        &c[1..3],
        &[json!("NotReady,SchedulingDisabled"), json!("worker")]
    );
    assert_eq!(
        &c[5..],
        &[
            json!("<none>"),
            json!("198.51.100.4"),
            json!("<unknown>"),
            json!("<unknown>"),
            json!("<unknown>"),
        ]
    );

    let fresh = node(json!({}), json!({}), json!({}));
    let c = cells("", "nodes", &fresh);
    assert_eq!(&c[1..3], &[json!("Unknown"), json!("<none>")]);
    assert_eq!(c[4], json!(""));
    let fresh_cordoned = node(
        json!({"kubernetes.io/role": ""}),
        json!({"unschedulable": true}),
        json!({}),
    );
    assert_eq!(
        &cells("", "nodes", &fresh_cordoned)[1..3],
        &[json!("Unknown,SchedulingDisabled"), json!("<none>")]
    );
}

#[test]
fn namespaces_secrets_service_accounts_config_maps() {
    let ns = json!({"metadata": {"name": "kube-system", "creationTimestamp": ago(3 * 365 * 86400 + 5 * 86400)},
                    "status": {"phase": "Active"}});
    assert_eq!(
        cells("", "namespaces", &ns),
        vec![json!("kube-system"), json!("Active"), json!("3y5d")]
    );
    let mut terminating = ns.clone();
    terminating["status"]["phase"] = json!("Terminating");
    assert_eq!(
        cells("", "namespaces", &terminating)[1],
        json!("Terminating")
    );
    assert_eq!(
        cells("", "namespaces", &json!({"metadata": {"name": "new"}}))[1],
        json!("Active")
    );

    assert_eq!(
        headers("", "secrets"),
        [("Name", 0), ("Type", 0), ("Data", 0), ("Age", 0)]
    );
    let secret = json!({"metadata": meta("tls"), "type": "kubernetes.io/tls",
                        "data": {"tls.crt": "Zm9v", "tls.key": "YmFy"}});
    assert_eq!(
        cells("", "secrets", &secret),
        vec![
            json!("tls"),
            json!("kubernetes.io/tls"),
            json!(2),
            json!("7h59m")
        ]
    );
    let opaque =
        json!({"metadata": meta("s"), "data": {"a": "eA=="}, "stringData": {"a": "y", "b": "z"}});
    assert_eq!(
        &cells("", "secrets", &opaque)[1..3],
        &[json!("Opaque"), json!(2)]
    );

    let sa = json!({"metadata": meta("default"), "secrets": [{"name": "default-token"}]});
    assert_eq!(
        cells("", "serviceaccounts", &sa),
        vec![json!("default"), json!(1), json!("7h59m")]
    );
    assert_eq!(
        cells("", "serviceaccounts", &json!({"metadata": meta("builder")}))[1],
        json!(0)
    );

    let cm = json!({"metadata": meta("kube-root-ca.crt"), "data": {"ca.crt": "..."},
                    "binaryData": {"logo.png": "iVBO", "icon.png": "iVBO"}});
    assert_eq!(
        cells("", "configmaps", &cm),
        vec![json!("kube-root-ca.crt"), json!(3), json!("7h59m")]
    );
    assert_eq!(
        headers("", "configmaps"),
        [("Name", 0), ("Data", 0), ("Age", 0)]
    );
}

#[test]
fn persistent_volumes() {
    assert_eq!(
        headers("", "persistentvolumes")
            .iter()
            .map(|h| h.0)
            .collect::<Vec<_>>(),
        [
            "Name",
            "Capacity",
            "Access Modes",
            "Reclaim Policy",
            "Status",
            "Claim",
            "StorageClass",
            "VolumeAttributesClass",
            "Reason",
            "Age",
            "VolumeMode"
        ]
    );
    let pv = json!({
        "metadata": {"name": "pvc-3f1c", "creationTimestamp": ago(600)},
        "spec": {"capacity": {"storage": "1024Mi"}, "accessModes": ["ReadWriteOnce", "ReadOnlyMany"],
                 "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "local-path",
                 "claimRef": {"namespace": "default", "name": "data-db-0"},
                 "volumeMode": "Filesystem", "hostPath": {"path": "/var/lib/rkube/storage/pvc-3f1c"}},
        "status": {"phase": "Bound"},
    });
    assert_eq!(
        cells("", "persistentvolumes", &pv),
        vec![
            json!("pvc-3f1c"),
            json!("1Gi"),
            json!("RWO,ROX"),
            json!("Delete"),
            json!("Bound"),
            json!("default/data-db-0"),
            json!("local-path"),
            json!("<unset>"),
            json!(""),
            json!("10m"),
            json!("Filesystem"),
        ]
    );
    let mut released = pv.clone();
    released["status"] = json!({"phase": "Failed", "reason": "VolumeFailedRecycle"});
    released["metadata"]["annotations"] = json!({"volume.beta.kubernetes.io/storage-class": "old"});
    released["spec"]["volumeAttributesClassName"] = json!("gold");
    released["spec"]["volumeMode"] = json!("Block");
    let c = cells("", "persistentvolumes", &released);
    assert_eq!(c[4], json!("Failed"));
    assert_eq!(c[6], json!("old"));
    assert_eq!(c[7], json!("gold"));
    assert_eq!(c[8], json!("VolumeFailedRecycle"));
    assert_eq!(c[10], json!("Block"));
    let mut deleting = pv;
    deleting["metadata"]["deletionTimestamp"] = json!(ago(1));
    assert_eq!(
        cells("", "persistentvolumes", &deleting)[4],
        json!("Terminating")
    );
    // Defaults of an empty volume.
    let bare = json!({"metadata": {"name": "bare"}, "spec": {}});
    let c = cells("", "persistentvolumes", &bare);
    assert_eq!(
        &c[1..7],
        &[
            json!("0"),
            json!(""),
            json!("Retain"),
            json!("Pending"),
            json!(""),
            json!("")
        ]
    );
}

#[test]
fn persistent_volume_claims() {
    let pvc = json!({
        "metadata": meta("data-db-0"),
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                 "storageClassName": "local-path", "volumeMode": "Filesystem", "volumeName": "pvc-3f1c"},
        "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1073741824"}},
    });
    assert_eq!(
        cells("", "persistentvolumeclaims", &pvc),
        vec![
            json!("data-db-0"),
            json!("Bound"),
            json!("pvc-3f1c"),
            // Written as a plain number, which upstream keeps as it is.
            json!("1073741824"),
            json!("RWO"),
            json!("local-path"),
            json!("<unset>"),
            json!("7h59m"),
            json!("Filesystem"),
        ]
    );
    // Not bound yet: no capacity, no access modes.
    let pending = json!({"metadata": meta("claim"),
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "5Gi"}}}});
    let c = cells("", "persistentvolumeclaims", &pending);
    assert_eq!(
        &c[1..7],
        &[
            json!("Pending"),
            json!(""),
            json!(""),
            json!(""),
            json!(""),
            json!("<unset>")
        ]
    );
    assert_eq!(c[8], json!("Filesystem"));
    let mut deleting = pvc;
    deleting["metadata"]["deletionTimestamp"] = json!(ago(1));
    deleting["metadata"]["annotations"] = json!({"volume.beta.kubernetes.io/storage-class": ""});
    let c = cells("", "persistentvolumeclaims", &deleting);
    assert_eq!(c[1], json!("Terminating"));
    assert_eq!(c[5], json!(""), "the beta annotation wins even when empty");
}

#[test]
fn resource_quotas_and_limit_ranges() {
    assert_eq!(
        headers("", "resourcequotas"),
        [("Name", 0), ("Request", 0), ("Limit", 0), ("Age", 0)]
    );
    let quota = json!({
        "metadata": meta("compute"),
        "spec": {"hard": {"pods": "10"}},
        "status": {
            "hard": {"requests.cpu": "2", "requests.memory": "4Gi", "limits.cpu": "4",
                     "limits.memory": "8192Mi", "pods": "10", "count/deployments.apps": "5"},
            "used": {"requests.cpu": "500m", "requests.memory": "1536Mi", "limits.cpu": "1",
                     "limits.memory": "2Gi", "pods": "3"},
        },
    });
    assert_eq!(
        cells("", "resourcequotas", &quota),
        vec![
            json!("compute"),
            json!(
                "count/deployments.apps: 0/5, pods: 3/10, requests.cpu: 500m/2, requests.memory: 1536Mi/4Gi"
            ),
            json!("limits.cpu: 1/4, limits.memory: 2Gi/8Gi"),
            json!("7h59m"),
        ]
    );
    assert_eq!(
        cells("", "resourcequotas", &json!({"metadata": meta("empty")}))[1..3],
        [json!(""), json!("")]
    );

    // LimitRanges have no printer upstream: the default table.
    assert_eq!(headers("", "limitranges"), [("Name", 0), ("Created At", 0)]);
    let lr = json!({"metadata": {"name": "limits", "creationTimestamp": "2025-05-31T08:09:10Z"},
                    "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"}}]}});
    assert_eq!(
        cells("", "limitranges", &lr),
        vec![json!("limits"), json!("2025-05-31T08:09:10Z")]
    );
    assert_eq!(rkube_printers::columns("", "limitranges")[1].ty, "date");
}
