//! Service-specific writes: ClusterIP and NodePort allocation on create, keeping what was
//! allocated when an update leaves it out (as upstream's service REST does), allocating for
//! new node ports, and releasing what a service no longer holds.

use std::net::Ipv4Addr;

use rkube_api::ApiError;
use rkube_api::resources::Resource;
use serde_json::{Value, json};

use crate::State;

/// What a write allocated, to release if the write fails.
#[derive(Default, Debug)]
pub struct Allocated {
    pub ips: Vec<Ipv4Addr>,
    pub ports: Vec<u16>,
}

impl Allocated {
    pub async fn release(self, state: &State) {
        for ip in self.ips {
            state.allocators.release_ip(ip).await;
        }
        for p in self.ports {
            state.allocators.release_port(p).await;
        }
    }
}

fn service_type(svc: &Value) -> &str {
    svc["spec"]["type"].as_str().unwrap_or("ClusterIP")
}

fn wants_node_ports(svc: &Value) -> bool {
    matches!(service_type(svc), "NodePort" | "LoadBalancer")
}

/// Re-raises an allocation error as `Service "x" is invalid: …`.
fn as_invalid(resource: &Resource, name: &str, e: ApiError) -> ApiError {
    if e.code == 422 {
        let causes = e.details.map(|d| d.causes).unwrap_or_default();
        ApiError::invalid(resource, "Service", name, causes)
    } else {
        e
    }
}

/// Allocates the cluster IP and node ports of a new service.
pub async fn allocate_for_create(
    state: &State,
    resource: &Resource,
    svc: &mut Value,
    owner: &str,
    name: &str,
) -> Result<Allocated, ApiError> {
    let mut got = Allocated::default();
    match allocate(state, svc, None, owner, &mut got).await {
        Ok(()) => Ok(got),
        Err(e) => {
            got.release(state).await;
            Err(as_invalid(resource, name, e))
        }
    }
}

/// Carries allocations over from `old` and allocates what `new` adds.
pub async fn allocate_for_update(
    state: &State,
    resource: &Resource,
    new: &mut Value,
    old: &Value,
    owner: &str,
    name: &str,
) -> Result<Allocated, ApiError> {
    let mut got = Allocated::default();
    match allocate(state, new, Some(old), owner, &mut got).await {
        Ok(()) => Ok(got),
        Err(e) => {
            got.release(state).await;
            Err(as_invalid(resource, name, e))
        }
    }
}

async fn allocate(
    state: &State,
    svc: &mut Value,
    old: Option<&Value>,
    owner: &str,
    got: &mut Allocated,
) -> Result<(), ApiError> {
    if svc.get("spec").is_none_or(|s| !s.is_object()) {
        svc["spec"] = json!({});
    }
    let ty = service_type(svc).to_string();
    if ty != "ExternalName" {
        let requested = svc["spec"]["clusterIP"]
            .as_str()
            .or_else(|| svc["spec"]["clusterIPs"][0].as_str())
            .filter(|s| !s.is_empty())
            .map(String::from);
        let old_ip = old
            .and_then(|o| o["spec"]["clusterIP"].as_str())
            .filter(|s| !s.is_empty())
            .map(String::from);
        match (requested, old_ip) {
            (Some(none), _) if none == "None" => {
                svc["spec"]["clusterIP"] = "None".into();
                svc["spec"]["clusterIPs"] = json!(["None"]);
            }
            // An update keeps the address it had (the change itself is validation's call).
            (None, Some(old_ip)) => {
                svc["spec"]["clusterIP"] = old_ip.clone().into();
                svc["spec"]["clusterIPs"] = json!([old_ip]);
            }
            (Some(req), Some(old_ip)) if req == old_ip => {
                svc["spec"]["clusterIPs"] = json!([old_ip]);
            }
            (req, _) => {
                let parsed = match req {
                    Some(r) => Some(r.parse::<Ipv4Addr>().map_err(|_| {
                        ApiError {
                            code: 422,
                            reason: "Invalid",
                            message: String::new(),
                            details: Some(Box::new(rkube_api::status::Details {
                                causes: vec![rkube_api::status::Cause {
                                    reason: "FieldValueInvalid".into(),
                                    message: format!("Invalid value: \"{r}\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"),
                                    field: "spec.clusterIPs[0]".into(),
                                }],
                                ..Default::default()
                            })),
                        }
                    })?),
                    None => None,
                };
                let ip = state.allocators.allocate_ip(parsed, owner).await?;
                got.ips.push(ip);
                svc["spec"]["clusterIP"] = ip.to_string().into();
                svc["spec"]["clusterIPs"] = json!([ip.to_string()]);
            }
        }
        if svc["spec"].get("ipFamilies").is_none() {
            svc["spec"]["ipFamilies"] = json!(["IPv4"]);
        }
        if svc["spec"].get("ipFamilyPolicy").is_none() {
            svc["spec"]["ipFamilyPolicy"] = "SingleStack".into();
        }
    }
    if wants_node_ports(svc) {
        let old_ports: Vec<Value> = old
            .filter(|o| wants_node_ports(o))
            .and_then(|o| o["spec"]["ports"].as_array().cloned())
            .unwrap_or_default();
        let n = svc["spec"]["ports"].as_array().map(Vec::len).unwrap_or(0);
        for i in 0..n {
            let port = &svc["spec"]["ports"][i];
            let requested = port["nodePort"]
                .as_u64()
                .filter(|p| *p > 0)
                .map(|p| p as u16);
            // The same port (by name and number) keeps its node port.
            let previous = old_ports
                .iter()
                .find(|o| o["port"] == port["port"] && o["name"] == port["name"])
                .and_then(|o| o["nodePort"].as_u64())
                .map(|p| p as u16);
            let chosen = match (requested, previous) {
                (None, Some(p)) => p,
                (Some(r), Some(p)) if r == p => p,
                (req, _) => {
                    let p = state
                        .allocators
                        .allocate_port(req, owner, &format!("spec.ports[{i}].nodePort"))
                        .await?;
                    got.ports.push(p);
                    p
                }
            };
            svc["spec"]["ports"][i]["nodePort"] = chosen.into();
        }
    } else if let Some(ports) = svc["spec"]["ports"].as_array_mut() {
        for p in ports {
            if let Some(o) = p.as_object_mut() {
                o.remove("nodePort");
            }
        }
    }
    Ok(())
}

/// The IPs and ports `svc` holds.
pub fn held(svc: &Value) -> Allocated {
    let mut out = Allocated::default();
    if let Some(ip) = svc["spec"]["clusterIP"]
        .as_str()
        .and_then(|s| s.parse().ok())
    {
        out.ips.push(ip);
    }
    if let Some(ports) = svc["spec"]["ports"].as_array() {
        for p in ports {
            if let Some(n) = p["nodePort"].as_u64() {
                out.ports.push(n as u16);
            }
        }
    }
    out
}

/// Releases what `old` held and `new` (if any) no longer does.
pub async fn release_dropped(state: &State, old: &Value, new: Option<&Value>) {
    let before = held(old);
    let after = new.map(held).unwrap_or_default();
    for ip in before.ips {
        if !after.ips.contains(&ip) {
            state.allocators.release_ip(ip).await;
        }
    }
    for p in before.ports {
        if !after.ports.contains(&p) {
            state.allocators.release_port(p).await;
        }
    }
}
