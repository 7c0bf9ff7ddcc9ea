//! The real kubectl (v1.33) against a fake API server on loopback:
//!
//! - what kubectl sends in protobuf decodes to exactly the JSON kubectl itself prints for
//!   the same object, and encoding that JSON gives back kubectl's bytes, byte for byte;
//! - what we encode (objects, lists, `Status` errors, watch streams) kubectl decodes to
//!   exactly the JSON we started from.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use common::{Fake, PROTOBUF, Reply, Request, maybe_write_fixture, strip_nulls};
use rkube_protobuf::{decode, encode};
use serde_json::{Value, json};

fn echo(req: &Request) -> Reply {
    match req.method.as_str() {
        "POST" | "PUT" => Reply::Body {
            status: 201,
            content_type: req.content_type().to_string(),
            body: req.body.clone(),
        },
        _ => Reply::not_found(),
    }
}

/// Checks one protobuf body kubectl sent: it decodes with nothing unknown, encodes back to
/// the same bytes, and (when kubectl printed the object) matches kubectl's own JSON.
fn check_sent(name: &str, req: &Request, printed: Option<&str>) -> Value {
    assert_eq!(
        req.content_type(),
        PROTOBUF,
        "{name}: kubectl sent protobuf"
    );
    let d = decode(&req.body).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        d.unknown_fields.is_empty(),
        "{name}: {:?}",
        d.unknown_fields
    );
    let again = encode(&d.object).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        again, req.body,
        "{name}: re-encoding {} differs from kubectl's bytes",
        d.object
    );
    if let Some(printed) = printed {
        let mut theirs: Value = serde_json::from_str(printed)
            .unwrap_or_else(|e| panic!("{name}: kubectl printed no JSON ({e}): {printed}"));
        strip_nulls(&mut theirs);
        assert_eq!(
            d.object, theirs,
            "{name}: decoded JSON differs from kubectl's"
        );
    }
    maybe_write_fixture(name, &req.body, &d.object);
    d.object
}

