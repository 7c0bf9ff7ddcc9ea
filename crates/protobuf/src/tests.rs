//! Unit tests of the table and the codec. The tests against real kubectl bytes are in
//! `tests/kubectl.rs` and `tests/fixtures.rs`.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::generated::{KINDS, MESSAGES};
use crate::table::{self, F, INLINE, MAP, NILABLE, REPEATED, S, Ty};
use crate::{Error, decode, encode};

// ---------------------------------------------------------------------------------------
// The table itself.

#[test]
fn table_is_well_formed() {
    for (i, m) in MESSAGES.iter().enumerate() {
        if i > 0 {
            assert!(MESSAGES[i - 1].name() < m.name(), "messages sorted by name");
        }
        let mut last = 0;
        for f in m.fields() {
            assert!(f.tag() > last, "{}: fields sorted by number", m.name());
            last = f.tag();
            if let Ty::Msg(t) = f.ty() {
                assert!((t as usize) < MESSAGES.len(), "{}: bad index", m.name());
            }
            if f.has(INLINE) {
                assert!(matches!(f.ty(), Ty::Msg(_)), "{}: inline scalar", m.name());
            } else if m.special() == S::Plain {
                assert!(
                    !f.json().is_empty(),
                    "{}: field without JSON name",
                    m.name()
                );
            }
            assert!(!(f.has(MAP) && f.has(REPEATED)));
        }
    }
    for k in KINDS {
        assert_eq!(table::kind(k.0, k.1), Some(k.2));
    }
}

