//! Defaulting and validation hooks of the write path. Object names are checked here; the
//! full per-type defaulting and validation (upstream's `SetDefaults_*` and `Validate*`) is
//! provided by the `rkube-validation` crate once it is merged, behind these same functions.

use rkube_api::meta;
use rkube_api::resources::Resource;
use rkube_api::status::Cause;
use serde_json::Value;

/// Applies upstream's defaults to a new or updated object (in its stored version).
pub fn default(_resource: &Resource, _obj: &mut Value) {}

fn dns1123_subdomain(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        });
    if ok {
        None
    } else {
        Some(format!(
            "Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        ))
    }
}

fn dns1123_label(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        None
    } else {
        Some(format!(
            "Invalid value: {name:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        ))
    }
}

/// Names of namespaces, services and a few others are DNS labels; most are subdomains.
fn name_problem(resource: &Resource, name: &str) -> Option<String> {
    match resource.plural {
        "namespaces" | "services" => dns1123_label(name),
        "rolebindings" | "roles" | "clusterroles" | "clusterrolebindings" => {
            // Path segment names: anything but "." / ".." and no "/" or "%".
            if name == "." || name == ".." || name.contains('/') || name.contains('%') {
                Some(format!(
                    "Invalid value: {name:?}: may not contain '/' or '%', or be '.' or '..'"
                ))
            } else {
                None
            }
        }
        _ => dns1123_subdomain(name),
    }
}

fn cause(field: &str, message: String, reason: &str) -> Cause {
    Cause {
        reason: reason.into(),
        message,
        field: field.into(),
    }
}

/// Checks a new object (in its stored version).
pub fn validate_create(resource: &Resource, obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    match meta::name(obj) {
        None => causes.push(cause(
            "metadata.name",
            "Required value: name or generateName is required".into(),
            "FieldValueRequired",
        )),
        Some(name) => {
            if let Some(m) = name_problem(resource, name) {
                causes.push(cause("metadata.name", m, "FieldValueInvalid"));
            }
        }
    }
    for (k, _) in meta::labels(obj) {
        if let Err(e) = rkube_api::selectors::validate_key(&k) {
            let detail = e
                .trim_start_matches("unable to parse requirement: ")
                .to_string();
            causes.push(cause(
                "metadata.labels",
                format!("Invalid value: {k:?}: {detail}"),
                "FieldValueInvalid",
            ));
        }
    }
    causes
}

/// Checks an update against the object it replaces.
pub fn validate_update(resource: &Resource, new: &Value, _old: &Value) -> Vec<Cause> {
    validate_create(resource, new)
}