#[test]
fn create_commands_send_bytes_we_decode_and_reproduce() {
    let fake = Fake::start(echo);
    let blob: Vec<u8> = (0..=255u8).rev().chain(0..=255).collect();
    std::fs::write(fake.path("blob.bin"), &blob).unwrap();
    std::fs::write(fake.path("text.txt"), "line one\nline two\n").unwrap();
    let cases: &[(&str, &[&str])] = &[
        (
            "configmap",
            &[
                "create",
                "configmap",
                "cm",
                "--from-literal=greeting=hello",
                "--from-file=blob=blob.bin",
                "--from-file=text.txt",
            ],
        ),
        (
            "secret-generic",
            &[
                "create",
                "secret",
                "generic",
                "s",
                "--from-literal=user=admin",
                "--from-literal=empty=",
                "--from-file=key=blob.bin",
            ],
        ),
        (
            "secret-docker-registry",
            &[
                "create",
                "secret",
                "docker-registry",
                "reg",
                "--docker-server=registry.example.com",
                "--docker-username=u",
                "--docker-password=p",
            ],
        ),
        ("namespace", &["create", "namespace", "ns1"]),
        (
            "deployment",
            &[
                "create",
                "deployment",
                "web",
                "--image=nginx:1.27",
                "--replicas=3",
                "--port=80",
            ],
        ),
        (
            "deployment-zero-replicas",
            &[
                "create",
                "deployment",
                "idle",
                "--image=nginx",
                "--replicas=0",
            ],
        ),
        (
            "service-clusterip",
            &[
                "create",
                "service",
                "clusterip",
                "svc",
                "--tcp=80:8080",
                "--tcp=443:8443",
            ],
        ),
        (
            "service-nodeport",
            &[
                "create",
                "service",
                "nodeport",
                "np",
                "--tcp=80:8080",
                "--node-port=30080",
            ],
        ),
        (
            "resourcequota",
            &[
                "create",
                "quota",
                "q",
                "--hard=cpu=1500m,memory=1Gi,pods=10,requests.storage=100Gi",
            ],
        ),
        (
            "job",
            &["create", "job", "j", "--image=busybox", "--", "echo", "hi"],
        ),
        (
            "cronjob",
            &[
                "create",
                "cronjob",
                "cj",
                "--image=busybox",
                "--schedule=*/5 * * * *",
                "--restart=OnFailure",
                "--",
                "date",
            ],
        ),
        ("serviceaccount", &["create", "serviceaccount", "sa"]),
        (
            "role",
            &[
                "create",
                "role",
                "r",
                "--verb=get",
                "--verb=list",
                "--resource=pods,configmaps",
            ],
        ),
        (
            "rolebinding",
            &[
                "create",
                "rolebinding",
                "rb",
                "--role=r",
                "--user=alice",
                "--serviceaccount=default:sa",
            ],
        ),
        (
            "clusterrole",
            &[
                "create",
                "clusterrole",
                "cr",
                "--verb=get",
                "--non-resource-url=/healthz",
            ],
        ),
        (
            "clusterrole-aggregated",
            &[
                "create",
                "clusterrole",
                "agg",
                "--aggregation-rule=rbac.example.com/agg=true",
            ],
        ),
        (
            "clusterrolebinding",
            &[
                "create",
                "clusterrolebinding",
                "crb",
                "--clusterrole=cr",
                "--group=devs",
            ],
        ),
        (
            "priorityclass",
            &[
                "create",
                "priorityclass",
                "high",
                "--value=1000",
                "--description=important",
                "--preemption-policy=Never",
            ],
        ),
        (
            "pdb-percent",
            &[
                "create",
                "poddisruptionbudget",
                "pdb",
                "--selector=app=web",
                "--min-available=50%",
            ],
        ),
        (
            "pdb-count",
            &[
                "create",
                "poddisruptionbudget",
                "pdb2",
                "--selector=app=web",
                "--max-unavailable=1",
            ],
        ),
        (
            "ingress",
            &[
                "create",
                "ingress",
                "ing",
                "--class=nginx",
                "--rule=foo.com/bar=svc1:8080,tls=my-cert",
                "--rule=foo.com/api*=svc2:http",
            ],
        ),
    ];
    let mut seen = 0;
    for (name, args) in cases {
        let before = fake.requests().len();
        // The flags go before a `--` that starts a container command.
        let mut full: Vec<&str> = args.to_vec();
        let at = full.iter().position(|a| *a == "--").unwrap_or(full.len());
        full.splice(at..at, ["--dry-run=server", "-o", "json"]);
        let (ok, out, err) = fake.kubectl(&full);
        assert!(ok, "{name}: kubectl failed: {err}");
        let reqs = fake.requests();
        let posts: Vec<&Request> = reqs[before..]
            .iter()
            .filter(|r| r.method == "POST")
            .collect();
        assert_eq!(posts.len(), 1, "{name}: {posts:?}");
        assert!(
            posts[0].query.contains("dryRun=All"),
            "{name}: {}",
            posts[0].query
        );
        let obj = check_sent(name, posts[0], Some(&out));
        seen += 1;
        // Spot checks of the special types.
        match *name {
            "configmap" => {
                assert_eq!(obj["binaryData"]["blob"], json!(base64(&blob)));
                assert_eq!(obj["data"]["text.txt"], json!("line one\nline two\n"));
            }
            "secret-generic" => {
                assert_eq!(obj["data"]["key"], json!(base64(&blob)));
                assert_eq!(obj["data"]["empty"], json!(""));
            }
            "deployment-zero-replicas" => assert_eq!(obj["spec"]["replicas"], json!(0)),
            "service-clusterip" => {
                assert_eq!(obj["spec"]["ports"][1]["targetPort"], json!(8443))
            }
            "resourcequota" => assert_eq!(obj["spec"]["hard"]["cpu"], json!("1500m")),
            "pdb-percent" => assert_eq!(obj["spec"]["minAvailable"], json!("50%")),
            "pdb-count" => assert_eq!(obj["spec"]["maxUnavailable"], json!(1)),
            "ingress" => {
                let paths = &obj["spec"]["rules"][0]["http"]["paths"];
                assert_eq!(
                    paths[1]["backend"]["service"]["port"],
                    json!({"name": "http"})
                );
            }
            _ => {}
        }
    }
    assert_eq!(seen, cases.len());
}