#[test]
fn every_kind_rkube_serves_has_a_protobuf_form() {
    for r in rkube_api::resources::BUILTIN {
        let av = r.api_version();
        assert!(crate::supports(&av, r.kind), "{av} {}", r.kind);
        if r.has_verb("list") {
            assert!(
                crate::supports(&av, &r.list_kind()),
                "{av} {}",
                r.list_kind()
            );
        }
        for s in r.subresources {
            let av = rkube_api::resources::api_version(
                s.group.unwrap_or(r.group),
                s.version.unwrap_or(r.version),
            );
            assert!(crate::supports(&av, s.kind), "{av} {}", s.kind);
        }
    }
    for (av, kind) in [
        ("v1", "Status"),
        ("apps/v1", "DeleteOptions"),
        ("meta.k8s.io/v1", "PartialObjectMetadataList"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinitionList"),
        ("apiregistration.k8s.io/v1", "APIService"),
        ("authentication.k8s.io/v1", "TokenRequest"),
        ("events.k8s.io/v1", "Event"),
    ] {
        assert!(crate::supports(av, kind), "{av} {kind}");
    }
    assert!(!crate::supports("example.com/v1", "Widget"));
}

// ---------------------------------------------------------------------------------------
// Round trips of every kind, with every field set.

/// A value for every field of a message (to `depth`), in the canonical form decoding
/// produces, so that `decode(encode(x)) == x` must hold exactly.
struct Sampler {
    n: u64,
}

impl Sampler {
    fn next(&mut self) -> u64 {
        self.n += 1;
        self.n
    }

    fn message(&mut self, index: u16, depth: usize, embed: bool) -> Value {
        let m = table::message(index);
        match m.special() {
            S::Plain => {}
            S::Time => return json!("2024-05-01T10:00:00Z"),
            S::MicroTime => return json!("2024-05-01T10:00:00.123456Z"),
            S::Duration => return json!("1h2m3.5s"),
            S::Quantity => return json!(["250m", "1Gi", "3", "1.5k"][self.next() as usize % 4]),
            S::IntOrString => {
                return if self.next().is_multiple_of(2) {
                    json!(8080)
                } else {
                    json!("http")
                };
            }
            S::RawExtension => {
                return if embed {
                    json!({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": "embedded"}, "data": {"a": "b"}})
                } else {
                    json!({"kind": "Anything", "spec": {"x": [1, "two", null, true]}})
                };
            }
            S::FieldsV1 => return json!({"f:metadata": {"f:labels": {"f:app": {}}}}),
            S::Json => return json!({"default": [1, 2.5, "x"]}),
            S::SchemaOrBool => {
                return if depth > 2 {
                    json!(true)
                } else {
                    self.message(schema_of(m, 2), depth + 1, embed)
                };
            }
            S::SchemaOrArray => {
                let schema = schema_of(m, 1);
                return if depth > 2 {
                    json!({"type": "string"})
                } else if self.next().is_multiple_of(2) {
                    self.message(schema, depth + 1, embed)
                } else {
                    json!([{"type": "string"}, {"type": "integer"}])
                };
            }
            S::SchemaOrStringArray => return json!(["a", "b"]),
            S::Wrapper => return json!(["get", "list"]),
        }
        if depth > 6 {
            // Deep enough: the zero value, as decoding gives it.
            return zero(index);
        }
        let embed = embed || embeds(m.name());
        let mut obj = serde_json::Map::new();
        for f in m.fields() {
            if f.has(INLINE) {
                if let Value::Object(inner) = self.message_field(f, depth, embed) {
                    obj.extend(inner);
                }
                continue;
            }
            if depth > 4 && (f.has(NILABLE) || f.has(REPEATED) || f.has(MAP)) {
                continue;
            }
            let v = if f.has(REPEATED) {
                let n = if depth > 2 { 1 } else { 2 };
                Value::Array((0..n).map(|_| self.element(f, depth, embed)).collect())
            } else if f.has(MAP) {
                let mut map = serde_json::Map::new();
                for k in ["k1", "example.com/k2"] {
                    map.insert(k.into(), self.element(f, depth, embed));
                }
                Value::Object(map)
            } else {
                self.element(f, depth, embed)
            };
            obj.insert(f.json().into(), v);
        }
        Value::Object(obj)
    }

    fn message_field(&mut self, f: &F, depth: usize, embed: bool) -> Value {
        match f.ty() {
            Ty::Msg(i) => self.message(i, depth + 1, embed),
            _ => Value::Null,
        }
    }

    fn element(&mut self, f: &F, depth: usize, embed: bool) -> Value {
        let n = self.next();
        match f.ty() {
            Ty::Str => json!(format!("{}-{n}", f.json())),
            Ty::Bytes => json!("AAEC/f7/"),
            Ty::Bool => json!(true),
            Ty::I32 => json!(if n.is_multiple_of(3) {
                -(n as i64)
            } else {
                n as i64
            }),
            Ty::I64 => json!((n as i64) << 33),
            Ty::F64 => json!(n as f64 + 0.25),
            Ty::Msg(i) => self.message(i, depth + 1, embed),
        }
    }
}

fn schema_of(m: &table::M, number: u32) -> u16 {
    match m.field(number).map(F::ty) {
        Some(Ty::Msg(i)) => i,
        _ => panic!("{} has no schema field", m.name()),
    }
}

fn embeds(name: &str) -> bool {
    matches!(
        name,
        "k8s.io.apimachinery.pkg.apis.meta.v1.WatchEvent"
            | "k8s.io.apimachinery.pkg.apis.meta.v1.List"
            | "k8s.io.api.core.v1.List"
    )
}

/// The zero value of a message as decoding produces it (decoding of no bytes).
fn zero(index: u16) -> Value {
    let mut ctx = crate::decode::Ctx::default();
    crate::decode::message(&mut ctx, index, &[]).unwrap()
}

fn with_type_meta(mut v: Value, api_version: &str, kind: &str) -> Value {
    let obj = v.as_object_mut().unwrap();
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind));
    v
}

#[test]
fn every_kind_round_trips_with_every_field_set() {
    let mut sampler = Sampler { n: 0 };
    let mut count = 0;
    for k in KINDS {
        let x = with_type_meta(sampler.message(k.2, 0, false), k.0, k.1);
        let bytes = encode(&x).unwrap_or_else(|e| panic!("{} {}: {e}", k.0, k.1));
        let d = decode(&bytes).unwrap_or_else(|e| panic!("{} {}: {e}", k.0, k.1));
        assert_eq!(d.object, x, "{} {}", k.0, k.1);
        assert!(d.unknown_fields.is_empty(), "{:?}", d.unknown_fields);
        assert_eq!((d.api_version.as_str(), d.kind.as_str()), (k.0, k.1));
        assert_eq!(encode(&d.object).unwrap(), bytes, "{} {}", k.0, k.1);
        count += 1;
    }
    assert!(count > 200, "{count} kinds");
}

#[test]
fn every_kind_round_trips_empty() {
    for k in KINDS {
        let x = with_type_meta(zero(k.2), k.0, k.1);
        let bytes = encode(&x).unwrap();
        assert_eq!(decode(&bytes).unwrap().object, x, "{} {}", k.0, k.1);
        // And the minimal JSON (only type information) decodes to the same zero value.
        let minimal = json!({"apiVersion": k.0, "kind": k.1});
        assert_eq!(encode(&minimal).unwrap(), bytes, "{} {}", k.0, k.1);
    }
}

// ---------------------------------------------------------------------------------------
// Go's value/pointer semantics on hand-written objects.

fn round_trip(x: &Value) -> Value {
    decode(&encode(x).unwrap()).unwrap().object
}

#[test]
fn zero_values_follow_go() {
    // An almost empty Service: Go prints the value structs and drops omitempty zeros.
    assert_eq!(
        round_trip(&json!({"apiVersion": "v1", "kind": "Service"})),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {}, "spec": {},
               "status": {"loadBalancer": {}}})
    );
    // A pointer set to zero stays; a value without omitempty is printed even when zero;
    // an omitempty value at zero is dropped.
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "generation": 0},
        "spec": {"replicas": 0, "paused": false, "template": {"spec": {"containers": [
            {"name": "c", "ports": [{"containerPort": 0, "hostPort": 0}]}]}}}});
    let got = round_trip(&d);
    assert_eq!(got["spec"]["replicas"], json!(0));
    assert!(got["spec"].get("paused").is_none());
    assert!(got["metadata"].get("generation").is_none());
    assert_eq!(
        got["spec"]["template"]["spec"]["containers"][0]["ports"][0],
        json!({"containerPort": 0})
    );
    assert_eq!(got["spec"]["strategy"], json!({}));
    assert_eq!(got["status"], json!({}));
    // Absent pointers stay absent.
    let got = round_trip(&json!({"apiVersion": "apps/v1", "kind": "Deployment"}));
    assert!(got["spec"].get("replicas").is_none());
    // null is absence.
    let got = round_trip(&json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "creationTimestamp": null, "labels": null}, "data": null}));
    assert_eq!(
        got,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    );
}

