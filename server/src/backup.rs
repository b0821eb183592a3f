//! `dangwu backup` and `dangwu restore`.
use crate::config::StoreConfig;
use std::path::Path;
pub async fn backup(_s: &StoreConfig, _p: &Path) -> anyhow::Result<String> {
    anyhow::bail!("todo")
}
pub async fn restore(_s: &StoreConfig, _p: &Path) -> anyhow::Result<String> {
    anyhow::bail!("todo")
}
