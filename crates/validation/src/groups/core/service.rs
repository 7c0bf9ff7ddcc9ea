//! Services: `SetDefaults_Service` (type, session affinity, ports, target ports, traffic
//! policies, IP families) and `ValidateService`/`ValidateServiceUpdate` (ports, types,
//! cluster IPs and their families, external names, source ranges, and the rule that an
//! allocated cluster IP may not change).

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::super::{
    default_opt, default_str, dns_label, dns_subdomain, push_msgs, required_enum, s,
};
use crate::error::{BadValue, FieldError, go_quote, go_string_slice};
use crate::meta::{self, Errs};
use crate::names;
use crate::path::Path;

const SERVICE_TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];

/// The IP family rkube's service network uses for new services.
const PRIMARY_FAMILY: &str = "IPv4";

/// `SetDefaults_Service`, plus what upstream's service REST layer fills in before
/// validation: `clusterIP`/`clusterIPs` kept in step, and the IP family policy and
/// families of a single-stack IPv4 cluster.
pub(crate) fn default_service(svc: &mut Service) {
    let spec = svc.spec.get_or_insert_with(Default::default);
    default_str(&mut spec.session_affinity, "None");
    if s(&spec.session_affinity) == "ClientIP" {
        let cfg = spec
            .session_affinity_config
            .get_or_insert_with(Default::default);
        let cip = cfg.client_ip.get_or_insert_with(Default::default);
        default_opt(&mut cip.timeout_seconds, 10800);
    }
    default_str(&mut spec.type_, "ClusterIP");
    for p in spec.ports.iter_mut().flatten() {
        default_str(&mut p.protocol, "TCP");
        let unset = match &p.target_port {
            None => true,
            Some(IntOrString::Int(0)) => true,
            Some(IntOrString::String(x)) => x.is_empty(),
            Some(_) => false,
        };
        if unset {
            p.target_port = Some(IntOrString::Int(p.port));
        }
    }
    let ty = s(&spec.type_).to_string();
    if ty == "NodePort" || ty == "LoadBalancer" {
        default_str(&mut spec.external_traffic_policy, "Cluster");
    }
    if ty != "ExternalName" {
        default_opt(&mut spec.internal_traffic_policy, "Cluster".to_string());
    }
    if ty == "LoadBalancer" {
        default_opt(&mut spec.allocate_load_balancer_node_ports, true);
    }
    // clusterIP <-> clusterIPs, as the strategy normalizes them.
    let cip = s(&spec.cluster_ip).to_string();
    let cips_empty = spec.cluster_ips.as_ref().is_none_or(|c| c.is_empty());
    if !cip.is_empty() && cips_empty {
        spec.cluster_ips = Some(vec![cip.clone()]);
    } else if cip.is_empty() && !cips_empty {
        spec.cluster_ip = spec.cluster_ips.as_ref().and_then(|c| c.first().cloned());
    }
    if ty != "ExternalName" {
        default_ip_families(spec);
    }
}

fn default_ip_families(spec: &mut ServiceSpec) {
    let headless = s(&spec.cluster_ip) == "None";
    let no_selector = spec.selector.as_ref().is_none_or(|m| m.is_empty());
    if headless && no_selector {
        default_opt(&mut spec.ip_family_policy, "RequireDualStack".to_string());
    } else {
        default_opt(&mut spec.ip_family_policy, "SingleStack".to_string());
    }
    if spec.ip_families.as_ref().is_none_or(|f| f.is_empty()) {
        let fam = match spec.cluster_ips.as_ref().and_then(|c| c.first()) {
            Some(ip) if ip.contains(':') => "IPv6",
            _ => PRIMARY_FAMILY,
        };
        spec.ip_families = Some(vec![fam.to_string()]);
    }
}

fn is_headless(spec: &ServiceSpec) -> bool {
    s(&spec.cluster_ip) == "None"
}

fn service_port_text(protocol: &str, port: i32) -> String {
    format!(
        "core.ServicePort{{Name:\"\", Protocol:{}, AppProtocol:(*string)(nil), Port:{port}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
        go_quote(protocol)
    )
}

