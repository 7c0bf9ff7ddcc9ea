//! The remaining groups: coordination, discovery, events, networking, rbac, storage,
//! scheduling, node, certificates, admissionregistration and apiextensions.

mod common;

use common::*;
use serde_json::{Value, json};

#[test]
fn leases() {
    let l = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l", "namespace": "kube-system"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}});
    assert_valid(create_errors(l.clone()));
    let mut bad = l.clone();
    bad["spec"]["leaseDurationSeconds"] = json!(0);
    bad["spec"]["leaseTransitions"] = json!(-1);
    let errs = create_errors(bad);
    assert_has(
        &errs,
        "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
    );
    assert_has(
        &errs,
        "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
    );
    let mut new = l.clone();
    new["spec"]["holderIdentity"] = json!("b");
    assert_valid(update_errors(l, new));
}

fn slice(addr_type: &str, addr: &str) -> Value {
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "web-abc", "namespace": "default"},
        "addressType": addr_type, "endpoints": [{"addresses": [addr]}], "ports": [{"port": 80}]})
}

#[test]
fn endpoint_slices() {
    let d = defaulted(slice("IPv4", "10.42.0.5"));
    assert_eq!(
        d["ports"][0],
        json!({"name": "", "port": 80, "protocol": "TCP"})
    );
    assert_valid(create_errors(slice("IPv4", "10.42.0.5")));
    assert_has(
        &create_errors(slice("IPv4", "fe80::1")),
        "endpoints[0].addresses[0]: Invalid value: \"fe80::1\": must be a valid IPv4 address",
    );
    assert_has(
        &create_errors(slice("IPv5", "x")),
        "addressType: Unsupported value: \"IPv5\": supported values: \"FQDN\", \"IPv4\", \"IPv6\"",
    );
    let mut none = slice("IPv4", "10.42.0.5");
    none["endpoints"][0]["addresses"] = json!([]);
    assert_has(
        &create_errors(none),
        "endpoints[0].addresses: Required value: must contain at least 1 address",
    );
    assert_has(
        &update_errors(slice("IPv4", "10.42.0.5"), slice("IPv6", "fd00::5")),
        "addressType: Invalid value: \"IPv6\": field is immutable",
    );
}

#[test]
fn events_k8s_io() {
    let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e", "namespace": "default"},
        "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "rkube.io/kubelet", "reportingInstance": "node-1",
        "action": "Started", "reason": "Started", "type": "Normal", "regarding": {"kind": "Pod", "name": "p", "namespace": "default"}});
    assert_valid(create_errors(ev.clone()));
    let mut bad = ev.clone();
    bad["reportingController"] = json!("");
    bad["type"] = json!("Fatal");
    bad["deprecatedCount"] = json!(3);
    let errs = create_errors(bad);
    assert_has(&errs, "reportingController: Required value");
    assert_has(&errs, "type: Invalid value: \"\": has invalid value: Fatal");
    assert_has(
        &errs,
        "deprecatedCount: Invalid value: \"\": needs to be unset",
    );
    let mut new = ev.clone();
    new["reason"] = json!("Other");
    assert_has(
        &update_errors(ev, new),
        "reason: Invalid value: \"Other\": field is immutable",
    );
}

fn ingress(spec: Value) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i", "namespace": "default"}, "spec": spec})
}

