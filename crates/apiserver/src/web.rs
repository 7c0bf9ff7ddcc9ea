//! HTTP plumbing: response bodies, JSON/YAML/protobuf/`Status` responses, reading request
//! bodies with the 3 MiB limit, decoding them (JSON, YAML, protobuf), and content negotiation
//! of `Accept` (JSON, YAML, protobuf, `as=Table`, `as=PartialObjectMetadata[List]`) and
//! `Content-Type`.

use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited, combinators::BoxBody};
use rkube_api::ApiError;
use serde_json::Value;

/// Every response body.
pub type Body = BoxBody<Bytes, Infallible>;

/// Largest request body accepted (upstream's limit).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

/// How a response should be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Json,
    Yaml,
    /// `meta.k8s.io/v1` `Table`.
    Table,
    /// `meta.k8s.io/v1` `PartialObjectMetadata` / `PartialObjectMetadataList`.
    Metadata,
    /// `application/vnd.kubernetes.protobuf`; `or_json` when the client also accepts JSON
    /// (which custom resources, having no protobuf form, are then served as).
    Protobuf {
        or_json: bool,
    },
}

impl Output {
    /// Whether objects are sent whole (not as a `Table` or metadata only).
    pub fn is_object(self) -> bool {
        matches!(self, Output::Json | Output::Yaml | Output::Protobuf { .. })
    }

    /// The output for a resource: protobuf only for kinds that have a protobuf form.
    pub fn for_kind(self, api_version: &str, kind: &str) -> Result<Output, ApiError> {
        match self {
            Output::Protobuf { or_json } if !rkube_protobuf::supports(api_version, kind) => {
                if or_json {
                    Ok(Output::Json)
                } else {
                    Err(ApiError::not_acceptable(ACCEPTED_JSON))
                }
            }
            other => Ok(other),
        }
    }
}

const ACCEPTED: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/json;as=Table;v=v1;g=meta.k8s.io",
];

const ACCEPTED_JSON: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/json;as=Table;v=v1;g=meta.k8s.io",
];

/// Picks the first acceptable representation of `Accept` (none given: JSON).
pub fn negotiate(accept: Option<&str>) -> Result<Output, ApiError> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Output::Json);
    };
    let mut protobuf = false;
    for item in accept.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let mut as_ = None;
        let mut group = None;
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                match k.trim() {
                    "as" => as_ = Some(v.trim().to_string()),
                    "g" => group = Some(v.trim().to_string()),
                    _ => {}
                }
            }
        }
        let json_like = matches!(media.as_str(), "application/json" | "*/*" | "application/*");
        match (as_.as_deref(), group.as_deref()) {
            (Some("Table"), Some("meta.k8s.io")) if json_like => return Ok(Output::Table),
            (Some("PartialObjectMetadata" | "PartialObjectMetadataList"), Some("meta.k8s.io"))
                if json_like =>
            {
                return Ok(Output::Metadata);
            }
            (Some(_), _) => continue,
            (None, _) => {}
        }
        if protobuf && (json_like || media == "application/yaml") {
            return Ok(Output::Protobuf { or_json: true });
        }
        if json_like {
            return Ok(Output::Json);
        }
        if media == "application/yaml" {
            return Ok(Output::Yaml);
        }
        if media == rkube_protobuf::MEDIA_TYPE {
            protobuf = true;
        }
    }
    if protobuf {
        return Ok(Output::Protobuf { or_json: false });
    }
    Err(ApiError::not_acceptable(ACCEPTED))
}

/// What a request body is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyType {
    Json,
    Yaml,
    JsonPatch,
    MergePatch,
    StrategicMergePatch,
    ApplyPatch,
    Protobuf,
}

/// Reads `Content-Type`.
pub fn body_type(content_type: Option<&str>) -> Result<BodyType, ApiError> {
    let media = content_type
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Ok(match media.as_str() {
        "" | "application/json" => BodyType::Json,
        "application/yaml" | "application/x-yaml" | "text/yaml" => BodyType::Yaml,
        "application/json-patch+json" => BodyType::JsonPatch,
        "application/merge-patch+json" => BodyType::MergePatch,
        "application/strategic-merge-patch+json" => BodyType::StrategicMergePatch,
        "application/apply-patch+yaml" | "application/apply-patch+cbor" => BodyType::ApplyPatch,
        rkube_protobuf::MEDIA_TYPE => BodyType::Protobuf,
        other => {
            return Err(ApiError::unsupported_media_type(other, BODY_TYPES));
        }
    })
}

/// The media types of object bodies.
pub const BODY_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    rkube_protobuf::MEDIA_TYPE,
];

/// Decodes an object body (a create, an update, a subresource's or delete options) of the
/// given `Content-Type`. Empty bodies are refused.
pub fn decode_object(content_type: Option<&str>, bytes: &[u8]) -> Result<Value, ApiError> {
    decode_object_noting_duplicates(content_type, bytes).map(|(v, _)| v)
}

