//! apiextensions.k8s.io/v1 CustomResourceDefinition: the name (`<plural>.<group>`), group,
//! scope, versions (names, exactly one storage version, schemas present and typed), names
//! (plural, singular, kind, listKind, short names, categories), conversion, stored
//! versions, the immutable group, scope and plural, and the v1 defaults.

use std::collections::BTreeSet;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as ext;

use super::{default_opt, s};
use crate::error::{BadValue, FieldError, go_string_slice};
use crate::kinds::{Def, def};
use crate::meta::{self, Errs};
use crate::names::{self, name_is_dns_subdomain};
use crate::path::Path;

fn default_crd(c: &mut ext::CustomResourceDefinition) {
    let spec = &mut c.spec;
    if s(&spec.names.singular).is_empty() {
        spec.names.singular = Some(spec.names.kind.to_lowercase());
    }
    if s(&spec.names.list_kind).is_empty() && !spec.names.kind.is_empty() {
        spec.names.list_kind = Some(format!("{}List", spec.names.kind));
    }
    let conv = spec
        .conversion
        .get_or_insert_with(|| ext::CustomResourceConversion {
            strategy: "None".into(),
            webhook: None,
        });
    if let Some(svc) = conv
        .webhook
        .as_mut()
        .and_then(|w| w.client_config.as_mut())
        .and_then(|c| c.service.as_mut())
    {
        default_opt(&mut svc.port, 443);
    }
    let status = c.status.get_or_insert_with(Default::default);
    if status.stored_versions.as_ref().is_none_or(|v| v.is_empty())
        && let Some(v) = spec.versions.iter().find(|v| v.storage)
    {
        status.stored_versions = Some(vec![v.name.clone()]);
    }
}

fn dns1035(v: &str, path: &Path, errs: &mut Errs) {
    let msgs = names::is_dns1035_label(v);
    if !msgs.is_empty() {
        errs.push(FieldError::invalid(path, v, msgs.join(",")));
    }
}

fn mixed_case(v: &str, path: &Path, errs: &mut Errs) {
    let msgs = names::is_dns1035_label(&v.to_lowercase());
    if !msgs.is_empty() {
        errs.push(FieldError::invalid(
            path,
            v,
            format!(
                "may have mixed case, but should otherwise match: {}",
                msgs.join(",")
            ),
        ));
    }
}

fn validate_names(n: &ext::CustomResourceDefinitionNames, path: &Path, errs: &mut Errs) {
    if n.plural.is_empty() {
        errs.push(FieldError::required(&path.child("plural"), ""));
    } else {
        dns1035(&n.plural, &path.child("plural"), errs);
    }
    let singular = s(&n.singular);
    if !singular.is_empty() {
        dns1035(singular, &path.child("singular"), errs);
    }
    if n.kind.is_empty() {
        errs.push(FieldError::required(&path.child("kind"), ""));
    } else {
        mixed_case(&n.kind, &path.child("kind"), errs);
    }
    let list_kind = s(&n.list_kind);
    if list_kind.is_empty() {
        errs.push(FieldError::required(&path.child("listKind"), ""));
    } else {
        mixed_case(list_kind, &path.child("listKind"), errs);
    }
    for (i, sn) in n.short_names.iter().flatten().enumerate() {
        dns1035(sn, &path.child("shortNames").index(i), errs);
    }
    if !n.kind.is_empty() && n.kind == list_kind {
        errs.push(FieldError::invalid(
            &path.child("listKind"),
            list_kind,
            "kind and listKind may not be the same",
        ));
    }
    for (i, c) in n.categories.iter().flatten().enumerate() {
        dns1035(c, &path.child("categories").index(i), errs);
    }
}

