//! Resource requests: from a parsed request to a response. `read` (get, list), `watch`,
//! `write` (create, update, patch, delete, deletecollection) and `sub` (subresources:
//! status, scale, binding, eviction, finalize) share the [`Ctx`] built here.

mod list;
mod present;
mod read;
mod sub;
mod watch;
mod write;

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, header};
use hyper::body::Incoming;
use rkube_api::ApiError;
use rkube_api::resources::{self, Resource};

use crate::State;
use crate::authn::UserInfo;
use crate::request::{Query, RequestInfo};
use crate::web::{Body, Output, negotiate};

/// Everything a handler needs about one request.
pub struct Ctx {
    pub state: Arc<State>,
    pub user: UserInfo,
    pub info: RequestInfo,
    pub query: Query,
    pub resource: &'static Resource,
    pub output: Output,
    pub content_type: Option<String>,
    pub user_agent: String,
}

impl Ctx {
    pub fn namespace(&self) -> Option<&str> {
        self.info.namespace.as_deref()
    }

    pub fn name(&self) -> &str {
        self.info.name.as_deref().unwrap_or("")
    }

    /// The `fieldManager` parameter, if given.
    pub fn field_manager_param(&self) -> Option<String> {
        self.query.non_empty("fieldManager").map(String::from)
    }

    /// `dryRun=All`.
    pub fn dry_run(&self) -> Result<bool, ApiError> {
        match self.query.get("dryRun") {
            None | Some("") => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "dryRun: Unsupported value: {other:?}: supported values: \"All\""
            ))),
        }
    }

    /// The field manager: `fieldManager`, else derived from the user agent as upstream
    /// does (`kubectl-client-side-apply` comes from kubectl itself).
    pub fn field_manager(&self) -> String {
        if let Some(m) = self.query.non_empty("fieldManager") {
            return m.to_string();
        }
        let agent = self.user_agent.split('/').next().unwrap_or("").trim();
        if agent.is_empty() {
            "unknown".to_string()
        } else {
            agent.chars().take(128).collect()
        }
    }
}

/// Serves a request for a resource.
pub async fn handle(
    state: Arc<State>,
    user: UserInfo,
    info: RequestInfo,
    query: Query,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let resource = resources::find(&info.group, &info.version, &info.resource)
        .ok_or_else(ApiError::no_such_resource)?;
    // A namespaced resource is named within a namespace; a cluster-scoped one never is.
    match (resource.namespaced(), &info.namespace) {
        (true, None) if info.name.is_some() || info.verb == "create" => {
            return Err(ApiError::no_such_resource());
        }
        (false, Some(_)) => return Err(ApiError::no_such_resource()),
        _ => {}
    }
    let header_str = |name: header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let mut output = negotiate(header_str(header::ACCEPT).as_deref())?;
    if info.subresource.is_none() {
        output = output.for_kind(&resource.api_version(), resource.kind)?;
    }
    let ctx = Ctx {
        content_type: header_str(header::CONTENT_TYPE),
        user_agent: header_str(header::USER_AGENT).unwrap_or_default(),
        state,
        user,
        info,
        query,
        resource,
        output,
    };
    let body = async { crate::web::read_body(req.into_body()).await };
    // Writes to a collection by PUT or PATCH, and creates at an object's path, do not exist.
    let wrong_path = matches!(
        (
            ctx.info.verb.as_str(),
            &ctx.info.name,
            &ctx.info.subresource,
        ),
        ("update" | "patch", None, _) | ("create", Some(_), None)
    );
    if wrong_path {
        return Err(ApiError::method_not_allowed(&ctx.info.verb.to_uppercase()));
    }
    match ctx.info.subresource.clone() {
        None => {
            if !resource.has_verb(&ctx.info.verb) {
                return Err(ApiError::method_not_supported(resource, &ctx.info.verb));
            }
            match (resource.plural, ctx.info.verb.as_str()) {
                ("bindings", "create") => sub::bind(&ctx, &body.await?).await,
                ("selfsubjectreviews", "create") => self_subject_review(&ctx),
                (_, verb) => match verb {
                    "get" => read::get(&ctx).await,
                    "list" => list::list(&ctx).await,
                    "watch" => watch::watch(&ctx).await,
                    "create" => write::create(&ctx, body.await?).await,
                    "update" => write::update(&ctx, body.await?).await,
                    "patch" => write::patch(&ctx, body.await?).await,
                    "delete" => write::delete(&ctx, body.await?).await,
                    "deletecollection" => write::delete_collection(&ctx, body.await?).await,
                    verb => Err(ApiError::method_not_supported(resource, verb)),
                },
            }
        }
        Some(sub) => {
            let Some(subresource) = resource.subresource(&sub) else {
                return Err(ApiError::no_such_resource());
            };
            if !subresource.verbs.contains(&ctx.info.verb.as_str()) {
                return Err(ApiError::method_not_supported(resource, &ctx.info.verb));
            }
            let body: Bytes = if matches!(ctx.info.verb.as_str(), "get" | "list" | "watch") {
                Bytes::new()
            } else {
                body.await?
            };
            sub::handle(&ctx, subresource, body).await
        }
    }
}

/// `kubectl auth whoami`: who the server thinks the caller is.
fn self_subject_review(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let mut user = serde_json::json!({"username": ctx.user.username, "groups": ctx.user.groups});
    if !ctx.user.uid.is_empty() {
        user["uid"] = ctx.user.uid.clone().into();
    }
    let review = serde_json::json!({
        "kind": "SelfSubjectReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": rkube_api::meta::now_rfc3339()},
        "status": {"userInfo": user},
    });
    Ok(crate::web::respond(201, &review, ctx.output))
}
