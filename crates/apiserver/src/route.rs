//! The entry point of every request: authenticate, parse, authorize, then hand resource
//! requests to the handlers and everything else (version, health, discovery, OpenAPI) to
//! the non-resource endpoints.

use std::sync::Arc;
use std::time::Instant;

use http::{Request, Response, header};
use hyper::body::Incoming;
use rkube_api::ApiError;

use crate::State;
use crate::authz::Decision;
use crate::request::{Query, RequestInfo};
use crate::serve::Conn;
use crate::web::{self, Body};

pub async fn handle(state: Arc<State>, conn: Arc<Conn>, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = Query::parse(req.uri().query());
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let resp = match state.authn.authenticate(conn.cert.as_ref(), authorization) {
        None => web::error(&ApiError::unauthorized()),
        Some(user) => {
            let info = RequestInfo::parse(&method, &path, &query);
            match state.authz.authorize(&user, &info) {
                Decision::Deny(why) => web::error(&ApiError::forbidden(
                    &info.resource,
                    info.name.as_deref().unwrap_or(""),
                    &why,
                )),
                Decision::Allow => {
                    let result = if info.is_resource {
                        crate::handlers::handle(state.clone(), user, info, query, req).await
                    } else {
                        crate::nonresource::handle(&state, &info, &query, req).await
                    };
                    result.unwrap_or_else(|e| web::error(&e))
                }
            }
        }
    };
    tracing::debug!(
        %method,
        %path,
        status = resp.status().as_u16(),
        elapsed_us = started.elapsed().as_micros() as u64,
        peer = %conn.peer,
        "request"
    );
    resp
}
