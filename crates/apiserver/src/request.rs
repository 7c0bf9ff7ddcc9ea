//! What a request asks for: upstream's "RequestInfo" (verb, group, version, namespace,
//! resource, name, subresource) parsed from the method and path, and the query parameters
//! the API understands.

use std::collections::HashMap;

/// A parsed API request path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// `/api/...` or `/apis/...` naming a resource (as opposed to `/version`, discovery, …).
    pub is_resource: bool,
    /// The Kubernetes verb: get, list, watch, create, update, patch, delete,
    /// deletecollection; for other requests the lower-case HTTP method.
    pub verb: String,
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub resource: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// Path segments after the subresource (e.g. a proxy path).
    pub rest: Vec<String>,
    pub path: String,
}

/// Subresources of namespaces that are not namespaced resources of their own.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

impl RequestInfo {
    /// Parses `method` and `path` (percent-decoded segments) as upstream does.
    pub fn parse(method: &str, path: &str, query: &Query) -> RequestInfo {
        let mut info = RequestInfo {
            verb: method.to_ascii_lowercase(),
            path: path.to_string(),
            ..Default::default()
        };
        let parts: Vec<String> = path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect();
        let mut rest: &[String] = &parts;
        match rest.first().map(String::as_str) {
            Some("api") if rest.len() >= 2 => {
                info.version = rest[1].clone();
                rest = &rest[2..];
            }
            Some("apis") if rest.len() >= 3 => {
                info.group = rest[1].clone();
                info.version = rest[2].clone();
                rest = &rest[3..];
            }
            _ => return info,
        }
        if rest.is_empty() {
            // Discovery for a group/version.
            return info;
        }
        info.is_resource = true;
        let mut watch_path = false;
        if rest[0] == "watch" {
            watch_path = true;
            rest = &rest[1..];
        }
        if rest.first().map(String::as_str) == Some("namespaces") && rest.len() > 1 {
            info.namespace = Some(rest[1].clone());
            if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2].as_str()) {
                rest = &rest[2..];
            }
        }
        if let Some(r) = rest.first() {
            info.resource = r.clone();
        }
        if let Some(n) = rest.get(1) {
            info.name = Some(n.clone());
        }
        if let Some(s) = rest.get(2) {
            info.subresource = Some(s.clone());
        }
        if rest.len() > 3 {
            info.rest = rest[3..].to_vec();
        }
        // The namespace of a namespace is itself only in upstream's authorization view; the
        // resource request is cluster scoped.
        if info.resource == "namespaces" && info.namespace.as_deref() == info.name.as_deref() {
            info.namespace = None;
        }
        info.verb = match method {
            "GET" | "HEAD" => {
                if watch_path || query.bool("watch") {
                    "watch".into()
                } else if info.name.is_some() {
                    "get".into()
                } else {
                    "list".into()
                }
            }
            "POST" => "create".into(),
            "PUT" => "update".into(),
            "PATCH" => "patch".into(),
            "DELETE" => {
                if info.name.is_some() {
                    "delete".into()
                } else {
                    "deletecollection".into()
                }
            }
            other => other.to_ascii_lowercase(),
        };
        info
    }
}

/// Query parameters, decoded. Repeated keys keep the first value.
#[derive(Clone, Debug, Default)]
pub struct Query {
    values: HashMap<String, String>,
}

impl Query {
    pub fn parse(query: Option<&str>) -> Query {
        let mut values = HashMap::new();
        if let Some(q) = query {
            for (k, v) in form_urlencoded::parse(q.as_bytes()) {
                values
                    .entry(k.into_owned())
                    .or_insert_with(|| v.into_owned());
            }
        }
        Query { values }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// A non-empty value.
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// `true`/`1` as upstream's query decoding reads booleans.
    pub fn bool(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1" | "True" | "TRUE"))
    }

    /// An integer parameter: `Ok(None)` if absent, an error message if malformed.
    pub fn int(&self, key: &str) -> Result<Option<i64>, String> {
        match self.non_empty(key) {
            None => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(Some)
                .map_err(|_| format!("invalid value for {key}: {v:?} is not an integer")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(method: &str, path: &str, query: &str) -> RequestInfo {
        RequestInfo::parse(method, path, &Query::parse(Some(query)))
    }

    #[test]
    fn resource_paths() {
        let r = parse("GET", "/api/v1/namespaces/default/pods/web", "");
        assert_eq!(
            (r.verb.as_str(), r.group.as_str(), r.version.as_str()),
            ("get", "", "v1")
        );
        assert_eq!(r.namespace.as_deref(), Some("default"));
        assert_eq!(r.resource, "pods");
        assert_eq!(r.name.as_deref(), Some("web"));

        let r = parse("GET", "/apis/apps/v1/deployments", "watch=true");
        assert_eq!((r.verb.as_str(), r.group.as_str()), ("watch", "apps"));
        assert_eq!(r.namespace, None);

        let r = parse(
            "PUT",
            "/apis/apps/v1/namespaces/x/deployments/web/scale",
            "",
        );
        assert_eq!(r.verb, "update");
        assert_eq!(r.subresource.as_deref(), Some("scale"));

        let r = parse("DELETE", "/api/v1/namespaces/x/configmaps", "");
        assert_eq!(r.verb, "deletecollection");

        let r = parse("GET", "/api/v1/namespaces/kube-system", "");
        assert_eq!(r.resource, "namespaces");
        assert_eq!(r.name.as_deref(), Some("kube-system"));
        assert_eq!(r.namespace, None);

        let r = parse("PUT", "/api/v1/namespaces/x/finalize", "");
        assert_eq!(r.resource, "namespaces");
        assert_eq!(r.name.as_deref(), Some("x"));
        assert_eq!(r.subresource.as_deref(), Some("finalize"));

        let r = parse("GET", "/api/v1/watch/namespaces/x/pods", "");
        assert_eq!((r.verb.as_str(), r.resource.as_str()), ("watch", "pods"));

        let r = parse("GET", "/api/v1", "");
        assert!(!r.is_resource);
        let r = parse("GET", "/version", "");
        assert!(!r.is_resource);
    }

    #[test]
    fn query_values() {
        let q = Query::parse(Some("labelSelector=app%3Dweb&limit=5&watch=1&x=&limit=9"));
        assert_eq!(q.get("labelSelector"), Some("app=web"));
        assert_eq!(q.int("limit"), Ok(Some(5)));
        assert!(q.bool("watch"));
        assert_eq!(q.non_empty("x"), None);
        assert!(Query::parse(Some("limit=x")).int("limit").is_err());
    }
}
