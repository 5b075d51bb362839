//! The TLS client settings every network relay shares.
//!
//! rustls with the *ring* provider, given to each backend as a ready
//! configuration rather than installed process-wide, so that another
//! crate's TLS (with another provider) can never conflict with it. The
//! server's certificate is checked by the platform verifier against the
//! system's trust roots plus, when [`CA_FILE_ENV`] names a PEM file, the
//! certificates in it (a private CA, a company proxy's CA, or the test
//! servers' CA). Verification is never turned off.

use std::path::Path;
use std::sync::Arc;

use super::{RelayError, RelayErrorKind};

/// The environment variable naming a PEM file of extra trusted CAs.
pub(crate) const CA_FILE_ENV: &str = "ESCALE_CA_FILE";

/// The TLS client configuration: ring, the system's roots and the
/// certificates of `ca_file`.
pub(crate) fn client_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, RelayError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls_error = |message: String| RelayError::new(RelayErrorKind::Tls, message);
    let verifier = match ca_file {
        None => rustls_platform_verifier::Verifier::new(Arc::clone(&provider)),
        Some(file) => {
            let certs = CertificateDer::pem_file_iter(file)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|err| {
                    tls_error(format!(
                        "cannot read the certificates in {} ({CA_FILE_ENV}): {err}",
                        file.display()
                    ))
                })?;
            if certs.is_empty() {
                return Err(tls_error(format!(
                    "{} ({CA_FILE_ENV}) holds no PEM certificate",
                    file.display()
                )));
            }
            rustls_platform_verifier::Verifier::new_with_extra_roots(certs, Arc::clone(&provider))
        }
    }
    .map_err(|err| tls_error(format!("cannot set up certificate checking: {err}")))?;
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| tls_error(format!("cannot set up TLS: {err}")))?
        .dangerous()
        // "Dangerous" only in name: the platform verifier checks the
        // chain and the host name like the default one does.
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// The advice that ends every TLS failure message: what a person can do
/// when the certificate is not trusted.
pub(crate) fn ca_advice() -> String {
    format!(
        "if the server uses a private certificate authority, or a company proxy inspects \
         secure connections, name that authority's certificate in {CA_FILE_ENV}"
    )
}
