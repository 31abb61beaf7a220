//! Domains and alias domains: adding, listing, removing, ownership verification, the
//! records to publish and the DNS checks.

use postfach_dns::checks::{self, Ownership, Refreshed};
use postfach_dns::records::{DomainSetup, PublishedRecord, for_domain};
use postfach_store::Scope;
use postfach_store::dns_checks::{DomainReport, Text};
use postfach_store::domains::{Domain, MtaStsMode, Removed};
use postfach_types::{CustomerName, DomainId, DomainName};

use crate::{Admin, AdminError, Who, manager, platform};

/// What a domain should publish in DNS and what its last check found.
#[derive(Debug, Clone)]
pub struct DomainRecords {
    /// The records to publish (with the domain's DKIM keys); `None` when DNS checks are
    /// not configured (then only the ownership record is known).
    pub published: Option<Vec<PublishedRecord>>,
    /// The cached result of the last check.
    pub report: Option<DomainReport>,
    /// Why the records that name the server (MX, SPF, SRV, autoconfig) are left out: the
    /// platform's `hostname` is not usable (`postfach_dns::hostname_problem`).
    pub hostname_problem: Option<Text>,
}

/// Reports shown per domain (the store keeps more: `tls_reports::MAX_TLS_REPORTS_PER_DOMAIN`).
pub const TLS_REPORTS_SHOWN: u32 = 50;

impl Admin {
    /// The caller's domains and alias domains (an admin's and the operator's: all).
    pub async fn domains(&self, who: &Who) -> Result<Vec<Domain>, AdminError> {
        Ok(self.store.domains(manager(who)?).await?)
    }

    /// A domain or alias domain by id, if the caller may see it.
    pub async fn domain(&self, who: &Who, id: DomainId) -> Result<Domain, AdminError> {
        Ok(self.store.domain_by_id(manager(who)?, id).await?)
    }

    pub async fn domain_named(&self, who: &Who, name: &DomainName) -> Result<Domain, AdminError> {
        Ok(self.store.domain(manager(who)?, name).await?)
    }

    /// The TLS reports (RFC 8460) received about a domain, newest first: at most
    /// [`TLS_REPORTS_SHOWN`].
    pub async fn tls_reports(
        &self,
        who: &Who,
        domain: DomainId,
    ) -> Result<Vec<postfach_store::tls_reports::TlsReport>, AdminError> {
        Ok(self.store.tls_reports(manager(who)?, domain, TLS_REPORTS_SHOWN).await?)
    }

    /// The alias domains that mirror a domain.
    pub async fn alias_domains_of(&self, who: &Who, domain: &Domain) -> Result<Vec<Domain>, AdminError> {
        Ok(self.store.alias_domains_of(manager(who)?, &domain.name).await?)
    }

    /// Adds a domain. A customer adds its own, unverified (it goes live once ownership
    /// is proven); the operator names the owner and may mark it verified. Admins do not
    /// add domains for customers in the panel.
    pub async fn add_domain(
        &self,
        who: &Who,
        name: &DomainName,
        owner: Option<&CustomerName>,
        verified: bool,
    ) -> Result<Domain, AdminError> {
        let (owner, verified) = match (who, owner) {
            (Who::Customer { id, .. }, None) if !verified => (*id, false),
            (Who::Operator, Some(owner)) => (self.store.customer(owner).await?.id, verified),
            (Who::Admin { .. }, _) => return Err(AdminError::AdminAddsDomain),
            _ => return Err(AdminError::Forbidden),
        };
        Ok(self.store.add_domain(owner, name, verified).await?)
    }

    /// Makes `alias` an alias domain of `target` (a real domain of the caller).
    pub async fn add_domain_alias(
        &self,
        who: &Who,
        alias: &DomainName,
        target: &DomainName,
        verified: bool,
    ) -> Result<Domain, AdminError> {
        match who {
            Who::Customer { .. } if !verified => {}
            Who::Operator => {}
            Who::Admin { .. } => return Err(AdminError::AdminAddsDomain),
            _ => return Err(AdminError::Forbidden),
        }
        Ok(self.store.add_domain_alias(who.scope(), alias, target, verified).await?)
    }

    /// Marks a domain verified or not (admins and the operator).
    pub async fn set_domain_verified(&self, who: &Who, id: DomainId, verified: bool) -> Result<Domain, AdminError> {
        platform(who)?;
        let domain = self.store.domain_by_id(Scope::Platform, id).await?;
        self.store.set_domain_verified(Scope::Platform, &domain.name, verified).await?;
        Ok(self.store.domain_by_id(Scope::Platform, id).await?)
    }