#[test]
fn special_types() {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "uid": "1b4e28ba",
            "creationTimestamp": "2024-05-01T10:00:00Z",
            "managedFields": [{"manager": "kubectl", "operation": "Update",
                "apiVersion": "v1", "time": "2024-05-01T10:00:00Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}}}}}}]},
        "spec": {"containers": [{"name": "c", "image": "nginx",
            "resources": {"limits": {"cpu": "500m", "memory": "128Mi"},
                          "requests": {"cpu": "250m", "memory": "64Mi"}},
            "livenessProbe": {"httpGet": {"path": "/", "port": "http", "scheme": "HTTP"},
                              "periodSeconds": 10},
            "readinessProbe": {"tcpSocket": {"port": 8080}}}]},
        "status": {"phase": "Running", "startTime": "2024-05-01T10:00:01Z"}
    });
    let got = round_trip(&pod);
    let c = &got["spec"]["containers"][0];
    assert_eq!(c["resources"]["limits"]["cpu"], json!("500m"));
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], json!("http"));
    assert_eq!(c["readinessProbe"]["tcpSocket"]["port"], json!(8080));
    assert_eq!(
        got["metadata"]["creationTimestamp"],
        pod["metadata"]["creationTimestamp"]
    );
    assert_eq!(
        got["metadata"]["managedFields"][0]["fieldsV1"],
        pod["metadata"]["managedFields"][0]["fieldsV1"]
    );
    assert_eq!(got["status"]["startTime"], json!("2024-05-01T10:00:01Z"));

    // Time keeps seconds only (upstream's JSON has no fraction); offsets become UTC.
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "creationTimestamp": "2024-05-01T12:00:00.75+02:00"}});
    assert_eq!(
        round_trip(&cm)["metadata"]["creationTimestamp"],
        json!("2024-05-01T10:00:00Z")
    );

    // MicroTime keeps microseconds.
    let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "e"}, "eventTime": "2024-05-01T10:00:00.123456Z",
        "reportingController": "x", "reportingInstance": "y", "action": "A", "reason": "R"});
    assert_eq!(
        round_trip(&ev)["eventTime"],
        json!("2024-05-01T10:00:00.123456Z")
    );

    // An empty `[]byte` is written when set, and left out of JSON by omitempty.
    let mwc = json!({"apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration", "metadata": {"name": "m"},
        "webhooks": [{"name": "w.example.com", "clientConfig": {"url": "https://x", "caBundle": ""},
            "sideEffects": "None", "admissionReviewVersions": ["v1"]}]});
    let bytes = encode(&mwc).unwrap();
    assert!(
        bytes.windows(4).any(|w| w == [0x12, 0x00, 0x1a, 0x09]),
        "caBundle written, empty"
    );
    let got = decode(&bytes).unwrap().object;
    assert_eq!(
        got["webhooks"][0]["clientConfig"],
        json!({"url": "https://x"})
    );

    // Bytes are base64; ConfigMap binaryData and Secret data.
    let s = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "data": {"bin": "AAEC/f7/", "empty": ""}, "type": "Opaque"});
    assert_eq!(round_trip(&s)["data"], s["data"]);

    // RawExtension holds arbitrary JSON; ControllerRevision.data.
    let cr = json!({"apiVersion": "apps/v1", "kind": "ControllerRevision",
        "metadata": {"name": "r"}, "data": {"spec": {"template": {"x": [1, 2]}}}, "revision": 3});
    assert_eq!(round_trip(&cr), cr);

    // Bad values are errors naming the field.
    let bad = json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [
        {"name": "c", "ports": [{"containerPort": "eighty"}]}]}});
    let err = encode(&bad).unwrap_err().to_string();
    assert!(
        err.contains("spec.containers[0].ports[0].containerPort"),
        "{err}"
    );
    let bad = json!({"apiVersion": "v1", "kind": "Pod", "spec": {"activeDeadlineSeconds": 1.5}});
    assert!(encode(&bad).is_err());
    let bad = json!({"apiVersion": "v1", "kind": "Pod", "spec": {"priority": 3_000_000_000u64}});
    assert!(encode(&bad).unwrap_err().to_string().contains("int32"));
    let bad = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"creationTimestamp": "now"}});
    assert!(
        encode(&bad)
            .unwrap_err()
            .to_string()
            .contains("metadata.creationTimestamp")
    );
    let bad = json!({"apiVersion": "v1", "kind": "Secret", "data": {"k": "%%%"}});
    assert!(
        encode(&bad)
            .unwrap_err()
            .to_string()
            .contains("data[\"k\"]")
    );
}

