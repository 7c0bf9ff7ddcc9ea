//! Authentication: who sent a request. Client certificates signed by the cluster CA (user =
//! CN, groups = O, as upstream reads them) and bearer tokens from a static token file
//! (upstream's `--token-auth-file` CSV format: `token,user,uid,"group1,group2"`). Every
//! authenticated user is also in `system:authenticated`.

use std::collections::HashMap;
use std::path::Path;

/// An authenticated user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub username: String,
    pub uid: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    fn authenticated(mut self) -> Self {
        if !self.groups.iter().any(|g| g == "system:authenticated") {
            self.groups.push("system:authenticated".into());
        }
        self
    }
}

/// The identity a verified client certificate carries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertIdentity {
    pub common_name: String,
    pub organizations: Vec<String>,
}

impl CertIdentity {
    /// Reads CN and O from a DER certificate already verified by TLS.
    pub fn from_der(der: &[u8]) -> Option<CertIdentity> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let subject = cert.subject();
        let common_name = subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())?
            .to_string();
        let organizations = subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok().map(String::from))
            .collect();
        Some(CertIdentity {
            common_name,
            organizations,
        })
    }
}

/// A token file line could not be read.
#[derive(Debug, thiserror::Error)]
#[error("token file {path}, line {line}: {message}")]
pub struct TokenFileError {
    pub path: String,
    pub line: usize,
    pub message: String,
}

/// Maps credentials to users.
#[derive(Clone, Debug, Default)]
pub struct Authenticator {
    tokens: HashMap<String, UserInfo>,
}

impl Authenticator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the tokens of a token file.
    pub fn load_token_file(&mut self, path: &Path) -> Result<(), TokenFileError> {
        let err = |line: usize, message: String| TokenFileError {
            path: path.display().to_string(),
            line,
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(0, e.to_string()))?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields = split_csv(line);
            if fields.len() < 3 {
                return Err(err(i + 1, "expected at least token,user,uid".to_string()));
            }
            let groups = fields
                .get(3)
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            self.tokens.insert(
                fields[0].clone(),
                UserInfo {
                    username: fields[1].clone(),
                    uid: fields[2].clone(),
                    groups,
                },
            );
        }
        Ok(())
    }

    /// Adds one token.
    pub fn add_token(&mut self, token: &str, user: UserInfo) {
        self.tokens.insert(token.to_string(), user);
    }

    /// The user behind a request's client certificate or `Authorization` header, if any.
    pub fn authenticate(
        &self,
        cert: Option<&CertIdentity>,
        authorization: Option<&str>,
    ) -> Option<UserInfo> {
        if let Some(header) = authorization {
            let token = header
                .strip_prefix("Bearer ")
                .or_else(|| header.strip_prefix("bearer "))?
                .trim();
            // A request that presents a token is judged by it, even with a certificate.
            return self.tokens.get(token).cloned().map(UserInfo::authenticated);
        }
        let cert = cert?;
        Some(
            UserInfo {
                username: cert.common_name.clone(),
                uid: String::new(),
                groups: cert.organizations.clone(),
            }
            .authenticated(),
        )
    }
}

/// Splits one CSV line, honouring double quotes.
fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter().map(|s| s.trim().to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.csv");
        std::fs::write(&path, "# comment\nsecret,alice,u1,\"dev,ops\"\nt2,bob,u2\n").unwrap();
        let mut a = Authenticator::new();
        a.load_token_file(&path).unwrap();
        let alice = a.authenticate(None, Some("Bearer secret")).unwrap();
        assert_eq!(alice.username, "alice");
        assert_eq!(alice.groups, ["dev", "ops", "system:authenticated"]);
        assert_eq!(a.authenticate(None, Some("Bearer nope")), None);
        let cert = CertIdentity {
            common_name: "system:admin".into(),
            organizations: vec!["system:masters".into()],
        };
        let admin = a.authenticate(Some(&cert), None).unwrap();
        assert_eq!(admin.groups, ["system:masters", "system:authenticated"]);
        // A bad token is not rescued by a certificate.
        assert_eq!(a.authenticate(Some(&cert), Some("Bearer nope")), None);
        assert_eq!(a.authenticate(None, None), None);
    }
}
