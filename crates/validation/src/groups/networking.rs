//! networking.k8s.io/v1: Ingress (rules, paths and path types, backends, TLS hosts, class
//! name), IngressClass (controller, parameters) and NetworkPolicy (selectors, ports, peers,
//! IP blocks, policy types), with their defaults.

use k8s_openapi::api::networking::v1 as net;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{default_opt, push_msgs, s};
use crate::error::{BadValue, FieldError};
use crate::kinds::{Def, def, no_default, no_update_checks};
use crate::meta::{self, Errs};
use crate::names::{self, name_is_dns_subdomain, path_segment_name};
use crate::path::Path;

// ---------------------------------------------------------------- Ingress

fn validate_typed_ref(
    api_group: Option<&str>,
    kind: &str,
    name: &str,
    path: &Path,
    errs: &mut Errs,
) {
    if let Some(g) = api_group {
        push_msgs(
            names::is_dns1123_subdomain(g),
            &path.child("apiGroup"),
            g,
            errs,
        );
    }
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
}

fn validate_backend(b: &net::IngressBackend, path: &Path, errs: &mut Errs) {
    match (&b.resource, &b.service) {
        (Some(_), Some(_)) => errs.push(FieldError::invalid(
            path,
            "",
            "cannot set both resource and service backends",
        )),
        (Some(r), None) => validate_typed_ref(
            r.api_group.as_deref(),
            &r.kind,
            &r.name,
            &path.child("resource"),
            errs,
        ),
        (None, Some(svc)) => {
            let np = path.children(&["service", "name"]);
            if svc.name.is_empty() {
                errs.push(FieldError::required(&np, ""));
            } else {
                push_msgs(
                    names::name_is_dns1035_label(&svc.name, false),
                    &np,
                    &svc.name,
                    errs,
                );
            }
            let port = svc.port.clone().unwrap_or_default();
            let pname = s(&port.name);
            let pnum = port.number.unwrap_or(0);
            if !pname.is_empty() && pnum != 0 {
                errs.push(FieldError::invalid(
                    path,
                    "",
                    "cannot set both port name & port number",
                ));
            } else if !pname.is_empty() {
                push_msgs(
                    names::is_valid_port_name(pname),
                    &path.children(&["service", "port", "name"]),
                    pname,
                    errs,
                );
            } else if pnum != 0 {
                push_msgs(
                    names::is_valid_port_num(pnum.into()),
                    &path.children(&["service", "port", "number"]),
                    pnum,
                    errs,
                );
            } else {
                errs.push(FieldError::required(
                    path,
                    "port name or number is required",
                ));
            }
        }
        (None, None) => errs.push(FieldError::invalid(
            path,
            "",
            "resource or service backend is required",
        )),
    }
}

fn validate_host(host: &str, path: &Path, errs: &mut Errs) -> bool {
    if names::parse_ip(host).is_some() {
        errs.push(FieldError::invalid(
            path,
            host,
            "must be a DNS name, not an IP address",
        ));
    }
    if host.contains('*') {
        push_msgs(names::is_wildcard_dns1123_subdomain(host), path, host, errs);
        true
    } else {
        push_msgs(names::is_dns1123_subdomain(host), path, host, errs);
        false
    }
}