#[test]
fn custom_resource_definitions() {
    let crd: Value = serde_json::from_str(
        r##"{
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                          "listKind": "WidgetList", "shortNames": ["wd"]},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                        "statusReplicasPath": ".status.replicas"}},
                    "additionalPrinterColumns": [{"name": "Size", "type": "integer",
                        "jsonPath": ".spec.size", "priority": 1}],
                    "schema": {"openAPIV3Schema": {"type": "object",
                        "x-kubernetes-preserve-unknown-fields": true,
                        "properties": {
                            "spec": {"type": "object", "required": ["size"],
                                "x-kubernetes-validations": [{"rule": "self.size >= 0",
                                    "message": "size must not be negative"}],
                                "properties": {
                                    "size": {"type": "integer", "minimum": 0, "maximum": 100.5,
                                             "default": 3},
                                    "mode": {"type": "string", "enum": ["a", "b", null],
                                             "nullable": true},
                                    "port": {"x-kubernetes-int-or-string": true,
                                             "anyOf": [{"type": "integer"}, {"type": "string"}]},
                                    "tags": {"type": "array", "items": {"type": "string"},
                                             "x-kubernetes-list-type": "set"},
                                    "pair": {"type": "array", "items": [{"type": "string"},
                                                                        {"type": "integer"}]},
                                    "labels": {"type": "object",
                                               "additionalProperties": {"type": "string"}},
                                    "free": {"type": "object", "additionalProperties": true},
                                    "closed": {"type": "object", "additionalProperties": false},
                                    "dep": {"type": "object",
                                            "dependencies": {"a": ["b", "c"],
                                                             "d": {"required": ["e"]}}},
                                    "ref": {"$ref": "#/definitions/x",
                                            "$schema": "http://json-schema.org/draft-04/schema"}
                                }}}}}}],
                "conversion": {"strategy": "None"}},
            "status": {"storedVersions": ["v1"], "acceptedNames": {"plural": "widgets", "kind": "Widget"},
                "conditions": [{"type": "Established", "status": "True",
                                "lastTransitionTime": "2024-05-01T10:00:00Z"}]}
        }"##,
    )
    .unwrap();
    assert_eq!(round_trip(&crd), crd);
}

