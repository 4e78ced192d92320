//! TLS for RFC 5425 with rustls (ring provider, TLS 1.2 and 1.3 only).
//!
//! The receiver's chain and name are verified by default, against `SYSLOG_TLS_CA` or the
//! system's roots; the name (and SNI) is `SYSLOG_TLS_SERVER_NAME`, else `SYSLOG_HOST`, IP
//! addresses included. `SYSLOG_TLS_CERT`/`SYSLOG_TLS_KEY` add a client certificate for mutual
//! TLS. `SYSLOG_TLS_INSECURE=true` turns verification off, loudly.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// A ready TLS client configuration and the name to verify. `Debug` shows no key material.
#[derive(Clone)]
pub struct Tls {
    pub config: Arc<ClientConfig>,
    pub server_name: ServerName<'static>,
    pub insecure: bool,
    /// Identifies the settings this was loaded from (CA, client certificate and key, name,
    /// verification), so that a kept connection is only reused under the same ones.
    pub(crate) fingerprint: u64,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("server_name", &self.server_name)
            .field("insecure", &self.insecure)
            .field(
                "client_auth",
                &self.config.client_auth_cert_resolver.has_certs(),
            )
            .finish()
    }
}

/// What the TLS settings say, before they are loaded.
#[derive(Default)]
pub struct TlsOptions<'a> {
    /// PEM text, or a path to a PEM file, of the CA certificates to trust.
    pub ca: Option<&'a str>,
    pub cert: Option<&'a str>,
    pub key: Option<&'a str>,
    pub server_name: &'a str,
    pub insecure: bool,
}

/// A TLS setting that cannot be used: the variable and why.
#[derive(Debug)]
pub struct TlsError {
    pub var: &'static str,
    pub reason: String,
}

fn pem_bytes(var: &'static str, value: &str) -> Result<Vec<u8>, TlsError> {
    if value.contains("-----BEGIN") {
        return Ok(value.as_bytes().to_vec());
    }
    std::fs::read(value).map_err(|e| TlsError {
        var,
        // The value of SYSLOG_TLS_KEY may be the key itself without its armour: never repeat it.
        reason: if var == "SYSLOG_TLS_KEY" {
            format!("is neither PEM text (no -----BEGIN line) nor a readable file: {e}")
        } else {
            format!("is neither PEM text nor a readable file ({value:?}: {e})")
        },
    })
}

fn certificates(var: &'static str, value: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = pem_bytes(var, value)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError {
            var,
            reason: format!("is not valid PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError {
            var,
            reason: "holds no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

/// The ring provider restricted to TLS 1.2 and 1.3 (rustls offers nothing older).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Loads and checks everything once, at start-up.
pub fn load(opts: &TlsOptions<'_>) -> Result<Tls, TlsError> {
    let server_name = ServerName::try_from(opts.server_name.to_string()).map_err(|_| TlsError {
        var: "SYSLOG_TLS_SERVER_NAME",
        reason: format!("{:?} is not a DNS name or IP address", opts.server_name),
    })?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError {
            var: "SYSLOG_PROTOCOL",
            reason: format!("TLS setup failed: {e}"),
        })?;
    let builder = if opts.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
    } else {
        let mut roots = RootCertStore::empty();
        match opts.ca {
            Some(ca) => {
                for cert in certificates("SYSLOG_TLS_CA", ca)? {
                    roots.add(cert).map_err(|e| TlsError {
                        var: "SYSLOG_TLS_CA",
                        reason: format!("holds a certificate that cannot be a trust anchor: {e}"),
                    })?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err(TlsError {
                        var: "SYSLOG_TLS_CA",
                        reason: "is not set and the system has no CA certificates: set it to the receiver's CA (PEM text or a path)".into(),
                    });
                }
            }
        }
        builder.with_root_certificates(roots)
    };
    let config = match (opts.cert, opts.key) {
        (Some(cert), Some(key)) => {
            let chain = certificates("SYSLOG_TLS_CERT", cert)?;
            let key_pem = pem_bytes("SYSLOG_TLS_KEY", key)?;
            let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError {
                var: "SYSLOG_TLS_KEY",
                reason: "holds no PEM private key (PKCS#8, PKCS#1 or SEC1)".into(),
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| TlsError {
                    var: "SYSLOG_TLS_KEY",
                    reason: format!("does not fit SYSLOG_TLS_CERT: {e}"),
                })?
        }
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) => {
            return Err(TlsError {
                var: "SYSLOG_TLS_KEY",
                reason: "is required with SYSLOG_TLS_CERT".into(),
            })
        }
        (None, Some(_)) => {
            return Err(TlsError {
                var: "SYSLOG_TLS_CERT",
                reason: "is required with SYSLOG_TLS_KEY".into(),
            })
        }
    };
    let fingerprint = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (
            opts.ca,
            opts.cert,
            opts.key,
            opts.server_name,
            opts.insecure,
        )
            .hash(&mut h);
        h.finish()
    };
    Ok(Tls {
        config: Arc::new(config),
        server_name,
        insecure: opts.insecure,
        fingerprint,
    })
}

/// `SYSLOG_TLS_INSECURE=true`: accepts any certificate, still checks handshake signatures.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(server_name: &str) -> TlsOptions<'_> {
        TlsOptions {
            server_name,
            ..TlsOptions::default()
        }
    }

    #[test]
    fn bad_settings_name_their_variable() {
        let e = load(&TlsOptions {
            ca: Some("/nonexistent/ca.pem"),
            ..opts("siem.example.com")
        })
        .unwrap_err();
        assert_eq!(e.var, "SYSLOG_TLS_CA");
        let e = load(&TlsOptions {
            ca: Some("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n"),
            ..opts("siem.example.com")
        })
        .unwrap_err();
        assert_eq!(e.var, "SYSLOG_TLS_CA");
        let e = load(&opts("not a name")).unwrap_err();
        assert_eq!(e.var, "SYSLOG_TLS_SERVER_NAME");
        let e = load(&TlsOptions {
            cert: Some("x"),
            ..opts("h")
        })
        .unwrap_err();
        assert_eq!(e.var, "SYSLOG_TLS_KEY");
    }

    #[test]
    fn insecure_needs_no_roots_and_ip_names_are_accepted() {
        let t = load(&TlsOptions {
            insecure: true,
            ..opts("10.1.2.3")
        })
        .unwrap();
        assert!(t.insecure);
        assert!(matches!(t.server_name, ServerName::IpAddress(_)));
        assert!(!format!("{t:?}").contains("PRIVATE"));
    }
}