/// The structural-schema rule that every specified field has a type (unless it is
/// int-or-string or preserves unknown fields).
fn validate_schema(schema: &ext::JSONSchemaProps, path: &Path, root: bool, errs: &mut Errs) {
    let typ = s(&schema.type_);
    let exempt = schema.x_kubernetes_int_or_string == Some(true)
        || schema.x_kubernetes_preserve_unknown_fields == Some(true);
    if typ.is_empty() && !exempt {
        let detail = if root {
            "must not be empty at the root"
        } else {
            "must not be empty for specified object fields"
        };
        errs.push(FieldError::required(&path.child("type"), detail));
    }
    if root && !typ.is_empty() && typ != "object" {
        errs.push(FieldError::invalid(
            &path.child("type"),
            typ,
            "must be object at the root",
        ));
    }
    let supported = ["array", "boolean", "integer", "number", "object", "string"];
    if !typ.is_empty() && !supported.contains(&typ) {
        errs.push(FieldError::not_supported(
            &path.child("type"),
            typ,
            &supported,
        ));
    }
    for (k, p) in schema.properties.iter().flatten() {
        validate_schema(p, &path.child("properties").key(k), false, errs);
    }
    if let Some(ext::JSONSchemaPropsOrArray::Schema(items)) = &schema.items {
        validate_schema(items, &path.child("items"), false, errs);
    }
    if typ == "array" && schema.items.is_none() {
        errs.push(FieldError::required(
            &path.child("items"),
            "must be specified",
        ));
    }
}

fn validate_crd(c: &ext::CustomResourceDefinition, errs: &mut Errs) {
    let spec = &c.spec;
    let sp = Path::new("spec");
    if spec.group.is_empty() {
        errs.push(FieldError::required(&sp.child("group"), ""));
    } else {
        let msgs = names::is_dns1123_subdomain(&spec.group);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(
                &sp.child("group"),
                &spec.group,
                msgs.join(","),
            ));
        } else if spec.group.split('.').count() < 2 {
            errs.push(FieldError::invalid(
                &sp.child("group"),
                &spec.group,
                "should be a domain with at least one dot",
            ));
        }
    }
    super::required_enum(
        &spec.scope,
        &["Cluster", "Namespaced"],
        &sp.child("scope"),
        errs,
    );
    let vp = sp.child("versions");
    if spec.versions.is_empty() {
        errs.push(FieldError::invalid(
            &vp,
            BadValue::Raw("[]apiextensions.CustomResourceDefinitionVersion(nil)".into()),
            "must have exactly one version marked as storage version",
        ));
    }
    let mut storage = 0;
    let mut seen = BTreeSet::new();
    let mut unique = true;
    for (i, v) in spec.versions.iter().enumerate() {
        let ip = vp.index(i);
        if v.storage {
            storage += 1;
        }
        unique &= seen.insert(v.name.as_str());
        dns1035(&v.name, &ip.child("name"), errs);
        match v
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
        {
            None => errs.push(FieldError::required(
                &ip.children(&["schema", "openAPIV3Schema"]),
                "schemas are required",
            )),
            Some(schema) => validate_schema(
                schema,
                &ip.children(&["schema", "openAPIV3Schema"]),
                true,
                errs,
            ),
        }
        for (j, col) in v.additional_printer_columns.iter().flatten().enumerate() {
            let cp = ip.child("additionalPrinterColumns").index(j);
            if col.name.is_empty() {
                errs.push(FieldError::required(&cp.child("name"), ""));
            }
            let types = ["date", "integer", "number", "string", "boolean"];
            if !types.contains(&col.type_.as_str()) {
                errs.push(FieldError::not_supported(
                    &cp.child("type"),
                    &col.type_,
                    &types,
                ));
            }
            if col.json_path.is_empty() {
                errs.push(FieldError::required(&cp.child("JSONPath"), ""));
            }
        }
    }
    if !unique {
        errs.push(FieldError::invalid(
            &vp,
            BadValue::Raw("[]apiextensions.CustomResourceDefinitionVersion{...}".into()),
            "must contain unique version names",
        ));
    }
    if storage != 1 && !spec.versions.is_empty() {
        errs.push(FieldError::invalid(
            &vp,
            BadValue::Raw("[]apiextensions.CustomResourceDefinitionVersion{...}".into()),
            "must have exactly one version marked as storage version",
        ));
    }
    validate_names(&spec.names, &sp.child("names"), errs);
    if let Some(conv) = &spec.conversion {
        let cp = sp.child("conversion");
        match conv.strategy.as_str() {
            "None" => {
                if conv.webhook.is_some() {
                    errs.push(FieldError::forbidden(
                        &cp.child("webhook"),
                        "should not be set when strategy is not set to Webhook",
                    ));
                }
            }
            "Webhook" => match &conv.webhook {
                None => errs.push(FieldError::required(
                    &cp.child("webhook"),
                    "required when strategy is set to Webhook",
                )),
                Some(w) => {
                    if w.client_config.is_none() {
                        errs.push(FieldError::required(
                            &cp.children(&["webhook", "clientConfig"]),
                            "required when strategy is set to Webhook",
                        ));
                    }
                    let vs = &w.conversion_review_versions;
                    if vs.is_empty() {
                        errs.push(FieldError::required(
                            &cp.children(&["webhook", "conversionReviewVersions"]),
                            "must specify one of v1, v1beta1",
                        ));
                    }
                }
            },
            other => errs.push(FieldError::not_supported(
                &cp.child("strategy"),
                other,
                &["None", "Webhook"],
            )),
        }
    }
    // Stored versions must exist in spec.versions.
    if let Some(st) = &c.status {
        let stp = Path::new("status").child("storedVersions");
        let versions: BTreeSet<&str> = spec.versions.iter().map(|v| v.name.as_str()).collect();
        let stored = st.stored_versions.as_deref().unwrap_or(&[]);
        for (i, v) in stored.iter().enumerate() {
            if !versions.contains(v.as_str()) {
                errs.push(FieldError::invalid(
                    &stp.index(i),
                    v,
                    "must appear in spec.versions",
                ));
            }
        }
        if let Some(sv) = spec.versions.iter().find(|v| v.storage)
            && !stored.is_empty()
            && !stored.contains(&sv.name)
        {
            errs.push(FieldError::invalid(
                &stp,
                go_string_slice(Some(stored)),
                format!("must have the storage version {}", sv.name),
            ));
        }
    }
}