#[test]
fn ingresses() {
    let ok = ingress(
        json!({"rules": [{"host": "web.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
        "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}),
    );
    assert_valid(create_errors(ok));
    let errs = create_errors(ingress(json!({})));
    assert_has(
        &errs,
        "spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified",
    );
    let errs = create_errors(ingress(
        json!({"rules": [{"host": "10.0.0.1", "http": {"paths": [
        {"path": "/a", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
        {"path": "a", "pathType": "Exact", "backend": {"service": {"name": "web"}}}]}}]}),
    ));
    assert_has(
        &errs,
        "spec.rules[0].host: Invalid value: \"10.0.0.1\": must be a DNS name, not an IP address",
    );
    assert_has(
        &errs,
        "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified",
    );
    assert_has(
        &errs,
        "spec.rules[0].http.paths[1].path: Invalid value: \"a\": must be an absolute path",
    );
    assert_has(
        &errs,
        "spec.rules[0].http.paths[1].backend: Required value: port name or number is required",
    );
}

#[test]
fn ingress_classes() {
    let ic = json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "rkube"},
        "spec": {"controller": "rkube.io/ingress", "parameters": {"kind": "Config", "name": "c"}}});
    assert_eq!(
        defaulted(ic.clone())["spec"]["parameters"]["scope"],
        "Cluster"
    );
    assert_valid(create_errors(ic.clone()));
    let mut bad = ic.clone();
    bad["spec"]["controller"] = json!("nginx");
    assert_has(
        &create_errors(bad),
        "spec.controller: Invalid value: \"nginx\": must be a domain-prefixed path (such as \"acme.io/foo\")",
    );
    let mut new = ic.clone();
    new["spec"]["controller"] = json!("other.io/x");
    assert_has(
        &update_errors(ic, new),
        "spec.controller: Invalid value: \"other.io/x\": field is immutable",
    );
}

#[test]
fn network_policies() {
    let np = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "n", "namespace": "default"},
        "spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}});
    let d = defaulted(np.clone());
    assert_eq!(d["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(d["spec"]["egress"][0]["ports"][0]["protocol"], "TCP");
    assert_valid(create_errors(np));
    let bad = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "n", "namespace": "default"},
        "spec": {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.1.0.0/24"]}}, {}],
            "ports": [{"port": "http", "endPort": 90}]}]}});
    let errs = create_errors(bad);
    assert_has(
        &errs,
        "spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: \"10.1.0.0/24\": must be a strict subset of `cidr`",
    );
    assert_has(
        &errs,
        "spec.ingress[0].from[1]: Required value: must specify a peer",
    );
    assert_has(
        &errs,
        "spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is non-numeric",
    );
}

#[test]
fn rbac() {
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r", "namespace": "default"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}, {"nonResourceURLs": ["/healthz"], "verbs": []}]});
    let errs = create_errors(role);
    assert_has(
        &errs,
        "rules[1].verbs: Required value: verbs must contain at least one value",
    );
    assert_has(
        &errs,
        "rules[1].nonResourceURLs: Invalid value: []string{\"/healthz\"}: namespaced rules cannot apply to non-resource URLs",
    );
    let rb = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "b", "namespace": "default"},
        "roleRef": {"kind": "Role", "name": "r"}, "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "default"}]});
    let d = defaulted(rb.clone());
    assert_eq!(d["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
    assert_eq!(d["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io");
    assert_eq!(d["subjects"][1]["apiGroup"], "");
    assert_valid(create_errors(rb.clone()));
    let mut new = rb.clone();
    new["roleRef"]["name"] = json!("other");
    assert_has(
        &update_errors(rb, new),
        "roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"Role\", Name:\"other\"}: cannot change roleRef",
    );
    let crb = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "b"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}, "subjects": [{"kind": "ServiceAccount", "name": "x"}]});
    let errs = create_errors(crb);
    assert_has(
        &errs,
        "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"",
    );
    assert_has(&errs, "subjects[0].namespace: Required value");
    let cr = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "view"},
        "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]});
    assert_valid(create_errors(cr));
}