fn validate_service_port(
    sp: &ServicePort,
    require_name: bool,
    names_seen: &mut BTreeSet<String>,
    path: &Path,
    errs: &mut Errs,
) {
    let name = s(&sp.name);
    if require_name && name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else if !name.is_empty() {
        dns_label(name, &path.child("name"), errs);
        if !names_seen.insert(name.to_string()) {
            errs.push(FieldError::duplicate(&path.child("name"), name));
        }
    }
    push_msgs(
        names::is_valid_port_num(sp.port.into()),
        &path.child("port"),
        sp.port,
        errs,
    );
    required_enum(
        s(&sp.protocol),
        &["SCTP", "TCP", "UDP"],
        &path.child("protocol"),
        errs,
    );
    match &sp.target_port {
        Some(IntOrString::Int(i)) => push_msgs(
            names::is_valid_port_num((*i).into()),
            &path.child("targetPort"),
            *i,
            errs,
        ),
        Some(IntOrString::String(t)) => push_msgs(
            names::is_valid_port_name(t),
            &path.child("targetPort"),
            t,
            errs,
        ),
        None => push_msgs(
            names::is_valid_port_num(0),
            &path.child("targetPort"),
            0,
            errs,
        ),
    }
    if let Some(ap) = &sp.app_protocol {
        push_msgs(
            names::is_qualified_name(ap),
            &path.child("appProtocol"),
            ap,
            errs,
        );
    }
}