fn base64(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// What decoding our own encoding gives (the form kubectl must print back).
fn canonical(v: &Value) -> Value {
    decode(&encode(v).unwrap()).unwrap().object
}

fn rich_objects() -> BTreeMap<&'static str, Value> {
    let managed = json!([{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1",
        "time": "2024-05-01T10:00:00Z", "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}}]);
    let meta = |name: &str| {
        json!({"name": name, "namespace": "default", "uid": "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
            "resourceVersion": "1234", "generation": 2, "creationTimestamp": "2024-05-01T10:00:00Z",
            "labels": {"app": "web"}, "annotations": {"example.com/note": "rich"},
            "managedFields": managed.clone()})
    };
    let mut m = BTreeMap::new();
    m.insert(
        "configmap",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("cm"),
        "data": {"a": "b"}, "binaryData": {"bin": "AAEC/f7/"}, "immutable": false}),
    );
    m.insert(
        "secret",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta("s"),
        "type": "kubernetes.io/tls", "data": {"tls.crt": "Y2VydA==", "tls.key": "a2V5"}}),
    );
    m.insert("namespace", json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "ns1", "uid": "u", "resourceVersion": "1",
                     "creationTimestamp": "2024-05-01T10:00:00Z",
                     "deletionTimestamp": "2024-05-02T10:00:00Z",
                     "deletionGracePeriodSeconds": 0,
                     "labels": {"kubernetes.io/metadata.name": "ns1"}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Terminating", "conditions": [{"type": "NamespaceDeletionContentFailure",
            "status": "False", "lastTransitionTime": "2024-05-02T10:00:01Z",
            "reason": "ContentDeleted", "message": "All content successfully deleted"}]}}));
    m.insert(
        "deployment",
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": meta("web"),
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"},
                 "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1}},
            "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                    "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                    "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1",
                        "fieldPath": "status.podIP"}}}],
                    "resources": {"limits": {"cpu": "500m", "memory": "128Mi"},
                                  "requests": {"cpu": "250m", "memory": "64Mi",
                                               "ephemeral-storage": "1Gi"}},
                    "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http",
                        "scheme": "HTTP"}, "initialDelaySeconds": 3, "periodSeconds": 10,
                        "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
                    "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 5,
                        "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 1000,
                        "allowPrivilegeEscalation": false,
                        "capabilities": {"drop": ["ALL"]}},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}],
                    "volumes": [{"name": "cfg", "configMap": {"name": "cm", "defaultMode": 420}},
                                {"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}}],
                    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler",
                    "securityContext": {}, "tolerations": [{"key": "k", "operator": "Exists",
                        "effect": "NoExecute", "tolerationSeconds": 300}]}}},
        "status": {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3,
            "readyReplicas": 3, "availableReplicas": 3,
            "conditions": [{"type": "Available", "status": "True",
                "lastUpdateTime": "2024-05-01T10:00:30Z",
                "lastTransitionTime": "2024-05-01T10:00:30Z",
                "reason": "MinimumReplicasAvailable",
                "message": "Deployment has minimum availability."}]}}),
    );
    m.insert(
        "service",
        json!({"apiVersion": "v1", "kind": "Service", "metadata": meta("svc"),
        "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
            "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http",
                       "nodePort": 30080}],
            "clusterIP": "10.43.0.12", "clusterIPs": ["10.43.0.12"],
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
            "sessionAffinity": "ClientIP",
            "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
            "externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster",
            "allocateLoadBalancerNodePorts": true},
        "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10", "ipMode": "VIP",
            "ports": [{"port": 80, "protocol": "TCP"}]}]}}}),
    );
    m.insert(
        "resourcequota",
        json!({"apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": meta("q"),
        "spec": {"hard": {"cpu": "2", "memory": "4Gi", "pods": "10"}},
        "status": {"hard": {"cpu": "2", "memory": "4Gi", "pods": "10"},
                   "used": {"cpu": "500m", "memory": "256Mi", "pods": "3"}}}),
    );
    m.insert(
        "job",
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta("j"),
        "spec": {"parallelism": 1, "completions": 1, "backoffLimit": 6,
            "completionMode": "NonIndexed", "suspend": false,
            "template": {"metadata": {}, "spec": {"containers": [{"name": "j",
                "image": "busybox", "command": ["echo", "hi"], "resources": {}}],
                "restartPolicy": "Never"}}},
        "status": {"startTime": "2024-05-01T10:00:00Z",
            "completionTime": "2024-05-01T10:00:09Z", "succeeded": 1,
            "ready": 0, "terminating": 0,
            "conditions": [{"type": "Complete", "status": "True",
                "lastProbeTime": "2024-05-01T10:00:09Z",
                "lastTransitionTime": "2024-05-01T10:00:09Z"}]}}),
    );
    m.insert(
        "cronjob",
        json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta("cj"),
        "spec": {"schedule": "*/5 * * * *", "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid", "suspend": false,
            "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
            "jobTemplate": {"metadata": {}, "spec": {"template": {"metadata": {},
                "spec": {"containers": [{"name": "cj", "image": "busybox", "resources": {}}],
                         "restartPolicy": "OnFailure"}}}}},
        "status": {"lastScheduleTime": "2024-05-01T10:05:00Z",
                   "lastSuccessfulTime": "2024-05-01T10:05:07Z",
                   "active": [{"kind": "Job", "namespace": "default", "name": "cj-1",
                               "uid": "u", "apiVersion": "batch/v1"}]}}),
    );
    m.insert(
        "priorityclass",
        json!({"apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass", "metadata": {"name": "high"}, "value": -5,
        "globalDefault": true, "description": "d", "preemptionPolicy": "Never"}),
    );
    m.insert(
        "ingress",
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": meta("ing"),
        "spec": {"ingressClassName": "nginx",
            "tls": [{"hosts": ["foo.com"], "secretName": "my-cert"}],
            "rules": [{"host": "foo.com", "http": {"paths": [
                {"path": "/bar", "pathType": "Exact",
                 "backend": {"service": {"name": "svc1", "port": {"number": 8080}}}},
                {"path": "/api", "pathType": "Prefix",
                 "backend": {"service": {"name": "svc2", "port": {"name": "http"}}}}]}}]},
        "status": {"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}]}}}),
    );
    m
}