#[test]
fn storage_group() {
    let sc = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "local"}, "provisioner": "rkube.io/local-path"});
    let d = defaulted(sc.clone());
    assert_eq!(d["reclaimPolicy"], "Delete");
    assert_eq!(d["volumeBindingMode"], "Immediate");
    assert_valid(create_errors(sc.clone()));
    let mut new = sc.clone();
    new["parameters"] = json!({"a": "b"});
    assert_has(
        &update_errors(sc, new),
        "parameters: Forbidden: updates to parameters are forbidden.",
    );
    let csi = json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": {"name": "hostpath.csi.k8s.io"}, "spec": {}});
    let d = defaulted(csi.clone());
    assert_eq!(d["spec"]["attachRequired"], true);
    assert_eq!(d["spec"]["podInfoOnMount"], false);
    assert_eq!(d["spec"]["fsGroupPolicy"], "ReadWriteOnceWithFSType");
    assert_eq!(d["spec"]["volumeLifecycleModes"], json!(["Persistent"]));
    assert_valid(create_errors(csi.clone()));
    let mut new = csi.clone();
    new["spec"]["attachRequired"] = json!(false);
    assert_has(
        &update_errors(csi, new),
        "spec.attachRequired: Invalid value: false: field is immutable",
    );
    let va = json!({"apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment", "metadata": {"name": "va"},
        "spec": {"attacher": "hostpath.csi.k8s.io", "nodeName": "n1", "source": {}}});
    assert_has(
        &create_errors(va),
        "spec.source: Required value: must specify exactly one of inlineVolumeSpec and persistentVolumeName",
    );
    let node = json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSINode", "metadata": {"name": "n1"},
        "spec": {"drivers": [{"name": "hostpath.csi.k8s.io", "nodeID": ""}]}});
    assert_has(
        &create_errors(node),
        "spec.drivers[0].nodeID: Required value",
    );
}

#[test]
fn priority_classes() {
    let pc = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "high"}, "value": 1000});
    assert_eq!(
        defaulted(pc.clone())["preemptionPolicy"],
        "PreemptLowerPriority"
    );
    assert_valid(create_errors(pc.clone()));
    let sys = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "system-mine"}, "value": 10});
    assert_has(
        &create_errors(sys),
        "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-mine is not a known system priority class",
    );
    let big = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "big"}, "value": 2000000000});
    assert_has(
        &create_errors(big),
        "value: Forbidden: maximum allowed value of a user defined priority is 1000000000",
    );
    let mut new = pc.clone();
    new["value"] = json!(5);
    assert_has(
        &update_errors(pc, new),
        "value: Forbidden: may not be changed in an update.",
    );
}

#[test]
fn runtime_classes() {
    let rc = json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "gvisor"}, "handler": "runsc"});
    assert_valid(create_errors(rc.clone()));
    let mut bad = rc.clone();
    bad["handler"] = json!("Run_SC");
    assert_starts(
        &create_errors(bad),
        "handler: Invalid value: \"Run_SC\": a lowercase RFC 1123 label",
    );
    let mut new = rc.clone();
    new["handler"] = json!("runc");
    assert_has(
        &update_errors(rc, new),
        "handler: Invalid value: \"runc\": field is immutable",
    );
}

const CSR_PEM: &str =
    "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n";

#[test]
fn certificate_signing_requests() {
    use std::io::Write;
    let mut b64 = Vec::new();
    {
        // Minimal base64 encoder for the test data.
        const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for chunk in CSR_PEM.as_bytes().chunks(3) {
            let n = chunk.len();
            let v = (u32::from(chunk[0]) << 16)
                | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
                | u32::from(*chunk.get(2).unwrap_or(&0));
            for i in 0..4 {
                if i <= n {
                    b64.write_all(&[T[((v >> (18 - 6 * i)) & 63) as usize]])
                        .unwrap();
                } else {
                    b64.write_all(b"=").unwrap();
                }
            }
        }
    }
    let req = String::from_utf8(b64).unwrap();
    let csr = json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": "c"},
        "spec": {"request": req, "signerName": "kubernetes.io/kube-apiserver-client", "usages": ["client auth"]}});
    assert_valid(create_errors(csr.clone()));
    let mut bad = csr.clone();
    bad["spec"]["request"] = json!("aGVsbG8=");
    bad["spec"]["signerName"] = json!("no-slash");
    bad["spec"]["usages"] = json!(["flying"]);
    let errs = create_errors(bad);
    assert_has(
        &errs,
        "spec.request: Invalid value: []byte{...}: PEM block type must be CERTIFICATE REQUEST",
    );
    assert_has(
        &errs,
        "spec.signerName: Invalid value: \"no-slash\": must be a fully qualified domain and path of the form 'example.com/signer-name'",
    );
    assert_starts(
        &errs,
        "spec.usages[0]: Unsupported value: \"flying\": supported values: \"any\", \"cert sign\"",
    );
}

