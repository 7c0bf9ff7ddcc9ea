//! rkube's certificates: the cluster CA (made on first start and reused), the API server's
//! serving certificate (re-issued when its names change or it nears expiry), client
//! certificates (user = CN, groups = O, as Kubernetes reads them) and kubeconfig files.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// What went wrong with certificates.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Cert { what: String, source: rcgen::Error },
}

type Result<T, E = Error> = std::result::Result<T, E>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn cert_err(what: &str) -> impl FnOnce(rcgen::Error) -> Error + '_ {
    move |source| Error::Cert {
        what: what.to_string(),
        source,
    }
}

/// Lifetime of the CA.
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 86_400);
/// Lifetime of issued certificates (re-issued at start when less than 90 days remain).
const LEAF_VALIDITY: Duration = Duration::from_secs(365 * 86_400);
const RENEW_BEFORE: Duration = Duration::from_secs(90 * 86_400);

fn offset(t: SystemTime) -> time::OffsetDateTime {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// Writes a file readable only by its owner (keys) or by all (certificates).
fn write_file(path: &Path, contents: &str, private: bool) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut f = fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(if private { 0o600 } else { 0o644 })
            .open(&tmp)
            .map_err(io(&tmp))?;
        f.write_all(contents.as_bytes()).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    fs::rename(&tmp, path).map_err(io(path))
}

/// A certificate and its private key, PEM encoded.
#[derive(Clone, Debug)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

/// What to put in a certificate.
#[derive(Clone, Debug, Default)]
pub struct CertSpec {
    pub common_name: String,
    /// Kubernetes reads these as the user's groups.
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub server: bool,
    pub client: bool,
}