    /// Switches certificates for the domain's `mail.`, `autoconfig.` and `autodiscover.`
    /// names on or off (the domain's customer, admins, the operator). They are ordered
    /// by the server once the domain is verified and the names point to it.
    pub async fn set_domain_certificates(&self, who: &Who, id: DomainId, on: bool) -> Result<Domain, AdminError> {
        let scope = manager(who)?;
        let domain = self.store.domain_by_id(scope, id).await?;
        self.store.set_domain_certificates(scope, &domain.name, on).await?;
        Ok(self.store.domain_by_id(scope, id).await?)
    }

    /// Sets the domain's inbound MTA-STS mode (the domain's customer, admins, the
    /// operator). Not off: the server serves the policy at `mta-sts.DOMAIN` and orders a
    /// certificate for that name once it points here.
    pub async fn set_domain_mta_sts(&self, who: &Who, id: DomainId, mode: MtaStsMode) -> Result<Domain, AdminError> {
        let scope = manager(who)?;
        let domain = self.store.domain_by_id(scope, id).await?;
        self.store.set_domain_mta_sts(scope, &domain.name, mode).await?;
        Ok(self.store.domain_by_id(scope, id).await?)
    }

    /// The server's certificates (hostname and customer domains), with their expiry and
    /// the last failed order (operator and admins).
    pub async fn certificates(
        &self,
        who: &Who,
    ) -> Result<Vec<postfach_store::certificates::StoredCertificate>, AdminError> {
        platform(who)?;
        Ok(self.store.certificates().await?)
    }

    /// Removes a domain or alias domain; a domain with contents only with `cascade`.
    pub async fn remove_domain(&self, who: &Who, id: DomainId, cascade: bool) -> Result<Removed, AdminError> {
        let domain = self.domain(who, id).await?;
        Ok(self.store.remove_domain(who.scope(), &domain.name, cascade).await?)
    }

    /// Removes an alias domain (refusing a real domain, which has its own removal).
    pub async fn remove_alias_domain(&self, who: &Who, name: &DomainName) -> Result<(), AdminError> {
        let domain = self.domain_named(who, name).await?;
        if domain.alias_of.is_none() {
            return Err(AdminError::NotAnAliasDomain(domain.name));
        }
        self.store.remove_domain(who.scope(), &domain.name, false).await?;
        Ok(())
    }

    /// Looks up the ownership record now; a found record makes the domain live.
    pub async fn verify_domain(&self, who: &Who, name: &DomainName) -> Result<Ownership, AdminError> {
        let scope = manager(who)?;
        let checker = self.dns.as_deref().ok_or(AdminError::DnsChecksOff)?;
        Ok(checks::verify_ownership(checker, &self.store, scope, name).await?)
    }

    /// Runs the DNS checks of a domain now (ownership, MX, SPF, DKIM, DMARC) and caches
    /// the result.
    pub async fn check_domain(&self, who: &Who, domain: &Domain) -> Result<Refreshed, AdminError> {
        let scope = manager(who)?;
        let checker = self.dns.as_deref().ok_or(AdminError::DnsChecksOff)?;
        Ok(checks::refresh(checker, &self.store, scope, &domain.name).await?)
    }

    /// The records a domain should publish and its last check (no DNS lookup). Makes sure
    /// the domain has its DKIM key.
    pub async fn domain_records(&self, who: &Who, domain: &Domain) -> Result<DomainRecords, AdminError> {
        let scope = manager(who)?;
        let report = self.store.dns_report(scope, &domain.name).await?;
        let Some(checker) = self.dns.as_deref() else {
            return Ok(DomainRecords { published: None, report, hostname_problem: None });
        };
        let keys = match postfach_dns::dkim::ensure_key(&self.store, scope, &domain.name).await {
            Ok(_) => self.store.dkim_keys(scope, &domain.name).await?,
            Err(postfach_dns::DnsError::Store(e)) => return Err(e.into()),
            Err(e) => {
                tracing::warn!(error = %e, domain = %domain.name, "no DKIM key for the domain's records");
                Vec::new()
            }
        };
        let published =
            for_domain(&DomainSetup { platform: checker.platform(), domain, dkim_keys: &keys, published_spf: &[] });
        Ok(DomainRecords {
            published: Some(published),
            report,
            hostname_problem: checker.platform().hostname_problem(),
        })
    }
}

impl Admin {
    /// Gives a domain its DKIM key if it has none (every new domain gets one).
    pub async fn ensure_dkim_key(
        &self,
        who: &Who,
        name: &DomainName,
    ) -> Result<postfach_store::dkim::DkimKey, AdminError> {
        Ok(postfach_dns::dkim::ensure_key(&self.store, manager(who)?, name).await?)
    }
}