fn webhook_config(webhook: Value) -> Value {
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "w"}, "webhooks": [webhook]})
}

#[test]
fn webhook_configurations() {
    let hook = json!({"name": "check.rkube.example.com", "sideEffects": "None", "admissionReviewVersions": ["v1"],
        "clientConfig": {"service": {"name": "s", "namespace": "default"}},
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]});
    let d = defaulted(webhook_config(hook.clone()));
    let w = &d["webhooks"][0];
    assert_eq!(w["failurePolicy"], "Fail");
    assert_eq!(w["matchPolicy"], "Equivalent");
    assert_eq!(w["timeoutSeconds"], 10);
    assert_eq!(w["namespaceSelector"], json!({}));
    assert_eq!(w["objectSelector"], json!({}));
    assert_eq!(w["rules"][0]["scope"], "*");
    assert_eq!(w["clientConfig"]["service"]["port"], 443);
    assert_valid(create_errors(webhook_config(hook.clone())));
    let mut bad = hook.clone();
    bad["name"] = json!("check");
    bad["sideEffects"] = json!("Some");
    bad["timeoutSeconds"] = json!(60);
    bad["clientConfig"] = json!({"url": "http://x.example.com/hook?a=b"});
    let errs = create_errors(webhook_config(bad));
    assert_has(
        &errs,
        "webhooks[0].name: Invalid value: \"check\": should be a domain with at least three segments separated by dots",
    );
    assert_has(
        &errs,
        "webhooks[0].sideEffects: Unsupported value: \"Some\": supported values: \"None\", \"NoneOnDryRun\"",
    );
    assert_has(
        &errs,
        "webhooks[0].timeoutSeconds: Invalid value: 60: the timeout value must be between 1 and 30 seconds",
    );
    assert_has(
        &errs,
        "webhooks[0].clientConfig.url: Invalid value: \"http\": 'https' is the only allowed URL scheme; desired format: https://host[/path]",
    );
    assert_has(
        &errs,
        "webhooks[0].clientConfig.url: Invalid value: \"a=b\": query parameters are not permitted in the URL",
    );
    let mut m = webhook_config(hook);
    m["kind"] = json!("MutatingWebhookConfiguration");
    assert_eq!(
        defaulted(m.clone())["webhooks"][0]["reinvocationPolicy"],
        "Never"
    );
    assert_valid(create_errors(m));
}

fn crd() -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced", "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}}}]}})
}

#[test]
fn custom_resource_definitions() {
    let d = prepared(crd());
    assert_eq!(d["spec"]["names"]["singular"], "widget");
    assert_eq!(d["spec"]["names"]["listKind"], "WidgetList");
    assert_eq!(d["spec"]["conversion"], json!({"strategy": "None"}));
    assert_eq!(d["status"]["storedVersions"], json!(["v1"]));
    assert_valid(create_errors(crd()));
    let mut bad = crd();
    bad["metadata"]["name"] = json!("gadgets.example.com");
    bad["spec"]["versions"][0]["storage"] = json!(false);
    bad["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["size"] =
        json!({});
    bad["spec"]["scope"] = json!("Global");
    let errs = create_errors(bad);
    assert_has(
        &errs,
        "metadata.name: Invalid value: \"gadgets.example.com\": must be spec.names.plural+\".\"+spec.group",
    );
    assert_starts(&errs, "spec.versions: Invalid value: ");
    assert_has(
        &errs,
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[size].type: Required value: must not be empty for specified object fields",
    );
    assert_has(
        &errs,
        "spec.scope: Unsupported value: \"Global\": supported values: \"Cluster\", \"Namespaced\"",
    );
    let mut new = crd();
    new["spec"]["scope"] = json!("Cluster");
    assert_has(
        &update_errors(crd(), new),
        "spec.scope: Invalid value: \"Cluster\": field is immutable",
    );
}