fn validate_ingress(ing: &net::Ingress, errs: &mut Errs) {
    let spec = ing.spec.clone().unwrap_or_default();
    let sp = Path::new("spec");
    let rules = spec.rules.as_deref().unwrap_or(&[]);
    if rules.is_empty() && spec.default_backend.is_none() {
        errs.push(FieldError::invalid(
            &sp,
            BadValue::Raw("[]networking.IngressRule(nil)".into()),
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(b) = &spec.default_backend {
        validate_backend(b, &sp.child("defaultBackend"), errs);
    }
    for (i, r) in rules.iter().enumerate() {
        let rp = sp.child("rules").index(i);
        if let Some(h) = r.host.as_deref().filter(|h| !h.is_empty()) {
            validate_host(h, &rp.child("host"), errs);
        }
        let Some(http) = &r.http else { continue };
        let hp = rp.child("http");
        if http.paths.is_empty() {
            errs.push(FieldError::required(&hp.child("paths"), ""));
        }
        for (j, p) in http.paths.iter().enumerate() {
            let pp = hp.child("paths").index(j);
            let path = s(&p.path);
            match p.path_type.as_str() {
                "" => {
                    errs.push(FieldError::required(
                        &pp.child("pathType"),
                        "pathType must be specified",
                    ));
                    continue;
                }
                "Exact" | "Prefix" => {
                    if !path.starts_with('/') {
                        errs.push(FieldError::invalid(
                            &pp.child("path"),
                            path,
                            "must be an absolute path",
                        ));
                    }
                    if !path.is_empty() {
                        for seq in ["//", "/./", "/../", "%2f", "%2F"] {
                            if path.contains(seq) {
                                errs.push(FieldError::invalid(
                                    &pp.child("path"),
                                    path,
                                    format!("must not contain '{seq}'"),
                                ));
                            }
                        }
                        for suf in ["/..", "/."] {
                            if path.ends_with(suf) {
                                errs.push(FieldError::invalid(
                                    &pp.child("path"),
                                    path,
                                    format!("cannot end with '{suf}'"),
                                ));
                            }
                        }
                    }
                }
                "ImplementationSpecific" => {
                    if !path.is_empty() && !path.starts_with('/') {
                        errs.push(FieldError::invalid(
                            &pp.child("path"),
                            path,
                            "must be an absolute path",
                        ));
                    }
                }
                other => errs.push(FieldError::not_supported(
                    &pp.child("pathType"),
                    other,
                    &["Exact", "ImplementationSpecific", "Prefix"],
                )),
            }
            validate_backend(&p.backend, &pp.child("backend"), errs);
        }
    }
    for (i, t) in spec.tls.iter().flatten().enumerate() {
        for (j, h) in t.hosts.iter().flatten().enumerate() {
            let hp = sp.child("tls").index(i).child("hosts").index(j);
            if h.contains('*') {
                push_msgs(names::is_wildcard_dns1123_subdomain(h), &hp, h, errs);
            } else {
                push_msgs(names::is_dns1123_subdomain(h), &hp, h, errs);
            }
        }
    }
    if let Some(c) = &spec.ingress_class_name {
        push_msgs(
            names::name_is_dns_subdomain(c, false),
            &sp.child("ingressClassName"),
            c,
            errs,
        );
    }
}

fn validate_ingress_update(n: &net::Ingress, _o: &net::Ingress, errs: &mut Errs) {
    validate_ingress(n, errs);
}

fn validate_ingress_status(n: &net::Ingress, _o: &net::Ingress, errs: &mut Errs) {
    let p = Path::new("status").children(&["loadBalancer", "ingress"]);
    let ing = n
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.as_ref());
    for (i, x) in ing.into_iter().flatten().enumerate() {
        if let Some(ip) = x.ip.as_deref().filter(|v| !v.is_empty())
            && names::parse_ip(ip).is_none()
        {
            errs.push(FieldError::invalid(
                &p.index(i).child("ip"),
                ip,
                "must be a valid IP address",
            ));
        }
        if let Some(h) = x.hostname.as_deref().filter(|v| !v.is_empty()) {
            push_msgs(
                names::is_dns1123_subdomain(h),
                &p.index(i).child("hostname"),
                h,
                errs,
            );
            if names::parse_ip(h).is_some() {
                errs.push(FieldError::invalid(
                    &p.index(i).child("hostname"),
                    h,
                    "must be a DNS name, not an IP address",
                ));
            }
        }
    }
}

pub(crate) static INGRESS: Def<net::Ingress> = def(
    true,
    name_is_dns_subdomain,
    no_default,
    validate_ingress,
    validate_ingress_update,
    validate_ingress_status,
);

// ---------------------------------------------------------------- IngressClass

fn default_ingress_class(ic: &mut net::IngressClass) {
    if let Some(p) = ic.spec.as_mut().and_then(|s| s.parameters.as_mut()) {
        default_opt(&mut p.scope, "Cluster".to_string());
    }
}

fn validate_ingress_class(ic: &net::IngressClass, errs: &mut Errs) {
    let spec = ic.spec.clone().unwrap_or_default();
    let sp = Path::new("spec");
    let c = s(&spec.controller);
    if c.len() > 250 {
        errs.push(FieldError::too_long(&sp.child("controller"), c, 250));
    }
    for (v, m) in names::domain_prefixed_path_errors(c) {
        errs.push(FieldError::invalid(&sp.child("controller"), v, m));
    }
    if let Some(p) = &spec.parameters {
        let pp = sp.child("parameters");
        validate_typed_ref(p.api_group.as_deref(), &p.kind, &p.name, &pp, errs);
        let scope = s(&p.scope);
        if p.scope.is_none() {
            errs.push(FieldError::required(&pp.child("scope"), ""));
        }
        if scope != "Cluster" && scope != "Namespace" {
            errs.push(FieldError::not_supported(
                &pp.child("scope"),
                scope,
                &["Cluster", "Namespace"],
            ));
        } else if scope == "Namespace" {
            match &p.namespace {
                None => errs.push(FieldError::required(
                    &pp.child("namespace"),
                    "`parameters.scope` is set to 'Namespace'",
                )),
                Some(ns) => push_msgs(
                    names::is_dns1123_label(ns),
                    &pp.child("namespace"),
                    ns,
                    errs,
                ),
            }
        } else if p.namespace.is_some() {
            errs.push(FieldError::forbidden(
                &pp.child("namespace"),
                "`parameters.scope` is set to 'Cluster'",
            ));
        }
    }
}

fn validate_ingress_class_update(n: &net::IngressClass, o: &net::IngressClass, errs: &mut Errs) {
    let nc = n.spec.as_ref().map(|x| s(&x.controller)).unwrap_or("");
    let oc = o.spec.as_ref().map(|x| s(&x.controller)).unwrap_or("");
    if nc != oc {
        errs.push(FieldError::invalid(
            &Path::new("spec").child("controller"),
            nc,
            meta::IMMUTABLE,
        ));
    }
    validate_ingress_class(n, errs);
}

pub(crate) static INGRESS_CLASS: Def<net::IngressClass> = def(
    false,
    name_is_dns_subdomain,
    default_ingress_class,
    validate_ingress_class,
    validate_ingress_class_update,
    no_update_checks,
);

// ---------------------------------------------------------------- NetworkPolicy

fn default_network_policy(np: &mut net::NetworkPolicy) {
    let Some(spec) = &mut np.spec else { return };
    for r in spec.ingress.iter_mut().flatten() {
        for p in r.ports.iter_mut().flatten() {
            default_opt(&mut p.protocol, "TCP".to_string());
        }
    }
    for r in spec.egress.iter_mut().flatten() {
        for p in r.ports.iter_mut().flatten() {
            default_opt(&mut p.protocol, "TCP".to_string());
        }
    }
    if spec.policy_types.as_ref().is_none_or(|p| p.is_empty()) {
        let mut types = vec!["Ingress".to_string()];
        if spec.egress.as_ref().is_some_and(|e| !e.is_empty()) {
            types.push("Egress".to_string());
        }
        spec.policy_types = Some(types);
    }
}

fn validate_np_port(p: &net::NetworkPolicyPort, path: &Path, errs: &mut Errs) {
    if let Some(pr) = p.protocol.as_deref()
        && !["TCP", "UDP", "SCTP"].contains(&pr)
    {
        errs.push(FieldError::not_supported(
            &path.child("protocol"),
            pr,
            &["TCP", "UDP", "SCTP"],
        ));
    }
    match &p.port {
        Some(IntOrString::Int(port)) => {
            push_msgs(
                names::is_valid_port_num((*port).into()),
                &path.child("port"),
                *port,
                errs,
            );
            if let Some(end) = p.end_port {
                if end < *port {
                    errs.push(FieldError::invalid(
                        &path.child("endPort"),
                        *port,
                        "must be greater than or equal to `port`",
                    ));
                }
                push_msgs(
                    names::is_valid_port_num(end.into()),
                    &path.child("endPort"),
                    end,
                    errs,
                );
            }
        }
        Some(IntOrString::String(name)) => {
            if let Some(end) = p.end_port {
                errs.push(FieldError::invalid(
                    &path.child("endPort"),
                    end,
                    "may not be specified when `port` is non-numeric",
                ));
            }
            push_msgs(
                names::is_valid_port_name(name),
                &path.child("port"),
                name,
                errs,
            );
        }
        None => {
            if let Some(end) = p.end_port {
                errs.push(FieldError::invalid(
                    &path.child("endPort"),
                    end,
                    "may not be specified when `port` is not specified",
                ));
            }
        }
    }
}

fn contains(net: (std::net::IpAddr, u8), ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match (net.0, ip) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = if net.1 == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(net.1))
            };
            (u32::from(a) & mask) == (u32::from(b) & mask)
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = if net.1 == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(net.1))
            };
            (u128::from(a) & mask) == (u128::from(b) & mask)
        }
        _ => false,
    }
}

