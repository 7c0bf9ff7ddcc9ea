//! autoscaling/v1 and autoscaling/v2 HorizontalPodAutoscalers: defaults (minReplicas 1,
//! the default CPU metric and scaling behavior) and validation of replicas, the scale
//! target, metrics and behavior.

use k8s_openapi::api::autoscaling::{v1, v2};

use super::{default_opt, push_msgs};
use crate::error::FieldError;
use crate::kinds::{Def, def};
use crate::meta::{self, Errs};
use crate::names::path_segment_name;
use crate::path::Path;
use crate::quantity::Quantity;

fn validate_scale_target(kind: &str, name: &str, path: &Path, errs: &mut Errs) -> bool {
    let before = errs.len();
    if kind.is_empty() {
        errs.push(FieldError::required(&path.child("kind"), ""));
    } else {
        push_msgs(
            path_segment_name(kind, false),
            &path.child("kind"),
            kind,
            errs,
        );
    }
    if name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else {
        push_msgs(
            path_segment_name(name, false),
            &path.child("name"),
            name,
            errs,
        );
    }
    errs.len() == before
}

fn validate_replicas(min: Option<i32>, max: i32, sp: &Path, errs: &mut Errs) {
    if let Some(m) = min
        && m < 1
    {
        errs.push(FieldError::invalid(
            &sp.child("minReplicas"),
            m,
            "must be greater than or equal to 1",
        ));
    }
    if max < 1 {
        errs.push(FieldError::invalid(
            &sp.child("maxReplicas"),
            max,
            "must be greater than 0",
        ));
    }
    if let Some(m) = min
        && max < m
    {
        errs.push(FieldError::invalid(
            &sp.child("maxReplicas"),
            max,
            "must be greater than or equal to `minReplicas`",
        ));
    }
}

// ---------------------------------------------------------------- v1

fn default_v1(h: &mut v1::HorizontalPodAutoscaler) {
    let spec = h.spec.get_or_insert_with(Default::default);
    default_opt(&mut spec.min_replicas, 1);
}

fn validate_v1(h: &v1::HorizontalPodAutoscaler, errs: &mut Errs) {
    let spec = h.spec.clone().unwrap_or_default();
    let sp = Path::new("spec");
    validate_replicas(spec.min_replicas, spec.max_replicas, &sp, errs);
    let ok = validate_scale_target(
        &spec.scale_target_ref.kind,
        &spec.scale_target_ref.name,
        &sp.child("scaleTargetRef"),
        errs,
    );
    if ok
        && let Some(t) = spec.target_cpu_utilization_percentage
        && t < 1
    {
        errs.push(FieldError::invalid(
            &sp.child("targetCPUUtilizationPercentage"),
            t,
            "must be greater than 0",
        ));
    }
}

fn validate_v1_update(
    n: &v1::HorizontalPodAutoscaler,
    _o: &v1::HorizontalPodAutoscaler,
    errs: &mut Errs,
) {
    validate_v1(n, errs);
}

fn validate_v1_status(
    n: &v1::HorizontalPodAutoscaler,
    _o: &v1::HorizontalPodAutoscaler,
    errs: &mut Errs,
) {
    let st = n.status.clone().unwrap_or_default();
    let p = Path::new("status");
    meta::nonnegative(
        st.current_replicas.into(),
        &p.child("currentReplicas"),
        errs,
    );
    meta::nonnegative(
        st.desired_replicas.into(),
        &p.child("desiredReplicas"),
        errs,
    );
}

pub(crate) static HPA_V1: Def<v1::HorizontalPodAutoscaler> = def(
    true,
    path_segment_name,
    default_v1,
    validate_v1,
    validate_v1_update,
    validate_v1_status,
);

// ---------------------------------------------------------------- v2

fn scale_up_default() -> v2::HPAScalingRules {
    v2::HPAScalingRules {
        stabilization_window_seconds: Some(0),
        select_policy: Some("Max".into()),
        policies: Some(vec![
            v2::HPAScalingPolicy {
                type_: "Pods".into(),
                value: 4,
                period_seconds: 15,
            },
            v2::HPAScalingPolicy {
                type_: "Percent".into(),
                value: 100,
                period_seconds: 15,
            },
        ]),
        tolerance: None,
    }
}

