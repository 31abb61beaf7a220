//! DNSSEC for the test server: all of its data is one root zone `.` signed online with one
//! ECDSA P-256 key (RFC 4034, RFC 6605), the key a test gives its validating resolver as
//! trust anchor ([`crate::TestDns::trust_anchor`]).
//!
//! - Every RRset outside an unsigned zone gets an RRSIG made when it is sent.
//! - Negative answers are "minimally covering" (RFC 4470, the "black lies" of RFC 9824
//!   without the NXNAME type): NOERROR with a signed NSEC at the name listing only the types
//!   it has, so one NSEC proves both "no such name" and "no such type".
//! - An unsigned zone ([`crate::TestDns::set_unsigned_zone`]) is an insecure delegation: the
//!   root side proves with a signed NSEC that it has no DS record (RFC 4035 §5.2), and its
//!   own data comes without signatures, so a validator calls it insecure.
//! - A bogus name ([`crate::TestDns::set_bogus`]) gets RRSIGs whose signature bytes are
//!   damaged, so a validator calls its records bogus.
//!
//! Only queries with the DO bit (RFC 3225) get the DNSSEC records; other clients see the
//! data as before.

use std::collections::BTreeSet;
use std::time::Duration;

use hickory_proto::dnssec::crypto::EcdsaSigningKey;
use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, NSEC, RRSIG};
use hickory_proto::dnssec::{Algorithm, DnssecSigner, SigningKey};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::{NS, SOA};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordSet, RecordType};

use crate::{TestDnsError, Type, Zone, key};

/// The signing key of the root zone and the names marked unsigned or bogus.
pub(crate) struct Signing {
    signer: DnssecSigner,
    dnskey: DNSKEY,
    pub(crate) unsigned: BTreeSet<String>,
    pub(crate) bogus: BTreeSet<String>,
}

impl std::fmt::Debug for Signing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signing").field("unsigned", &self.unsigned).field("bogus", &self.bogus).finish()
    }
}

impl Signing {
    /// A fresh key for the root zone.
    pub(crate) fn generate() -> Result<Signing, TestDnsError> {
        let fail = |e: &dyn std::fmt::Display| TestDnsError(format!("cannot make a DNSSEC key: {e}"));
        let pkcs8 = EcdsaSigningKey::generate_pkcs8(Algorithm::ECDSAP256SHA256).map_err(|e| fail(&e))?;
        let key = EcdsaSigningKey::from_pkcs8(&pkcs8, Algorithm::ECDSAP256SHA256).map_err(|e| fail(&e))?;
        let public = key.to_public_key().map_err(|e| fail(&e))?;
        // Flags 257: a zone key that is also the secure entry point (RFC 4034 §2.1.1).
        let dnskey = DNSKEY::new(true, true, false, public);
        // Valid from a day ago to a day ahead, so a clock a little off does not matter.
        let signer = DnssecSigner::new(dnskey.clone(), Box::new(key), Name::root(), Duration::from_secs(2 * 86_400));
        Ok(Signing { signer, dnskey, unsigned: BTreeSet::new(), bogus: BTreeSet::new() })
    }

    /// The trust anchor in the zone-file form resolvers read: `. 3600 IN DNSKEY 257 3 13 …`.
    pub(crate) fn trust_anchor(&self) -> String {
        format!(". 3600 IN DNSKEY {}\n", self.dnskey)
    }

    /// The apex of the unsigned zone `name` is at or below, if any.
    fn unsigned_apex(&self, name: &str) -> Option<&str> {
        self.unsigned.iter().map(String::as_str).find(|apex| name == *apex || name.ends_with(&format!(".{apex}")))
    }

    /// Answers the queries only a DNSSEC server gets: the root's DNSKEY, DS anywhere (there
    /// are no signed delegations) and NS at an unsigned zone's apex. `None` when the zone
    /// data answers the query.
    pub(crate) fn special(&self, qname: &Name, qtype: RecordType, reply: &mut Message) -> Option<()> {
        let name = key(&qname.to_ascii());
        match qtype {
            RecordType::DNSKEY if name.is_empty() => {
                reply.add_answer(Record::from_rdata(
                    Name::root(),
                    3600,
                    RData::DNSSEC(DNSSECRData::DNSKEY(self.dnskey.clone())),
                ));
                Some(())
            }
            RecordType::DS => {
                // Parent side: the root proves there is no DS; at an unsigned apex the NSEC says
                // it is a delegation (NS) without DS (RFC 4035 §5.2, RFC 6840 §4.4).
                let is_apex = self.unsigned.contains(&name);
                let types: Vec<RecordType> = if is_apex { vec![RecordType::NS] } else { vec![] };
                reply.add_authority(self.root_soa());
                reply.add_authority(nsec(qname, types));
                Some(())
            }
            RecordType::NS if self.unsigned.contains(&name) => {
                let ns = Name::from_ascii("ns.testdns.invalid.").unwrap_or_else(|_| Name::root());
                reply.add_answer(Record::from_rdata(qname.clone(), 0, RData::NS(NS(ns))));
                Some(())
            }
            _ => None,
        }
    }