fn validate_np_peer(p: &net::NetworkPolicyPeer, path: &Path, errs: &mut Errs) {
    let mut n = 0;
    if let Some(sel) = &p.pod_selector {
        n += 1;
        meta::validate_label_selector(sel, &path.child("podSelector"), errs);
    }
    if let Some(sel) = &p.namespace_selector {
        n += 1;
        meta::validate_label_selector(sel, &path.child("namespaceSelector"), errs);
    }
    if let Some(b) = &p.ip_block {
        n += 1;
        let bp = path.child("ipBlock");
        if b.cidr.is_empty() {
            errs.push(FieldError::required(&bp.child("cidr"), ""));
        } else if let Some(cidr) = names::parse_cidr(&b.cidr) {
            for (i, e) in b.except.iter().flatten().enumerate() {
                let ep = bp.child("except").index(i);
                match names::parse_cidr(e) {
                    None => errs.push(FieldError::invalid(&ep, e, names::CIDR_ERROR)),
                    Some(ex) => {
                        if !contains(cidr, ex.0) || cidr.1 >= ex.1 {
                            errs.push(FieldError::invalid(
                                &ep,
                                e,
                                "must be a strict subset of `cidr`",
                            ));
                        }
                    }
                }
            }
        } else {
            errs.push(FieldError::invalid(
                &bp.child("cidr"),
                &b.cidr,
                names::CIDR_ERROR,
            ));
        }
    }
    if n == 0 {
        errs.push(FieldError::required(path, "must specify a peer"));
    } else if n > 1 && p.ip_block.is_some() {
        errs.push(FieldError::forbidden(
            path,
            "may not specify both ipBlock and another peer",
        ));
    }
}