fn scale_down_default() -> v2::HPAScalingRules {
    v2::HPAScalingRules {
        stabilization_window_seconds: None,
        select_policy: Some("Max".into()),
        policies: Some(vec![v2::HPAScalingPolicy {
            type_: "Percent".into(),
            value: 100,
            period_seconds: 15,
        }]),
        tolerance: None,
    }
}

fn merge_rules(
    from: Option<v2::HPAScalingRules>,
    mut to: v2::HPAScalingRules,
) -> v2::HPAScalingRules {
    let Some(from) = from else { return to };
    if from.select_policy.is_some() {
        to.select_policy = from.select_policy;
    }
    if from.stabilization_window_seconds.is_some() {
        to.stabilization_window_seconds = from.stabilization_window_seconds;
    }
    if from.policies.is_some() {
        to.policies = from.policies;
    }
    if from.tolerance.is_some() {
        to.tolerance = from.tolerance;
    }
    to
}

fn default_v2(h: &mut v2::HorizontalPodAutoscaler) {
    let spec = h.spec.get_or_insert_with(Default::default);
    default_opt(&mut spec.min_replicas, 1);
    if spec.metrics.as_ref().is_none_or(|m| m.is_empty()) {
        spec.metrics = Some(vec![v2::MetricSpec {
            type_: "Resource".into(),
            resource: Some(v2::ResourceMetricSource {
                name: "cpu".into(),
                target: v2::MetricTarget {
                    type_: "Utilization".into(),
                    average_utilization: Some(80),
                    ..Default::default()
                },
            }),
            ..Default::default()
        }]);
    }
    if let Some(b) = &mut spec.behavior {
        b.scale_up = Some(merge_rules(b.scale_up.take(), scale_up_default()));
        b.scale_down = Some(merge_rules(b.scale_down.take(), scale_down_default()));
    }
}

fn validate_metric_target(t: &v2::MetricTarget, path: &Path, errs: &mut Errs) {
    let ty = t.type_.as_str();
    match ty {
        "" => errs.push(FieldError::required(
            &path.child("type"),
            "must specify a metric target type",
        )),
        "Utilization" | "Value" | "AverageValue" => {}
        _ => errs.push(FieldError::not_supported(
            &path.child("type"),
            ty,
            &["Utilization", "Value", "AverageValue"],
        )),
    }
    if t.value.is_none() && t.average_value.is_none() && t.average_utilization.is_none() {
        errs.push(FieldError::required(
            path,
            "must set either a target raw value, a target average value, or a target percentage",
        ));
    }
    if ty == "Utilization" && t.average_utilization.is_none() {
        errs.push(FieldError::required(
            &path.child("averageUtilization"),
            "must set averageUtilization when type is Utilization",
        ));
    }
    if ty == "Value" && t.value.is_none() {
        errs.push(FieldError::required(
            &path.child("value"),
            "must set value when type is Value",
        ));
    }
    if ty == "AverageValue" && t.average_value.is_none() {
        errs.push(FieldError::required(
            &path.child("averageValue"),
            "must set averageValue when type is AverageValue",
        ));
    }
    if let Some(u) = t.average_utilization
        && u < 1
    {
        errs.push(FieldError::invalid(
            &path.child("averageUtilization"),
            u,
            "must be greater than 0",
        ));
    }
    for (q, f) in [(&t.value, "value"), (&t.average_value, "averageValue")] {
        if let Some(q) = q
            && Quantity::parse(&q.0).is_ok_and(|v| v.nanos() <= 0)
        {
            errs.push(FieldError::invalid(
                &path.child(f),
                crate::quantity::canonicalize(&q.0),
                "must be positive",
            ));
        }
    }
}

