//! API errors as `metav1.Status`, with upstream's HTTP codes, reasons and message forms
//! (`pods "x" not found`, `Operation cannot be fulfilled on …`, `The Deployment "web" is
//! invalid: …`), so that kubectl and client libraries print and branch on them exactly as
//! they do against any cluster.

use serde_json::{Map, Value, json};

use crate::resources::Resource;

/// One cause of an `Invalid` (or other) error: a field error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`, …
    pub reason: String,
    pub message: String,
    /// The field path (`spec.replicas`); empty when not about one field.
    pub field: String,
}

/// An API error: what the server answers as a `metav1.Status` with `status: Failure`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Box<Details>>,
}

/// `metav1.StatusDetails`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Details {
    pub name: String,
    pub group: String,
    /// For most errors the resource (plural); for `Invalid`, the kind.
    pub kind: String,
    pub uid: String,
    pub causes: Vec<Cause>,
    pub retry_after_seconds: Option<u32>,
}

/// The message upstream gives when a stored object changed under an update.
pub const MODIFIED: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, details: Details) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    fn resource_details(resource: &Resource, name: &str) -> Details {
        Details {
            name: name.to_string(),
            group: resource.group.to_string(),
            kind: resource.plural.to_string(),
            ..Default::default()
        }
    }

    /// 404 `pods "x" not found`.
    pub fn not_found(resource: &Resource, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", resource.group_resource()),
        )
        .with_details(Self::resource_details(resource, name))
    }

    /// 404 for a path that names no resource.
    pub fn no_such_resource() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(Details::default())
    }

    /// 409 `pods "x" already exists`.
    pub fn already_exists(resource: &Resource, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", resource.group_resource()),
        )
        .with_details(Self::resource_details(resource, name))
    }

    /// 409 `Operation cannot be fulfilled on pods "x": <why>`.
    pub fn conflict(resource: &Resource, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                resource.group_resource()
            ),
        )
        .with_details(Self::resource_details(resource, name))
    }

    /// 422 `Deployment.apps "web" is invalid: spec.replicas: Invalid value: …`.
    ///
    /// `kind` is the kind qualified by group as upstream prints it (`Deployment.apps`, or
    /// `Pod` for the core group); `errors` are the field errors' messages in order.
    pub fn invalid(resource: &Resource, kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let qualified = if resource.group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{}", resource.group)
        };
        let text: Vec<String> = causes
            .iter()
            .map(|c| {
                if c.field.is_empty() {
                    c.message.clone()
                } else {
                    format!("{}: {}", c.field, c.message)
                }
            })
            .collect();
        let joined = if text.len() == 1 {
            text[0].clone()
        } else {
            format!("[{}]", text.join(", "))
        };
        Self::new(
            422,
            "Invalid",
            format!("{qualified} \"{name}\" is invalid: {joined}"),
        )
        .with_details(Details {
            name: name.to_string(),
            group: resource.group.to_string(),
            kind: kind.to_string(),
            causes,
            ..Default::default()
        })
    }

    /// 400 with the given message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 405 `<verb> is not supported on resources of kind "pods"`.
    pub fn method_not_supported(resource: &Resource, verb: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!(
                "{verb} is not supported on resources of kind \"{}\"",
                resource.group_resource()
            ),
        )
        .with_details(Details {
            group: resource.group.to_string(),
            kind: resource.plural.to_string(),
            ..Default::default()
        })
    }

    /// 405 for an HTTP method the path does not take.
    pub fn method_not_allowed(method: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({method})"),
        )
    }

    /// 410 Expired (a resource version or continue token that is too old).
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 410 Gone.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Gone", message)
    }

    /// 401.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 403 `pods "x" is forbidden: <why>` (or `pods is forbidden: …` without a name).
    pub fn forbidden(resource: &str, name: &str, why: &str) -> Self {
        let message = if name.is_empty() {
            format!("{resource} is forbidden: {why}")
        } else {
            format!("{resource} \"{name}\" is forbidden: {why}")
        };
        Self::new(403, "Forbidden", message)
    }

    /// 413 for a body over the limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    /// 415 for a body in a format the server does not read.
    pub fn unsupported_media_type(content_type: &str, accepted: &[&str]) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
        )
        .with_details(Details {
            causes: vec![Cause {
                reason: "UnexpectedServerResponse".into(),
                message: content_type.to_string(),
                field: String::new(),
            }],
            ..Default::default()
        })
    }

    /// 406 for an `Accept` the server cannot answer.
    pub fn not_acceptable(accepted: &[&str]) -> Self {
        Self::new(
            406,
            "NotAcceptable",
            format!(
                "only the following media types are accepted: {}",
                accepted.join(", ")
            ),
        )
    }

    /// 504 Timeout with a hint to retry.
    pub fn timeout(message: impl Into<String>, retry_after_seconds: u32) -> Self {
        Self::new(504, "Timeout", message).with_details(Details {
            retry_after_seconds: Some(retry_after_seconds),
            ..Default::default()
        })
    }

    /// 500 `Internal error occurred: …`.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        let message = message.to_string();
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
        )
        .with_details(Details {
            causes: vec![Cause {
                reason: String::new(),
                message,
                field: String::new(),
            }],
            ..Default::default()
        })
    }

    /// 503 Service Unavailable.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// The `metav1.Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            status["details"] = details_json(d);
        }
        status
    }
}

