//! Endpoints that are not resources: `/version`, the health checks (`/healthz`, `/livez`,
//! `/readyz`, each with `?verbose`, `?exclude=` and per-check paths), discovery and OpenAPI.

use std::time::Duration;

use http::{Request, Response, header};
use hyper::body::Incoming;
use rkube_api::ApiError;
use serde_json::json;

use crate::State;
use crate::discovery;
use crate::request::{Query, RequestInfo};
use crate::web::{Body, Output, respond, respond_bytes};

/// The Kubernetes version rkube implements.
pub const KUBE_MAJOR: &str = "1";
pub const KUBE_MINOR: &str = "33";
pub const KUBE_PATCH: &str = "0";

pub fn version() -> serde_json::Value {
    json!({
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "emulationMajor": KUBE_MAJOR,
        "emulationMinor": KUBE_MINOR,
        "minCompatibilityMajor": KUBE_MAJOR,
        "minCompatibilityMinor": "32",
        "gitVersion": format!("v{KUBE_MAJOR}.{KUBE_MINOR}.{KUBE_PATCH}+rkube-{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": option_env!("RKUBE_GIT_COMMIT").unwrap_or("unknown"),
        "gitTreeState": "clean",
        "buildDate": option_env!("RKUBE_BUILD_DATE").unwrap_or("unknown"),
        "goVersion": "none (rkube is written in Rust)",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        }),
    })
}

pub async fn handle(
    state: &State,
    info: &RequestInfo,
    query: &Query,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    if info.verb != "get" && info.verb != "head" {
        return Err(ApiError::method_not_allowed(&info.verb.to_uppercase()));
    }
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let path = info.path.trim_end_matches('/');
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match parts.as_slice() {
        ["version"] => Ok(respond(200, &version(), Output::Json)),
        [check @ ("healthz" | "livez" | "readyz"), rest @ ..] => {
            Ok(health(state, check, rest.first().copied(), query).await)
        }
        ["api"] => Ok(match discovery::wants_aggregated(accept.as_deref()) {
            Some(v) => aggregated(true, v),
            None => respond(
                200,
                &discovery::api_versions(&state.config.advertise()),
                Output::Json,
            ),
        }),
        ["apis"] => Ok(match discovery::wants_aggregated(accept.as_deref()) {
            Some(v) => aggregated(false, v),
            None => respond(200, &discovery::api_group_list(), Output::Json),
        }),
        ["api", version] => discovery::api_resource_list("", version)
            .map(|d| respond(200, &d, Output::Json))
            .ok_or_else(ApiError::no_such_resource),
        ["apis", group] => discovery::api_group(group)
            .map(|d| respond(200, &d, Output::Json))
            .ok_or_else(ApiError::no_such_resource),
        ["apis", group, version] => discovery::api_resource_list(group, version)
            .map(|d| respond(200, &d, Output::Json))
            .ok_or_else(ApiError::no_such_resource),
        ["openapi", ..] => crate::openapi::handle(state, &parts[1..], accept.as_deref(), query),
        _ => Err(ApiError::no_such_resource()),
    }
}

fn aggregated(core: bool, version: &str) -> Response<Body> {
    let doc = discovery::aggregated(core, version);
    let ctype = if version == "v2" {
        discovery::AGGREGATED_V2
    } else {
        discovery::AGGREGATED_V2BETA1
    };
    respond_bytes(200, bytes::Bytes::from(doc.to_string()), ctype)
}

/// Runs the named health checks; `which` is `healthz`, `livez` or `readyz`.
async fn health(state: &State, which: &str, only: Option<&str>, query: &Query) -> Response<Body> {
    let mut checks: Vec<(&str, Result<(), String>)> = vec![("ping", Ok(())), ("log", Ok(()))];
    let etcd =
        match tokio::time::timeout(Duration::from_secs(2), state.store.current_revision()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("the datastore did not answer in 2s".into()),
        };
    checks.push(("etcd", etcd));
    if which != "livez" {
        checks.push((
            "informer-sync",
            if state.caches.ready() {
                Ok(())
            } else {
                Err("caches not synced".into())
            },
        ));
        checks.push((
            "poststarthook/bootstrap",
            if state.bootstrapped() {
                Ok(())
            } else {
                Err("not finished".into())
            },
        ));
    }
    if which == "readyz" {
        checks.push((
            "shutdown",
            if state.shutting_down() {
                Err("shutting down".into())
            } else {
                Ok(())
            },
        ));
    }
    let excluded: Vec<&str> = query
        .get("exclude")
        .map(|e| e.split(',').collect())
        .unwrap_or_default();
    if let Some(name) = only {
        return match checks.iter().find(|(n, _)| *n == name) {
            Some((_, Ok(()))) => text(200, "ok".into()),
            Some((_, Err(_))) => text(500, format!("internal server error: {name} check failed\n")),
            None => crate::web::error(&ApiError::no_such_resource()),
        };
    }
    let failed = checks
        .iter()
        .any(|(n, r)| r.is_err() && !excluded.contains(n));
    if !query.bool("verbose") && query.get("verbose").is_none() {
        return if failed {
            let mut out = String::new();
            for (n, r) in &checks {
                if r.is_err() && !excluded.contains(n) {
                    out.push_str(&format!("[-]{n} failed: reason withheld\n"));
                }
            }
            out.push_str(&format!("{which} check failed\n"));
            text(500, out)
        } else {
            text(200, "ok".into())
        };
    }
    let mut out = String::new();
    for (n, r) in &checks {
        if excluded.contains(n) {
            out.push_str(&format!("[+]{n} excluded: ok\n"));
        } else if r.is_ok() {
            out.push_str(&format!("[+]{n} ok\n"));
        } else {
            out.push_str(&format!("[-]{n} failed: reason withheld\n"));
        }
    }
    out.push_str(&format!(
        "{which} check {}\n",
        if failed { "failed" } else { "passed" }
    ));
    text(if failed { 500 } else { 200 }, out)
}

fn text(status: u16, body: String) -> Response<Body> {
    respond_bytes(
        status,
        bytes::Bytes::from(body),
        "text/plain; charset=utf-8",
    )
}