fn validate_metrics(metrics: &[v2::MetricSpec], path: &Path, errs: &mut Errs) {
    for (i, m) in metrics.iter().enumerate() {
        let mp = path.index(i);
        let present = [
            ("Object", m.object.is_some()),
            ("Pods", m.pods.is_some()),
            ("Resource", m.resource.is_some()),
            ("ContainerResource", m.container_resource.is_some()),
            ("External", m.external.is_some()),
        ];
        let count = present.iter().filter(|(_, p)| *p).count();
        let ty = m.type_.as_str();
        let supported = [
            "ContainerResource",
            "External",
            "Object",
            "Pods",
            "Resource",
        ];
        if ty.is_empty() {
            errs.push(FieldError::required(
                &mp.child("type"),
                "must specify a metric source type",
            ));
            continue;
        }
        if !supported.contains(&ty) {
            errs.push(FieldError::not_supported(&mp.child("type"), ty, &supported));
            continue;
        }
        if count > 1 {
            errs.push(FieldError::forbidden(
                &mp,
                "must populate the given metric source only",
            ));
        }
        if !present.iter().any(|(n, p)| *n == ty && *p) {
            let field = match ty {
                "Object" => "object",
                "Pods" => "pods",
                "Resource" => "resource",
                "ContainerResource" => "containerResource",
                _ => "external",
            };
            errs.push(FieldError::required(
                &mp.child(field),
                "must populate information for the given metric source",
            ));
            continue;
        }
        if let Some(r) = &m.resource {
            let rp = mp.child("resource");
            if r.name.is_empty() {
                errs.push(FieldError::required(
                    &rp.child("name"),
                    "must specify a resource name",
                ));
            }
            validate_metric_target(&r.target, &rp.child("target"), errs);
        }
        if let Some(r) = &m.container_resource {
            let rp = mp.child("containerResource");
            if r.name.is_empty() {
                errs.push(FieldError::required(
                    &rp.child("name"),
                    "must specify a resource name",
                ));
            }
            if r.container.is_empty() {
                errs.push(FieldError::required(
                    &rp.child("container"),
                    "must specify a container",
                ));
            }
            validate_metric_target(&r.target, &rp.child("target"), errs);
        }
        if let Some(p) = &m.pods {
            let pp = mp.child("pods");
            if p.metric.name.is_empty() {
                errs.push(FieldError::required(
                    &pp.child("metric").child("name"),
                    "must specify a metric name",
                ));
            }
            validate_metric_target(&p.target, &pp.child("target"), errs);
        }
        if let Some(o) = &m.object {
            let op = mp.child("object");
            validate_scale_target(
                &o.described_object.kind,
                &o.described_object.name,
                &op.child("describedObject"),
                errs,
            );
            if o.metric.name.is_empty() {
                errs.push(FieldError::required(
                    &op.child("metric").child("name"),
                    "must specify a metric name",
                ));
            }
            validate_metric_target(&o.target, &op.child("target"), errs);
        }
        if let Some(e) = &m.external {
            let ep = mp.child("external");
            if e.metric.name.is_empty() {
                errs.push(FieldError::required(
                    &ep.child("metric").child("name"),
                    "must specify a metric name",
                ));
            }
            validate_metric_target(&e.target, &ep.child("target"), errs);
        }
    }
}

