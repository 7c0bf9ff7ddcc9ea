//! The parts of an image's config that running it needs (Entrypoint, Cmd, Env, WorkingDir,
//! User, StopSignal, the layers' diff ids) and Kubernetes' rules for combining them with a
//! container's `command`, `args` and `env`.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::{Error, Result};

/// The runnable part of an image config (`config` in the OCI image config).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    config: Option<RunConfig>,
    rootfs: RawRootfs,
}

#[derive(Deserialize)]
struct RawRootfs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// A parsed image config.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    pub run: RunConfig,
    pub diff_ids: Vec<Digest>,
}

impl ImageConfig {
    /// Parses an OCI (or Docker) image config document.
    pub fn parse(json: &[u8]) -> Result<Self> {
        let raw: RawConfig = serde_json::from_slice(json)
            .map_err(|e| Error::Invalid(format!("image config: {e}")))?;
        let diff_ids = raw
            .rootfs
            .diff_ids
            .iter()
            .map(|d| Digest::parse(d))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            run: raw.config.unwrap_or_default(),
            diff_ids,
        })
    }
}

/// The process arguments per Kubernetes' rules: `command` replaces the image's Entrypoint
/// and then the image's Cmd is ignored; `args` replaces Cmd.
pub fn process_args(run: &RunConfig, command: &[String], args: &[String]) -> Vec<String> {
    let entrypoint = run.entrypoint.clone().unwrap_or_default();
    let cmd = run.cmd.clone().unwrap_or_default();
    match (command.is_empty(), args.is_empty()) {
        (true, true) => [entrypoint, cmd].concat(),
        (true, false) => [entrypoint, args.to_vec()].concat(),
        (false, _) => [command.to_vec(), args.to_vec()].concat(),
    }
}

/// The environment: the image's, then the container's (a container variable replaces the
/// image's of the same name, in place).
pub fn merge_env(image_env: &[String], container_env: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<String> = image_env.to_vec();
    for (k, v) in container_env {
        let entry = format!("{k}={v}");
        match out
            .iter_mut()
            .find(|e| e.split_once('=').map(|(n, _)| n) == Some(k.as_str()))
        {
            Some(slot) => *slot = entry,
            None => out.push(entry),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn kubernetes_command_rules() {
        let run = RunConfig {
            entrypoint: Some(s(&["/ep"])),
            cmd: Some(s(&["c1", "c2"])),
            ..Default::default()
        };
        assert_eq!(process_args(&run, &[], &[]), s(&["/ep", "c1", "c2"]));
        assert_eq!(process_args(&run, &[], &s(&["a"])), s(&["/ep", "a"]));
        assert_eq!(process_args(&run, &s(&["/x"]), &[]), s(&["/x"]));
        assert_eq!(process_args(&run, &s(&["/x"]), &s(&["a"])), s(&["/x", "a"]));
    }

    #[test]
    fn env_merge_replaces_in_place() {
        let env = merge_env(
            &s(&["PATH=/bin", "A=1"]),
            &[("A".into(), "2".into()), ("B".into(), "3".into())],
        );
        assert_eq!(env, s(&["PATH=/bin", "A=2", "B=3"]));
    }

    #[test]
    fn parses_config() {
        let c = ImageConfig::parse(
            br#"{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/bin/sh"],"StopSignal":"SIGQUIT"},
            "rootfs":{"type":"layers","diff_ids":["sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"]}}"#,
        )
        .unwrap();
        assert_eq!(c.run.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(c.diff_ids.len(), 1);
        assert!(ImageConfig::parse(b"{}").is_err());
        assert!(ImageConfig::parse(br#"{"rootfs":{"diff_ids":["md5:x"]}}"#).is_err());
    }
}