fn validate_cluster_ips(spec: &ServiceSpec, errs: &mut Errs) {
    if s(&spec.type_) == "ExternalName" {
        return;
    }
    let sp = Path::new("spec");
    let cips_path = sp.child("clusterIPs");
    let cips = spec.cluster_ips.as_deref().unwrap_or(&[]);
    let cip = s(&spec.cluster_ip);
    if !cip.is_empty() {
        if cips.is_empty() {
            errs.push(FieldError::required(&cips_path, ""));
        } else if cips[0] != cip {
            errs.push(FieldError::invalid(
                &cips_path,
                go_string_slice(Some(cips)),
                "first value must match `clusterIP`",
            ));
        }
    } else if !cips.is_empty() {
        errs.push(FieldError::invalid(
            &cips_path,
            go_string_slice(Some(cips)),
            "must be empty when `clusterIP` is not specified",
        ));
    }
    let fam_path = sp.child("ipFamilies");
    let mut seen = BTreeSet::new();
    for (i, f) in spec.ip_families.iter().flatten().enumerate() {
        if f != "IPv4" && f != "IPv6" {
            errs.push(FieldError::not_supported(
                &fam_path.index(i),
                f,
                &["IPv4", "IPv6"],
            ));
        }
        if !seen.insert(f) {
            errs.push(FieldError::duplicate(&fam_path.index(i), f));
        }
    }
    if let Some(p) = &spec.ip_family_policy {
        let supported = ["PreferDualStack", "RequireDualStack", "SingleStack"];
        if !supported.contains(&p.as_str()) {
            errs.push(FieldError::not_supported(
                &sp.child("ipFamilyPolicy"),
                p,
                &supported,
            ));
        }
    }
    let mut invalid = false;
    for (i, ip) in cips.iter().enumerate() {
        if i == 0 && ip == "None" {
            if cips.len() > 1 {
                invalid = true;
                errs.push(FieldError::invalid(
                    &cips_path,
                    go_string_slice(Some(cips)),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        if names::parse_ip(ip).is_none() {
            invalid = true;
            errs.push(FieldError::invalid(
                &cips_path.index(i),
                ip,
                names::IP_ERROR,
            ));
        }
    }
    if cips.len() > 2 {
        invalid = true;
        errs.push(FieldError::invalid(
            &cips_path,
            go_string_slice(Some(cips)),
            "may only hold up to 2 values",
        ));
    }
    if invalid {
        return;
    }
    if cips.len() > 1 {
        let v6: Vec<bool> = cips.iter().map(|c| c.contains(':')).collect();
        if v6[0] == v6[1] {
            errs.push(FieldError::invalid(
                &cips_path,
                go_string_slice(Some(cips)),
                "may specify no more than one IP for each IP family",
            ));
        }
    }
    if !is_headless(spec) {
        let fams = spec.ip_families.as_deref().unwrap_or(&[]);
        for (i, ip) in cips.iter().enumerate() {
            let Some(f) = fams.get(i) else { break };
            let is6 = ip.contains(':');
            if f == "IPv4" && is6 {
                errs.push(FieldError::invalid(
                    &cips_path.index(i),
                    ip,
                    format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
            if f == "IPv6" && !is6 {
                errs.push(FieldError::invalid(
                    &cips_path.index(i),
                    ip,
                    format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
        }
    }
    let policy = spec.ip_family_policy.as_deref().unwrap_or("");
    if policy == "SingleStack"
        && (cips.len() > 1 || spec.ip_families.as_ref().is_some_and(|f| f.len() > 1))
    {
        if cips.len() > 1 {
            errs.push(FieldError::invalid(
                &cips_path,
                go_string_slice(Some(cips)),
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple IPs are specified",
            ));
        } else {
            errs.push(FieldError::invalid(
                &fam_path,
                go_string_slice(spec.ip_families.as_deref()),
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
            ));
        }
    }
}

/// `ValidateService` (beyond ObjectMeta).
pub(crate) fn validate_service(svc: &Service, errs: &mut Errs) {
    let spec = svc.spec.clone().unwrap_or_default();
    let sp = Path::new("spec");
    let ty = s(&spec.type_);
    let ports = spec.ports.as_deref().unwrap_or(&[]);
    let cips = spec.cluster_ips.as_deref().unwrap_or(&[]);
    if ports.is_empty() && !is_headless(&spec) && ty != "ExternalName" {
        errs.push(FieldError::required(&sp.child("ports"), ""));
    }
    match ty {
        "LoadBalancer" | "NodePort" if is_headless(&spec) => {
            errs.push(FieldError::invalid(
                &sp.child("clusterIPs").index(0),
                cips.first().map(String::as_str).unwrap_or("None"),
                format!("may not be set to 'None' for {ty} services"),
            ));
        }
        "ExternalName" => {
            if !cips.is_empty() {
                errs.push(FieldError::forbidden(
                    &sp.child("clusterIPs"),
                    "may not be set for ExternalName services",
                ));
            }
            if spec.ip_families.as_ref().is_some_and(|f| !f.is_empty()) {
                errs.push(FieldError::forbidden(
                    &sp.child("ipFamilies"),
                    "may not be set for ExternalName services",
                ));
            }
            if spec.ip_family_policy.is_some() {
                errs.push(FieldError::forbidden(
                    &sp.child("ipFamilyPolicy"),
                    "may not be set for ExternalName services",
                ));
            }
            let en = s(&spec.external_name);
            let cname = en.strip_suffix('.').unwrap_or(en);
            if cname.is_empty() {
                errs.push(FieldError::required(&sp.child("externalName"), ""));
            } else {
                dns_subdomain(cname, &sp.child("externalName"), errs);
            }
        }
        _ => {}
    }
    let mut port_names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        validate_service_port(
            p,
            ports.len() > 1,
            &mut port_names,
            &sp.child("ports").index(i),
            errs,
        );
    }
    if spec.selector.is_some() {
        meta::validate_labels(spec.selector.as_ref(), &sp.child("selector"), errs);
    }
    let aff = s(&spec.session_affinity);
    required_enum(
        aff,
        &["ClientIP", "None"],
        &sp.child("sessionAffinity"),
        errs,
    );
    if aff == "ClientIP" {
        let t = spec
            .session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds);
        let tp = sp
            .child("sessionAffinityConfig")
            .child("clientIP")
            .child("timeoutSeconds");
        match t {
            None => errs.push(FieldError::required(&tp, "")),
            Some(t) if !(1..=86400).contains(&t) => errs.push(FieldError::invalid(
                &tp,
                t,
                "must be greater than 0 and less than 86400",
            )),
            _ => {}
        }
    } else if aff == "None" && spec.session_affinity_config.is_some() {
        errs.push(FieldError::forbidden(
            &sp.child("sessionAffinityConfig"),
            "must not be set when session affinity is None",
        ));
    }
    validate_cluster_ips(&spec, errs);
    for (i, ip) in spec.external_ips.iter().flatten().enumerate() {
        let ipp = sp.child("externalIPs").index(i);
        match names::parse_ip(ip) {
            None => errs.push(FieldError::invalid(&ipp, ip, names::IP_ERROR)),
            Some(a) if a.is_unspecified() => errs.push(FieldError::invalid(
                &ipp,
                ip,
                "may not be unspecified (0.0.0.0)",
            )),
            Some(a) if a.is_loopback() => errs.push(FieldError::invalid(
                &ipp,
                ip,
                "may not be in the loopback range (127.0.0.0/8, ::1/128)",
            )),
            _ => {}
        }
    }
    if ty.is_empty() {
        errs.push(FieldError::required(&sp.child("type"), ""));
    } else if !SERVICE_TYPES.contains(&ty) {
        errs.push(FieldError::not_supported(
            &sp.child("type"),
            ty,
            SERVICE_TYPES,
        ));
    }
    if ty == "ClusterIP" {
        for (i, p) in ports.iter().enumerate() {
            if p.node_port.unwrap_or(0) != 0 {
                errs.push(FieldError::forbidden(
                    &sp.child("ports").index(i).child("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let np = p.node_port.unwrap_or(0);
        if np == 0 {
            continue;
        }
        if !node_ports.insert((s(&p.protocol).to_string(), np)) {
            errs.push(FieldError::duplicate(
                &sp.child("ports").index(i).child("nodePort"),
                np,
            ));
        }
    }
    let mut port_keys = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        if !port_keys.insert((s(&p.protocol).to_string(), p.port)) {
            errs.push(FieldError::duplicate(
                &sp.child("ports").index(i),
                BadValue::Raw(service_port_text(s(&p.protocol), p.port)),
            ));
        }
    }
    if let Some(ranges) = spec
        .load_balancer_source_ranges
        .as_ref()
        .filter(|r| !r.is_empty())
    {
        let fp = sp.child("LoadBalancerSourceRanges");
        if ty != "LoadBalancer" {
            errs.push(FieldError::forbidden(
                &fp,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        for (i, r) in ranges.iter().enumerate() {
            let r = r.trim();
            if names::parse_cidr(r).is_none() {
                errs.push(FieldError::invalid(&fp.index(i), r, names::CIDR_ERROR));
            }
        }
    }
    if spec.allocate_load_balancer_node_ports.is_some() && ty != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            &sp.child("allocateLoadBalancerNodePorts"),
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if ty == "LoadBalancer" && spec.allocate_load_balancer_node_ports.is_none() {
        errs.push(FieldError::required(
            &Path::new("allocateLoadBalancerNodePorts"),
            "",
        ));
    }
    if let Some(lbc) = &spec.load_balancer_class {
        if ty != "LoadBalancer" {
            errs.push(FieldError::forbidden(
                &sp.child("loadBalancerClass"),
                "may only be used when service type is 'LoadBalancer'",
            ));
        } else {
            push_msgs(
                names::is_qualified_name(lbc),
                &sp.child("loadBalancerClass"),
                lbc,
                errs,
            );
        }
    }
    // External traffic policy.
    let etp = s(&spec.external_traffic_policy);
    let external = ty == "NodePort" || ty == "LoadBalancer";
    if external {
        if etp.is_empty() {
            errs.push(FieldError::required(&sp.child("externalTrafficPolicy"), ""));
        } else if etp != "Cluster" && etp != "Local" {
            errs.push(FieldError::not_supported(
                &sp.child("externalTrafficPolicy"),
                etp,
                &["Cluster", "Local"],
            ));
        }
    } else if !etp.is_empty() {
        errs.push(FieldError::invalid(
            &sp.child("externalTrafficPolicy"),
            etp,
            "may only be set for externally-accessible services",
        ));
    }
    if let Some(hc) = spec.health_check_node_port.filter(|h| *h != 0) {
        if !(ty == "LoadBalancer" && etp == "Local") {
            errs.push(FieldError::invalid(
                &sp.child("healthCheckNodePort"),
                hc,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        } else {
            push_msgs(
                names::is_valid_port_num(hc.into()),
                &sp.child("healthCheckNodePort"),
                hc,
                errs,
            );
        }
    }
    // Internal traffic policy.
    if ty != "ExternalName" {
        match spec.internal_traffic_policy.as_deref() {
            None => errs.push(FieldError::required(&sp.child("internalTrafficPolicy"), "")),
            Some("Cluster") | Some("Local") => {}
            Some(other) => errs.push(FieldError::not_supported(
                &sp.child("internalTrafficPolicy"),
                other,
                &["Cluster", "Local"],
            )),
        }
    }
    if let Some(td) = &spec.traffic_distribution {
        let supported = ["PreferClose"];
        if !supported.contains(&td.as_str()) {
            errs.push(FieldError::not_supported(
                &sp.child("trafficDistribution"),
                td,
                &supported,
            ));
        }
    }
}

/// `ValidateServiceUpdate` (beyond ObjectMeta).
pub(crate) fn validate_service_update(new: &Service, old: &Service, errs: &mut Errs) {
    let ns = new.spec.clone().unwrap_or_default();
    let os = old.spec.clone().unwrap_or_default();
    let ty_n = s(&ns.type_);
    let ty_o = s(&os.type_);
    let cp = Path::new("spec").child("clusterIPs");
    if ty_n != "ExternalName" && ty_o != "ExternalName" && !(is_headless(&ns) && is_headless(&os)) {
        let n = ns.cluster_ips.as_deref().unwrap_or(&[]);
        let o = os.cluster_ips.as_deref().unwrap_or(&[]);
        let bad = || go_string_slice(Some(n));
        if n.len() == o.len() {
            for (i, ip) in o.iter().enumerate() {
                if ip != &n[i] {
                    errs.push(FieldError::invalid(
                        &cp.index(i),
                        bad(),
                        "may not change once set",
                    ));
                }
            }
        } else if o.len() > n.len() {
            if n.is_empty() {
                errs.push(FieldError::invalid(
                    &cp.index(0),
                    bad(),
                    "primary clusterIP can not be unset",
                ));
            }
            if !o.is_empty() && !n.is_empty() && n[0] != o[0] {
                errs.push(FieldError::invalid(
                    &cp.index(0),
                    bad(),
                    "may not change once set",
                ));
            }
            if n.len() == 1 && ns.ip_family_policy.as_deref() != Some("SingleStack") {
                errs.push(FieldError::invalid(
                    &cp.index(0),
                    bad(),
                    "`ipFamilyPolicy` must be set to 'SingleStack' when releasing the secondary clusterIP",
                ));
            }
        } else if !o.is_empty() && n[0] != o[0] {
            errs.push(FieldError::invalid(
                &cp.index(0),
                bad(),
                "may not change once set",
            ));
        }
        let nf = ns.ip_families.as_deref().unwrap_or(&[]);
        let of = os.ip_families.as_deref().unwrap_or(&[]);
        let fp = Path::new("spec").child("ipFamilies");
        if !of.is_empty() && !nf.is_empty() && of[0] != nf[0] {
            errs.push(FieldError::invalid(
                &fp.index(0),
                &nf[0],
                "may not change once set",
            ));
        }
        if nf.len() == 2 && of.len() == 2 && nf[1] != of[1] {
            errs.push(FieldError::invalid(
                &fp.index(1),
                &nf[1],
                "may not change once set",
            ));
        }
    }
    if ty_o == "LoadBalancer"
        && ty_n == "LoadBalancer"
        && ns.load_balancer_class != os.load_balancer_class
    {
        errs.push(FieldError::invalid(
            &Path::new("spec").child("loadBalancerClass"),
            ns.load_balancer_class.clone(),
            "may not change once set",
        ));
    }
    validate_service(new, errs);
}

/// `ValidateServiceStatusUpdate` (beyond ObjectMeta).
pub(crate) fn validate_service_status(new: &Service, _old: &Service, errs: &mut Errs) {
    let p = Path::new("status").child("loadBalancer").child("ingress");
    let st = new
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.as_ref());
    for (i, ing) in st.into_iter().flatten().enumerate() {
        let ip = p.index(i);
        if let Some(a) = ing.ip.as_deref().filter(|a| !a.is_empty())
            && names::parse_ip(a).is_none()
        {
            errs.push(FieldError::invalid(
                &ip.child("ip"),
                a,
                "must be a valid IP address",
            ));
        }
        if let Some(h) = ing.hostname.as_deref().filter(|h| !h.is_empty()) {
            dns_subdomain(h, &ip.child("hostname"), errs);
            if names::parse_ip(h).is_some() {
                errs.push(FieldError::invalid(
                    &ip.child("hostname"),
                    h,
                    "must be a DNS name, not an IP address",
                ));
            }
        }
        if let Some(m) = ing.ip_mode.as_deref() {
            if ing.ip.as_deref().unwrap_or("").is_empty() {
                errs.push(FieldError::forbidden(
                    &ip.child("ipMode"),
                    "may not be specified when `ip` is not set",
                ));
            } else if m != "VIP" && m != "Proxy" {
                errs.push(FieldError::not_supported(
                    &ip.child("ipMode"),
                    m,
                    &["Proxy", "VIP"],
                ));
            }
        }
    }
}
