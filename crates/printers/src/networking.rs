//! Networking printers: ingresses, ingress classes, network policies and endpoint slices.

use serde_json::Value;

use crate::cells::{age, int, list, name, opt_int, opt_s, s};
use crate::core_v1::load_balancer;
use crate::describe::{self, AGE, NAME, col};
use crate::format::{format_label_selector, list_with_more};
use crate::{Column, Row};

pub static INGRESS: &[Column] = &[
    NAME,
    col(
        "Class",
        "string",
        "The name of the IngressClass resource that should be used for additional configuration",
    ),
    col(
        "Hosts",
        "string",
        "Hosts that incoming requests are matched against before the ingress rule",
    ),
    col(
        "Address",
        "string",
        "Address is a list containing ingress points for the load-balancer",
    ),
    col("Ports", "string", "Ports of TLS configurations that open"),
    AGE,
];

/// `formatHosts`: up to three hosts, then ` + N more...` (counting every rule); `*` when no
/// rule names a host.
fn hosts(rules: &[Value]) -> String {
    const MAX: usize = 3;
    let mut out: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if out.len() == MAX {
            more = true;
        }
        let host = s(&rule["host"]);
        if !more && !host.is_empty() {
            out.push(host);
        }
    }
    if out.is_empty() {
        return "*".into();
    }
    let joined = out.join(",");
    if more {
        format!("{joined} + {} more...", rules.len() - MAX)
    } else {
        joined
    }
}

pub fn ingress(obj: &Value, now: i64) -> Row {
    let spec = &obj["spec"];
    let ports = if list(&spec["tls"]).is_empty() {
        "80"
    } else {
        "80, 443"
    };
    Row::new(vec![
        name(obj).into(),
        opt_s(&spec["ingressClassName"]).unwrap_or("<none>").into(),
        hosts(list(&spec["rules"])).into(),
        load_balancer(&obj["status"]["loadBalancer"]).into(),
        ports.into(),
        age(obj, now),
    ])
}

pub static INGRESS_CLASS: &[Column] = &[
    NAME,
    col(
        "Controller",
        "string",
        "Controller that is responsible for handling this class",
    ),
    col(
        "Parameters",
        "string",
        "A reference to a resource with additional parameters",
    ),
    AGE,
];

pub fn ingress_class(obj: &Value, now: i64) -> Row {
    let spec = &obj["spec"];
    let params = &spec["parameters"];
    let parameters = if params.is_object() {
        let mut p = s(&params["kind"]).to_string();
        if let Some(group) = opt_s(&params["apiGroup"]) {
            p = format!("{p}.{group}");
        }
        format!("{p}/{}", s(&params["name"]))
    } else {
        "<none>".into()
    };
    Row::new(vec![
        name(obj).into(),
        s(&spec["controller"]).into(),
        parameters.into(),
        age(obj, now),
    ])
}

pub static NETWORK_POLICY: &[Column] = &[
    NAME,
    col("Pod-Selector", "string", describe::NETPOL_POD_SELECTOR),
    AGE,
];

pub fn network_policy(obj: &Value, now: i64) -> Row {
    Row::new(vec![
        name(obj).into(),
        format_label_selector(&obj["spec"]["podSelector"]).into(),
        age(obj, now),
    ])
}

pub static ENDPOINT_SLICE: &[Column] = &[
    NAME,
    col("AddressType", "string", describe::EPS_ADDRESS_TYPE),
    col("Ports", "string", describe::EPS_PORTS),
    col("Endpoints", "string", describe::EPS_ENDPOINTS),
    AGE,
];

pub fn endpoint_slice(obj: &Value, now: i64) -> Row {
    let ports: Vec<String> = list(&obj["ports"])
        .iter()
        .map(|p| match (opt_int(&p["port"]), opt_s(&p["name"])) {
            (Some(_), _) => int(&p["port"]).to_string(),
            (None, Some(n)) => n.to_string(),
            (None, None) => "*".to_string(),
        })
        .collect();
    let addresses: Vec<String> = list(&obj["endpoints"])
        .iter()
        .flat_map(|e| list(&e["addresses"]).iter().map(|a| s(a).to_string()))
        .collect();
    Row::new(vec![
        name(obj).into(),
        s(&obj["addressType"]).into(),
        list_with_more(&ports, 3).into(),
        list_with_more(&addresses, 3).into(),
        age(obj, now),
    ])
}
