//! The demo province.
use crate::db::Db;
pub const DEMO_PASSWORD: &str = "Dangwu@2026";
pub async fn seed(_db: &Db, _key: &ed25519_dalek::SigningKey) -> anyhow::Result<()> {
    Ok(())
}
pub fn print_logins(_url: &str) {}
