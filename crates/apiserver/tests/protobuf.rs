//! The Kubernetes protobuf encoding end to end, as client-go's typed clients use it: objects
//! created, read, listed and deleted in protobuf, protobuf watch streams (length-prefixed
//! `WatchEvent` frames), content negotiation with JSON fallback, and bad protobuf bodies.
//! (kubectl's own protobuf requests are covered by `kubectl.rs`.)

mod common;

use std::time::Duration;

use common::*;
use http_body_util::BodyExt;
use serde_json::{Value, json};

const PB: &str = "application/vnd.kubernetes.protobuf";
const PODS: &str = "/api/v1/namespaces/default/pods";

struct Answer {
    status: u16,
    content_type: String,
    body: bytes::Bytes,
}

impl Answer {
    fn protobuf(&self) -> Value {
        assert_eq!(self.content_type, PB, "status {}", self.status);
        rkube_protobuf::decode(&self.body)
            .expect("a protobuf body")
            .object
    }

    fn json(&self) -> Value {
        assert!(
            self.content_type.starts_with("application/json"),
            "{}",
            self.content_type
        );
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

async fn send(
    client: &kube::Client,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Answer {
    let mut req = http::Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client
        .send(req.body(kube::client::Body::from(body)).unwrap())
        .await
        .expect("the server answers");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        content_type,
        body,
    }
}

fn pod(name: &str) -> Vec<u8> {
    rkube_protobuf::encode(&json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "pb"}},
        "spec": {"containers": [{"name": "c", "image": "busybox",
            "resources": {"limits": {"memory": "64Mi"}}}]},
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_in_protobuf() {
    let s = TestServer::start().await;
    let c = client(&s).await;
    let proto = [("Content-Type", PB), ("Accept", PB)];

    // Create: the answer is protobuf, defaulted and with system metadata.
    let created = send(&c, "POST", PODS, &proto, pod("p1")).await;
    assert_eq!(created.status, 201);
    let obj = created.protobuf();
    assert_eq!(obj["metadata"]["namespace"], "default");
    assert!(
        obj["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| u.len() == 36)
    );
    assert_eq!(obj["spec"]["restartPolicy"], "Always");
    assert_eq!(obj["spec"]["dnsPolicy"], "ClusterFirst");
    assert_eq!(obj["status"]["qosClass"], "Burstable");
    assert_eq!(
        obj["spec"]["containers"][0]["resources"]["requests"]["memory"],
        "64Mi"
    );

    // The same object read in JSON and in protobuf.
    let as_json = send(&c, "GET", &format!("{PODS}/p1"), &[], vec![])
        .await
        .json();
    let as_pb = send(&c, "GET", &format!("{PODS}/p1"), &[("Accept", PB)], vec![])
        .await
        .protobuf();
    assert_eq!(as_json["metadata"]["uid"], as_pb["metadata"]["uid"]);
    assert_eq!(
        as_json["metadata"]["creationTimestamp"],
        as_pb["metadata"]["creationTimestamp"]
    );
    assert_eq!(as_json["spec"], as_pb["spec"]);
    assert_eq!(
        as_json["metadata"]["managedFields"],
        as_pb["metadata"]["managedFields"]
    );

    // Update in protobuf.
    let mut changed = as_pb.clone();
    changed["metadata"]["labels"]["tier"] = json!("x");
    let updated = send(
        &c,
        "PUT",
        &format!("{PODS}/p1"),
        &proto,
        rkube_protobuf::encode(&changed).unwrap(),
    )
    .await;
    assert_eq!(updated.status, 200);
    assert_eq!(updated.protobuf()["metadata"]["labels"]["tier"], "x");

    // Lists: protobuf when preferred, JSON when preferred.
    send(&c, "POST", PODS, &proto, pod("p2")).await;
    let list = send(
        &c,
        "GET",
        PODS,
        &[("Accept", &format!("{PB}, */*"))],
        vec![],
    )
    .await
    .protobuf();
    assert_eq!(list["kind"], "PodList");
    let names: Vec<_> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["p1", "p2"]);
    assert!(list["metadata"]["resourceVersion"].as_str().is_some());
    let list = send(
        &c,
        "GET",
        PODS,
        &[("Accept", &format!("application/json, {PB}"))],
        vec![],
    )
    .await
    .json();
    assert_eq!(list["items"].as_array().unwrap().len(), 2);

    // Errors stay `Status` objects a client can read.
    let dup = send(&c, "POST", PODS, &proto, pod("p1")).await;
    assert_eq!(dup.status, 409);
    assert_eq!(dup.json()["reason"], "AlreadyExists");

    // Delete with protobuf `DeleteOptions`, as typed clients send them.
    let opts = rkube_protobuf::encode(&json!({
        "apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
    }))
    .unwrap();
    let deleted = send(&c, "DELETE", &format!("{PODS}/p2"), &proto, opts).await;
    assert_eq!(deleted.status, 200, "{:?}", deleted.body);
    let gone = send(&c, "GET", &format!("{PODS}/p2"), &[], vec![]).await;
    assert_eq!(gone.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_protobuf_bodies() {
    let s = TestServer::start().await;
    let c = client(&s).await;
    let ct = [("Content-Type", PB)];
    // Not an envelope, a truncated one, and the envelope of another kind.
    let whole = pod("p");
    for (body, code) in [
        (b"{\"kind\":\"Pod\"}".to_vec(), 400),
        (whole[..whole.len() / 2].to_vec(), 400),
        (
            rkube_protobuf::encode(&json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "p"}}))
            .unwrap(),
            400,
        ),
    ] {
        let a = send(&c, "POST", PODS, &ct, body).await;
        assert_eq!(a.status, code, "{:?}", a.body);
        let status = a.json();
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["code"], code);
    }
    // Patches are never protobuf.
    let a = send(&c, "PATCH", &format!("{PODS}/p"), &ct, whole).await;
    assert_eq!(a.status, 415);
    // Nothing was stored.
    let list = send(&c, "GET", PODS, &[], vec![]).await.json();
    assert_eq!(list["items"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_watch_stream() {
    let s = TestServer::start().await;
    let c = client(&s).await;
    let proto = [("Content-Type", PB), ("Accept", PB)];
    send(&c, "POST", PODS, &proto, pod("w1")).await;

    let req = http::Request::builder()
        .uri(format!("{PODS}?watch=true&allowWatchBookmarks=true"))
        .header("Accept", PB)
        .body(kube::client::Body::empty())
        .unwrap();
    let resp = c.send(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "application/vnd.kubernetes.protobuf;stream=watch"
    );
    let mut body = resp.into_body();
    let mut frames = rkube_protobuf::FrameBuffer::new(rkube_protobuf::DEFAULT_MAX_FRAME);
    let mut next = async || loop {
        if let Some(payload) = frames.next_frame().unwrap() {
            return rkube_protobuf::decode_watch_event(&payload).unwrap();
        }
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("a frame in time")
            .expect("the stream is open")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            frames.push(&data);
        }
    };

    let first = next().await;
    assert_eq!(first.event_type, "ADDED");
    assert_eq!(first.object.kind, "Pod");
    assert_eq!(first.object.object["metadata"]["name"], "w1");

    send(&c, "POST", PODS, &proto, pod("w2")).await;
    let added = next().await;
    assert_eq!(added.event_type, "ADDED");
    assert_eq!(added.object.object["metadata"]["name"], "w2");

    let deleted = send(
        &c,
        "DELETE",
        &format!("{PODS}/w2?gracePeriodSeconds=0"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(deleted.status, 200);
    let mut event = next().await;
    while event.event_type == "BOOKMARK" || event.event_type == "MODIFIED" {
        event = next().await;
    }
    assert_eq!(event.event_type, "DELETED");
    assert_eq!(event.object.object["metadata"]["name"], "w2");
}
