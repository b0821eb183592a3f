//! `dangwu cert`: a TLS certificate for the server's intranet names and
//! addresses, self-signed or signed by an intranet CA whose key is given.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, SanType};

/// Where to write, and who signs.
#[derive(Debug, Clone)]
pub struct CertRequest {
    /// DNS names and IP addresses the certificate is valid for.
    pub names: Vec<String>,
    pub out_cert: PathBuf,
    pub out_key: PathBuf,
    /// PEM certificate and key of an intranet CA; self-signed when absent.
    pub ca: Option<(PathBuf, PathBuf)>,
    /// Validity in days.
    pub days: u32,
}

/// Creates the key pair and certificate and writes both PEM files.
pub fn create(request: &CertRequest) -> anyhow::Result<()> {
    if request.names.is_empty() {
        anyhow::bail!("give at least one DNS name or IP address for the certificate");
    }
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, request.names[0].clone());
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Dangwu");
    params.subject_alt_names = request
        .names
        .iter()
        .map(|name| match name.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => Ok(SanType::DnsName(name.clone().try_into()?)),
        })
        .collect::<Result<_, rcgen::Error>>()?;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(i64::from(request.days));
    let key = KeyPair::generate()?;
    let cert = match &request.ca {
        None => params.self_signed(&key)?,
        Some((ca_cert, ca_key)) => {
            let ca_key = KeyPair::from_pem(&read(ca_key)?)?;
            let issuer = Issuer::from_ca_cert_pem(&read(ca_cert)?, ca_key)?;
            params.signed_by(&key, &issuer)?
        }
    };
    write(&request.out_cert, cert.pem().as_bytes(), 0o644)?;
    write(&request.out_key, key.serialize_pem().as_bytes(), 0o600)?;
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .map_err(|error| anyhow::anyhow!("failed to read {}: {error}", path.display()))
}

fn write(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(|error| anyhow::anyhow!("failed to write {}: {error}", path.display()))?;
    file.write_all(bytes)?;
    Ok(())
}