fn validate_network_policy(np: &net::NetworkPolicy, errs: &mut Errs) {
    let spec = np.spec.clone().unwrap_or_default();
    let sp = Path::new("spec");
    if let Some(sel) = &spec.pod_selector {
        meta::validate_label_selector(sel, &sp.child("podSelector"), errs);
    }
    for (i, r) in spec.ingress.iter().flatten().enumerate() {
        let rp = sp.child("ingress").index(i);
        for (j, p) in r.ports.iter().flatten().enumerate() {
            validate_np_port(p, &rp.child("ports").index(j), errs);
        }
        for (j, p) in r.from.iter().flatten().enumerate() {
            validate_np_peer(p, &rp.child("from").index(j), errs);
        }
    }
    for (i, r) in spec.egress.iter().flatten().enumerate() {
        let rp = sp.child("egress").index(i);
        for (j, p) in r.ports.iter().flatten().enumerate() {
            validate_np_port(p, &rp.child("ports").index(j), errs);
        }
        for (j, p) in r.to.iter().flatten().enumerate() {
            validate_np_peer(p, &rp.child("to").index(j), errs);
        }
    }
    let types = spec.policy_types.clone().unwrap_or_default();
    if types.len() > 2 {
        errs.push(FieldError::invalid(
            &sp.child("policyTypes"),
            BadValue::Raw(format!(
                "&{}",
                crate::error::go_string_slice_text(&types)
                    .replace("[]string", "[]networking.PolicyType")
            )),
            "may not specify more than two policyTypes",
        ));
        return;
    }
    for (i, t) in types.iter().enumerate() {
        if t != "Ingress" && t != "Egress" {
            errs.push(FieldError::not_supported(
                &sp.child("policyTypes").index(i),
                t,
                &["Ingress", "Egress"],
            ));
        }
    }
}

fn validate_network_policy_update(
    n: &net::NetworkPolicy,
    _o: &net::NetworkPolicy,
    errs: &mut Errs,
) {
    validate_network_policy(n, errs);
}

pub(crate) static NETWORK_POLICY: Def<net::NetworkPolicy> = def(
    true,
    name_is_dns_subdomain,
    default_network_policy,
    validate_network_policy,
    validate_network_policy_update,
    no_update_checks,
);