#[test]
fn status_and_options() {
    let status = json!({"apiVersion": "v1", "kind": "Status", "metadata": {},
        "status": "Failure", "message": "configmaps \"c\" already exists",
        "reason": "AlreadyExists", "details": {"name": "c", "kind": "configmaps"}, "code": 409});
    assert_eq!(round_trip(&status), status);
    // The bytes Go's generated code writes for this Status (value fields always, the
    // `details` pointer because it is set): metadata (an empty ListMeta: selfLink,
    // resourceVersion, continue), status, message, reason, details (name, group, kind,
    // retryAfterSeconds, uid), code.
    fn ld(key: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![key, body.len() as u8];
        v.extend_from_slice(body);
        v
    }
    let list_meta = [ld(0x0a, b""), ld(0x12, b""), ld(0x1a, b"")].concat();
    let details = [
        ld(0x0a, b"c"),
        ld(0x12, b""),
        ld(0x1a, b"configmaps"),
        vec![0x28, 0x00],
        ld(0x32, b""),
    ]
    .concat();
    let body = [
        ld(0x0a, &list_meta),
        ld(0x12, b"Failure"),
        ld(0x1a, b"configmaps \"c\" already exists"),
        ld(0x22, b"AlreadyExists"),
        ld(0x2a, &details),
        vec![0x30, 0x99, 0x03],
    ]
    .concat();
    let expected = [
        b"k8s\0".to_vec(),
        ld(0x0a, &[ld(0x0a, b"v1"), ld(0x12, b"Status")].concat()),
        ld(0x12, &body),
        vec![0x1a, 0x00, 0x22, 0x00],
    ]
    .concat();
    assert_eq!(encode(&status).unwrap(), expected);

    // DeleteOptions travel under every group version.
    let opts = json!({"apiVersion": "apps/v1", "kind": "DeleteOptions",
        "gracePeriodSeconds": 0, "propagationPolicy": "Foreground",
        "preconditions": {"uid": "u"}, "dryRun": ["All"]});
    assert_eq!(round_trip(&opts), opts);
}

#[test]
fn unknown_fields_are_skipped_and_reported() {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
        "data": {"a": "b"}});
    let bytes = encode(&cm).unwrap();
    // Append field 99 (varint) to the ConfigMap and field 98 (bytes) to its metadata:
    // rebuild the raw message by hand.
    let d = decode(&bytes).unwrap();
    assert!(d.unknown_fields.is_empty());
    let mut w = crate::wire::Writer::default();
    w.buf.extend_from_slice(b"k8s\0");
    let tm = w.begin(1);
    w.bytes_field(1, b"v1");
    w.bytes_field(2, b"ConfigMap");
    w.end(tm);
    let raw = w.begin(2);
    let meta = w.begin(1);
    w.bytes_field(1, b"c");
    w.bytes_field(98, b"xyz");
    w.end(meta);
    w.varint_field(99, 7);
    let entry = w.begin(2);
    w.bytes_field(1, b"a");
    w.bytes_field(2, b"b");
    w.end(entry);
    w.end(raw);
    let d = decode(&w.buf).unwrap();
    assert_eq!(
        d.object,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c"}, "data": {"a": "b"}})
    );
    let mut unknown = d.unknown_fields.clone();
    unknown.sort();
    assert_eq!(unknown, vec!["#99".to_string(), "metadata.#98".to_string()]);
}

