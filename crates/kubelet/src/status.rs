//! Pod status as upstream's kubelet generates it (`generateAPIPodStatus` and the status
//! manager): phase from the container states (`getPhase`), the conditions
//! PodReadyToStartContainers, Initialized, Ready, ContainersReady and PodScheduled with
//! upstream's reasons and messages, container statuses, IPs and start time; transition
//! times kept while a condition's status does not change. Pure functions over the pod
//! worker's [`PodRecord`], so they are tested without an API server.

use std::net::Ipv4Addr;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    ContainerState as ApiState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus as ApiContainerStatus, HostIP, Pod, PodCondition, PodIP,
    PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use crate::runtime::{ContainerState, ContainerStatus};

/// What the pod worker knows about one container of a pod.
#[derive(Debug, Clone)]
pub struct ContainerRecord {
    pub name: String,
    pub image: String,
    /// The runtime's last report about the current instance.
    pub current: Option<ContainerStatus>,
    /// The previous instance, once it was restarted.
    pub last: Option<ContainerStatus>,
    pub restart_count: i32,
    /// The next restart's back-off (None before the first restart).
    pub backoff: Option<Duration>,
    /// Waiting reason and message (CrashLoopBackOff, a runtime error) instead of the
    /// exited state.
    pub waiting: Option<(String, String)>,
}

impl ContainerRecord {
    pub fn new(name: &str, image: &str) -> Self {
        ContainerRecord {
            name: name.into(),
            image: image.into(),
            current: None,
            last: None,
            restart_count: 0,
            backoff: None,
            waiting: None,
        }
    }
}

/// What the pod worker knows about one pod.
#[derive(Debug, Clone)]
pub struct PodRecord {
    pub uid: String,
    pub node: String,
    pub sandbox: Option<String>,
    pub ip: Option<Ipv4Addr>,
    pub host_ip: Ipv4Addr,
    pub start_time: Timestamp,
    pub init: Vec<ContainerRecord>,
    pub containers: Vec<ContainerRecord>,
    /// Containers stopped and sandbox removed: the pod ran to its end (or was deleted).
    pub terminated: bool,
    /// Being deleted: the final phase is terminal even with restartPolicy Always.
    pub deleting: bool,
}

fn time(t: Timestamp) -> Time {
    Time(t)
}

fn terminated(c: &ContainerStatus, scheme: &str) -> ContainerStateTerminated {
    ContainerStateTerminated {
        exit_code: c.exit_code,
        reason: (!c.reason.is_empty()).then(|| c.reason.clone()),
        started_at: c.started_at.map(time),
        finished_at: c.finished_at.map(time),
        container_id: Some(format!("{scheme}://{}", c.id)),
        ..Default::default()
    }
}

/// One container's API status. `pending_reason` is the waiting reason before it exists
/// (ContainerCreating, or PodInitializing while init containers run).
fn container_status(
    r: &ContainerRecord,
    scheme: &str,
    pending_reason: &str,
    init: bool,
) -> ApiContainerStatus {
    let mut s = ApiContainerStatus {
        name: r.name.clone(),
        image: r.image.clone(),
        restart_count: r.restart_count,
        ..Default::default()
    };
    s.last_state = Some(match &r.last {
        Some(last) => ApiState {
            terminated: Some(terminated(last, scheme)),
            ..Default::default()
        },
        None => ApiState::default(),
    });
    let waiting = |reason: &str, message: Option<String>| ApiState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.into()),
            message,
        }),
        ..Default::default()
    };
    match &r.current {
        None => {
            s.image_id = String::new();
            s.state = Some(waiting(pending_reason, None));
            s.started = Some(false);
        }
        Some(c) => {
            s.image_id = c.image_ref.clone();
            s.container_id = Some(format!("{scheme}://{}", c.id));
            match c.state {
                ContainerState::Created => {
                    s.state = Some(waiting("ContainerCreating", None));
                    s.started = Some(false);
                }
                ContainerState::Running => {
                    s.state = Some(ApiState {
                        running: Some(ContainerStateRunning {
                            started_at: c.started_at.map(time),
                        }),
                        ..Default::default()
                    });
                    s.started = Some(true);
                    s.ready = !init;
                }
                ContainerState::Exited => {
                    s.started = Some(false);
                    if let Some((reason, message)) = &r.waiting {
                        // Waiting to restart: the exited instance becomes the last state.
                        s.state = Some(waiting(reason, Some(message.clone())));
                        s.last_state = Some(ApiState {
                            terminated: Some(terminated(c, scheme)),
                            ..Default::default()
                        });
                    } else {
                        s.state = Some(ApiState {
                            terminated: Some(terminated(c, scheme)),
                            ..Default::default()
                        });
                        s.ready = init && c.exit_code == 0;
                    }
                }
            }
        }
    }
    if r.current.is_none()
        && let Some((reason, message)) = &r.waiting
    {
        s.state = Some(waiting(reason, Some(message.clone())));
    }
    s
}

