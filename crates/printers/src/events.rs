//! Events, core `v1` and `events.k8s.io/v1` alike (upstream prints both from one internal
//! form): `LAST SEEN TYPE REASON OBJECT MESSAGE` and, wide, `SUBOBJECT SOURCE FIRST SEEN
//! COUNT NAME`.

use serde_json::Value;

use crate::cells::{int, name, s};
use crate::describe::{self, col, wide};
use crate::duration::{since, timestamp};
use crate::{Column, Row};

pub static COLUMNS: &[Column] = &[
    col("Last Seen", "string", describe::EV_LAST),
    col("Type", "string", describe::EV_TYPE),
    col("Reason", "string", describe::EV_REASON),
    col("Object", "string", describe::EV_INVOLVED),
    wide("Subobject", "string", describe::REF_FIELD_PATH),
    wide("Source", "string", describe::EV_SOURCE),
    col("Message", "string", describe::EV_MESSAGE),
    wide("First Seen", "string", describe::EV_FIRST),
    wide("Count", "string", describe::EV_COUNT),
    Column {
        name: "Name",
        ty: "string",
        format: "name",
        description: describe::META_NAME,
        priority: 1,
    },
];

/// A field by its core `v1` name, or by its `events.k8s.io/v1` name.
fn field<'a>(ev: &'a Value, core: &str, events_k8s_io: &str) -> &'a Value {
    match &ev[core] {
        Value::Null => &ev[events_k8s_io],
        v => v,
    }
}

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() { b } else { a }
}

pub fn row(ev: &Value, now: i64) -> Row {
    let first_ts = field(ev, "firstTimestamp", "deprecatedFirstTimestamp");
    let first = if timestamp(first_ts).is_some() {
        since(first_ts, now)
    } else {
        since(&ev["eventTime"], now)
    };
    let last_ts = field(ev, "lastTimestamp", "deprecatedLastTimestamp");
    let mut last = if timestamp(last_ts).is_some() {
        since(last_ts, now)
    } else {
        first.clone()
    };
    let mut count = int(field(ev, "count", "deprecatedCount"));
    let series = &ev["series"];
    if series.is_object() {
        last = since(&series["lastObservedTime"], now);
        count = int(&series["count"]);
    } else if count == 0 {
        // Singleton events of the new API have no count.
        count = 1;
    }
    let regarding = field(ev, "involvedObject", "regarding");
    let kind = s(&regarding["kind"]).to_lowercase();
    let target = match s(&regarding["name"]) {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let source = field(ev, "source", "deprecatedSource");
    let component = first_non_empty(
        s(&source["component"]),
        s(field(ev, "reportingComponent", "reportingController")),
    );
    let instance = first_non_empty(s(&source["host"]), s(&ev["reportingInstance"]));
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    Row::new(vec![
        last.into(),
        s(&ev["type"]).into(),
        s(&ev["reason"]).into(),
        target.into(),
        s(&regarding["fieldPath"]).into(),
        source.into(),
        s(field(ev, "message", "note")).trim().into(),
        first.into(),
        count.into(),
        name(ev).into(),
    ])
}
