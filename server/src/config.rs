//! Server configuration: command-line flags, environment variables and an
//! optional TOML file, merged in that order of precedence.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;

/// Options shared by every command that opens the data store.
#[derive(Args, Debug, Clone, Default)]
pub struct StoreArgs {
    /// Directory for the embedded SQLite database, stored files and keys.
    /// Created on first start. [default: ./data]
    #[arg(long, env = "DANGWU_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Database URL. Defaults to an SQLite file inside the data directory;
    /// `postgres://user@host:5432/db` uses PostgreSQL instead.
    #[arg(long, env = "DANGWU_DATABASE_URL")]
    pub database_url: Option<String>,

    /// TOML configuration file. Flags and environment variables override it.
    #[arg(long, short = 'c', env = "DANGWU_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Options of `dangwu serve`.
#[derive(Args, Debug, Clone, Default)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// Address and port for HTTP (or HTTPS with --tls-cert). [default: 127.0.0.1:8080]
    #[arg(long, env = "DANGWU_LISTEN")]
    pub listen: Option<SocketAddr>,

    /// Address users type into the browser, e.g. https://dangwu.intranet:8443.
    /// Used in links and calendar files. [default: derived from --listen]
    #[arg(long, env = "DANGWU_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// PEM certificate chain; with --tls-key the server speaks HTTPS and WSS.
    #[arg(long, env = "DANGWU_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key matching --tls-cert.
    #[arg(long, env = "DANGWU_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Log filter in tracing syntax, e.g. `info` or `server=debug,info`. [default: info]
    #[arg(long, env = "DANGWU_LOG")]
    pub log_level: Option<String>,

    /// Seed the demo province (organizations, members, logins) if the store is empty.
    #[arg(long)]
    pub demo: bool,

    /// IP address the meeting media (WebRTC over UDP) sockets bind to. [default: 127.0.0.1]
    #[arg(long, env = "DANGWU_MEDIA_BIND")]
    pub media_bind: Option<IpAddr>,

    /// UDP port of the first media shard; shard N uses this port plus N, so open that
    /// many ports in the firewall. 0 picks free ports at start. [default: 0]
    #[arg(long, env = "DANGWU_MEDIA_PORT")]
    pub media_port: Option<u16>,

    /// IP address browsers send media to, announced in ICE candidates. Needed when
    /// --media-bind is 0.0.0.0 or behind 1:1 NAT. [default: --media-bind]
    #[arg(long, env = "DANGWU_MEDIA_ADVERTISE")]
    pub media_advertise: Option<IpAddr>,

    /// Number of media shards, each one task with its own UDP port; all participants of a
    /// meeting share one shard. [default: number of CPU cores]
    #[arg(long, env = "DANGWU_MEDIA_SHARDS")]
    pub media_shards: Option<usize>,
}

/// The TOML file's shape; every key is optional.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    public_url: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    log_level: Option<String>,
    media_bind: Option<IpAddr>,
    media_port: Option<u16>,
    media_advertise: Option<IpAddr>,
    media_shards: Option<usize>,
}

/// Where the data lives, resolved from [`StoreArgs`].
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
    pub database_url: String,
}

/// Addresses and shards of the meeting media engine, resolved from the `media_*` options.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Address the UDP sockets bind to.
    pub bind: IpAddr,
    /// UDP port of the first shard, 0 for free ports.
    pub port: u16,
    /// Address announced in ICE candidates instead of `bind`.
    pub advertise: Option<IpAddr>,
    /// Number of shards.
    pub shards: usize,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            advertise: None,
            shards: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }
}

/// The resolved configuration of a running server.
#[derive(Debug, Clone)]
pub struct Config {
    pub store: StoreConfig,
    pub listen: SocketAddr,
    pub public_url: String,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub log_level: String,
    pub demo: bool,
    pub media: MediaConfig,
}

/// An error in the configuration file or in the combination of options.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("tls_cert and tls_key must be given together")]
    TlsPair,
    #[error(
        "media_bind {0} is not an address browsers can reach; set media_advertise to the server's address"
    )]
    MediaAdvertise(IpAddr),
    #[error("media_shards must be at least 1")]
    MediaShards,
    #[error("media_port {port} plus {shards} shards exceeds the last UDP port 65535")]
    MediaPorts { port: u16, shards: usize },
}

fn read_file(path: Option<&Path>) -> Result<FileConfig, ConfigError> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_owned(),
        source,
    })
}

fn default_database_url(data_dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join("dangwu.db").display())
}

impl StoreArgs {
    /// Resolves the store options against the configuration file.
    pub fn resolve(&self) -> Result<StoreConfig, ConfigError> {
        let file = read_file(self.config.as_deref())?;
        Ok(store_config(self, &file))
    }
}