fn details_json(d: &Details) -> Value {
    let mut m = Map::new();
    if !d.name.is_empty() {
        m.insert("name".into(), d.name.clone().into());
    }
    if !d.group.is_empty() {
        m.insert("group".into(), d.group.clone().into());
    }
    if !d.kind.is_empty() {
        m.insert("kind".into(), d.kind.clone().into());
    }
    if !d.uid.is_empty() {
        m.insert("uid".into(), d.uid.clone().into());
    }
    if !d.causes.is_empty() {
        let causes: Vec<Value> = d
            .causes
            .iter()
            .map(|c| {
                let mut cause = Map::new();
                if !c.reason.is_empty() {
                    cause.insert("reason".into(), c.reason.clone().into());
                }
                cause.insert("message".into(), c.message.clone().into());
                if !c.field.is_empty() {
                    cause.insert("field".into(), c.field.clone().into());
                }
                Value::Object(cause)
            })
            .collect();
        m.insert("causes".into(), causes.into());
    }
    if let Some(s) = d.retry_after_seconds {
        m.insert("retryAfterSeconds".into(), s.into());
    }
    Value::Object(m)
}

/// A `Status` with `status: Success` (what some deletes return).
pub fn success(resource: &Resource, name: &str, uid: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details_json(&Details {
            name: name.to_string(),
            group: resource.group.to_string(),
            kind: resource.plural.to_string(),
            uid: uid.to_string(),
            ..Default::default()
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::find;

    #[test]
    fn messages_match_upstream() {
        let pods = find("", "v1", "pods").unwrap();
        let deploy = find("apps", "v1", "deployments").unwrap();
        let e = ApiError::not_found(pods, "web");
        assert_eq!(e.message, "pods \"web\" not found");
        assert_eq!(
            e.to_status(),
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                   "message":"pods \"web\" not found","reason":"NotFound",
                   "details":{"name":"web","kind":"pods"},"code":404})
        );
        let e = ApiError::already_exists(deploy, "web");
        assert_eq!(e.message, "deployments.apps \"web\" already exists");
        assert_eq!(e.to_status()["details"]["group"], "apps");
        let e = ApiError::conflict(deploy, "web", MODIFIED);
        assert_eq!(
            e.message,
            "Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified; please apply your changes to the latest version and try again"
        );
        let e = ApiError::invalid(
            deploy,
            "Deployment",
            "web",
            vec![Cause {
                reason: "FieldValueInvalid".into(),
                message: "Invalid value: -1: must be greater than or equal to 0".into(),
                field: "spec.replicas".into(),
            }],
        );
        assert_eq!(
            e.message,
            "Deployment.apps \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        assert_eq!(e.code, 422);
        assert_eq!(
            e.to_status()["details"]["causes"][0]["field"],
            "spec.replicas"
        );
        let e = ApiError::method_not_supported(pods, "deletecollection");
        assert_eq!(
            e.message,
            "deletecollection is not supported on resources of kind \"pods\""
        );
    }

    #[test]
    fn several_causes_are_bracketed() {
        let pods = find("", "v1", "pods").unwrap();
        let cause = |f: &str| Cause {
            reason: "FieldValueRequired".into(),
            message: "Required value".into(),
            field: f.into(),
        };
        let e = ApiError::invalid(pods, "Pod", "p", vec![cause("a"), cause("b")]);
        assert_eq!(
            e.message,
            "Pod \"p\" is invalid: [a: Required value, b: Required value]"
        );
    }
}
