//! A bearer-token service for a test registry: the token authentication of Docker's
//! registry (as Docker Hub and most hosted registries use it), so that pulls are tested
//! through the whole exchange: the registry answers `401` with
//! `WWW-Authenticate: Bearer realm=…,service=…,scope=…`, the client asks this service for a
//! token with its basic credentials, and presents the token to the registry.
//!
//! Tokens are JWTs signed with ES256 by a key whose certificate (in the `x5c` header) is
//! issued by a root the registry trusts (`rootcertbundle`). They grant exactly the scopes
//! asked for, to [`crate::REGISTRY_USER`] only; anonymous and wrong credentials get `401`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::{REGISTRY_USER, Result};

/// The registry's `service` (the tokens' audience).
pub const SERVICE: &str = "rkube-test-registry";
/// The tokens' issuer.
pub const ISSUER: &str = "rkube-test-tokens";

/// What signs tokens.
struct Signer {
    key: ring::signature::EcdsaKeyPair,
    /// The signing key's certificate, DER.
    cert_der: Vec<u8>,
}

/// The token service on a loopback port, stopped on drop.
pub struct TokenService {
    /// `http://127.0.0.1:PORT/token`.
    pub realm: String,
    /// The root certificate (PEM) the registry must trust.
    pub root_pem: String,
    issued: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TokenService {
    pub fn start() -> Result<Self> {
        let root_key = rcgen::KeyPair::generate()?;
        let mut root_params = rcgen::CertificateParams::default();
        root_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "rkube test token root");
        root_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let root = root_params.self_signed(&root_key)?;
        let issuer = rcgen::Issuer::new(root_params, root_key);
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "rkube test token signer");
        let cert = params.signed_by(&key, &issuer)?;
        let signer = Signer {
            key: ring::signature::EcdsaKeyPair::from_pkcs8(
                &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &key.serialize_der(),
                &ring::rand::SystemRandom::new(),
            )
            .map_err(|e| format!("loading the token key: {e}"))?,
            cert_der: cert.der().to_vec(),
        };
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let issued = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (issued, stop) = (issued.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Ok(conn) = conn {
                        let _ = serve(conn, &signer, &issued);
                    }
                }
            })
        };
        Ok(Self {
            realm: format!("http://{addr}/token"),
            root_pem: root.pem(),
            issued,
            stop,
            addr,
            thread: Some(thread),
        })
    }

    /// Tokens handed out so far.
    pub fn issued(&self) -> usize {
        self.issued.load(Ordering::SeqCst)
    }
}

impl Drop for TokenService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond(conn: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Answers one request: `GET /token?service=…&scope=…` with basic credentials.
fn serve(mut conn: TcpStream, signer: &Signer, issued: &AtomicUsize) -> std::io::Result<()> {
    conn.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let target = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or("")
        .to_string();
    let authorized = lines.any(|l| {
        let Some((name, value)) = l.split_once(':') else {
            return false;
        };
        let want = STANDARD.encode(format!("{}:{}", REGISTRY_USER.0, REGISTRY_USER.1));
        name.eq_ignore_ascii_case("authorization")
            && value.trim().strip_prefix("Basic ") == Some(want.as_str())
    });
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    if path != "/token" {
        return respond(&mut conn, "404 Not Found", r#"{"details":"not found"}"#);
    }
    if !authorized {
        return respond(
            &mut conn,
            "401 Unauthorized",
            r#"{"details":"bad or missing credentials"}"#,
        );
    }
    let mut service = String::new();
    let mut access = Vec::new();
    for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
        let v = percent_decode(v);
        match k {
            "service" => service = v,
            // repository:NAME:ACTION[,ACTION]; several scopes are space-separated or
            // repeated.
            "scope" => {
                for scope in v.split(' ') {
                    let mut parts = scope.splitn(2, ':');
                    let (Some(kind), Some(rest)) = (parts.next(), parts.next()) else {
                        continue;
                    };
                    let Some((name, actions)) = rest.rsplit_once(':') else {
                        continue;
                    };
                    access.push(serde_json::json!({
                        "type": kind,
                        "name": name,
                        "actions": actions.split(',').collect::<Vec<_>>(),
                    }));
                }
            }
            _ => {}
        }
    }
    if service != SERVICE {
        return respond(
            &mut conn,
            "400 Bad Request",
            r#"{"details":"unknown service"}"#,
        );
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let n = issued.fetch_add(1, Ordering::SeqCst);
    let header = serde_json::json!({
        "typ": "JWT",
        "alg": "ES256",
        "x5c": [STANDARD.encode(&signer.cert_der)],
    });
    let claims = serde_json::json!({
        "iss": ISSUER,
        "sub": REGISTRY_USER.0,
        "aud": SERVICE,
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now - 10,
        "jti": format!("token-{n}"),
        "access": access,
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let Ok(sig) = signer
        .key
        .sign(&ring::rand::SystemRandom::new(), input.as_bytes())
    else {
        return respond(&mut conn, "500 Internal Server Error", "{}");
    };
    let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()));
    let body = serde_json::json!({"token": token, "access_token": token, "expires_in": 300});
    respond(&mut conn, "200 OK", &body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_query_values() {
        assert_eq!(
            percent_decode("repository%3Aapps%2Ftestapp%3Apull%2Cpush"),
            "repository:apps/testapp:pull,push"
        );
        assert_eq!(percent_decode("a+b%2"), "a b%2");
    }
}