fn validate_rules(r: &v2::HPAScalingRules, path: &Path, errs: &mut Errs) {
    if let Some(w) = r.stabilization_window_seconds {
        if w < 0 {
            errs.push(FieldError::invalid(
                &path.child("stabilizationWindowSeconds"),
                w,
                "must be greater than or equal to zero",
            ));
        }
        if w > 3600 {
            errs.push(FieldError::invalid(
                &path.child("stabilizationWindowSeconds"),
                w,
                "must be less than or equal to 3600",
            ));
        }
    }
    if let Some(sp) = r.select_policy.as_deref() {
        let supported = ["Disabled", "Max", "Min"];
        if !supported.contains(&sp) {
            errs.push(FieldError::not_supported(
                &path.child("selectPolicy"),
                sp,
                &supported,
            ));
        }
    }
    let policies = r.policies.as_deref().unwrap_or(&[]);
    if policies.is_empty() {
        errs.push(FieldError::required(
            &path.child("policies"),
            "must specify at least one Policy",
        ));
    }
    for (i, p) in policies.iter().enumerate() {
        let pp = path.child("policies").index(i);
        if p.type_ != "Pods" && p.type_ != "Percent" {
            errs.push(FieldError::not_supported(
                &pp.child("type"),
                &p.type_,
                &["Percent", "Pods"],
            ));
        }
        if p.value <= 0 {
            errs.push(FieldError::invalid(
                &pp.child("value"),
                p.value,
                "must be greater than zero",
            ));
        }
        if p.period_seconds <= 0 {
            errs.push(FieldError::invalid(
                &pp.child("periodSeconds"),
                p.period_seconds,
                "must be greater than zero",
            ));
        }
        if p.period_seconds > 1800 {
            errs.push(FieldError::invalid(
                &pp.child("periodSeconds"),
                p.period_seconds,
                "must be less than or equal to 1800",
            ));
        }
    }
}

fn validate_v2(h: &v2::HorizontalPodAutoscaler, errs: &mut Errs) {
    let spec = h.spec.clone().unwrap_or_default();
    let sp = Path::new("spec");
    validate_replicas(spec.min_replicas, spec.max_replicas, &sp, errs);
    let before = errs.len();
    if !validate_scale_target(
        &spec.scale_target_ref.kind,
        &spec.scale_target_ref.name,
        &sp.child("scaleTargetRef"),
        errs,
    ) {
        return;
    }
    validate_metrics(
        spec.metrics.as_deref().unwrap_or(&[]),
        &sp.child("metrics"),
        errs,
    );
    if errs.len() != before {
        return;
    }
    if let Some(b) = &spec.behavior {
        let bp = sp.child("behavior");
        if let Some(r) = &b.scale_up {
            validate_rules(r, &bp.child("scaleUp"), errs);
        }
        if let Some(r) = &b.scale_down {
            validate_rules(r, &bp.child("scaleDown"), errs);
        }
    }
}

fn validate_v2_update(
    n: &v2::HorizontalPodAutoscaler,
    _o: &v2::HorizontalPodAutoscaler,
    errs: &mut Errs,
) {
    validate_v2(n, errs);
}

fn validate_v2_status(
    n: &v2::HorizontalPodAutoscaler,
    _o: &v2::HorizontalPodAutoscaler,
    errs: &mut Errs,
) {
    let st = n.status.clone().unwrap_or_default();
    let p = Path::new("status");
    meta::nonnegative(
        st.current_replicas.unwrap_or(0).into(),
        &p.child("currentReplicas"),
        errs,
    );
    meta::nonnegative(
        st.desired_replicas.into(),
        &p.child("desiredReplicas"),
        errs,
    );
}

pub(crate) static HPA_V2: Def<v2::HorizontalPodAutoscaler> = def(
    true,
    path_segment_name,
    default_v2,
    validate_v2,
    validate_v2_update,
    validate_v2_status,
);

// ---------------------------------------------------------------- Scale (subresource)

fn validate_scale(sc: &v1::Scale, errs: &mut Errs) {
    let replicas = sc.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    if replicas < 0 {
        errs.push(FieldError::invalid(
            &Path::new("spec").child("replicas"),
            replicas,
            "must be greater than or equal to 0",
        ));
    }
}

fn validate_scale_update(n: &v1::Scale, _o: &v1::Scale, errs: &mut Errs) {
    validate_scale(n, errs);
}

/// The `scale` subresource's body (`autoscaling/v1` Scale), validated as upstream's
/// `ValidateScale` does before the new replica count is applied.
pub(crate) static SCALE: Def<v1::Scale> = def(
    true,
    crate::names::name_is_dns_subdomain,
    crate::kinds::no_default,
    validate_scale,
    validate_scale_update,
    crate::kinds::no_update_checks,
);