fn validate_crd_create(c: &ext::CustomResourceDefinition, errs: &mut Errs) {
    let mut meta_errs = Vec::new();
    meta::validate_object_meta(
        &c.metadata,
        false,
        name_is_dns_subdomain,
        &Path::new("metadata"),
        &mut meta_errs,
    );
    let name = s(&c.metadata.name);
    let required = format!("{}.{}", c.spec.names.plural, c.spec.group);
    if !name.is_empty() && name != required {
        let pos = meta_errs
            .iter()
            .rposition(|e| e.field == "metadata.name" || e.field == "metadata.generateName")
            .map_or(0, |p| p + 1);
        meta_errs.insert(
            pos,
            FieldError::invalid(
                &Path::new("metadata").child("name"),
                name,
                "must be spec.names.plural+\".\"+spec.group",
            ),
        );
    }
    errs.extend(meta_errs);
    validate_crd(c, errs);
}

fn validate_crd_update(
    n: &ext::CustomResourceDefinition,
    o: &ext::CustomResourceDefinition,
    errs: &mut Errs,
) {
    let sp = Path::new("spec");
    let established = o
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        });
    if n.spec.group != o.spec.group {
        errs.push(FieldError::invalid(
            &sp.child("group"),
            &n.spec.group,
            meta::IMMUTABLE,
        ));
    }
    if n.spec.scope != o.spec.scope {
        errs.push(FieldError::invalid(
            &sp.child("scope"),
            &n.spec.scope,
            meta::IMMUTABLE,
        ));
    }
    if n.spec.names.plural != o.spec.names.plural {
        errs.push(FieldError::invalid(
            &sp.children(&["names", "plural"]),
            &n.spec.names.plural,
            meta::IMMUTABLE,
        ));
    }
    if established && n.spec.names.kind != o.spec.names.kind {
        // Upstream allows kind changes only before the CRD is established.
        errs.push(FieldError::invalid(
            &sp.children(&["names", "kind"]),
            &n.spec.names.kind,
            meta::IMMUTABLE,
        ));
    }
    validate_crd(n, errs);
}

fn validate_crd_status(
    n: &ext::CustomResourceDefinition,
    _o: &ext::CustomResourceDefinition,
    errs: &mut Errs,
) {
    if let Some(st) = &n.status {
        let stp = Path::new("status").child("storedVersions");
        let versions: BTreeSet<&str> = n.spec.versions.iter().map(|v| v.name.as_str()).collect();
        for (i, v) in st.stored_versions.iter().flatten().enumerate() {
            if !versions.contains(v.as_str()) {
                errs.push(FieldError::invalid(
                    &stp.index(i),
                    v,
                    "must appear in spec.versions",
                ));
            }
        }
    }
}

pub(crate) static CUSTOM_RESOURCE_DEFINITION: Def<ext::CustomResourceDefinition> = Def {
    meta: false,
    ..def(
        false,
        name_is_dns_subdomain,
        default_crd,
        validate_crd_create,
        validate_crd_update,
        validate_crd_status,
    )
};
