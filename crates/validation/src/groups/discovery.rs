//! discovery.k8s.io/v1 EndpointSlice: address type, endpoints (addresses per type, node
//! names, hostnames, topology), ports (names, protocols) and the immutable address type.

use std::collections::BTreeSet;

use k8s_openapi::api::discovery::v1 as discovery;

use super::{default_opt, dns_label, push_msgs, s};
use crate::error::FieldError;
use crate::kinds::{Def, def, no_update_checks};
use crate::meta::{self, Errs};
use crate::names::{self, name_is_dns_subdomain};
use crate::path::Path;

fn default_slice(es: &mut discovery::EndpointSlice) {
    for p in es.ports.iter_mut().flatten() {
        default_opt(&mut p.name, String::new());
        default_opt(&mut p.protocol, "TCP".to_string());
    }
}

fn validate_slice(es: &discovery::EndpointSlice, errs: &mut Errs) {
    let at = es.address_type.as_str();
    let ap = Path::new("addressType");
    let types = ["FQDN", "IPv4", "IPv6"];
    if at.is_empty() {
        errs.push(FieldError::required(&ap, ""));
    } else if !types.contains(&at) {
        errs.push(FieldError::not_supported(&ap, at, &types));
    }
    let ep = Path::new("endpoints");
    if es.endpoints.len() > 1000 {
        errs.push(FieldError::too_many(&ep, es.endpoints.len(), 1000));
    }
    for (i, e) in es.endpoints.iter().enumerate() {
        let ip = ep.index(i);
        let addrs = ip.child("addresses");
        if e.addresses.is_empty() {
            errs.push(FieldError::required(
                &addrs,
                "must contain at least 1 address",
            ));
        } else if e.addresses.len() > 100 {
            errs.push(FieldError::too_many(&addrs, e.addresses.len(), 100));
        }
        for (j, a) in e.addresses.iter().enumerate() {
            let p = addrs.index(j);
            match at {
                "IPv4" => match names::parse_ip(a) {
                    Some(std::net::IpAddr::V4(_)) => {
                        super::core::misc::validate_non_special_ip(a, &p, errs)
                    }
                    _ => errs.push(FieldError::invalid(&p, a, "must be a valid IPv4 address")),
                },
                "IPv6" => match names::parse_ip(a) {
                    Some(std::net::IpAddr::V6(_)) => {
                        super::core::misc::validate_non_special_ip(a, &p, errs)
                    }
                    _ => errs.push(FieldError::invalid(&p, a, "must be a valid IPv6 address")),
                },
                "FQDN" => {
                    let name = a.strip_suffix('.').unwrap_or(a);
                    let msgs = names::is_dns1123_subdomain(&name.to_lowercase());
                    if !msgs.is_empty() {
                        push_msgs(msgs, &p, a, errs);
                    } else if !name.contains('.') {
                        errs.push(FieldError::invalid(
                            &p,
                            a,
                            "should be a domain with at least two segments separated by dots",
                        ));
                    }
                }
                _ => {}
            }
        }
        if let Some(n) = &e.node_name {
            push_msgs(
                names::name_is_dns_subdomain(n, false),
                &ip.child("nodeName"),
                n,
                errs,
            );
        }
        let tp = ip.child("deprecatedTopology");
        if let Some(t) = &e.deprecated_topology
            && t.len() > 16
        {
            errs.push(FieldError::too_many(&tp, t.len(), 16));
        }
        meta::validate_labels(e.deprecated_topology.as_ref(), &tp, errs);
        if let Some(h) = &e.hostname {
            dns_label(h, &ip.child("hostname"), errs);
        }
    }
    let pp = Path::new("ports");
    let ports = es.ports.as_deref().unwrap_or(&[]);
    if ports.len() > 20000 {
        errs.push(FieldError::too_many(&pp, ports.len(), 20000));
    }
    let mut seen = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let ip = pp.index(i);
        let name = s(&p.name);
        if !name.is_empty() {
            dns_label(name, &ip.child("name"), errs);
        }
        if !seen.insert(name) {
            errs.push(FieldError::duplicate(&ip.child("name"), name));
        }
        match p.protocol.as_deref() {
            None => errs.push(FieldError::required(&ip.child("protocol"), "")),
            Some(pr) if !["SCTP", "TCP", "UDP"].contains(&pr) => errs.push(
                FieldError::not_supported(&ip.child("protocol"), pr, &["SCTP", "TCP", "UDP"]),
            ),
            _ => {}
        }
        if let Some(ap) = &p.app_protocol {
            push_msgs(
                names::is_qualified_name(ap),
                &ip.child("appProtocol"),
                ap,
                errs,
            );
        }
    }
}

fn validate_slice_update(
    n: &discovery::EndpointSlice,
    o: &discovery::EndpointSlice,
    errs: &mut Errs,
) {
    validate_slice(n, errs);
    if n.address_type != o.address_type {
        errs.push(FieldError::invalid(
            &Path::new("addressType"),
            &n.address_type,
            meta::IMMUTABLE,
        ));
    }
}

pub(crate) static ENDPOINT_SLICE: Def<discovery::EndpointSlice> = def(
    true,
    name_is_dns_subdomain,
    default_slice,
    validate_slice,
    validate_slice_update,
    no_update_checks,
);
