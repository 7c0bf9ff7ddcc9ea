//! Bad input never crashes the server or changes stored data: malformed JSON and YAML,
//! unsupported media types, oversized bodies, mismatched kinds, bad names, unsupported
//! verbs, unknown resources, bad query parameters and random bytes — each answered with a
//! `metav1.Status` carrying upstream's code — and more than a thousand random malformed
//! requests, after which the store holds exactly what it held before.

mod common;

use bytes::Bytes;
use common::*;
use http_body_util::BodyExt;
use rand::{Rng, SeedableRng};
use rkube_store::RangeRequest;
use serde_json::{Value, json};

/// Sends a raw request and returns (status, body as JSON if it is JSON).
async fn send(
    client: &kube::Client,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, Option<Value>) {
    let mut req = http::Request::builder().method(method).uri(path);
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    let resp = client
        .send(req.body(kube::client::Body::from(body)).unwrap())
        .await
        .expect("the server answers");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).ok())
}

/// Asserts a `metav1.Status` failure with `code`.
fn status_is(answer: &(u16, Option<Value>), code: u16, what: &str) {
    assert_eq!(answer.0, code, "{what}: {:?}", answer.1);
    let body = answer
        .1
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: no JSON body"));
    assert_eq!(body["kind"], "Status", "{what}: {body}");
    assert_eq!(body["status"], "Failure", "{what}: {body}");
    assert_eq!(body["code"], code, "{what}: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: {body}"
    );
}

async fn snapshot(s: &TestServer) -> Vec<(String, Bytes, i64)> {
    s.store
        .range(RangeRequest::prefix("/registry/"))
        .await
        .unwrap()
        .kvs
        .into_iter()
        .map(|kv| (kv.key, kv.value, kv.mod_revision))
        .collect()
}

