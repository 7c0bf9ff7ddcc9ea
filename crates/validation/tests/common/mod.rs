//! Helpers shared by the integration tests: run the public API the way the API server
//! does (default, prepare, validate) and compare messages.

#![allow(dead_code)]

use rkube_validation::{
    Gvk, default_object, prepare_for_create, prepare_for_update, validate_create,
    validate_status_update, validate_update,
};
use serde_json::Value;

pub fn gvk(api_version: &str, kind: &'static str) -> Gvk<'static> {
    let av: &'static str = Box::leak(api_version.to_string().into_boxed_str());
    match av.split_once('/') {
        Some((g, v)) => Gvk::new(g, v, kind),
        None => Gvk::new("", av, kind),
    }
}

fn gvk_of(obj: &Value) -> Gvk<'static> {
    let av = obj["apiVersion"].as_str().expect("apiVersion");
    let kind: &'static str = Box::leak(
        obj["kind"]
            .as_str()
            .expect("kind")
            .to_string()
            .into_boxed_str(),
    );
    gvk(av, kind)
}

/// The object after defaulting.
pub fn defaulted(mut obj: Value) -> Value {
    let g = gvk_of(&obj);
    default_object(g, &mut obj).expect("defaulting");
    obj
}

/// The object after defaulting and create preparation (with a uid, as the server sets).
pub fn prepared(obj: Value) -> Value {
    let g = gvk_of(&obj);
    let mut obj = defaulted(obj);
    if obj["metadata"].get("uid").is_none() {
        obj["metadata"]["uid"] = Value::from("0e8f0d62-4f3b-4f0e-9f5e-1c2d3e4f5a6b");
    }
    prepare_for_create(g, &mut obj);
    obj
}

/// Messages from creating `obj` (defaulted and prepared first).
pub fn create_errors(obj: Value) -> Vec<String> {
    let g = gvk_of(&obj);
    let obj = prepared(obj);
    validate_create(g, &obj)
        .expect("validation runs")
        .iter()
        .map(|e| e.to_string())
        .collect()
}

/// Messages from updating `old` (created first) to `new`.
pub fn update_errors(old: Value, new: Value) -> Vec<String> {
    let g = gvk_of(&old);
    let mut old = prepared(old);
    old["metadata"]["resourceVersion"] = Value::from("1");
    let mut new = defaulted(new);
    if new["metadata"].get("resourceVersion").is_none() {
        new["metadata"]["resourceVersion"] = Value::from("1");
    }
    prepare_for_update(g, &mut new, &old);
    validate_update(g, &new, &old)
        .expect("validation runs")
        .iter()
        .map(|e| e.to_string())
        .collect()
}

/// Messages from a status update of `old` (created first) to `new`.
pub fn status_errors(old: Value, new: Value) -> Vec<String> {
    let g = gvk_of(&old);
    let mut old = prepared(old);
    old["metadata"]["resourceVersion"] = Value::from("1");
    let mut new = defaulted(new);
    new["metadata"]["resourceVersion"] = Value::from("1");
    rkube_validation::prepare_for_status_update(g, &mut new, &old);
    validate_status_update(g, &new, &old)
        .expect("validation runs")
        .iter()
        .map(|e| e.to_string())
        .collect()
}

#[track_caller]
pub fn assert_valid(errs: Vec<String>) {
    assert!(errs.is_empty(), "expected no errors, got: {errs:#?}");
}

#[track_caller]
pub fn assert_has(errs: &[String], msg: &str) {
    assert!(
        errs.iter().any(|e| e == msg),
        "expected error\n  {msg}\nin\n{errs:#?}"
    );
}

#[track_caller]
pub fn assert_starts(errs: &[String], prefix: &str) {
    assert!(
        errs.iter().any(|e| e.starts_with(prefix)),
        "expected an error starting with\n  {prefix}\nin\n{errs:#?}"
    );
}
