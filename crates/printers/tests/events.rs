//! Events: core `v1` events written by the old recorder (counts, first/last timestamps),
//! by the new one (eventTime, series), and `events.k8s.io/v1` events, all printed alike.

mod common;

use common::{NOW, ago, cells, headers};
use serde_json::json;

#[test]
fn columns_are_upstreams() {
    assert_eq!(
        headers("", "events"),
        [
            ("Last Seen", 0),
            ("Type", 0),
            ("Reason", 0),
            ("Object", 0),
            ("Subobject", 1),
            ("Source", 1),
            ("Message", 0),
            ("First Seen", 1),
            ("Count", 1),
            ("Name", 1),
        ]
    );
    let cols = rkube_printers::columns("", "events");
    assert_eq!(cols[9].format, "name");
    assert_eq!(
        rkube_printers::columns("events.k8s.io", "events"),
        cols,
        "one printer for both groups"
    );
}

#[test]
fn old_style_core_event() {
    let ev = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "web-0.17f2a", "namespace": "default", "creationTimestamp": ago(600)},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-0",
                           "fieldPath": "spec.containers{nginx}"},
        "reason": "BackOff",
        "message": "Back-off restarting failed container nginx in pod web-0_default\n",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": ago(600),
        "lastTimestamp": ago(20),
        "count": 7,
        "type": "Warning",
    });
    assert_eq!(
        cells("", "events", &ev),
        vec![
            json!("20s"),
            json!("Warning"),
            json!("BackOff"),
            json!("pod/web-0"),
            json!("spec.containers{nginx}"),
            json!("kubelet, node-1"),
            json!("Back-off restarting failed container nginx in pod web-0_default"),
            json!("10m"),
            json!(7),
            json!("web-0.17f2a"),
        ]
    );
}

#[test]
fn new_style_events() {
    // Singleton: eventTime only, no count, reporting controller instead of source.
    let ev = json!({
        "metadata": {"name": "web.1", "namespace": "default"},
        "involvedObject": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
        "reason": "ScalingReplicaSet",
        "message": "Scaled up replica set web-5d8f to 3",
        "eventTime": "2025-06-01T11:58:59.123456Z",
        "reportingComponent": "deployment-controller",
        "reportingInstance": "",
        "type": "Normal",
    });
    assert_eq!(
        cells("", "events", &ev),
        vec![
            // 60.88 seconds ago.
            json!("60s"),
            json!("Normal"),
            json!("ScalingReplicaSet"),
            json!("deployment/web"),
            json!(""),
            json!("deployment-controller"),
            json!("Scaled up replica set web-5d8f to 3"),
            json!("60s"),
            json!(1),
            json!("web.1"),
        ]
    );

    // A series: last seen and count come from it.
    let series = json!({
        "metadata": {"name": "node-1.2"},
        "involvedObject": {"kind": "Node", "name": "node-1"},
        "reason": "FailedMount",
        "message": "MountVolume.SetUp failed",
        "eventTime": ago(3600),
        "series": {"count": 12, "lastObservedTime": "2025-06-01T11:55:00.000000Z"},
        "reportingComponent": "kubelet",
        "reportingInstance": "node-1",
        "type": "Warning",
    });
    let c = cells("", "events", &series);
    assert_eq!(c[0], json!("5m"));
    assert_eq!(c[5], json!("kubelet, node-1"));
    assert_eq!(c[7], json!("60m"));
    assert_eq!(c[8], json!(12));
}

#[test]
fn events_k8s_io_form() {
    let ev = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "web-0.17f2b", "namespace": "default"},
        "regarding": {"kind": "Pod", "name": "web-0", "fieldPath": "spec.containers{app}"},
        "reason": "Pulled",
        "note": "  Container image \"nginx\" already present on machine  ",
        "deprecatedSource": {"component": "kubelet"},
        "deprecatedFirstTimestamp": ago(300),
        "deprecatedLastTimestamp": ago(240),
        "deprecatedCount": 2,
        "reportingController": "kubelet",
        "reportingInstance": "node-1",
        "eventTime": null,
        "type": "Normal",
    });
    let row = rkube_printers::row("events.k8s.io", "events", &ev, NOW);
    assert_eq!(
        row.cells,
        vec![
            json!("4m"),
            json!("Normal"),
            json!("Pulled"),
            json!("pod/web-0"),
            json!("spec.containers{app}"),
            json!("kubelet, node-1"),
            json!("Container image \"nginx\" already present on machine"),
            json!("5m"),
            json!(2),
            json!("web-0.17f2b"),
        ]
    );
}

#[test]
fn objects_without_names_and_missing_times() {
    let ev = json!({
        "metadata": {"name": "cluster.1"},
        "involvedObject": {"kind": "ClusterIPAllocator"},
        "reason": "Repair",
        "type": "Warning",
    });
    let c = cells("", "events", &ev);
    assert_eq!(c[0], json!("<unknown>"));
    assert_eq!(c[3], json!("clusteripallocator"));
    assert_eq!(c[5], json!(""));
    assert_eq!(c[7], json!("<unknown>"));
    assert_eq!(c[8], json!(1));
    // Last seen falls back to first seen.
    let ev = json!({"involvedObject": {"kind": "Pod", "name": "p"}, "firstTimestamp": ago(90), "count": 1});
    let c = cells("", "events", &ev);
    assert_eq!(c[0], json!("90s"));
    assert_eq!(c[7], json!("90s"));
}