/// [`decode_object`], and the paths of the fields a JSON body has more than once (the
/// last one is kept).
pub fn decode_object_noting_duplicates(
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<(Value, Vec<String>), ApiError> {
    let ty = body_type(content_type)?;
    if bytes.is_empty() {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    match ty {
        BodyType::Json => crate::json::parse_noting_duplicates(bytes).map_err(|e| {
            ApiError::bad_request(format!(
                "the body of the request could not be decoded as JSON: {e}"
            ))
        }),
        BodyType::Yaml => parse_document(bytes, true).map(|v| (v, Vec::new())),
        // Upstream ignores fields it does not know in protobuf bodies (strict field
        // validation covers JSON and YAML only).
        BodyType::Protobuf => rkube_protobuf::decode(bytes)
            .map(|d| (d.object, Vec::new()))
            .map_err(|e| ApiError::bad_request(format!("failed to decode protobuf body: {e}"))),
        _ => Err(ApiError::unsupported_media_type(
            content_type.unwrap_or(""),
            BODY_TYPES,
        )),
    }
}

/// Reads a request body, refusing more than [`MAX_BODY`] bytes.
pub async fn read_body<B>(body: B) -> Result<Bytes, ApiError>
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(ApiError::too_large(MAX_BODY))
            } else {
                Err(ApiError::bad_request(format!(
                    "error reading the request body: {e}"
                )))
            }
        }
    }
}

/// Parses a JSON or YAML document into a JSON value.
pub fn parse_document(bytes: &[u8], yaml: bool) -> Result<Value, ApiError> {
    if yaml {
        let v: serde_yaml::Value = serde_yaml::from_slice(bytes).map_err(|e| {
            ApiError::bad_request(format!("error converting YAML to JSON: yaml: {e}"))
        })?;
        serde_json::to_value(v)
            .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))
    } else {
        serde_json::from_slice(bytes).map_err(|e| {
            ApiError::bad_request(format!(
                "the body of the request could not be decoded as JSON: {e}"
            ))
        })
    }
}

/// A response with a JSON, YAML or protobuf body.
pub fn respond(status: u16, value: &Value, output: Output) -> Response<Body> {
    if let Output::Protobuf { .. } = output {
        match rkube_protobuf::encode(value) {
            Ok(bytes) => {
                return respond_bytes(status, Bytes::from(bytes), rkube_protobuf::MEDIA_TYPE);
            }
            // Kinds without a protobuf form were refused or turned into JSON when the request
            // was negotiated; anything left (a malformed stored object) is sent as JSON.
            Err(e) => tracing::warn!("protobuf encoding failed, sending JSON: {e}"),
        }
    }
    let (bytes, ctype) = match output {
        Output::Yaml => (
            serde_yaml::to_string(value)
                .unwrap_or_default()
                .into_bytes(),
            "application/yaml",
        ),
        _ => (
            serde_json::to_vec(value).unwrap_or_default(),
            "application/json",
        ),
    };
    respond_bytes(status, Bytes::from(bytes), ctype)
}

/// A response with an already encoded body.
pub fn respond_bytes(status: u16, bytes: Bytes, content_type: &'static str) -> Response<Body> {
    let mut resp = Response::new(full(bytes));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A `Status` response for an error.
pub fn error(err: &ApiError) -> Response<Body> {
    let mut resp = respond(err.code, &err.to_status(), Output::Json);
    if let Some(secs) = err.details.as_ref().and_then(|d| d.retry_after_seconds)
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// Adds `Warning: 299 - "<text>"` headers.
pub fn add_warnings(resp: &mut Response<Body>, warnings: &[String]) {
    for w in warnings {
        let text = format!("299 - \"{}\"", w.replace('\\', "\\\\").replace('"', "\\\""));
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers() {
        assert_eq!(negotiate(None).unwrap(), Output::Json);
        assert_eq!(
            negotiate(Some("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")).unwrap(),
            Output::Table
        );
        assert_eq!(
            negotiate(Some("application/vnd.kubernetes.protobuf, */*")).unwrap(),
            Output::Protobuf { or_json: true }
        );
        assert_eq!(
            negotiate(Some(
                "application/json, application/vnd.kubernetes.protobuf"
            ))
            .unwrap(),
            Output::Json
        );
        assert_eq!(
            negotiate(Some("application/vnd.kubernetes.protobuf")).unwrap(),
            Output::Protobuf { or_json: false }
        );
        assert_eq!(
            Output::Protobuf { or_json: false }
                .for_kind("stable.example.com/v1", "CronTab")
                .unwrap_err()
                .code,
            406
        );
        assert_eq!(
            Output::Protobuf { or_json: true }
                .for_kind("stable.example.com/v1", "CronTab")
                .unwrap(),
            Output::Json
        );
        assert_eq!(
            Output::Protobuf { or_json: false }
                .for_kind("v1", "Pod")
                .unwrap(),
            Output::Protobuf { or_json: false }
        );
        assert_eq!(negotiate(Some("application/yaml")).unwrap(), Output::Yaml);
        assert_eq!(
            negotiate(Some(
                "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"
            ))
            .unwrap(),
            Output::Metadata
        );
        assert_eq!(negotiate(Some("text/html")).unwrap_err().code, 406);
        assert_eq!(
            negotiate(Some("application/json;as=Foo;g=x"))
                .unwrap_err()
                .code,
            406
        );
    }

    #[test]
    fn content_types() {
        assert_eq!(body_type(None).unwrap(), BodyType::Json);
        assert_eq!(
            body_type(Some(
                "application/strategic-merge-patch+json; charset=utf-8"
            ))
            .unwrap(),
            BodyType::StrategicMergePatch
        );
        assert_eq!(body_type(Some("text/plain")).unwrap_err().code, 415);
        assert!(parse_document(b"{bad", false).is_err());
        assert_eq!(
            parse_document(b"a: 1\nb: [x]\n", true).unwrap(),
            serde_json::json!({"a": 1, "b": ["x"]})
        );
    }
}
