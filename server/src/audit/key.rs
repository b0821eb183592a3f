//! The Ed25519 key that signs the audit head, kept as a PKCS#8 PEM file.
//!
//! Every node of a deployment must use the same key file (shared through
//! configuration management), because any node may append to the chain.

use std::path::Path;

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{SigningKey, VerifyingKey};

/// Name of the key file inside the data directory.
pub const KEY_FILE: &str = "audit-signing-key.pem";

/// Loads the signing key from the data directory, creating it on first start.
pub fn load_or_create_key(data_dir: &Path) -> anyhow::Result<SigningKey> {
    let path = data_dir.join(KEY_FILE);
    if path.exists() {
        return read_key(&path);
    }
    std::fs::create_dir_all(data_dir)?;
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let pem = key
        .to_pkcs8_pem(Default::default())
        .map_err(|error| anyhow::anyhow!("failed to encode audit key: {error}"))?;
    write_private(&path, pem.as_bytes())?;
    tracing::info!(path = %path.display(), "created audit signing key");
    Ok(key)
}

/// Loads the public half of the signing key for `dangwu audit verify`.
pub fn load_verifying_key(data_dir: &Path) -> anyhow::Result<VerifyingKey> {
    Ok(read_key(&data_dir.join(KEY_FILE))?.verifying_key())
}

fn read_key(path: &Path) -> anyhow::Result<SigningKey> {
    let pem = std::fs::read_to_string(path)
        .map_err(|error| anyhow::anyhow!("failed to read {}: {error}", path.display()))?;
    SigningKey::from_pkcs8_pem(&pem)
        .map_err(|error| anyhow::anyhow!("invalid audit key in {}: {error}", path.display()))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}
