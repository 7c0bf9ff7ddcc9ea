//! TTL-after-finished: a Job with `ttlSecondsAfterFinished` is deleted (in the foreground,
//! with a uid precondition) that many seconds after it finished (its Complete or Failed
//! condition's transition time).

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, DeleteParams, Preconditions, PropagationPolicy};
use kube::runtime::watcher;
use rkube_client::{Change, Informer, RateLimiter, Store, WorkQueue, key_of, strip_managed_fields};

use crate::base::{self, Error, Tasks, is_conflict, is_not_found};

/// When a Job finished (Unix seconds), if it has.
pub fn finish_time(job: &Job) -> Option<i64> {
    let status = job.status.as_ref()?;
    let cond = status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")?;
    cond.last_transition_time
        .as_ref()
        .or(status.completion_time.as_ref())
        .map(base::secs)
}

/// When the Job expires (Unix seconds), if it has a TTL and finished.
pub fn expiry(job: &Job) -> Option<i64> {
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    Some(finish_time(job)? + i64::from(ttl))
}

/// Runs the controller until dropped.
pub async fn run(client: kube::Client) {
    let queue: WorkQueue<String> = WorkQueue::new(RateLimiter::default_controller());
    let q = queue.clone();
    let informer = Informer::new(Api::<Job>::all(client.clone()), watcher::Config::default())
        .with_transform(strip_managed_fields)
        .on_change(move |c: &Change<Job>| {
            if let Change::Added(j) | Change::Updated { new: j, .. } = c
                && expiry(j).is_some()
                && !base::deleting(j.as_ref())
            {
                q.add(key_of(j.as_ref()));
            }
        });
    let store = informer.store();
    let mut tasks = Tasks::new();
    tasks.spawn(informer.run());
    store.wait_synced().await;
    let q = queue.clone();
    base::spawn_workers(&mut tasks, "ttl-after-finished", &queue, 2, move |key| {
        let (client, store, q) = (client.clone(), store.clone(), q.clone());
        async move { reconcile(&client, &store, &q, &key).await }
    });
    tasks.join().await;
}

async fn reconcile(
    client: &kube::Client,
    store: &Store<Job>,
    queue: &WorkQueue<String>,
    key: &str,
) -> Result<(), Error> {
    let Some(job) = store.get(key) else {
        return Ok(());
    };
    let Some(at) = expiry(&job) else {
        return Ok(());
    };
    if base::deleting(job.as_ref()) {
        return Ok(());
    }
    let now = base::now_secs();
    if at > now {
        queue.add_after(key.to_string(), Duration::from_secs((at - now) as u64));
        return Ok(());
    }
    let api: Api<Job> = Api::namespaced(client.clone(), &base::ns_of(job.as_ref()));
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        preconditions: Some(Preconditions {
            uid: job.metadata.uid.clone(),
            resource_version: None,
        }),
        ..Default::default()
    };
    tracing::info!(job = key, "TTL after finished: deleting");
    match api.delete(&base::name_of(job.as_ref()), &dp).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) || is_conflict(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expiry_counts_from_the_finish() {
        let job: Job = serde_json::from_value(json!({
            "metadata": {"name": "j"},
            "spec": {"ttlSecondsAfterFinished": 100, "template": {"spec": {"containers": []}}},
            "status": {"conditions": [
                {"type": "Complete", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z"}
            ]},
        }))
        .unwrap();
        assert_eq!(expiry(&job), Some(1_735_689_600 + 100));
        let mut running = job.clone();
        running.status = None;
        assert_eq!(expiry(&running), None);
    }
}
