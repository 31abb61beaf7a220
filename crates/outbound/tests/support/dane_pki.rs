//! Certificates and TLSA records for the DANE tests: a private CA (the DANE-TA trust
//! anchor) with a server certificate it issued for the MX host, and self-signed server
//! certificates (DANE-EE). Shared through `#[path]`.
#![allow(dead_code)]

use postfach_testdns::Data;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate chain (server certificate first) and the server's key.
pub struct ServerCert {
    pub chain: Vec<CertificateDer<'static>>,
    pub key_der: Vec<u8>,
}

impl ServerCert {
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key_der.clone().into())
    }

    /// The server certificate itself.
    pub fn leaf(&self) -> &[u8] {
        self.chain[0].as_ref()
    }

    /// The last certificate of the chain (the CA's, for a CA-issued chain).
    pub fn top(&self) -> &[u8] {
        self.chain[self.chain.len() - 1].as_ref()
    }
}

/// A self-signed server certificate for `name`.
pub fn self_signed(name: &str) -> ServerCert {
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec![name.to_string()]).expect("params").self_signed(&key).expect("cert");
    ServerCert { chain: vec![cert.der().clone()], key_der: key.serialize_der() }
}

/// A server certificate for `name` issued by a fresh CA; the chain includes the CA's
/// certificate, as RFC 7672 §3.2.2 asks of servers with DANE-TA records.
pub fn issued_by_private_ca(name: &str) -> ServerCert {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "Postfach test DANE CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("CA");
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(vec![name.to_string()]).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.signed_by(&key, &ca).expect("cert");
    ServerCert { chain: vec![cert.der().clone(), ca.der().clone()], key_der: key.serialize_der() }
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref().to_vec()
}

fn spki(cert: &[u8]) -> Vec<u8> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).expect("certificate");
    parsed.tbs_certificate.subject_pki.raw.to_vec()
}

/// `3 1 1`: DANE-EE, SHA-256 of the server's public key.
pub fn dane_ee_3_1_1(cert: &ServerCert) -> Data {
    Data::Tlsa { usage: 3, selector: 1, matching: 1, data: sha256(&spki(cert.leaf())) }
}

/// `2 0 1`: DANE-TA, SHA-256 of the whole CA certificate.
pub fn dane_ta_2_0_1(cert: &ServerCert) -> Data {
    Data::Tlsa { usage: 2, selector: 0, matching: 1, data: sha256(cert.top()) }
}
