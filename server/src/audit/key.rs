//! The Ed25519 key that signs the audit head, kept as a PKCS#8 PEM file.
//!
//! Every node of a deployment must use the same key file (on a shared
//! directory or copied by configuration management, see `audit_key_file`),
//! because any node may append to the chain.

use std::path::Path;

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{SigningKey, VerifyingKey};

/// Name of the key file inside the data directory.
pub const KEY_FILE: &str = "audit-signing-key.pem";

/// Loads the signing key from the data directory, creating it on first start.
pub fn load_or_create_key(data_dir: &Path) -> anyhow::Result<SigningKey> {
    load_or_create_key_at(&data_dir.join(KEY_FILE))
}

/// Loads the signing key from `path`, creating it if the file is missing.
///
/// Several nodes may start at once on one shared directory: the new key is
/// written to a private temporary file and then hard-linked to `path`, which
/// fails if another node got there first, so every node ends up reading the
/// one complete key that won.
pub fn load_or_create_key_at(path: &Path) -> anyhow::Result<SigningKey> {
    if path.exists() {
        return read_key(path);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let pem = key
        .to_pkcs8_pem(Default::default())
        .map_err(|error| anyhow::anyhow!("failed to encode audit key: {error}"))?;
    let temporary = dir.join(format!(".{KEY_FILE}.{}", uuid::Uuid::new_v4().simple()));
    write_private(&temporary, pem.as_bytes())?;
    let linked = std::fs::hard_link(&temporary, path);
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => {
            tracing::info!(path = %path.display(), "created audit signing key");
            Ok(key)
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => read_key(path),
        Err(error) => Err(anyhow::anyhow!(
            "failed to create audit key {}: {error}",
            path.display()
        )),
    }
}

/// Loads the public half of the signing key in `path` for `dangwu audit verify`.
pub fn load_verifying_key(path: &Path) -> anyhow::Result<VerifyingKey> {
    Ok(read_key(path)?.verifying_key())
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
    file.write_all(bytes)?;
    file.sync_all()
}