const CM: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_bad_input_gets_the_right_status() {
    let s = TestServer::start().await;
    let c = client(&s).await;
    let good = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "good"}, "data": {"a": "b"}});
    let created = send(
        &c,
        "POST",
        CM,
        Some("application/json"),
        serde_json::to_vec(&good).unwrap(),
    )
    .await;
    assert_eq!(created.0, 201);
    let before = snapshot(&s).await;

    status_is(
        &send(
            &c,
            "POST",
            CM,
            Some("application/json"),
            b"{\"apiVersion\": \"v1\", ".to_vec(),
        )
        .await,
        400,
        "truncated JSON",
    );
    status_is(
        &send(
            &c,
            "POST",
            CM,
            Some("application/yaml"),
            b"a: [b\n  c: :".to_vec(),
        )
        .await,
        400,
        "broken YAML",
    );
    status_is(
        &send(
            &c,
            "POST",
            CM,
            Some("application/json"),
            b"[1,2,3]".to_vec(),
        )
        .await,
        400,
        "not an object",
    );
    status_is(
        &send(&c, "POST", CM, Some("text/plain"), b"hello".to_vec()).await,
        415,
        "text/plain",
    );
    status_is(
        &send(
            &c,
            "POST",
            CM,
            Some("application/json"),
            vec![b' '; 3 * 1024 * 1024 + 10],
        )
        .await,
        413,
        "oversized body",
    );
    let wrong_kind = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}});
    status_is(
        &send(
            &c,
            "POST",
            CM,
            Some("application/json"),
            serde_json::to_vec(&wrong_kind).unwrap(),
        )
        .await,
        400,
        "kind mismatch",
    );
    let wrong_version =
        json!({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
    status_is(
        &send(
            &c,
            "POST",
            CM,
            Some("application/json"),
            serde_json::to_vec(&wrong_version).unwrap(),
        )
        .await,
        400,
        "version mismatch",
    );
    let wrong_type = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": 1}});
    status_is(
        &send(
            &c,
            "POST",
            CM,
            Some("application/json"),
            serde_json::to_vec(&wrong_type).unwrap(),
        )
        .await,
        400,
        "wrong JSON type",
    );
    for name in [
        "UPPER",
        "under_score",
        "-lead",
        "trail-",
        &"x".repeat(300),
        "sp ace",
        "dot..dot",
    ] {
        let bad = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
        let answer = send(
            &c,
            "POST",
            CM,
            Some("application/json"),
            serde_json::to_vec(&bad).unwrap(),
        )
        .await;
        status_is(&answer, 422, name);
        assert_eq!(
            answer.1.unwrap()["details"]["causes"][0]["field"],
            "metadata.name"
        );
    }
    let nameless = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}});
    status_is(
        &send(
            &c,
            "POST",
            CM,
            Some("application/json"),
            serde_json::to_vec(&nameless).unwrap(),
        )
        .await,
        422,
        "no name",
    );
    status_is(
        &send(
            &c,
            "PUT",
            CM,
            Some("application/json"),
            serde_json::to_vec(&good).unwrap(),
        )
        .await,
        405,
        "PUT on a collection",
    );
    status_is(
        &send(
            &c,
            "POST",
            &format!("{CM}/good"),
            Some("application/json"),
            serde_json::to_vec(&good).unwrap(),
        )
        .await,
        405,
        "POST on an object",
    );
    status_is(
        &send(&c, "DELETE", "/api/v1/namespaces", None, vec![]).await,
        405,
        "deletecollection of namespaces",
    );
    status_is(
        &send(&c, "GET", "/api/v1/bindings", None, vec![]).await,
        405,
        "list of bindings",
    );
    status_is(
        &send(
            &c,
            "GET",
            "/api/v1/namespaces/default/frobnicators",
            None,
            vec![],
        )
        .await,
        404,
        "unknown resource",
    );
    status_is(
        &send(
            &c,
            "GET",
            "/apis/nosuch.example.com/v1/things",
            None,
            vec![],
        )
        .await,
        404,
        "unknown group",
    );
    status_is(
        &send(&c, "GET", &format!("{CM}/good/nosub"), None, vec![]).await,
        404,
        "unknown subresource",
    );
    status_is(
        &send(&c, "GET", "/api/v1/configmaps/good", None, vec![]).await,
        404,
        "namespaced object without namespace",
    );
    status_is(
        &send(&c, "GET", &format!("{CM}?limit=lots"), None, vec![]).await,
        400,
        "bad limit",
    );
    status_is(
        &send(
            &c,
            "GET",
            &format!("{CM}?labelSelector=a%20in%20(b"),
            None,
            vec![],
        )
        .await,
        400,
        "bad label selector",
    );
    status_is(
        &send(
            &c,
            "GET",
            &format!("{CM}?fieldSelector=data.a%3Db"),
            None,
            vec![],
        )
        .await,
        400,
        "unsupported field selector",
    );
    status_is(
        &send(&c, "GET", &format!("{CM}?continue=bm9wZQ"), None, vec![]).await,
        400,
        "bad continue token",
    );
    status_is(
        &send(
            &c,
            "GET",
            &format!("{CM}?resourceVersion=abc"),
            None,
            vec![],
        )
        .await,
        400,
        "bad resource version",
    );
    status_is(
        &send(
            &c,
            "GET",
            &format!("{CM}?watch=1&resourceVersion=-5"),
            None,
            vec![],
        )
        .await,
        400,
        "bad watch version",
    );
    status_is(
        &send(
            &c,
            "POST",
            &format!("{CM}?fieldValidation=Maybe"),
            Some("application/json"),
            serde_json::to_vec(&good).unwrap(),
        )
        .await,
        400,
        "bad fieldValidation",
    );
    status_is(
        &send(
            &c,
            "POST",
            &format!("{CM}?dryRun=Some"),
            Some("application/json"),
            serde_json::to_vec(&good).unwrap(),
        )
        .await,
        400,
        "bad dryRun",
    );
    status_is(
        &send(
            &c,
            "PATCH",
            &format!("{CM}/good"),
            Some("application/json-patch+json"),
            b"{\"op\": 1}".to_vec(),
        )
        .await,
        400,
        "malformed JSON patch",
    );
    status_is(
        &send(
            &c,
            "PATCH",
            &format!("{CM}/good"),
            Some("application/merge-patch+json"),
            b"{not json".to_vec(),
        )
        .await,
        400,
        "malformed merge patch",
    );
    status_is(
        &send(
            &c,
            "PATCH",
            &format!("{CM}/good"),
            Some("application/json"),
            b"{}".to_vec(),
        )
        .await,
        415,
        "patch as plain JSON",
    );

    assert_eq!(snapshot(&s).await, before, "nothing stored changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_random_malformed_requests_change_nothing() {
    let s = TestServer::start().await;
    let c = client(&s).await;
    for i in 0..5 {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("keep{i}")}, "data": {"v": i.to_string()}});
        assert_eq!(
            send(
                &c,
                "POST",
                CM,
                Some("application/json"),
                serde_json::to_vec(&cm).unwrap()
            )
            .await
            .0,
            201
        );
    }
    let before = snapshot(&s).await;
    let valid = serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "keep0"}, "data": {"v": "changed"}}))
    .unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let paths = [
        CM.to_string(),
        format!("{CM}/keep0"),
        format!("{CM}/keep1/status"),
        "/api/v1/namespaces/default/pods".to_string(),
        "/apis/apps/v1/namespaces/default/deployments".to_string(),
        "/api/v1/namespaces".to_string(),
    ];
    let content_types = [
        "application/json",
        "application/yaml",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/json-patch+json",
        "application/apply-patch+yaml",
        "application/vnd.kubernetes.protobuf",
        "application/x-garbage",
    ];
    let mut counts = std::collections::BTreeMap::new();
    for n in 0..1200 {
        let path = &paths[rng.random_range(0..paths.len())];
        let method = ["POST", "PUT", "PATCH"][rng.random_range(0..3)];
        let ctype = content_types[rng.random_range(0..content_types.len())];
        // A body that can never be a valid document: a valid one cut short, random
        // bytes, or a valid one with a random byte smashed into the first brace.
        let body: Vec<u8> = match rng.random_range(0..3) {
            0 => valid[..rng.random_range(1..valid.len() - 1)].to_vec(),
            1 => (0..rng.random_range(1..512))
                .map(|_| rng.random::<u8>() | 0x80)
                .collect(),
            _ => {
                let mut b = valid.clone();
                b[0] = b"]:\x00\x7f}"[rng.random_range(0..5)];
                b
            }
        };
        let answer = send(&c, method, path, Some(ctype), body).await;
        assert!(
            (400..500).contains(&answer.0),
            "request {n}: {method} {path} ({ctype}) answered {}: {:?}",
            answer.0,
            answer.1
        );
        let body = answer
            .1
            .unwrap_or_else(|| panic!("request {n}: no Status body"));
        assert_eq!(body["kind"], "Status", "request {n}");
        assert_eq!(body["code"], answer.0, "request {n}");
        *counts.entry(answer.0).or_insert(0) += 1;
    }
    assert!(counts.values().sum::<usize>() >= 1000);
    // Still healthy, and nothing changed.
    let (ready, _) = send(&c, "GET", "/readyz", None, vec![]).await;
    assert_eq!(ready, 200);
    assert_eq!(
        snapshot(&s).await,
        before,
        "stored data changed; answers were {counts:?}"
    );
}