/// Upstream's `getPhase`.
pub fn phase(
    pod: &Pod,
    init: &[ApiContainerStatus],
    regular: &[ApiContainerStatus],
    terminal: bool,
) -> &'static str {
    let policy = restart_policy(pod);
    let mut pending_init = 0;
    let mut failed_init = 0;
    for s in init {
        let st = s.state.clone().unwrap_or_default();
        let last_failed = s
            .last_state
            .as_ref()
            .and_then(|l| l.terminated.as_ref())
            .map(|t| t.exit_code != 0);
        if st.running.is_some() {
            pending_init += 1;
        } else if let Some(t) = st.terminated {
            if t.exit_code != 0 {
                failed_init += 1;
            }
        } else if st.waiting.is_some() {
            match last_failed {
                Some(true) => failed_init += 1,
                Some(false) => {}
                None => pending_init += 1,
            }
        } else {
            pending_init += 1;
        }
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in regular {
        let st = s.state.clone().unwrap_or_default();
        if st.running.is_some() {
            running += 1;
        } else if let Some(t) = st.terminated {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if s
            .last_state
            .as_ref()
            .is_some_and(|l| l.terminated.is_some())
        {
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    if failed_init > 0 && policy == "Never" {
        return "Failed";
    }
    if pending_init > 0 || waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped > 0 {
        if terminal {
            return if stopped == succeeded {
                "Succeeded"
            } else {
                "Failed"
            };
        }
        if policy == "Always" {
            return "Running";
        }
        if stopped == succeeded {
            return "Succeeded";
        }
        if policy == "Never" {
            return "Failed";
        }
        return "Running";
    }
    "Pending"
}

pub fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

fn cond(kind: &str, ok: bool, reason: Option<&str>, message: Option<String>) -> PodCondition {
    PodCondition {
        type_: kind.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.map(String::from),
        message,
        ..Default::default()
    }
}

fn names(list: &[&str]) -> String {
    format!("[{}]", list.join(" "))
}

/// The whole status the kubelet would write for `pod` now.
pub fn generate(pod: &Pod, r: &PodRecord, scheme: &str, now: Timestamp) -> PodStatus {
    let old = pod.status.clone().unwrap_or_default();
    let init_done = r.init.iter().all(|c| {
        c.current
            .as_ref()
            .is_some_and(|s| s.state == ContainerState::Exited && s.exit_code == 0)
    });
    let init: Vec<ApiContainerStatus> = r
        .init
        .iter()
        .map(|c| container_status(c, scheme, "PodInitializing", true))
        .collect();
    let pending = if init_done {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    let regular: Vec<ApiContainerStatus> = r
        .containers
        .iter()
        .map(|c| container_status(c, scheme, pending, false))
        .collect();
    let mut phase = phase(pod, &init, &regular, r.deleting && r.terminated);
    // A terminal phase is final.
    if matches!(old.phase.as_deref(), Some("Succeeded" | "Failed")) {
        phase = if old.phase.as_deref() == Some("Succeeded") {
            "Succeeded"
        } else {
            "Failed"
        };
    }

    let mut conditions = Vec::new();
    conditions.push(cond(
        "PodReadyToStartContainers",
        r.sandbox.is_some() && !r.terminated,
        None,
        None,
    ));
    let incomplete: Vec<&str> = r
        .init
        .iter()
        .zip(&init)
        .filter(|(_, s)| !s.ready)
        .map(|(c, _)| c.name.as_str())
        .collect();
    conditions.push(if phase == "Succeeded" {
        cond("Initialized", true, Some("PodCompleted"), None)
    } else if incomplete.is_empty() {
        cond("Initialized", true, None, None)
    } else {
        cond(
            "Initialized",
            false,
            Some("ContainersNotInitialized"),
            Some(format!(
                "containers with incomplete status: {}",
                names(&incomplete)
            )),
        )
    });
    let unready: Vec<&str> = regular
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.as_str())
        .collect();
    let containers_ready = match phase {
        "Succeeded" => cond("ContainersReady", false, Some("PodCompleted"), None),
        "Failed" => cond("ContainersReady", false, Some("PodFailed"), None),
        _ if !incomplete.is_empty() => cond(
            "ContainersReady",
            false,
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: {}",
                names(&unready)
            )),
        ),
        _ if unready.is_empty() => cond("ContainersReady", true, None, None),
        _ => cond(
            "ContainersReady",
            false,
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: {}",
                names(&unready)
            )),
        ),
    };
    let mut ready = containers_ready.clone();
    ready.type_ = "Ready".into();
    if ready.status == "True" {
        // Readiness gates: conditions other components set on the pod.
        let gates: Vec<String> = pod
            .spec
            .as_ref()
            .and_then(|s| s.readiness_gates.as_ref())
            .map(|g| g.iter().map(|g| g.condition_type.clone()).collect())
            .unwrap_or_default();
        let mut problems = Vec::new();
        for g in &gates {
            match old.conditions.iter().flatten().find(|c| &c.type_ == g) {
                None => problems.push(format!(
                    "corresponding condition of pod readiness gate \"{g}\" does not exist."
                )),
                Some(c) if c.status != "True" => problems.push(format!(
                    "the status of pod readiness gate \"{g}\" is not \"True\", but {}",
                    c.status
                )),
                Some(_) => {}
            }
        }
        if !problems.is_empty() {
            ready = cond(
                "Ready",
                false,
                Some("ReadinessGatesNotReady"),
                Some(problems.join(", ")),
            );
        }
    }
    conditions.push(ready);
    conditions.push(containers_ready);
    let scheduled = old
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled")
        .cloned()
        .unwrap_or_else(|| cond("PodScheduled", true, None, None));
    conditions.push(scheduled);
    // Conditions the kubelet does not own (readiness gates, DisruptionTarget, …) stay.
    let owned = [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ];
    for c in old.conditions.iter().flatten() {
        if !owned.contains(&c.type_.as_str()) {
            conditions.push(c.clone());
        }
    }
    for c in &mut conditions {
        let previous = old.conditions.iter().flatten().find(|o| o.type_ == c.type_);
        c.last_transition_time = match previous {
            Some(p) if p.status == c.status && p.last_transition_time.is_some() => {
                p.last_transition_time.clone()
            }
            _ => Some(time(now)),
        };
        if c.last_probe_time.is_none() {
            c.last_probe_time = previous.and_then(|p| p.last_probe_time.clone());
        }
    }

    let host = r.host_ip.to_string();
    let pod_ip = r.ip.map(|ip| ip.to_string());
    PodStatus {
        phase: Some(phase.into()),
        conditions: Some(conditions),
        host_ip: Some(host.clone()),
        host_ips: Some(vec![HostIP { ip: host }]),
        pod_ip: pod_ip.clone(),
        pod_ips: pod_ip.map(|ip| vec![PodIP { ip }]),
        start_time: Some(old.start_time.clone().unwrap_or(time(r.start_time))),
        container_statuses: Some(regular),
        init_container_statuses: (!init.is_empty()).then_some(init),
        qos_class: old.qos_class.clone(),
        ..old
    }
}