#[test]
fn envelope_errors() {
    assert_eq!(decode(b"{}").unwrap_err(), Error::NotProtobuf);
    assert_eq!(
        decode(b"k8s\0").unwrap_err(),
        Error::MissingTypeMeta("kind")
    );
    let mut w = crate::wire::Writer::default();
    w.buf.extend_from_slice(b"k8s\0");
    let tm = w.begin(1);
    w.bytes_field(1, b"example.com/v1");
    w.bytes_field(2, b"Widget");
    w.end(tm);
    assert!(matches!(decode(&w.buf), Err(Error::UnknownKind { .. })));
    assert!(matches!(
        encode(&json!({"apiVersion": "example.com/v1", "kind": "Widget"})),
        Err(Error::UnknownKind { .. })
    ));
    assert_eq!(
        encode(&json!({"kind": "Pod"})).unwrap_err(),
        Error::MissingTypeMeta("apiVersion")
    );
    // A wrong wire type names the field.
    let mut w = crate::wire::Writer::default();
    w.buf.extend_from_slice(b"k8s\0");
    let tm = w.begin(1);
    w.bytes_field(1, b"v1");
    w.bytes_field(2, b"Pod");
    w.end(tm);
    let raw = w.begin(2);
    let spec = w.begin(2);
    w.bytes_field(4, b"not a varint"); // restartPolicy is 3; 4 is terminationGracePeriodSeconds
    w.end(spec);
    w.end(raw);
    let err = decode(&w.buf).unwrap_err().to_string();
    assert!(err.contains("spec.terminationGracePeriodSeconds"), "{err}");
    // Compressed payloads are refused clearly.
    let mut w = crate::wire::Writer::default();
    w.buf.extend_from_slice(b"k8s\0");
    let tm = w.begin(1);
    w.bytes_field(1, b"v1");
    w.bytes_field(2, b"Pod");
    w.end(tm);
    w.bytes_field(3, b"gzip");
    assert!(matches!(decode(&w.buf), Err(Error::Unsupported { .. })));
}

// ---------------------------------------------------------------------------------------
// Watch events and framing.

#[test]
fn watch_events_and_frames() {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p",
        "resourceVersion": "12"}, "spec": {}, "status": {"phase": "Pending"}});
    let frame = crate::encode_watch_event("ADDED", &pod).unwrap();
    let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
    assert_eq!(len, frame.len() - 4);
    // The payload is a bare WatchEvent: type (1), object (2: raw (1) = the envelope).
    assert_eq!(&frame[4..7], b"\x0a\x05A");
    let ev = crate::decode_watch_event(&frame[4..]).unwrap();
    assert_eq!(ev.event_type, "ADDED");
    assert_eq!(ev.object.object, pod);
    assert_eq!(ev.object.kind, "Pod");

    let status = json!({"apiVersion": "v1", "kind": "Status", "metadata": {},
        "status": "Failure", "message": "too old resource version", "reason": "Expired",
        "code": 410});
    let mut buf = crate::FrameBuffer::default();
    let mut stream = frame.clone();
    stream.extend(crate::encode_watch_event("ERROR", &status).unwrap());
    // Fed one byte at a time, the frames come out whole.
    let mut events = Vec::new();
    for b in &stream {
        buf.push(std::slice::from_ref(b));
        while let Some(p) = buf.next_frame().unwrap() {
            events.push(crate::decode_watch_event(&p).unwrap());
        }
    }
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].event_type, "ERROR");
    assert_eq!(events[1].object.object, status);
    assert_eq!(buf.pending(), 0);

    let mut small = crate::FrameBuffer::new(16);
    small.push(&frame);
    assert!(matches!(small.next_frame(), Err(Error::FrameTooLarge(..))));

    // A custom resource cannot be sent in a protobuf watch.
    assert!(
        crate::encode_watch_event("ADDED", &json!({"apiVersion": "x/v1", "kind": "Y"})).is_err()
    );
}

