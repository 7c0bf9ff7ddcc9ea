//! certificates.k8s.io/v1 CertificateSigningRequest: the PEM request, usages, signer name,
//! expiration, conditions, and the immutable spec.

use std::collections::BTreeSet;

use k8s_openapi::api::certificates::v1 as cert;

use crate::error::{BadValue, FieldError};
use crate::kinds::{Def, def};
use crate::meta::{self, Errs};
use crate::names::{self, any_name};
use crate::path::Path;

const USAGES: &[&str] = &[
    "any",
    "cert sign",
    "client auth",
    "code signing",
    "content commitment",
    "crl sign",
    "data encipherment",
    "decipher only",
    "digital signature",
    "email protection",
    "encipher only",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "key agreement",
    "key encipherment",
    "microsoft sgc",
    "netscape sgc",
    "ocsp signing",
    "s/mime",
    "server auth",
    "signing",
    "timestamping",
];

/// Checks that `request` holds a PEM block of type `CERTIFICATE REQUEST`.
fn check_pem(request: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(request);
    let Some(start) = text.find("-----BEGIN ") else {
        return Err("PEM block type must be CERTIFICATE REQUEST".into());
    };
    let rest = &text[start + 11..];
    let Some(end) = rest.find("-----") else {
        return Err("PEM block type must be CERTIFICATE REQUEST".into());
    };
    let ty = &rest[..end];
    if !rest.contains(&format!("-----END {ty}-----")) || ty != "CERTIFICATE REQUEST" {
        return Err("PEM block type must be CERTIFICATE REQUEST".into());
    }
    Ok(())
}

/// `ValidateSignerName`.
pub(crate) fn validate_signer_name(name: &str, path: &Path, errs: &mut Errs) {
    if name.is_empty() {
        errs.push(FieldError::required(path, ""));
        return;
    }
    let segs: Vec<&str> = name.split('/').collect();
    if segs.len() != 2 {
        errs.push(FieldError::invalid(
            path,
            name,
            "must be a fully qualified domain and path of the form 'example.com/signer-name'",
        ));
        return;
    }
    if segs[0].len() > 253 {
        errs.push(FieldError::too_long(path, segs[0], 253));
    }
    let domain: Vec<&str> = segs[0].split('.').collect();
    for l in &domain {
        let msgs = names::is_dns1123_label(l);
        if !msgs.is_empty() {
            for m in msgs {
                errs.push(FieldError::invalid(
                    path,
                    segs[0],
                    format!("validating label {}: {m}", crate::error::go_quote(l)),
                ));
            }
            break;
        }
    }
    if domain.len() < 2 {
        errs.push(FieldError::invalid(
            path,
            segs[0],
            "should be a domain with at least two segments separated by dots",
        ));
    }
    for l in segs[1].split('.') {
        let msgs = names::is_dns1123_label(l);
        if !msgs.is_empty() {
            for m in msgs {
                errs.push(FieldError::invalid(
                    path,
                    segs[1],
                    format!("validating label {}: {m}", crate::error::go_quote(l)),
                ));
            }
            break;
        }
    }
}

fn validate_csr(csr: &cert::CertificateSigningRequest, errs: &mut Errs) {
    let sp = Path::new("spec");
    let spec = &csr.spec;
    if let Err(e) = check_pem(&spec.request.0) {
        errs.push(FieldError::invalid(
            &sp.child("request"),
            BadValue::Raw("[]byte{...}".into()),
            e,
        ));
    }
    if spec.usages.as_ref().is_none_or(|u| u.is_empty()) {
        errs.push(FieldError::required(&sp.child("usages"), ""));
    }
    let mut seen = BTreeSet::new();
    for (i, u) in spec.usages.iter().flatten().enumerate() {
        if !USAGES.contains(&u.as_str()) {
            errs.push(FieldError::not_supported(
                &sp.child("usages").index(i),
                u,
                USAGES,
            ));
        }
        if !seen.insert(u.as_str()) {
            errs.push(FieldError::duplicate(&sp.child("usages").index(i), u));
        }
    }
    if spec.signer_name == "kubernetes.io/legacy-unknown" {
        errs.push(FieldError::invalid(
            &sp.child("signerName"),
            &spec.signer_name,
            "the legacy signerName is not allowed via this API version",
        ));
    } else {
        validate_signer_name(&spec.signer_name, &sp.child("signerName"), errs);
    }
    if let Some(e) = spec.expiration_seconds
        && e < 600
    {
        errs.push(FieldError::invalid(
            &sp.child("expirationSeconds"),
            e,
            "may not specify a duration less than 600 seconds (10 minutes)",
        ));
    }
    validate_conditions(csr, errs);
}

fn validate_conditions(csr: &cert::CertificateSigningRequest, errs: &mut Errs) {
    let cp = Path::new("status").child("conditions");
    let mut seen = BTreeSet::new();
    for (i, c) in csr
        .status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .enumerate()
    {
        let ip = cp.index(i);
        if c.type_.is_empty() {
            errs.push(FieldError::required(&ip.child("type"), ""));
        }
        let st = c.status.as_str();
        if st.is_empty() {
            errs.push(FieldError::required(&ip.child("status"), ""));
        } else if !["False", "True", "Unknown"].contains(&st) {
            errs.push(FieldError::not_supported(
                &ip.child("status"),
                st,
                &["False", "True", "Unknown"],
            ));
        }
        if !c.type_.is_empty() && !seen.insert(c.type_.clone()) {
            errs.push(FieldError::duplicate(&ip.child("type"), &c.type_));
        }
    }
    let approved = seen.contains("Approved");
    let denied = seen.contains("Denied");
    if approved && denied {
        errs.push(FieldError::invalid(
            &cp,
            BadValue::Raw("[]certificates.CertificateSigningRequestCondition{...}".into()),
            "Approved and Denied conditions are mutually exclusive",
        ));
    }
}

fn validate_csr_update(
    n: &cert::CertificateSigningRequest,
    o: &cert::CertificateSigningRequest,
    errs: &mut Errs,
) {
    validate_csr(n, errs);
    if n.spec != o.spec {
        errs.push(FieldError::invalid(
            &Path::new("spec"),
            BadValue::Raw("certificates.CertificateSigningRequestSpec{...}".into()),
            meta::IMMUTABLE,
        ));
    }
}

fn validate_csr_status(
    n: &cert::CertificateSigningRequest,
    o: &cert::CertificateSigningRequest,
    errs: &mut Errs,
) {
    validate_conditions(n, errs);
    let old_cert = o.status.as_ref().and_then(|s| s.certificate.as_ref());
    let new_cert = n.status.as_ref().and_then(|s| s.certificate.as_ref());
    if old_cert.is_some_and(|c| !c.0.is_empty()) && old_cert != new_cert {
        errs.push(FieldError::forbidden(
            &Path::new("status").child("certificate"),
            "updates may not modify existing certificate content",
        ));
    }
}

/// `SetDefaults_CertificateSigningRequestCondition`: conditions default to `True`.
fn default_csr(csr: &mut cert::CertificateSigningRequest) {
    for c in csr
        .status
        .iter_mut()
        .flat_map(|s| s.conditions.iter_mut().flatten())
    {
        if c.status.is_empty() {
            c.status = "True".into();
        }
    }
}

pub(crate) static CSR: Def<cert::CertificateSigningRequest> = def(
    false,
    any_name,
    default_csr,
    validate_csr,
    validate_csr_update,
    validate_csr_status,
);