fn store_config(args: &StoreArgs, file: &FileConfig) -> StoreConfig {
    let data_dir = args
        .data_dir
        .clone()
        .or_else(|| file.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from("data"));
    let database_url = args
        .database_url
        .clone()
        .or_else(|| file.database_url.clone())
        .unwrap_or_else(|| default_database_url(&data_dir));
    StoreConfig {
        data_dir,
        database_url,
    }
}

impl ServeArgs {
    /// Resolves every option: flag, then environment, then file, then default.
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let file = read_file(self.store.config.as_deref())?;
        let store = store_config(&self.store, &file);
        let media = media_config(self, &file)?;
        let listen = self
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        let tls_cert = self.tls_cert.clone().or(file.tls_cert);
        let tls_key = self.tls_key.clone().or(file.tls_key);
        let tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => return Err(ConfigError::TlsPair),
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let public_url = self
            .public_url
            .clone()
            .or(file.public_url)
            .unwrap_or_else(|| format!("{scheme}://{listen}"));
        Ok(Config {
            store,
            listen,
            public_url: public_url.trim_end_matches('/').to_owned(),
            tls,
            log_level: self
                .log_level
                .clone()
                .or(file.log_level)
                .unwrap_or_else(|| "info".to_owned()),
            demo: self.demo,
            media,
        })
    }
}

fn media_config(args: &ServeArgs, file: &FileConfig) -> Result<MediaConfig, ConfigError> {
    let defaults = MediaConfig::default();
    let bind = args.media_bind.or(file.media_bind).unwrap_or(defaults.bind);
    let port = args.media_port.or(file.media_port).unwrap_or(defaults.port);
    let advertise = args.media_advertise.or(file.media_advertise);
    let shards = args
        .media_shards
        .or(file.media_shards)
        .unwrap_or(defaults.shards);
    if shards == 0 {
        return Err(ConfigError::MediaShards);
    }
    if port != 0 && usize::from(port) + shards - 1 > usize::from(u16::MAX) {
        return Err(ConfigError::MediaPorts { port, shards });
    }
    if bind.is_unspecified() && advertise.is_none_or(|ip| ip.is_unspecified()) {
        return Err(ConfigError::MediaAdvertise(bind));
    }
    Ok(MediaConfig {
        bind,
        port,
        advertise,
        shards,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dangwu.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\ndata_dir = \"/srv/dangwu\"\nlog_level = \"debug\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            store: StoreArgs {
                config: Some(path),
                ..Default::default()
            },
            listen: Some("127.0.0.1:7000".parse().unwrap()),
            ..Default::default()
        };
        let config = args.resolve().unwrap();
        assert_eq!(config.listen.port(), 7000);
        assert_eq!(config.store.data_dir, PathBuf::from("/srv/dangwu"));
        assert_eq!(config.log_level, "debug");
        assert!(
            config
                .store
                .database_url
                .starts_with("sqlite:///srv/dangwu/")
        );
        assert_eq!(config.public_url, "http://127.0.0.1:7000");
    }

    #[test]
    fn media_options_from_file_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dangwu.toml");
        std::fs::write(
            &path,
            "media_bind = \"0.0.0.0\"\nmedia_advertise = \"10.1.2.3\"\nmedia_port = 40000\nmedia_shards = 4\n",
        )
        .unwrap();
        let args = ServeArgs {
            store: StoreArgs {
                config: Some(path),
                ..Default::default()
            },
            media_shards: Some(2),
            ..Default::default()
        };
        let media = args.resolve().unwrap().media;
        assert_eq!(media.bind, IpAddr::from([0, 0, 0, 0]));
        assert_eq!(media.advertise, Some(IpAddr::from([10, 1, 2, 3])));
        assert_eq!(media.port, 40000);
        assert_eq!(media.shards, 2);
    }

    #[test]
    fn media_unspecified_bind_needs_advertise() {
        let args = ServeArgs {
            media_bind: Some(IpAddr::from([0, 0, 0, 0])),
            ..Default::default()
        };
        let error = args.resolve().unwrap_err();
        assert!(matches!(error, ConfigError::MediaAdvertise(_)), "{error}");
    }

    #[test]
    fn media_ports_past_65535_are_rejected() {
        let args = ServeArgs {
            media_port: Some(65535),
            media_shards: Some(2),
            ..Default::default()
        };
        let error = args.resolve().unwrap_err();
        assert!(matches!(error, ConfigError::MediaPorts { .. }), "{error}");
        let zero = ServeArgs {
            media_shards: Some(0),
            ..Default::default()
        };
        assert!(matches!(zero.resolve(), Err(ConfigError::MediaShards)));
    }

    #[test]
    fn unknown_file_key_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dangwu.toml");
        std::fs::write(&path, "listn = \"127.0.0.1:9000\"\n").unwrap();
        let args = StoreArgs {
            config: Some(path),
            ..Default::default()
        };
        let error = args.resolve().unwrap_err();
        assert!(error.to_string().contains("listn"), "{error}");
    }
}