    /// Turns a negative reply the zone data gave into a signed denial (or, in an unsigned
    /// zone, an unsigned one with that zone's SOA).
    pub(crate) fn deny(&self, zone: &Zone, qname: &Name, qtype: RecordType, reply: &mut Message) {
        // The name the answer ends at, after CNAMEs.
        let mut owner = qname.clone();
        for record in reply.answers.iter() {
            if let RData::CNAME(target) = &record.data {
                owner = target.0.clone();
            }
        }
        let answered = reply.answers.iter().any(|r| r.name == owner && r.record_type() == qtype);
        let negative = !answered && qtype != RecordType::CNAME;
        if negative {
            let owner_key = key(&owner.to_ascii());
            match self.unsigned_apex(&owner_key).map(str::to_string) {
                Some(apex) => {
                    reply.authorities.clear();
                    reply.add_authority(unsigned_soa(&apex));
                }
                None => {
                    let types = zone
                        .get(&owner_key)
                        .map(|types| types.keys().filter(|t| **t != Type::Ns).map(|t| t.to_wire()).collect())
                        .unwrap_or_default();
                    reply.metadata.response_code = ResponseCode::NoError;
                    reply.authorities.clear();
                    reply.add_authority(self.root_soa());
                    reply.add_authority(nsec(&owner, types));
                }
            }
        }
    }

    /// Adds an RRSIG after every RRset that needs one.
    pub(crate) fn sign_sections(&self, reply: &mut Message) {
        let answers = std::mem::take(&mut reply.answers);
        reply.answers = self.signed(answers);
        let authorities = std::mem::take(&mut reply.authorities);
        reply.authorities = self.signed(authorities);
    }

    /// The records with an RRSIG after each RRset outside the unsigned zones.
    fn signed(&self, records: Vec<Record>) -> Vec<Record> {
        let mut sets: Vec<RecordSet> = Vec::new();
        for record in records {
            match sets.iter_mut().find(|s| s.name() == &record.name && s.record_type() == record.record_type()) {
                Some(set) => {
                    set.insert(record, 0);
                }
                None => {
                    let mut set = RecordSet::with_ttl(record.name.clone(), record.record_type(), record.ttl);
                    set.insert(record, 0);
                    sets.push(set);
                }
            }
        }
        let mut out = Vec::new();
        for set in sets {
            let name = key(&set.name().to_ascii());
            let rrsig = if self.unsigned_apex(&name).is_some() && set.record_type() != RecordType::NSEC {
                None
            } else {
                self.rrsig(&set, self.bogus.contains(&name))
            };
            let ttl = set.ttl();
            let owner = set.name().clone();
            out.extend(set.records_without_rrsigs().cloned());
            if let Some(rrsig) = rrsig {
                out.push(Record::from_rdata(owner, ttl, RData::DNSSEC(DNSSECRData::RRSIG(rrsig))));
            }
        }
        out
    }

    fn rrsig(&self, set: &RecordSet, damaged: bool) -> Option<RRSIG> {
        let inception = time::OffsetDateTime::now_utc() - time::Duration::days(1);
        let rrsig = match RRSIG::from_rrset(set, DNSClass::IN, inception, &self.signer) {
            Ok(rrsig) => rrsig,
            Err(e) => {
                tracing::error!(error = %e, "test DNS server cannot sign an RRset");
                return None;
            }
        };
        if !damaged {
            return Some(rrsig);
        }
        let mut signature = rrsig.sig().to_vec();
        if let Some(byte) = signature.get_mut(10) {
            *byte ^= 0x55;
        }
        Some(RRSIG::from_sig(rrsig.input().clone(), signature))
    }

    fn root_soa(&self) -> Record {
        let soa = made_up_soa();
        Record::from_rdata(Name::root(), 0, RData::SOA(soa))
    }
}

/// The NSEC at `owner` saying it has exactly `types` (plus NSEC and RRSIG), and that the
/// next name is its first possible child `\000.owner`.
fn nsec(owner: &Name, types: Vec<RecordType>) -> Record {
    let next = owner.prepend_label("\0").unwrap_or_else(|_| owner.clone());
    let mut types = types;
    if owner.is_root() {
        types.extend([RecordType::SOA, RecordType::DNSKEY]);
    }
    Record::from_rdata(owner.clone(), 0, RData::DNSSEC(DNSSECRData::NSEC(NSEC::new_cover_self(next, types))))
}

fn unsigned_soa(apex: &str) -> Record {
    let owner = Name::from_ascii(format!("{apex}.")).unwrap_or_else(|_| Name::root());
    Record::from_rdata(owner, 0, RData::SOA(made_up_soa()))
}

fn made_up_soa() -> SOA {
    SOA::new(
        Name::from_ascii("ns.testdns.invalid.").unwrap_or_else(|_| Name::root()),
        Name::from_ascii("hostmaster.testdns.invalid.").unwrap_or_else(|_| Name::root()),
        1,
        3600,
        600,
        86_400,
        0,
    )
}
