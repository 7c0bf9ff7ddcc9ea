//! End to end with the real kubectl (1.32, plus smoke runs of 1.27 and 1.33): every command
//! a user would run against a cluster, with assertions on what kubectl prints.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
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
        ports:
        - containerPort: 80
        env:
        - name: MODE
          value: one
"#;

/// Runs `f` on a blocking thread (kubectl is a child process).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("join")
}

fn k(kc: &Path, args: &[&str]) -> Run {
    kubectl_with(KUBECTL, kc, args, None)
}

fn k_in(kc: &Path, args: &[&str], stdin: &str) -> Run {
    kubectl_with(KUBECTL, kc, args, Some(stdin))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_explain_and_raw() {
    let s = TestServer::start().await;
    let kc = s.kubeconfig.clone();
    blocking(move || {
        let out = k(&kc, &["api-resources"]).ok();
        let deploy_line = out
            .lines()
            .find(|l| l.starts_with("deployments "))
            .expect("deployments listed");
        let cols: Vec<&str> = deploy_line.split_whitespace().collect();
        assert_eq!(
            cols,
            ["deployments", "deploy", "apps/v1", "true", "Deployment"]
        );
        assert!(out.lines().any(
            |l| l.split_whitespace().collect::<Vec<_>>() == ["pods", "po", "v1", "true", "Pod"]
        ));
        let wide = k(&kc, &["api-resources", "-o", "wide"]).ok();
        let pods = wide.lines().find(|l| l.starts_with("pods ")).unwrap();
        assert!(
            pods.contains("create,delete,deletecollection,get,list,patch,update,watch")
                || pods.contains("[create delete deletecollection get list patch update watch]"),
            "{pods}"
        );
        assert!(pods.contains("all"), "{pods}");

        let versions = k(&kc, &["api-versions"]).ok();
        for v in [
            "v1",
            "apps/v1",
            "autoscaling/v1",
            "autoscaling/v2",
            "batch/v1",
            "rbac.authorization.k8s.io/v1",
        ] {
            assert!(
                versions.lines().any(|l| l == v),
                "{v} missing from\n{versions}"
            );
        }

        let explain = k(&kc, &["explain", "deployment.spec.strategy", "--recursive"]).ok();
        assert!(explain.contains("KIND:       Deployment"), "{explain}");
        assert!(explain.contains("rollingUpdate"), "{explain}");
        assert!(explain.contains("maxSurge"), "{explain}");
        let explain = k(&kc, &["explain", "pods.spec.restartPolicy"]).ok();
        assert!(
            explain.contains("Restart policy for all containers within the pod"),
            "{explain}"
        );

        let version: serde_json::Value =
            serde_json::from_str(&k(&kc, &["get", "--raw", "/version"]).ok()).unwrap();
        assert_eq!(version["major"], "1");
        assert_eq!(version["minor"], "33");
        let ready = k(&kc, &["get", "--raw", "/readyz?verbose"]).ok();
        assert!(
            ready.contains("[+]etcd ok") && ready.contains("readyz check passed"),
            "{ready}"
        );
        assert_eq!(k(&kc, &["get", "--raw", "/livez"]).ok(), "ok");

        let who = k(&kc, &["auth", "whoami"]).ok();
        assert!(
            who.contains("system:admin") && who.contains("system:masters"),
            "{who}"
        );
        let who = k(
            &kc,
            &[
                "auth",
                "whoami",
                "-o",
                "jsonpath={.status.userInfo.username}",
            ],
        )
        .ok();
        assert_eq!(who, "system:admin");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_and_describe() {
    let s = TestServer::start().await;
    let kc = s.kubeconfig.clone();
    blocking(move || {
        let out = k_in(&kc, &["create", "-f", "-"], DEPLOYMENT).ok();
        assert_eq!(out.trim(), "deployment.apps/web created");
        let again = k_in(&kc, &["create", "-f", "-"], DEPLOYMENT).fails();
        assert!(again.contains("Error from server (AlreadyExists): error when creating \"STDIN\": deployments.apps \"web\" already exists"), "{again}");

        let yaml = k(&kc, &["get", "deployment", "web", "-o", "yaml"]).ok();
        for want in ["kind: Deployment", "name: web", "replicas: 2", "image: nginx:1.25", "uid:", "resourceVersion:", "generation: 1"] {
            assert!(yaml.contains(want), "{want} missing from\n{yaml}");
        }
        let json: serde_json::Value = serde_json::from_str(&k(&kc, &["get", "deploy", "web", "-o", "json"]).ok()).unwrap();
        assert_eq!(json["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"], "one");
        assert_eq!(k(&kc, &["get", "deploy", "web", "-o", "name"]).ok().trim(), "deployment.apps/web");
        assert_eq!(k(&kc, &["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]).ok(), "2");
        let cc = k(&kc, &["get", "deploy", "-o", "custom-columns=NAME:.metadata.name,REPLICAS:.spec.replicas"]).ok();
        let lines: Vec<Vec<&str>> = cc.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(lines, [vec!["NAME", "REPLICAS"], vec!["web", "2"]]);
        let table = k(&kc, &["get", "deployments"]).ok();
        assert!(table.lines().next().unwrap().starts_with("NAME"), "{table}");
        assert!(table.contains("web"), "{table}");
        let wide = k(&kc, &["get", "deployments", "-o", "wide"]).ok();
        assert!(wide.contains("web"), "{wide}");
        let all = k(&kc, &["get", "all"]).ok();
        assert!(all.contains("deployment.apps/web"), "{all}");
        assert!(all.contains("service/kubernetes"), "{all}");
        let labels = k(&kc, &["get", "deploy", "--show-labels"]).ok();
        assert!(labels.contains("app=web"), "{labels}");
        let selected = k(&kc, &["get", "deploy", "-l", "app=web", "-o", "name"]).ok();
        assert_eq!(selected.trim(), "deployment.apps/web");
        let none = k(&kc, &["get", "deploy", "-l", "app=db"]).ok();
        assert!(none.is_empty());

        let desc = k(&kc, &["describe", "deployment", "web"]).ok();
        for want in ["Name:", "web", "Namespace:", "default", "Replicas:", "2 desired", "nginx:1.25"] {
            assert!(desc.contains(want), "{want} missing from\n{desc}");
        }
        let e = k(&kc, &["get", "deploy", "missing"]).fails();
        assert!(e.contains("Error from server (NotFound): deployments.apps \"missing\" not found"), "{e}");
        let e = k_in(&kc, &["create", "-f", "-"], &DEPLOYMENT.replace("replicas: 2", "replicas: \"x\"")).fails();
        assert!(e.contains("Error"), "{e}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_three_rounds_diff_and_server_side() {
    let s = TestServer::start().await;
    let kc = s.kubeconfig.clone();
    blocking(move || {
        assert_eq!(k_in(&kc, &["apply", "-f", "-"], DEPLOYMENT).ok().trim(), "deployment.apps/web created");
        // Round 2: change the image, add an env var and a sidecar, add an annotation.
        let v2 = DEPLOYMENT
            .replace("image: nginx:1.25", "image: nginx:1.26")
            .replace("          value: one\n", "          value: one\n        - name: EXTRA\n          value: two\n      - name: side\n        image: busybox\n")
            .replace("  labels:\n    app: web\nspec:", "  labels:\n    app: web\n  annotations:\n    team: blue\nspec:");
        assert_eq!(k_in(&kc, &["apply", "-f", "-"], &v2).ok().trim(), "deployment.apps/web configured");
        let d: serde_json::Value = serde_json::from_str(&k(&kc, &["get", "deploy", "web", "-o", "json"]).ok()).unwrap();
        let containers = d["spec"]["template"]["spec"]["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 2);
        let main = containers.iter().find(|c| c["name"] == "main").unwrap();
        assert_eq!(main["image"], "nginx:1.26");
        assert_eq!(main["env"].as_array().unwrap().len(), 2);
        assert_eq!(d["metadata"]["annotations"]["team"], "blue");
        // Someone else scales it; apply keeps what it does not own... until it sets it.
        k(&kc, &["scale", "deploy", "web", "--replicas=4"]).ok();
        // Round 3: remove the sidecar, the extra env var, the port and the annotation.
        let v3 = DEPLOYMENT
            .replace("image: nginx:1.25", "image: nginx:1.26")
            .replace("        ports:\n        - containerPort: 80\n", "");
        assert_eq!(k_in(&kc, &["apply", "-f", "-"], &v3).ok().trim(), "deployment.apps/web configured");
        let d: serde_json::Value = serde_json::from_str(&k(&kc, &["get", "deploy", "web", "-o", "json"]).ok()).unwrap();
        let containers = d["spec"]["template"]["spec"]["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 1, "sidecar removed: {containers:?}");
        assert_eq!(containers[0]["env"].as_array().unwrap().len(), 1, "EXTRA removed");
        assert!(containers[0].get("ports").is_none(), "port removed");
        assert!(d["metadata"]["annotations"].get("team").is_none(), "annotation removed");
        assert_eq!(d["spec"]["replicas"], 2, "applied replicas win again");
        assert_eq!(k_in(&kc, &["apply", "-f", "-"], &v3).ok().trim(), "deployment.apps/web unchanged");

        // diff: no difference, then one.
        let same = k_in(&kc, &["diff", "-f", "-"], &v3);
        assert!(same.status.success(), "diff of the same: {}{}", same.stdout, same.stderr);
        let changed = k_in(&kc, &["diff", "-f", "-"], &v3.replace("replicas: 2", "replicas: 3"));
        assert_eq!(changed.status.code(), Some(1), "{}{}", changed.stdout, changed.stderr);
        assert!(changed.stdout.contains("-  replicas: 2") && changed.stdout.contains("+  replicas: 3"), "{}", changed.stdout);

        // Server-side apply, and its conflict with the client-side applier.
        let ssa = v3.replace("name: web", "name: web-ssa").replace("app: web", "app: web-ssa");
        assert_eq!(k_in(&kc, &["apply", "--server-side", "-f", "-"], &ssa).ok().trim(), "deployment.apps/web-ssa serverside-applied");
        let mf = k(&kc, &["get", "deploy", "web-ssa", "-o", "jsonpath={.metadata.managedFields[*].manager}", "--show-managed-fields"]).ok();
        assert!(mf.contains("kubectl"), "{mf}");
        k(&kc, &["scale", "deploy", "web-ssa", "--replicas=5"]).ok();
        let conflict = k_in(&kc, &["apply", "--server-side", "-f", "-"], &ssa).fails();
        assert!(conflict.contains("conflict"), "{conflict}");
        assert!(conflict.contains(".spec.replicas"), "{conflict}");
        let forced = k_in(&kc, &["apply", "--server-side", "--force-conflicts", "-f", "-"], &ssa).ok();
        assert!(forced.contains("serverside-applied"), "{forced}");
        assert_eq!(k(&kc, &["get", "deploy", "web-ssa", "-o", "jsonpath={.spec.replicas}"]).ok(), "2");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_string_data_is_folded_into_data() {
    let s = TestServer::start().await;
    let kc = s.kubeconfig.clone();
    blocking(move || {
        // kubectl validates strictly: stringData is a known field, folded into data.
        let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  user: admin\ndata:\n  other: b3RoZXI=\n";
        assert_eq!(k_in(&kc, &["apply", "-f", "-"], secret).ok().trim(), "secret/creds created");
        let got: serde_json::Value =
            serde_json::from_str(&k(&kc, &["get", "secret", "creds", "-o", "json"]).ok()).unwrap();
        assert_eq!(got["data"]["user"], "YWRtaW4=");
        assert_eq!(got["data"]["other"], "b3RoZXI=");
        assert!(got.get("stringData").is_none(), "{got}");
        let bad = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: bad\nstringDatum:\n  a: b\n";
        let err = k_in(&kc, &["create", "-f", "-"], bad).fails();
        assert!(err.contains("unknown field \"stringDatum\""), "{err}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_annotate_scale_patch_edit() {
    let s = TestServer::start().await;
    let kc = s.kubeconfig.clone();
    let dir = s.dir.path().to_path_buf();
    blocking(move || {
        k_in(&kc, &["create", "-f", "-"], DEPLOYMENT).ok();
        assert_eq!(k(&kc, &["label", "deploy", "web", "tier=front"]).ok().trim(), "deployment.apps/web labeled");
        assert_eq!(k(&kc, &["get", "deploy", "web", "-o", "jsonpath={.metadata.labels.tier}"]).ok(), "front");
        let e = k(&kc, &["label", "deploy", "web", "tier=back"]).fails();
        assert!(e.contains("already has a value (front)"), "{e}");
        k(&kc, &["label", "deploy", "web", "tier=back", "--overwrite"]).ok();
        k(&kc, &["label", "deploy", "web", "tier-"]).ok();
        assert_eq!(k(&kc, &["get", "deploy", "web", "-o", "jsonpath={.metadata.labels.tier}"]).ok(), "");
        assert_eq!(k(&kc, &["annotate", "deploy", "web", "note=hello"]).ok().trim(), "deployment.apps/web annotated");
        assert_eq!(k(&kc, &["get", "deploy", "web", "-o", "jsonpath={.metadata.annotations.note}"]).ok(), "hello");
        assert_eq!(k(&kc, &["scale", "deploy", "web", "--replicas=5"]).ok().trim(), "deployment.apps/web scaled");
        assert_eq!(k(&kc, &["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]).ok(), "5");
        let e = k(&kc, &["scale", "deploy", "web", "--replicas=3", "--current-replicas=4"]).fails();
        assert!(e.contains("Expected replicas to be 4, was 5") || e.contains("precondition"), "{e}");

        k(&kc, &["patch", "deploy", "web", "-p", r#"{"spec":{"template":{"spec":{"containers":[{"name":"main","image":"nginx:1.27"}]}}}}"#]).ok();
        assert_eq!(k(&kc, &["get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}"]).ok(), "nginx:1.27");
        k(&kc, &["patch", "deploy", "web", "--type=merge", "-p", r#"{"metadata":{"labels":{"m":"x"}}}"#]).ok();
        assert_eq!(k(&kc, &["get", "deploy", "web", "-o", "jsonpath={.metadata.labels.m}"]).ok(), "x");
        k(&kc, &["patch", "deploy", "web", "--type=json", "-p", r#"[{"op":"replace","path":"/spec/replicas","value":1}]"#]).ok();
        assert_eq!(k(&kc, &["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]).ok(), "1");
        let e = k(&kc, &["patch", "deploy", "web", "--type=json", "-p", r#"[{"op":"remove","path":"/spec/nonexistent"}]"#]).fails();
        assert!(e.contains("The request is invalid") && e.contains("/spec/nonexistent"), "{e}");

        // edit with an editor that changes the image.
        let editor = dir.join("editor.sh");
        std::fs::write(&editor, "#!/bin/sh\nsed -i 's/nginx:1.27/nginx:edited/' \"$1\"\n").unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let out = Command::new(KUBECTL)
            .args(["edit", "deploy", "web"])
            .env("KUBECONFIG", &kc)
            .env("KUBE_EDITOR", &editor)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "deployment.apps/web edited");
        assert_eq!(k(&kc, &["get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}"]).ok(), "nginx:edited");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_and_wait() {
    let s = TestServer::start().await;
    let kc = s.kubeconfig.clone();
    blocking(move || {
        let cm = |name: &str, label: &str| {
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  labels:\n    group: {label}\ndata:\n  k: v\n")
        };
        for (n, l) in [("a", "g1"), ("b", "g1"), ("c", "g2"), ("d", "g2"), ("e", "g3")] {
            k_in(&kc, &["create", "-f", "-"], &cm(n, l)).ok();
        }
        assert_eq!(k(&kc, &["delete", "cm", "a"]).ok().trim(), "configmap \"a\" deleted");
        let out = k(&kc, &["delete", "cm", "-l", "group=g1"]).ok();
        assert_eq!(out.trim(), "configmap \"b\" deleted");
        // wait --for=jsonpath, then --for=delete while something deletes it.
        k_in(&kc, &["apply", "-f", "-"], DEPLOYMENT).ok();
        let ok = k(&kc, &["wait", "deploy/web", "--for=jsonpath={.spec.replicas}=2", "--timeout=10s"]).ok();
        assert!(ok.contains("condition met"), "{ok}");
        let kc2 = kc.clone();
        let deleter = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            k(&kc2, &["delete", "cm", "c"]).ok()
        });
        let waited = k(&kc, &["wait", "cm/c", "--for=delete", "--timeout=20s"]).ok();
        assert!(waited.contains("condition met"), "{waited}");
        deleter.join().unwrap();
        let timeout = k(&kc, &["wait", "cm/d", "--for=delete", "--timeout=1s"]).fails();
        assert!(timeout.contains("timed out"), "{timeout}");
        let out = k(&kc, &["delete", "cm", "--all"]).ok();
        assert!(out.contains("configmap \"d\" deleted") && out.contains("configmap \"e\" deleted"), "{out}");
        assert_eq!(k(&kc, &["get", "cm", "-o", "name"]).ok().trim(), "");
        let e = k(&kc, &["delete", "cm", "nope"]).fails();
        assert!(e.contains("Error from server (NotFound): configmaps \"nope\" not found"), "{e}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_generators() {
    let s = TestServer::start().await;
    let kc = s.kubeconfig.clone();
    let dir = s.dir.path().to_path_buf();
    blocking(move || {
        assert_eq!(
            k(&kc, &["create", "namespace", "team-a"]).ok().trim(),
            "namespace/team-a created"
        );
        assert_eq!(
            k(
                &kc,
                &[
                    "create",
                    "configmap",
                    "settings",
                    "-n",
                    "team-a",
                    "--from-literal=color=blue",
                    "--from-literal=size=9"
                ]
            )
            .ok()
            .trim(),
            "configmap/settings created"
        );
        assert_eq!(
            k(
                &kc,
                &[
                    "get",
                    "cm",
                    "settings",
                    "-n",
                    "team-a",
                    "-o",
                    "jsonpath={.data.color}"
                ]
            )
            .ok(),
            "blue"
        );
        assert_eq!(
            k(
                &kc,
                &[
                    "create",
                    "secret",
                    "generic",
                    "creds",
                    "-n",
                    "team-a",
                    "--from-literal=password=s3cret"
                ]
            )
            .ok()
            .trim(),
            "secret/creds created"
        );
        assert_eq!(
            k(
                &kc,
                &[
                    "get",
                    "secret",
                    "creds",
                    "-n",
                    "team-a",
                    "-o",
                    "jsonpath={.data.password}"
                ]
            )
            .ok(),
            "czNjcmV0"
        );
        assert_eq!(
            k(
                &kc,
                &[
                    "get",
                    "secret",
                    "creds",
                    "-n",
                    "team-a",
                    "-o",
                    "jsonpath={.type}"
                ]
            )
            .ok(),
            "Opaque"
        );
        // A TLS secret from a certificate and key made for the test.
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["example.com".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(dir.join("tls.crt"), cert.pem()).unwrap();
        std::fs::write(dir.join("tls.key"), key.serialize_pem()).unwrap();
        let out = k(
            &kc,
            &[
                "create",
                "secret",
                "tls",
                "site",
                "-n",
                "team-a",
                &format!("--cert={}", dir.join("tls.crt").display()),
                &format!("--key={}", dir.join("tls.key").display()),
            ],
        )
        .ok();
        assert_eq!(out.trim(), "secret/site created");
        assert_eq!(
            k(
                &kc,
                &[
                    "get",
                    "secret",
                    "site",
                    "-n",
                    "team-a",
                    "-o",
                    "jsonpath={.type}"
                ]
            )
            .ok(),
            "kubernetes.io/tls"
        );
        let ns = k(
            &kc,
            &["get", "ns", "team-a", "-o", "jsonpath={.status.phase}"],
        )
        .ok();
        assert_eq!(ns, "Active");
        assert!(
            k(&kc, &["create", "namespace", "team-a"])
                .fails()
                .contains("AlreadyExists")
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kustomize() {
    let s = TestServer::start().await;
    let kc = s.kubeconfig.clone();
    let dir = s.dir.path().join("kustomize");
    blocking(move || {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("deployment.yaml"), DEPLOYMENT).unwrap();
        std::fs::write(
            dir.join("kustomization.yaml"),
            "resources:\n- deployment.yaml\nnamePrefix: prod-\ncommonLabels:\n  env: prod\nconfigMapGenerator:\n- name: app-config\n  literals:\n  - LEVEL=debug\n",
        )
        .unwrap();
        let out = k(&kc, &["apply", "-k", dir.to_str().unwrap()]).ok();
        assert!(out.contains("deployment.apps/prod-web created"), "{out}");
        assert!(out.contains("configmap/prod-app-config-"), "{out}");
        assert_eq!(k(&kc, &["get", "deploy", "prod-web", "-o", "jsonpath={.metadata.labels.env}"]).ok(), "prod");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_streams_changes() {
    let s = TestServer::start().await;
    let kc = s.kubeconfig.clone();
    blocking(move || {
        let mut child = Command::new(KUBECTL)
            .args(["get", "configmaps", "-w", "--output-watch-events"])
            .env("KUBECONFIG", &kc)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        std::thread::sleep(Duration::from_millis(500));
        k(
            &kc,
            &["create", "configmap", "watched", "--from-literal=a=b"],
        )
        .ok();
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
                let done = line.contains("ADDED") && line.contains("watched");
                seen.push(line);
                if done {
                    break;
                }
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            seen.iter()
                .any(|l| l.contains("ADDED") && l.contains("watched")),
            "{seen:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_forwards_requests() {
    let s = TestServer::start().await;
    let kc = s.kubeconfig.clone();
    blocking(move || {
        let mut child = Command::new(KUBECTL)
            .args(["proxy", "--port=0"])
            .env("KUBECONFIG", &kc)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        // "Starting to serve on 127.0.0.1:PORT"
        let addr = first.trim().rsplit(' ').next().unwrap().to_string();
        let mut conn = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            conn,
            "GET /api/v1/namespaces/default HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut resp = String::new();
        conn.read_to_string(&mut resp).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        assert!(resp.contains("\"name\":\"default\""), "{resp}");
    })
    .await;
}

/// The same essentials with the oldest and newest kubectl on the machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_kubectl_versions() {
    let s = TestServer::start().await;
    let kc = s.kubeconfig.clone();
    blocking(move || {
        for minor in [33, 27] {
            let bin = kubectl_version(minor);
            let run = |args: &[&str], input: Option<&str>| kubectl_with(&bin, &kc, args, input);
            let name = format!("web{minor}");
            let manifest = DEPLOYMENT.replace("name: web", &format!("name: {name}"));
            assert!(
                run(&["get", "ns"], None).ok().contains("kube-system"),
                "1.{minor}"
            );
            assert!(
                run(&["api-resources"], None).ok().contains("deployments"),
                "1.{minor}"
            );
            assert!(
                run(&["apply", "-f", "-"], Some(&manifest))
                    .ok()
                    .contains("created"),
                "1.{minor}"
            );
            let changed = manifest.replace("replicas: 2", "replicas: 3");
            assert!(
                run(&["apply", "-f", "-"], Some(&changed))
                    .ok()
                    .contains("configured"),
                "1.{minor}"
            );
            assert_eq!(
                run(
                    &["get", "deploy", &name, "-o", "jsonpath={.spec.replicas}"],
                    None
                )
                .ok(),
                "3"
            );
            assert!(
                run(&["get", "deploy", "-o", "wide"], None)
                    .ok()
                    .contains(&name)
            );
            assert!(
                run(&["delete", "deploy", &name], None)
                    .ok()
                    .contains("deleted")
            );
        }
    })
    .await;
}
