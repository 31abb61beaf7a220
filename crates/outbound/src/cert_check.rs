//! How outbound TLS checks a mail server's certificate. Each way is a [`CertCheck`]: any
//! certificate (opportunistic TLS), none at all (no trusted roots), DANE's TLSA records
//! (`dane.rs`), MTA-STS `testing`'s "check, write down, accept" (`client.rs`). [`Verifier`]
//! makes one into a rustls verifier and is the one place where the handshake signatures
//! are checked, with the provider's algorithms, as rustls' own verifiers do.

use std::fmt::Debug;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// What the server presented, as rustls hands it to a verifier.
#[derive(Debug)]
pub struct Presented<'a> {
    pub end_entity: &'a CertificateDer<'a>,
    pub intermediates: &'a [CertificateDer<'a>],
    /// The name the handshake was for: the MX host's.
    pub server_name: &'a ServerName<'a>,
    pub ocsp_response: &'a [u8],
    pub now: UnixTime,
}

impl Presented<'_> {
    /// What another rustls verifier says of it.
    pub fn verify_with(&self, verifier: &dyn ServerCertVerifier) -> Result<(), rustls::Error> {
        let Presented { end_entity, intermediates, server_name, ocsp_response, now } = *self;
        verifier.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now).map(|_| ())
    }
}

/// One way of deciding whether a server's certificate chain may be used.
pub trait CertCheck: Debug + Send + Sync {
    /// `Ok` when the chain may be used for its server name at its time.
    fn check(&self, presented: &Presented<'_>, provider: &Arc<CryptoProvider>) -> Result<(), rustls::Error>;
}

/// A [`CertCheck`] as a rustls verifier.
#[derive(Debug)]
pub struct Verifier<C> {
    check: C,
    provider: Arc<CryptoProvider>,
}

impl<C: CertCheck> Verifier<C> {
    /// With the aws-lc-rs provider every outbound connection uses.
    pub fn checking(check: C) -> Verifier<C> {
        Verifier::with_provider(check, Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
    }

    pub fn with_provider(check: C, provider: Arc<CryptoProvider>) -> Verifier<C> {
        Verifier { check, provider }
    }
}

impl<C: CertCheck> ServerCertVerifier for Verifier<C> {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = Presented { end_entity, intermediates, server_name, ocsp_response, now };
        self.check.check(&presented, &self.provider)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// Accepts any certificate (RFC 7435 §1.3: opportunistic security protects against passive
/// listeners, not against impostors); the handshake signatures are still checked.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnyCertificate;

impl CertCheck for AnyCertificate {
    fn check(&self, _presented: &Presented<'_>, _provider: &Arc<CryptoProvider>) -> Result<(), rustls::Error> {
        Ok(())
    }
}

/// Stands in for the WebPKI check on a system without trusted roots: refuses every
/// certificate.
#[derive(Debug, Clone, Copy)]
pub struct NoRoots;

impl CertCheck for NoRoots {
    fn check(&self, _presented: &Presented<'_>, _provider: &Arc<CryptoProvider>) -> Result<(), rustls::Error> {
        Err(rustls::Error::General("this server has no trusted CA certificates".into()))
    }
}
