//! `kubectl get` through the real kubectl: the server's `Table` (columns and cells from
//! `rkube-printers`) as kubectl prints it, normal and `-o wide`.

mod common;

use common::*;

/// kubectl's output as lines of whitespace-separated words.
fn words(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

/// Drops the word at `index` (an age, which depends on timing) from every line but the
/// header.
fn without(mut lines: Vec<Vec<String>>, index: usize) -> Vec<Vec<String>> {
    for line in lines.iter_mut().skip(1) {
        line.remove(index);
    }
    lines
}

fn v(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

const OBJECTS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: main
        image: nginx:1.25
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  a: "1"
  b: "2"
---
apiVersion: v1
kind: Pod
metadata:
  name: crashy
spec:
  nodeName: node-1
  containers:
  - name: app
    image: busybox
---
apiVersion: v1
kind: Node
metadata:
  name: node-1
  labels:
    node-role.kubernetes.io/control-plane: ""
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: reader
rules: []
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_prints_upstreams_columns() {
    let s = TestServer::start().await;
    let kc = s.kubeconfig.clone();
    tokio::task::spawn_blocking(move || {
        let k = |args: &[&str]| kubectl_with(KUBECTL, &kc, args, None);
        kubectl_with(KUBECTL, &kc, &["apply", "-f", "-"], Some(OBJECTS)).ok();
        k(&[
            "patch", "pod", "crashy", "--subresource=status", "--type=merge", "-p",
            r#"{"status":{"phase":"Running","podIP":"10.42.0.9","podIPs":[{"ip":"10.42.0.9"}],
                "containerStatuses":[{"name":"app","image":"busybox","imageID":"","ready":false,
                "restartCount":5,"state":{"waiting":{"reason":"CrashLoopBackOff"}},
                "lastState":{"terminated":{"exitCode":1,"finishedAt":"2020-01-01T00:00:00Z"}}}]}}"#,
        ])
        .ok();
        k(&[
            "patch", "node", "node-1", "--subresource=status", "--type=merge", "-p",
            r#"{"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady",
                "lastHeartbeatTime":"2025-01-01T00:00:00Z","lastTransitionTime":"2025-01-01T00:00:00Z"}],
                "addresses":[{"type":"InternalIP","address":"192.168.1.10"}],
                "nodeInfo":{"kubeletVersion":"v1.33.0","osImage":"Debian GNU/Linux 12 (bookworm)",
                "kernelVersion":"6.1.0","containerRuntimeVersion":"rkube://0.1.0","machineID":"",
                "systemUUID":"","bootID":"","kubeProxyVersion":"","operatingSystem":"linux",
                "architecture":"amd64"}}}"#,
        ])
        .ok();

        let deploy = words(&k(&["get", "deployment", "web"]).ok());
        assert_eq!(
            without(deploy, 4),
            [v(&["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]), v(&["web", "0/2", "0", "0"])]
        );
        let wide = words(&k(&["get", "deployment", "web", "-o", "wide"]).ok());
        assert_eq!(
            without(wide, 4),
            [
                v(&["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]),
                v(&["web", "0/2", "0", "0", "main", "nginx:1.25", "app=web"]),
            ]
        );

        let svc = words(&k(&["get", "service", "web", "-o", "wide"]).ok());
        assert_eq!(
            svc[0],
            v(&["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"])
        );
        assert_eq!(&svc[1][..2], &v(&["web", "ClusterIP"]));
        assert!(svc[1][2].starts_with("10.43."), "{:?}", svc[1]);
        assert_eq!(&svc[1][3..5], &v(&["<none>", "80/TCP"]));
        assert_eq!(svc[1][6], "app=web");

        let cm = words(&k(&["get", "configmap", "settings"]).ok());
        assert_eq!(without(cm, 2), [v(&["NAME", "DATA", "AGE"]), v(&["settings", "2"])]);

        let pod = k(&["get", "pod", "crashy", "-o", "wide"]).ok();
        let pod = words(&pod);
        assert_eq!(
            pod[0],
            v(&["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE", "READINESS", "GATES"])
        );
        assert_eq!(&pod[1][..4], &v(&["crashy", "0/1", "CrashLoopBackOff", "5"]), "{pod:?}");
        // The last restart, years ago: "5 (6y325d ago)".
        assert!(pod[1][4].starts_with('(') && pod[1][4].contains('y'), "{pod:?}");
        assert_eq!(pod[1][5], "ago)");
        assert_eq!(&pod[1][pod[1].len() - 4..], &v(&["10.42.0.9", "node-1", "<none>", "<none>"]));

        let nodes = words(&k(&["get", "nodes", "-o", "wide"]).ok());
        assert_eq!(
            nodes[0],
            v(&["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE",
                "KERNEL-VERSION", "CONTAINER-RUNTIME"])
        );
        assert_eq!(
            without(nodes, 3)[1],
            v(&["node-1", "Ready", "control-plane", "v1.33.0", "192.168.1.10", "<none>", "Debian",
                "GNU/Linux", "12", "(bookworm)", "6.1.0", "rkube://0.1.0"])
        );

        // No printer upstream: the default table.
        let roles = words(&k(&["get", "roles"]).ok());
        assert_eq!(roles[0], v(&["NAME", "CREATED", "AT"]));
        assert_eq!(roles[1][0], "reader");
        assert!(roles[1][1].ends_with('Z'), "{roles:?}");
    })
    .await
    .expect("join");
}