#[test]
fn kubectl_reads_the_objects_we_encode() {
    let objects = Arc::new(rich_objects());
    let replies = objects.clone();
    let fake = Fake::start(move |req| {
        if req.method != "POST" {
            return Reply::not_found();
        }
        let key = match req.path.rsplit('/').next().unwrap_or("") {
            "configmaps" => "configmap",
            "secrets" => "secret",
            "namespaces" => "namespace",
            "deployments" => "deployment",
            "services" => "service",
            "resourcequotas" => "resourcequota",
            "jobs" => "job",
            "cronjobs" => "cronjob",
            "priorityclasses" => "priorityclass",
            "ingresses" => "ingress",
            _ => return Reply::not_found(),
        };
        assert!(req.accepts_protobuf());
        Reply::protobuf(201, &replies[key])
    });
    let cases: &[(&str, &[&str])] = &[
        ("configmap", &["create", "configmap", "cm"]),
        ("secret", &["create", "secret", "generic", "s"]),
        ("namespace", &["create", "namespace", "ns1"]),
        (
            "deployment",
            &["create", "deployment", "web", "--image=nginx"],
        ),
        (
            "service",
            &["create", "service", "clusterip", "svc", "--tcp=80:80"],
        ),
        ("resourcequota", &["create", "quota", "q", "--hard=pods=1"]),
        ("job", &["create", "job", "j", "--image=busybox"]),
        (
            "cronjob",
            &[
                "create",
                "cronjob",
                "cj",
                "--image=busybox",
                "--schedule=* * * * *",
            ],
        ),
        (
            "priorityclass",
            &["create", "priorityclass", "high", "--value=1"],
        ),
        (
            "ingress",
            &["create", "ingress", "ing", "--rule=foo.com/bar=svc1:8080"],
        ),
    ];
    for (key, args) in cases {
        let mut full: Vec<&str> = args.to_vec();
        full.extend(["--dry-run=server", "-o", "json", "--show-managed-fields"]);
        let (ok, out, err) = fake.kubectl(&full);
        assert!(ok, "{key}: {err}");
        let mut printed: Value = serde_json::from_str(&out).unwrap();
        strip_nulls(&mut printed);
        let ours = &objects[key];
        assert_eq!(
            &canonical(ours),
            ours,
            "{key}: the fixture is in canonical form"
        );
        assert_eq!(&printed, ours, "{key}: kubectl read something else");
    }
}