/// The cluster's certificate authority.
pub struct CertAuthority {
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl CertAuthority {
    /// Loads the CA from `dir/<name>.crt` and `.key`, or makes and saves one.
    pub fn load_or_create(dir: &Path, name: &str, common_name: &str) -> Result<Self> {
        let cert_path = dir.join(format!("{name}.crt"));
        let key_path = dir.join(format!("{name}.key"));
        if cert_path.exists() && key_path.exists() {
            let cert_pem = fs::read_to_string(&cert_path).map_err(io(&cert_path))?;
            let key_pem = fs::read_to_string(&key_path).map_err(io(&key_path))?;
            let key = KeyPair::from_pem(&key_pem).map_err(cert_err("reading the CA key"))?;
            let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)
                .map_err(cert_err("reading the CA certificate"))?;
            return Ok(CertAuthority { cert_pem, issuer });
        }
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = SystemTime::now();
        params.not_before = offset(now - Duration::from_secs(3600));
        params.not_after = offset(now + CA_VALIDITY);
        let key = KeyPair::generate().map_err(cert_err("making the CA key"))?;
        let cert = params
            .self_signed(&key)
            .map_err(cert_err("making the CA certificate"))?;
        let cert_pem = cert.pem();
        write_file(&key_path, &key.serialize_pem(), true)?;
        write_file(&cert_path, &cert_pem, false)?;
        Ok(CertAuthority {
            cert_pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// Issues a certificate signed by this CA.
    pub fn issue(&self, spec: &CertSpec) -> Result<Issued> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, spec.common_name.as_str());
        for o in &spec.organizations {
            dn.push(DnType::OrganizationName, o.as_str());
        }
        params.distinguished_name = dn;
        params.subject_alt_names = spec
            .dns_names
            .iter()
            .filter_map(|d| d.clone().try_into().ok().map(SanType::DnsName))
            .chain(spec.ips.iter().map(|ip| SanType::IpAddress(*ip)))
            .collect();
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        if spec.server {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        if spec.client {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        let now = SystemTime::now();
        params.not_before = offset(now - Duration::from_secs(3600));
        params.not_after = offset(now + LEAF_VALIDITY);
        let key = KeyPair::generate().map_err(cert_err("making a key"))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(cert_err("signing a certificate"))?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Loads `dir/<name>.crt|.key` if it exists, was issued for the same names and is far from
    /// expiry; otherwise issues and saves a new one.
    pub fn load_or_issue(&self, dir: &Path, name: &str, spec: &CertSpec) -> Result<Issued> {
        let cert_path = dir.join(format!("{name}.crt"));
        let key_path = dir.join(format!("{name}.key"));
        let wanted = fingerprint(spec);
        let spec_path = dir.join(format!("{name}.spec"));
        if let (Ok(cert_pem), Ok(key_pem), Ok(saved)) = (
            fs::read_to_string(&cert_path),
            fs::read_to_string(&key_path),
            fs::read_to_string(&spec_path),
        ) && let Some((saved_spec, expires)) = saved.rsplit_once("expires=")
            && saved_spec == wanted
            && !expires_soon(expires.trim())
        {
            return Ok(Issued { cert_pem, key_pem });
        }
        let issued = self.issue(spec)?;
        let expires = (SystemTime::now() + LEAF_VALIDITY)
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        write_file(&key_path, &issued.key_pem, true)?;
        write_file(&cert_path, &issued.cert_pem, false)?;
        write_file(&spec_path, &format!("{wanted}expires={expires}\n"), false)?;
        Ok(issued)
    }
}

/// A stable description of a spec, to notice when a saved certificate no longer fits.
fn fingerprint(spec: &CertSpec) -> String {
    let mut dns = spec.dns_names.clone();
    dns.sort();
    let mut ips: Vec<String> = spec.ips.iter().map(ToString::to_string).collect();
    ips.sort();
    format!(
        "cn={}\no={}\ndns={}\nip={}\nserver={}\nclient={}\n",
        spec.common_name,
        spec.organizations.join(","),
        dns.join(","),
        ips.join(","),
        spec.server,
        spec.client
    )
}

/// Whether a certificate expiring at `expires` (Unix seconds) should be re-issued now.
fn expires_soon(expires: &str) -> bool {
    let Ok(expires) = expires.parse::<u64>() else {
        return true;
    };
    let renew_at = (SystemTime::now() + RENEW_BEFORE)
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    expires < renew_at
}

/// Writes a kubeconfig for one cluster and one user authenticated by a client certificate.
pub fn write_kubeconfig(path: &Path, server: &str, ca_pem: &str, user: &Issued) -> Result<()> {
    write_file(path, &kubeconfig(server, ca_pem, user), true)
}

/// The kubeconfig text (names like k3s': cluster, user and context are all `default`).
pub fn kubeconfig(server: &str, ca_pem: &str, user: &Issued) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    format!(
        "apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: {ca}
    server: {server}
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
preferences: {{}}
users:
- name: default
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
",
        ca = b64(ca_pem),
        cert = b64(&user.cert_pem),
        key = b64(&user.key_pem),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_is_reused_and_certificates_are_reissued_only_when_needed() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertAuthority::load_or_create(dir.path(), "ca", "rkube-ca").unwrap();
        let again = CertAuthority::load_or_create(dir.path(), "ca", "rkube-ca").unwrap();
        assert_eq!(ca.cert_pem, again.cert_pem);
        let spec = CertSpec {
            common_name: "kube-apiserver".into(),
            dns_names: vec!["localhost".into(), "kubernetes.default.svc".into()],
            ips: vec!["127.0.0.1".parse().unwrap()],
            server: true,
            ..Default::default()
        };
        let first = again.load_or_issue(dir.path(), "serving", &spec).unwrap();
        let same = ca.load_or_issue(dir.path(), "serving", &spec).unwrap();
        assert_eq!(first.cert_pem, same.cert_pem);
        let mut more = spec.clone();
        more.ips.push("10.43.0.1".parse().unwrap());
        let changed = ca.load_or_issue(dir.path(), "serving", &more).unwrap();
        assert_ne!(first.cert_pem, changed.cert_pem);
        let key_mode = {
            use std::os::unix::fs::PermissionsExt;
            fs::metadata(dir.path().join("serving.key"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(key_mode, 0o600);
        let cfg = kubeconfig("https://127.0.0.1:6443", &ca.cert_pem, &first);
        assert!(cfg.contains("server: https://127.0.0.1:6443"));
        assert!(cfg.contains("client-key-data: "));
    }
}
