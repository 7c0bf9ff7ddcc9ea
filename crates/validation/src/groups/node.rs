//! node.k8s.io/v1 RuntimeClass: handler (a DNS label, immutable), overhead and scheduling.

use std::collections::BTreeSet;

use k8s_openapi::api::node::v1 as node;

use super::core::pod;
use super::push_msgs;
use crate::error::{BadValue, FieldError};
use crate::kinds::{Def, def, no_update_checks};
use crate::meta::{self, Errs};
use crate::names::{self, name_is_dns_subdomain};
use crate::path::Path;

fn default_runtime_class(rc: &mut node::RuntimeClass) {
    if let Some(o) = &mut rc.overhead {
        pod::default_resource_list(&mut o.pod_fixed);
    }
}

fn validate_runtime_class(rc: &node::RuntimeClass, errs: &mut Errs) {
    push_msgs(
        names::name_is_dns_label(&rc.handler, false),
        &Path::new("handler"),
        &rc.handler,
        errs,
    );
    if let Some(o) = &rc.overhead {
        let p = Path::new("overhead").child("podFixed");
        for (k, q) in o.pod_fixed.iter().flatten() {
            let kp = p.key(k);
            push_msgs(names::is_qualified_name(k), &kp, k, errs);
            pod::validate_quantity_value(k, q, &kp, errs);
        }
    }
    if let Some(s) = &rc.scheduling {
        let sp = Path::new("scheduling");
        meta::validate_labels(s.node_selector.as_ref(), &sp.child("nodeSelector"), errs);
        let ts = s.tolerations.as_deref().unwrap_or(&[]);
        pod::validate_tolerations(ts, &sp.child("tolerations"), errs);
        let mut seen = BTreeSet::new();
        for (i, t) in ts.iter().enumerate() {
            let key = (
                t.key.clone(),
                t.operator.clone(),
                t.value.clone(),
                t.effect.clone(),
                t.toleration_seconds,
            );
            if !seen.insert(key) {
                errs.push(FieldError::duplicate(
                    &sp.child("tolerations").index(i),
                    BadValue::Raw("core.Toleration{...}".into()),
                ));
            }
        }
    }
}

fn validate_runtime_class_update(n: &node::RuntimeClass, o: &node::RuntimeClass, errs: &mut Errs) {
    if n.handler != o.handler {
        errs.push(FieldError::invalid(
            &Path::new("handler"),
            &n.handler,
            meta::IMMUTABLE,
        ));
    }
    validate_runtime_class(n, errs);
}

pub(crate) static RUNTIME_CLASS: Def<node::RuntimeClass> = def(
    false,
    name_is_dns_subdomain,
    default_runtime_class,
    validate_runtime_class,
    validate_runtime_class_update,
    no_update_checks,
);