#[test]
fn kubectl_reads_our_status_errors() {
    let fake = Fake::start(|req| {
        let status = if req.path.ends_with("/configmaps") {
            json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
                "message": "configmaps \"cm\" already exists", "reason": "AlreadyExists",
                "details": {"name": "cm", "kind": "configmaps"}, "code": 409})
        } else {
            json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
                "message": "Namespace \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'",
                "reason": "Invalid",
                "details": {"name": "Bad_Name", "kind": "Namespace", "causes": [{
                    "reason": "FieldValueInvalid",
                    "message": "Invalid value: \"Bad_Name\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'",
                    "field": "metadata.name"}]},
                "code": 422})
        };
        let code = status["code"].as_u64().unwrap() as u16;
        Reply::protobuf(code, &status)
    });
    let (ok, _, err) = fake.kubectl(&["create", "configmap", "cm"]);
    assert!(!ok);
    assert!(
        err.contains("failed to create configmap: configmaps \"cm\" already exists"),
        "{err}"
    );
    let (ok, _, err) = fake.kubectl(&["create", "namespace", "Bad_Name"]);
    assert!(!ok);
    assert!(
        err.contains(
            "The Namespace \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\""
        ),
        "{err}"
    );
}

/// `kubectl certificate approve`: kubectl reads our CertificateSigningRequest, adds an
/// `Approved` condition with timestamps and sends the whole object back in protobuf.
#[test]
fn certificate_approval_round_trips_through_kubectl() {
    let csr = json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": "csr1", "uid": "0d3c8c2b-3c34-4d8f-9d4b-1a7e6e1c2b3a",
            "resourceVersion": "77", "creationTimestamp": "2024-05-01T10:00:00Z",
            "labels": {"team": "a"},
            "managedFields": [{"manager": "kubelet", "operation": "Update",
                "apiVersion": "certificates.k8s.io/v1", "time": "2024-05-01T10:00:00Z",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:request": {}}}}]},
        "spec": {"request": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0K",
            "signerName": "kubernetes.io/kube-apiserver-client", "expirationSeconds": 86400,
            "usages": ["digital signature", "client auth"], "username": "alice",
            "uid": "u-1", "groups": ["devs", "system:authenticated"],
            "extra": {"scopes": ["a", "b"]}},
        "status": {}});
    let reply = csr.clone();
    let fake = Fake::start(move |req| match req.method.as_str() {
        "GET" if req.path.ends_with("/csr1") => {
            if req.accepts_protobuf() {
                Reply::protobuf(200, &reply)
            } else {
                Reply::json(200, &reply)
            }
        }
        "PUT" => echo(req),
        _ => Reply::not_found(),
    });
    let (ok, out, err) = fake.kubectl(&["certificate", "approve", "csr1"]);
    assert!(ok, "{err}");
    assert!(out.contains("approved"), "{out}");
    let reqs = fake.requests();
    assert!(
        reqs.iter()
            .any(|r| r.method == "GET" && r.accepts_protobuf()),
        "kubectl read the CSR in protobuf"
    );
    let put = reqs.iter().find(|r| r.method == "PUT").expect("a PUT");
    assert!(put.path.ends_with("/csr1/approval"));
    let sent = check_sent("csr-approval", put, None);
    // Everything we sent came back, plus the condition kubectl added.
    let mut expected = csr.clone();
    let condition = &sent["status"]["conditions"][0];
    assert_eq!(condition["type"], json!("Approved"));
    assert_eq!(condition["reason"], json!("KubectlApprove"));
    let stamp = condition["lastUpdateTime"].as_str().unwrap();
    assert!(stamp.len() == 20 && stamp.ends_with('Z'), "{stamp}");
    expected["status"] = json!({"conditions": [condition]});
    assert_eq!(sent, expected);
}