/// A JSON merge patch (RFC 7386) turning `old` into `new`; `None` when they are equal.
pub fn merge_diff(old: &Value, new: &Value) -> Option<Value> {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut out = serde_json::Map::new();
            for (k, nv) in n {
                match o.get(k) {
                    Some(ov) => {
                        if let Some(d) = merge_diff(ov, nv) {
                            out.insert(k.clone(), d);
                        }
                    }
                    None => {
                        out.insert(k.clone(), nv.clone());
                    }
                }
            }
            for k in o.keys() {
                if !n.contains_key(k) {
                    out.insert(k.clone(), Value::Null);
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        _ if old == new => None,
        _ => Some(new.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};
    use serde_json::json;

    fn pod(policy: &str, containers: &[&str], init: &[&str]) -> Pod {
        let c = |n: &&str| Container {
            name: n.to_string(),
            image: Some("busybox".into()),
            ..Default::default()
        };
        Pod {
            spec: Some(PodSpec {
                restart_policy: Some(policy.into()),
                containers: containers.iter().map(c).collect(),
                init_containers: (!init.is_empty()).then(|| init.iter().map(c).collect()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn rec(p: &Pod) -> PodRecord {
        let spec = p.spec.clone().unwrap_or_default();
        PodRecord {
            uid: "u".into(),
            node: "n".into(),
            sandbox: Some("sb".into()),
            ip: Some("10.42.0.2".parse().unwrap()),
            host_ip: "192.168.0.1".parse().unwrap(),
            start_time: Timestamp::UNIX_EPOCH,
            init: spec
                .init_containers
                .iter()
                .flatten()
                .map(|c| ContainerRecord::new(&c.name, "busybox"))
                .collect(),
            containers: spec
                .containers
                .iter()
                .map(|c| ContainerRecord::new(&c.name, "busybox"))
                .collect(),
            terminated: false,
            deleting: false,
        }
    }

    fn runtime(state: ContainerState, code: i32) -> ContainerStatus {
        ContainerStatus {
            id: "abc".into(),
            name: "c".into(),
            state,
            started_at: Some(Timestamp::UNIX_EPOCH),
            finished_at: (state == ContainerState::Exited).then_some(Timestamp::UNIX_EPOCH),
            exit_code: code,
            reason: match (state, code) {
                (ContainerState::Exited, 0) => "Completed".into(),
                (ContainerState::Exited, _) => "Error".into(),
                _ => String::new(),
            },
            image_ref: "busybox@sha256:00".into(),
        }
    }

    fn conditions(s: &PodStatus) -> Vec<(String, String, Option<String>)> {
        s.conditions
            .iter()
            .flatten()
            .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone()))
            .collect()
    }

    #[test]
    fn pending_then_running_and_ready() {
        let p = pod("Always", &["a", "b"], &[]);
        let mut r = rec(&p);
        let s = generate(&p, &r, "fake", Timestamp::UNIX_EPOCH);
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        let ready = &s.conditions.as_ref().unwrap()[2];
        assert_eq!(
            ready.message.as_deref(),
            Some("containers with unready status: [a b]")
        );
        let cs = &s.container_statuses.as_ref().unwrap()[0];
        assert_eq!(
            cs.state
                .as_ref()
                .unwrap()
                .waiting
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("ContainerCreating")
        );
        for c in &mut r.containers {
            c.current = Some(runtime(ContainerState::Running, 0));
        }
        let s = generate(&p, &r, "fake", Timestamp::UNIX_EPOCH);
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(
            conditions(&s),
            vec![
                ("PodReadyToStartContainers".into(), "True".into(), None),
                ("Initialized".into(), "True".into(), None),
                ("Ready".into(), "True".into(), None),
                ("ContainersReady".into(), "True".into(), None),
                ("PodScheduled".into(), "True".into(), None),
            ]
        );
        let cs = &s.container_statuses.as_ref().unwrap()[0];
        assert!(cs.ready);
        assert_eq!(cs.started, Some(true));
        assert_eq!(cs.container_id.as_deref(), Some("fake://abc"));
        assert_eq!(cs.image_id, "busybox@sha256:00");
        assert_eq!(s.pod_ip.as_deref(), Some("10.42.0.2"));
        assert_eq!(s.host_ip.as_deref(), Some("192.168.0.1"));
    }

    #[test]
    fn phases_follow_restart_policy() {
        let cases = [
            ("Never", 0, "Succeeded"),
            ("Never", 1, "Failed"),
            ("OnFailure", 0, "Succeeded"),
            ("OnFailure", 1, "Running"),
            ("Always", 0, "Running"),
        ];
        for (policy, code, want) in cases {
            let p = pod(policy, &["a"], &[]);
            let mut r = rec(&p);
            r.containers[0].current = Some(runtime(ContainerState::Exited, code));
            let s = generate(&p, &r, "fake", Timestamp::UNIX_EPOCH);
            assert_eq!(s.phase.as_deref(), Some(want), "{policy} exit {code}");
        }
        let p = pod("Never", &["a"], &[]);
        let mut r = rec(&p);
        r.containers[0].current = Some(runtime(ContainerState::Exited, 0));
        let s = generate(&p, &r, "fake", Timestamp::UNIX_EPOCH);
        let c = conditions(&s);
        assert_eq!(
            c[1],
            (
                "Initialized".into(),
                "True".into(),
                Some("PodCompleted".into())
            )
        );
        assert_eq!(
            c[2],
            ("Ready".into(), "False".into(), Some("PodCompleted".into()))
        );
        let t = s.container_statuses.unwrap()[0]
            .state
            .clone()
            .unwrap()
            .terminated
            .unwrap();
        assert_eq!((t.exit_code, t.reason.as_deref()), (0, Some("Completed")));
    }

    #[test]
    fn crash_loop_shows_waiting_with_the_last_termination() {
        let p = pod("OnFailure", &["a"], &[]);
        let mut r = rec(&p);
        r.containers[0].current = Some(runtime(ContainerState::Exited, 2));
        r.containers[0].restart_count = 3;
        r.containers[0].waiting = Some(("CrashLoopBackOff".into(), "back-off 40s".into()));
        let s = generate(&p, &r, "fake", Timestamp::UNIX_EPOCH);
        assert_eq!(s.phase.as_deref(), Some("Running"));
        let cs = &s.container_statuses.as_ref().unwrap()[0];
        assert_eq!(cs.restart_count, 3);
        assert_eq!(
            cs.state
                .as_ref()
                .unwrap()
                .waiting
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("CrashLoopBackOff")
        );
        assert_eq!(
            cs.last_state
                .as_ref()
                .unwrap()
                .terminated
                .as_ref()
                .unwrap()
                .exit_code,
            2
        );
    }

    #[test]
    fn init_containers_gate_the_pod() {
        let p = pod("Always", &["a"], &["setup"]);
        let mut r = rec(&p);
        r.init[0].current = Some(runtime(ContainerState::Running, 0));
        let s = generate(&p, &r, "fake", Timestamp::UNIX_EPOCH);
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        let c = &s.conditions.as_ref().unwrap()[1];
        assert_eq!(c.reason.as_deref(), Some("ContainersNotInitialized"));
        assert_eq!(
            c.message.as_deref(),
            Some("containers with incomplete status: [setup]")
        );
        let cs = &s.container_statuses.as_ref().unwrap()[0];
        assert_eq!(
            cs.state
                .as_ref()
                .unwrap()
                .waiting
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("PodInitializing")
        );
        let p = pod("Never", &["a"], &["setup"]);
        let mut r = rec(&p);
        r.init[0].current = Some(runtime(ContainerState::Exited, 1));
        assert_eq!(
            generate(&p, &r, "fake", Timestamp::UNIX_EPOCH)
                .phase
                .as_deref(),
            Some("Failed")
        );
    }

    #[test]
    fn transition_times_are_kept_while_status_holds() {
        let p0 = pod("Always", &["a"], &[]);
        let mut r = rec(&p0);
        r.containers[0].current = Some(runtime(ContainerState::Running, 0));
        let t1 = Timestamp::from_second(1000).unwrap();
        let t2 = Timestamp::from_second(2000).unwrap();
        let first = generate(&p0, &r, "fake", t1);
        let mut p = p0.clone();
        p.status = Some(first);
        let second = generate(&p, &r, "fake", t2);
        for c in second.conditions.as_ref().unwrap() {
            assert_eq!(
                c.last_transition_time.as_ref().unwrap().0,
                t1,
                "{}",
                c.type_
            );
        }
        r.containers[0].current = Some(runtime(ContainerState::Exited, 1));
        r.containers[0].waiting = Some(("CrashLoopBackOff".into(), "x".into()));
        p.status = Some(second);
        let third = generate(&p, &r, "fake", t2);
        let ready = third
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.last_transition_time.as_ref().unwrap().0, t2);
    }

    #[test]
    fn merge_diff_nulls_removed_keys_and_replaces_lists() {
        let old = json!({"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2]});
        let new = json!({"a": 1, "b": {"c": 5}, "l": [1], "e": true});
        assert_eq!(
            merge_diff(&old, &new),
            Some(json!({"b": {"c": 5, "d": null}, "l": [1], "e": true}))
        );
        assert_eq!(merge_diff(&old, &old), None);
    }
}