#[test]
fn lists_embed_objects_as_protobuf() {
    let list = json!({"apiVersion": "v1", "kind": "List", "metadata": {},
        "items": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}]});
    let bytes = encode(&list).unwrap();
    assert!(
        bytes
            .windows(14)
            .any(|w| w == b"k8s\0\x0a\x0f\x0a\x02v1\x12\x09Co")
    );
    assert_eq!(decode(&bytes).unwrap().object, list);
}

// ---------------------------------------------------------------------------------------
// Bad input never panics.

fn samples() -> Vec<Vec<u8>> {
    let mut sampler = Sampler { n: 0 };
    KINDS
        .iter()
        .step_by(7)
        .map(|k| encode(&with_type_meta(sampler.message(k.2, 0, false), k.0, k.1)).unwrap())
        .collect()
}

#[test]
fn truncated_and_corrupted_input_gives_errors_not_panics() {
    let mut rng = StdRng::seed_from_u64(7);
    let mut errors = 0;
    for bytes in samples() {
        // Every truncation of the first 200 bytes, then a sample of the rest.
        let cuts: Vec<usize> = (0..bytes.len().min(200))
            .chain((0..50).map(|_| rng.random_range(0..bytes.len())))
            .collect();
        for cut in cuts {
            if decode(&bytes[..cut]).is_err() {
                errors += 1;
            }
        }
        for _ in 0..100 {
            let mut b = bytes.clone();
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(4..b.len());
                b[i] = rng.random();
            }
            let _ = decode(&b);
            if let Ok(d) = decode(&b) {
                // Whatever decodes encodes again.
                let _ = encode(&d.object);
            }
        }
    }
    assert!(errors > 1000, "{errors}");
    for _ in 0..2000 {
        let len = rng.random_range(0..64);
        let mut b: Vec<u8> = b"k8s\0".to_vec();
        b.extend((0..len).map(|_| rng.random::<u8>()));
        let _ = decode(&b);
        let _ = crate::decode_watch_event(&b[4..]);
    }
    // Deep nesting is refused, not a stack overflow.
    let mut deep = json!({"type": "object"});
    for _ in 0..300 {
        deep = json!({"type": "object", "properties": {"x": deep}});
    }
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": deep}}]}});
    assert!(
        encode(&crd)
            .unwrap_err()
            .to_string()
            .contains("nested too deeply")
    );
}

#[test]
fn wrongly_typed_json_gives_errors_not_panics() {
    let mut rng = StdRng::seed_from_u64(11);
    let mut sampler = Sampler { n: 0 };
    let odd = [
        json!(null),
        json!(true),
        json!(-1),
        json!(1.5),
        json!("x"),
        json!([1]),
        json!({"a": 1}),
        json!(u64::MAX),
    ];
    let mut errors = 0;
    for k in KINDS.iter().step_by(3) {
        let x = with_type_meta(sampler.message(k.2, 0, false), k.0, k.1);
        for _ in 0..20 {
            let mut y = x.clone();
            replace_random(&mut y, &odd, &mut rng);
            if encode(&y).is_err() {
                errors += 1;
            }
        }
    }
    assert!(errors > 100, "{errors}");
}

fn replace_random(v: &mut Value, odd: &[Value], rng: &mut StdRng) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            let keys: Vec<String> = map
                .keys()
                .filter(|k| *k != "apiVersion" && *k != "kind")
                .cloned()
                .collect();
            if keys.is_empty() {
                return;
            }
            let k = &keys[rng.random_range(0..keys.len())];
            let child = map.get_mut(k).unwrap();
            if rng.random_bool(0.4) || !(child.is_object() || child.is_array()) {
                *child = odd[rng.random_range(0..odd.len())].clone();
            } else {
                replace_random(child, odd, rng);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let i = rng.random_range(0..items.len());
            replace_random(&mut items[i], odd, rng);
        }
        _ => *v = odd[rng.random_range(0..odd.len())].clone(),
    }
}