fn pod(name: &str, node: &str, status: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
            "resourceVersion": "10", "creationTimestamp": "2024-05-01T10:00:00Z",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                "uid": "rs-uid", "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx",
            "resources": {"requests": {"cpu": "100m"}}}]},
        "status": status})
}

/// `kubectl drain`: lists pods in protobuf (our PodList), evicts them, then polls in
/// protobuf until each pod is gone (our 404 Status).
#[test]
fn drain_reads_our_pod_list_and_sends_evictions() {
    let node = json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "n1", "uid": "n", "resourceVersion": "5",
                     "creationTimestamp": "2024-05-01T10:00:00Z"},
        "spec": {"unschedulable": true}, "status": {}});
    let evicted = Arc::new(Mutex::new(Vec::<String>::new()));
    let gone = evicted.clone();
    let fake = Fake::start(move |req| {
        let p = req.path.as_str();
        match (req.method.as_str(), p) {
            ("GET", "/api/v1/nodes/n1") | ("PATCH", "/api/v1/nodes/n1") => Reply::json(200, &node),
            ("GET", "/api/v1/pods") => {
                assert!(req.accepts_protobuf());
                let list = json!({"apiVersion": "v1", "kind": "PodList",
                    "metadata": {"resourceVersion": "11"},
                    "items": [pod("p1", "n1", json!({"phase": "Running",
                                 "startTime": "2024-05-01T10:00:01Z"})),
                              pod("p2", "n1", json!({"phase": "Running",
                                 "podIP": "10.42.0.7", "podIPs": [{"ip": "10.42.0.7"}]}))]});
                Reply::protobuf(200, &list)
            }
            ("POST", _) if p.ends_with("/eviction") => {
                let name = p.split('/').nth(6).unwrap_or("").to_string();
                gone.lock().unwrap().push(name);
                Reply::protobuf(
                    201,
                    &json!({"apiVersion": "v1", "kind": "Status", "metadata": {},
                            "status": "Success", "code": 201}),
                )
            }
            ("GET", _) if p.starts_with("/api/v1/namespaces/default/pods/") => {
                let name = p.rsplit('/').next().unwrap_or("");
                Reply::protobuf(
                    404,
                    &json!({"apiVersion": "v1", "kind": "Status", "metadata": {},
                        "status": "Failure", "message": format!("pods \"{name}\" not found"),
                        "reason": "NotFound", "details": {"name": name, "kind": "pods"},
                        "code": 404}),
                )
            }
            _ => Reply::not_found(),
        }
    });
    let (ok, out, err) = fake.kubectl(&["drain", "n1", "--timeout=60s"]);
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("pod/p1 evicted") && out.contains("pod/p2 evicted"),
        "{out}"
    );
    assert!(out.contains("node/n1 drained"), "{out}");
    let mut names = evicted.lock().unwrap().clone();
    names.sort();
    assert_eq!(names, ["p1", "p2"]);
    let reqs = fake.requests();
    let evictions: Vec<&Request> = reqs
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/eviction"))
        .collect();
    assert_eq!(evictions.len(), 2);
    for r in evictions {
        // kubectl 1.33 sends evictions as JSON.
        let e: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(e["kind"], json!("Eviction"));
        assert_eq!(e["apiVersion"], json!("policy/v1"));
        assert_eq!(e["metadata"]["namespace"], json!("default"));
        assert!(e["deleteOptions"].is_object(), "{e}");
    }
}

