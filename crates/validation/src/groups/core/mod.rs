//! core/v1: pods, services, volumes and claims, and the other core kinds.

pub(crate) mod misc;
pub(crate) mod pod;
pub(crate) mod service;
pub(crate) mod storage_kinds;

use k8s_openapi::api::core::v1 as core;

use crate::kinds::{Def, def, no_default, no_update_checks};
use crate::meta::Errs;
use crate::names::{
    name_is_dns_label, name_is_dns_subdomain, name_is_dns1035_label, path_segment_name,
};

pub(crate) static POD: Def<core::Pod> = def(
    true,
    name_is_dns_subdomain,
    pod::default_pod,
    pod::validate_pod,
    pod::validate_pod_update,
    pod::validate_pod_status_update,
);

pub(crate) static SERVICE: Def<core::Service> = def(
    true,
    name_is_dns1035_label,
    service::default_service,
    service::validate_service,
    service::validate_service_update,
    service::validate_service_status,
);

pub(crate) static NAMESPACE: Def<core::Namespace> = def(
    false,
    name_is_dns_label,
    misc::default_namespace,
    misc::validate_namespace,
    no_update_checks,
    misc::validate_namespace_status,
);

pub(crate) static CONFIG_MAP: Def<core::ConfigMap> = def(
    true,
    name_is_dns_subdomain,
    no_default,
    misc::validate_config_map,
    misc::validate_config_map_update,
    no_update_checks,
);

pub(crate) static SECRET: Def<core::Secret> = def(
    true,
    name_is_dns_subdomain,
    misc::default_secret,
    misc::validate_secret,
    misc::validate_secret_update,
    no_update_checks,
);

fn sa_update(n: &core::ServiceAccount, _o: &core::ServiceAccount, e: &mut Errs) {
    misc::validate_service_account(n, e)
}

pub(crate) static SERVICE_ACCOUNT: Def<core::ServiceAccount> = def(
    true,
    name_is_dns_subdomain,
    no_default,
    misc::validate_service_account,
    sa_update,
    no_update_checks,
);

pub(crate) static NODE: Def<core::Node> = def(
    false,
    name_is_dns_subdomain,
    misc::default_node,
    misc::validate_node,
    misc::validate_node_update,
    misc::validate_node_status,
);

fn endpoints_update(n: &core::Endpoints, _o: &core::Endpoints, e: &mut Errs) {
    misc::validate_endpoints(n, e)
}

pub(crate) static ENDPOINTS: Def<core::Endpoints> = def(
    true,
    name_is_dns_subdomain,
    misc::default_endpoints,
    misc::validate_endpoints,
    endpoints_update,
    no_update_checks,
);

pub(crate) static EVENT: Def<core::Event> = Def {
    meta: false,
    ..def(
        true,
        path_segment_name,
        no_default,
        misc::validate_core_event,
        misc::validate_core_event_update,
        no_update_checks,
    )
};

fn limit_range_update(n: &core::LimitRange, _o: &core::LimitRange, e: &mut Errs) {
    misc::validate_limit_range(n, e)
}

pub(crate) static LIMIT_RANGE: Def<core::LimitRange> = def(
    true,
    name_is_dns_subdomain,
    misc::default_limit_range,
    misc::validate_limit_range,
    limit_range_update,
    no_update_checks,
);

fn quota_update(n: &core::ResourceQuota, _o: &core::ResourceQuota, e: &mut Errs) {
    misc::validate_quota(n, e)
}

pub(crate) static RESOURCE_QUOTA: Def<core::ResourceQuota> = def(
    true,
    name_is_dns_subdomain,
    misc::default_quota,
    misc::validate_quota,
    quota_update,
    misc::validate_quota_status,
);

fn pv_status(n: &core::PersistentVolume, o: &core::PersistentVolume, e: &mut Errs) {
    storage_kinds::validate_pv_status(n, o, e)
}

pub(crate) static PERSISTENT_VOLUME: Def<core::PersistentVolume> = def(
    false,
    name_is_dns_subdomain,
    storage_kinds::default_pv,
    storage_kinds::validate_pv,
    storage_kinds::validate_pv_update,
    pv_status,
);

pub(crate) static PERSISTENT_VOLUME_CLAIM: Def<core::PersistentVolumeClaim> = def(
    true,
    name_is_dns_subdomain,
    storage_kinds::default_pvc,
    storage_kinds::validate_pvc,
    storage_kinds::validate_pvc_update,
    storage_kinds::validate_pvc_status,
);

fn rc_update(n: &core::ReplicationController, _o: &core::ReplicationController, e: &mut Errs) {
    misc::validate_rc(n, e)
}

pub(crate) static REPLICATION_CONTROLLER: Def<core::ReplicationController> = def(
    true,
    name_is_dns_subdomain,
    misc::default_rc,
    misc::validate_rc,
    rc_update,
    misc::validate_rc_status,
);

fn pod_template_update(n: &core::PodTemplate, _o: &core::PodTemplate, e: &mut Errs) {
    misc::validate_pod_template(n, e)
}

pub(crate) static POD_TEMPLATE: Def<core::PodTemplate> = def(
    true,
    name_is_dns_subdomain,
    misc::default_pod_template,
    misc::validate_pod_template,
    pod_template_update,
    no_update_checks,
);
