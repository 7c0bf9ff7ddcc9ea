//! Presenting objects: converting from the stored version to the served one and encoding
//! in the negotiated form (JSON, YAML, `Table`, `PartialObjectMetadata`).

use http::Response;
use rkube_api::ApiError;
use rkube_api::resources::Resource;
use serde_json::{Value, json};

use super::Ctx;
use crate::table::{self, Include};
use crate::web::{Body, Output, respond};

/// The object as the requested version shows it.
pub fn served(resource: &Resource, obj: Value) -> Value {
    let mut obj = crate::convert::from_storage(resource, obj);
    if let Some(o) = obj.as_object_mut() {
        o.insert("apiVersion".into(), resource.api_version().into());
        o.insert("kind".into(), resource.kind.into());
    }
    obj
}

/// One object in the negotiated form.
pub fn object(ctx: &Ctx, status: u16, obj: Value) -> Result<Response<Body>, ApiError> {
    let doc = match ctx.output {
        Output::Json | Output::Yaml | Output::Protobuf { .. } => obj,
        Output::Table => {
            let include =
                Include::parse(ctx.query.get("includeObject")).map_err(ApiError::bad_request)?;
            let rv = obj["metadata"]["resourceVersion"].clone();
            table::table(
                ctx.resource,
                &[obj],
                include,
                json!({"resourceVersion": rv}),
            )
        }
        Output::Metadata => table::partial_metadata(&obj),
    };
    Ok(respond(status, &doc, ctx.output))
}