/// `kubectl debug node/… -it`: kubectl creates a Pod in protobuf, lists and watches it in
/// protobuf (our PodList and watch frames) until its container has terminated, then reads
/// its log.
#[test]
fn debug_node_sends_a_pod_and_follows_our_watch_stream() {
    let node = json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "n1", "uid": "n", "resourceVersion": "5"}, "spec": {}, "status": {}});
    let created: Arc<Mutex<Option<Value>>> = Arc::new(Mutex::new(None));
    let seen = created.clone();
    let fake = Fake::start(move |req| {
        let p = req.path.as_str();
        match (req.method.as_str(), p) {
            ("GET", "/api/v1/nodes/n1") => Reply::json(200, &node),
            ("POST", "/api/v1/namespaces/default/pods") => {
                let pod = decode(&req.body).unwrap().object;
                *seen.lock().unwrap() = Some(pod);
                echo(req)
            }
            ("GET", "/api/v1/pods") => {
                let pod = seen.lock().unwrap().clone().expect("pod created first");
                let mut pending = pod.clone();
                pending["metadata"]["resourceVersion"] = json!("20");
                pending["status"] = json!({"phase": "Pending"});
                if req.query.contains("watch=true") {
                    let mut done = pod;
                    done["metadata"]["resourceVersion"] = json!("21");
                    done["status"] = json!({"phase": "Succeeded",
                        "containerStatuses": [{"name": "debugger", "ready": false,
                            "restartCount": 0, "image": "busybox", "imageID": "",
                            "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                "startedAt": "2024-05-01T10:00:02Z",
                                "finishedAt": "2024-05-01T10:00:03Z"}}}]});
                    let bookmark = json!({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"resourceVersion": "20"}, "spec": {}, "status": {}});
                    Reply::Stream {
                        content_type: format!("{PROTOBUF};stream=watch"),
                        chunks: vec![
                            rkube_protobuf::encode_watch_event("BOOKMARK", &bookmark).unwrap(),
                            rkube_protobuf::encode_watch_event("MODIFIED", &done).unwrap(),
                        ],
                    }
                } else {
                    Reply::protobuf(
                        200,
                        &json!({"apiVersion": "v1", "kind": "PodList",
                            "metadata": {"resourceVersion": "20"}, "items": [pending]}),
                    )
                }
            }
            ("GET", _) if p.ends_with("/log") => Reply::Body {
                status: 200,
                content_type: "text/plain".into(),
                body: b"hello from the debugger\n".to_vec(),
            },
            _ => Reply::not_found(),
        }
    });
    let custom = json!({"env": [{"name": "MODE", "value": "debug"}],
        "resources": {"limits": {"cpu": "200m", "memory": "64Mi"},
                      "requests": {"cpu": "100m", "memory": "32Mi"}},
        "ports": [{"name": "http", "containerPort": 8080}],
        "livenessProbe": {"httpGet": {"path": "/", "port": "http"}},
        "readinessProbe": {"tcpSocket": {"port": 8080}}});
    std::fs::write(fake.path("custom.json"), custom.to_string()).unwrap();
    let (ok, out, err) = fake.kubectl(&[
        "debug",
        "node/n1",
        "-it",
        "--image=busybox",
        "--profile=general",
        "--custom=custom.json",
    ]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("hello from the debugger"), "{out}\n{err}");
    let reqs = fake.requests();
    let post = reqs.iter().find(|r| r.method == "POST").expect("a POST");
    let pod = check_sent("debug-node-pod", post, None);
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["resources"]["limits"]["cpu"], json!("200m"));
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], json!("http"));
    assert_eq!(c["readinessProbe"]["tcpSocket"]["port"], json!(8080));
    assert_eq!(pod["spec"]["nodeName"], json!("n1"));
    assert!(
        reqs.iter()
            .any(|r| r.query.contains("watch=true") && r.accepts_protobuf()),
        "kubectl watched in protobuf"
    );
}
