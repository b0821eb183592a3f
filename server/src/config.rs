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

    /// Directory of stored files (attachments, generated calendar files). Nodes
    /// sharing one database must share it, e.g. over NFS. [default: DATA_DIR/files]
    #[arg(long, env = "DANGWU_FILES_DIR")]
    pub files_dir: Option<PathBuf>,

    /// PKCS#8 PEM file of the Ed25519 key that signs the audit head, created on
    /// first start if missing. Nodes sharing one database must use the same key.
    /// [default: DATA_DIR/audit-signing-key.pem]
    #[arg(long, env = "DANGWU_AUDIT_KEY_FILE")]
    pub audit_key_file: Option<PathBuf>,
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

    /// IP address the meeting media sockets (WebRTC over UDP, and ICE-TCP) bind to.
    /// [default: 127.0.0.1]
    #[arg(long, env = "DANGWU_MEDIA_BIND")]
    pub media_bind: Option<IpAddr>,

    /// UDP port of the meeting media, shared by all media shards. 0 picks a free port at
    /// start. [default: 0]
    #[arg(long, env = "DANGWU_MEDIA_PORT")]
    pub media_port: Option<u16>,

    /// TCP port for ICE-TCP (RFC 6544), so that browsers on networks that block UDP can
    /// send media over TCP without a TURN server. 0 picks a free port. [default: none,
    /// media over UDP only]
    #[arg(long, env = "DANGWU_MEDIA_TCP_PORT")]
    pub media_tcp_port: Option<u16>,

    /// IP address browsers send media to, announced in ICE candidates. Needed when
    /// --media-bind is 0.0.0.0 or behind 1:1 NAT. [default: --media-bind]
    #[arg(long, env = "DANGWU_MEDIA_ADVERTISE")]
    pub media_advertise: Option<IpAddr>,

    /// Number of media shards, each one task; all participants of a meeting share one
    /// shard, and all shards share the media ports. [default: number of CPU cores]
    #[arg(long, env = "DANGWU_MEDIA_SHARDS")]
    pub media_shards: Option<usize>,

    /// TURN server URL offered to the pages' peer connections, e.g.
    /// turn:turn.example.org:3478?transport=tcp. Repeat the flag, or separate URLs with
    /// commas, for several. Needs --turn-secret. [default: none, no relay offered]
    #[arg(long = "turn-url", env = "DANGWU_TURN_URLS", value_delimiter = ',')]
    pub turn_urls: Vec<String>,

    /// Secret shared with the TURN server (coturn's static-auth-secret), from which each
    /// page gets a time-limited username and password.
    #[arg(long, env = "DANGWU_TURN_SECRET", hide_env_values = true)]
    pub turn_secret: Option<String>,

    /// Seconds a TURN credential stays valid after the page fetched it. coturn checks
    /// the expiry when it opens a relay, and a relay opened before it keeps working.
    /// [default: 86400]
    #[arg(long, env = "DANGWU_TURN_CREDENTIAL_TTL")]
    pub turn_credential_ttl: Option<u64>,

    /// NATS server URL, e.g. nats://10.1.2.5:4222. With it, live events reach the
    /// clients of every node that shares this database; the server needs JetStream
    /// enabled. [default: none, events stay within this process]
    #[arg(long, env = "DANGWU_NATS_URL")]
    pub nats_url: Option<String>,

    /// First token of the NATS subjects and name of the JetStream stream, so that
    /// several deployments can share one NATS server. [default: dangwu]
    #[arg(long, env = "DANGWU_NATS_PREFIX")]
    pub nats_prefix: Option<String>,

    /// Name of this node in logs, NATS connection names and background-task
    /// leases; unique per node. [default: random at each start]
    #[arg(long, env = "DANGWU_NODE_ID")]
    pub node_id: Option<String>,

    /// Address browsers use to reach this node itself, bypassing the load balancer,
    /// e.g. https://node-2.dangwu.intranet:8443. The room page connects its meeting
    /// socket there when this node hosts the meeting. [default: --public-url]
    #[arg(long, env = "DANGWU_NODE_URL")]
    pub node_url: Option<String>,

    /// Label of the network region this node's media serves, e.g. `north`; used to
    /// keep participants on a node of their own region. [default: none]
    #[arg(long, env = "DANGWU_MEDIA_REGION")]
    pub media_region: Option<String>,

    /// Policy for the node of a meeting that no node hosts yet: `region` (the least
    /// loaded node of the caller's region first) or `least-loaded`. [default: region]
    #[arg(long, env = "DANGWU_NODE_SELECTION")]
    pub node_selection: Option<NodeSelection>,
}

/// The policy that picks the node a participant's meeting connection goes to.
#[derive(clap::ValueEnum, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum NodeSelection {
    /// A node in the caller's region, then the least loaded node anywhere.
    #[default]
    Region,
    /// The node with the fewest participants, regardless of region.
    LeastLoaded,
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
    media_tcp_port: Option<u16>,
    media_advertise: Option<IpAddr>,
    media_shards: Option<usize>,
    turn_urls: Option<Vec<String>>,
    turn_secret: Option<String>,
    turn_credential_ttl: Option<u64>,
    files_dir: Option<PathBuf>,
    audit_key_file: Option<PathBuf>,
    nats_url: Option<String>,
    nats_prefix: Option<String>,
    node_id: Option<String>,
    node_url: Option<String>,
    media_region: Option<String>,
    node_selection: Option<NodeSelection>,
}

/// Where the data lives, resolved from [`StoreArgs`].
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
    pub database_url: String,
    /// Stored files, when not `DATA_DIR/files`.
    pub files_dir: Option<PathBuf>,
    /// Audit signing key file, when not `DATA_DIR/audit-signing-key.pem`.
    pub audit_key_file: Option<PathBuf>,
}

impl StoreConfig {
    /// The directory of stored files.
    pub fn files_dir(&self) -> PathBuf {
        self.files_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("files"))
    }

    /// The audit signing key file.
    pub fn audit_key_path(&self) -> PathBuf {
        self.audit_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join(crate::audit::key::KEY_FILE))
    }
}

/// The NATS connection that carries hub events between nodes.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    pub url: String,
    /// First subject token and stream name stem, validated by [`valid_nats_prefix`].
    pub prefix: String,
}

/// Default of `nats_prefix`.
pub const DEFAULT_NATS_PREFIX: &str = "dangwu";

/// Addresses and shards of the meeting media engine, resolved from the `media_*` options.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Address the media sockets bind to.
    pub bind: IpAddr,
    /// UDP port shared by all shards, 0 for a free port.
    pub port: u16,
    /// ICE-TCP port shared by all shards, 0 for a free port; `None` turns ICE-TCP off.
    pub tcp_port: Option<u16>,
    /// Address announced in ICE candidates instead of `bind`.
    pub advertise: Option<IpAddr>,
    /// Number of shards.
    pub shards: usize,
    /// TURN relay offered to the pages; `None` offers none.
    pub turn: Option<TurnConfig>,
}

/// TURN servers that share a secret with this server for TURN REST API credentials.
#[derive(Clone)]
pub struct TurnConfig {
    /// `turn:` or `turns:` URLs, as in `RTCIceServer.urls`.
    pub urls: Vec<String>,
    /// coturn's `static-auth-secret`.
    pub secret: String,
    /// Lifetime of each credential handed out.
    pub credential_ttl: std::time::Duration,
}

/// Keeps the secret out of logs and panic messages.
impl std::fmt::Debug for TurnConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnConfig")
            .field("urls", &self.urls)
            .field("secret", &"<redacted>")
            .field("credential_ttl", &self.credential_ttl)
            .finish()
    }
}

/// Default of `turn_credential_ttl`, in seconds.
pub const DEFAULT_TURN_CREDENTIAL_TTL: u64 = 24 * 3600;

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            tcp_port: None,
            advertise: None,
            shards: std::thread::available_parallelism().map_or(1, usize::from),
            turn: None,
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
    /// Hub transport between nodes; `None` keeps events in this process.
    pub nats: Option<NatsConfig>,
    /// This node's name, unique among the nodes sharing the database.
    pub node_id: String,
    /// Address browsers use to reach this node directly, without a trailing '/'.
    pub node_url: String,
    /// Network region label of this node's media, validated by [`valid_region`].
    pub media_region: Option<String>,
    /// Policy for picking a meeting's node.
    pub node_selection: NodeSelection,
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
    #[error("media_shards must be between 1 and {max}", max = sfu::MAX_SHARDS)]
    MediaShards,
    #[error(
        "invalid nats_prefix {0:?}: use letters, digits, '-' and '_' in tokens separated by single dots"
    )]
    NatsPrefix(String),
    #[error(
        "invalid turn_url {0:?}: use a turn: or turns: URL such as turn:turn.example.org:3478?transport=tcp"
    )]
    TurnUrl(String),
    #[error("turn_url is set but turn_secret is missing or empty; set coturn's static-auth-secret")]
    TurnSecretMissing,
    #[error("turn_secret is set but no turn_url; set the TURN server's URL")]
    TurnUrlMissing,
    #[error("turn_credential_ttl must be at least 1 second")]
    TurnCredentialTtl,
    #[error("nats_prefix is set but nats_url is not")]
    NatsPrefixWithoutUrl,
    #[error("invalid node_id {0:?}: use 1 to 64 letters, digits, '-', '_' or '.'")]
    NodeId(String),
    #[error("invalid media_region {0:?}: use 1 to 64 letters, digits, '-' or '_'")]
    MediaRegion(String),
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
        files_dir: args.files_dir.clone().or_else(|| file.files_dir.clone()),
        audit_key_file: args
            .audit_key_file
            .clone()
            .or_else(|| file.audit_key_file.clone()),
    }
}

impl ServeArgs {
    /// Resolves every option: flag, then environment, then file, then default.
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let file = read_file(self.store.config.as_deref())?;
        let store = store_config(&self.store, &file);
        let media = media_config(self, &file)?;
        let nats = nats_config(self, &file)?;
        let node_id = match self.node_id.clone().or_else(|| file.node_id.clone()) {
            Some(id) if valid_node_id(&id) => id,
            Some(id) => return Err(ConfigError::NodeId(id)),
            None => uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
        };
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
        let public_url = public_url.trim_end_matches('/').to_owned();
        let node_url = self
            .node_url
            .clone()
            .or(file.node_url)
            .map(|url| url.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| public_url.clone());
        let media_region = match self.media_region.clone().or(file.media_region) {
            Some(region) if valid_region(&region) => Some(region),
            Some(region) => return Err(ConfigError::MediaRegion(region)),
            None => None,
        };
        Ok(Config {
            store,
            listen,
            public_url,
            tls,
            log_level: self
                .log_level
                .clone()
                .or(file.log_level)
                .unwrap_or_else(|| "info".to_owned()),
            demo: self.demo,
            media,
            nats,
            node_id,
            node_url,
            media_region,
            node_selection: self
                .node_selection
                .or(file.node_selection)
                .unwrap_or_default(),
        })
    }
}

fn nats_config(args: &ServeArgs, file: &FileConfig) -> Result<Option<NatsConfig>, ConfigError> {
    let url = args.nats_url.clone().or_else(|| file.nats_url.clone());
    let prefix = args
        .nats_prefix
        .clone()
        .or_else(|| file.nats_prefix.clone());
    let Some(url) = url else {
        return match prefix {
            Some(_) => Err(ConfigError::NatsPrefixWithoutUrl),
            None => Ok(None),
        };
    };
    let prefix = prefix.unwrap_or_else(|| DEFAULT_NATS_PREFIX.to_owned());
    if !valid_nats_prefix(&prefix) {
        return Err(ConfigError::NatsPrefix(prefix));
    }
    Ok(Some(NatsConfig { url, prefix }))
}

/// Checks that a NATS prefix is a plain subject (no wildcards or spaces) whose
/// tokens also make a valid JetStream stream name once the dots become '_'.
pub fn valid_nats_prefix(prefix: &str) -> bool {
    prefix.len() <= 64
        && prefix.split('.').all(|token| {
            !token.is_empty()
                && token
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// Checks a node id: it appears in NATS subjects and key-value keys.
pub fn valid_node_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Checks a region label: it appears in NATS key-value entries and request headers.
pub fn valid_region(region: &str) -> bool {
    (1..=64).contains(&region.len())
        && region
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
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
    if shards == 0 || shards > sfu::MAX_SHARDS {
        return Err(ConfigError::MediaShards);
    }
    if bind.is_unspecified() && advertise.is_none_or(|ip| ip.is_unspecified()) {
        return Err(ConfigError::MediaAdvertise(bind));
    }
    Ok(MediaConfig {
        bind,
        port,
        tcp_port: args.media_tcp_port.or(file.media_tcp_port),
        advertise,
        shards,
        turn: turn_config(args, file)?,
    })
}

fn turn_config(args: &ServeArgs, file: &FileConfig) -> Result<Option<TurnConfig>, ConfigError> {
    let urls = if args.turn_urls.is_empty() {
        file.turn_urls.clone().unwrap_or_default()
    } else {
        args.turn_urls.clone()
    };
    let secret = args
        .turn_secret
        .clone()
        .or_else(|| file.turn_secret.clone());
    let ttl = args
        .turn_credential_ttl
        .or(file.turn_credential_ttl)
        .unwrap_or(DEFAULT_TURN_CREDENTIAL_TTL);
    if let Some(url) = urls.iter().find(|url| !valid_turn_url(url)) {
        return Err(ConfigError::TurnUrl(url.clone()));
    }
    if ttl == 0 {
        return Err(ConfigError::TurnCredentialTtl);
    }
    match (urls.is_empty(), secret) {
        (true, None) => Ok(None),
        (true, Some(_)) => Err(ConfigError::TurnUrlMissing),
        (false, Some(secret)) if !secret.is_empty() => Ok(Some(TurnConfig {
            urls,
            secret,
            credential_ttl: std::time::Duration::from_secs(ttl),
        })),
        (false, _) => Err(ConfigError::TurnSecretMissing),
    }
}

/// Checks the shape browsers accept for a TURN URL (RFC 7065): scheme, then a host.
fn valid_turn_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("turn:")
        .or_else(|| url.strip_prefix("turns:"));
    rest.is_some_and(|rest| {
        !rest.is_empty()
            && !rest.starts_with(['/', ':', '?'])
            && !rest.contains(char::is_whitespace)
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
            "media_bind = \"0.0.0.0\"\nmedia_advertise = \"10.1.2.3\"\nmedia_port = 40000\nmedia_tcp_port = 40443\nmedia_shards = 4\n",
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
        assert_eq!(media.tcp_port, Some(40443));
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
    fn media_shard_count_is_bounded() {
        let many = ServeArgs {
            media_port: Some(65535),
            media_shards: Some(2),
            ..Default::default()
        };
        assert_eq!(many.resolve().unwrap().media.port, 65535);
        let too_many = ServeArgs {
            media_shards: Some(sfu::MAX_SHARDS + 1),
            ..Default::default()
        };
        assert!(matches!(too_many.resolve(), Err(ConfigError::MediaShards)));
        let zero = ServeArgs {
            media_shards: Some(0),
            ..Default::default()
        };
        assert!(matches!(zero.resolve(), Err(ConfigError::MediaShards)));
    }

    #[test]
    fn turn_options_from_file_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dangwu.toml");
        std::fs::write(
            &path,
            "turn_urls = [\"turn:10.1.2.4:3478?transport=tcp\", \"turns:turn.example.org:5349\"]\n\
             turn_secret = \"file-secret\"\nturn_credential_ttl = 7200\n",
        )
        .unwrap();
        let args = ServeArgs {
            store: StoreArgs {
                config: Some(path),
                ..Default::default()
            },
            turn_secret: Some("flag-secret".into()),
            ..Default::default()
        };
        let turn = args.resolve().unwrap().media.turn.expect("turn config");
        assert_eq!(
            turn.urls,
            [
                "turn:10.1.2.4:3478?transport=tcp",
                "turns:turn.example.org:5349"
            ]
        );
        assert_eq!(turn.secret, "flag-secret");
        assert_eq!(turn.credential_ttl, std::time::Duration::from_secs(7200));
        assert!(!format!("{turn:?}").contains("flag-secret"));
        assert!(ServeArgs::default().resolve().unwrap().media.turn.is_none());
    }

    #[test]
    fn bad_turn_options_are_rejected() {
        for url in [
            "stun:10.1.2.4",
            "turn:",
            "http://turn",
            "turn: x",
            "turn:?transport=tcp",
        ] {
            let args = ServeArgs {
                turn_urls: vec![url.into()],
                turn_secret: Some("s".into()),
                ..Default::default()
            };
            assert!(
                matches!(args.resolve(), Err(ConfigError::TurnUrl(_))),
                "{url:?}"
            );
        }
        for secret in [None, Some(String::new())] {
            let no_secret = ServeArgs {
                turn_urls: vec!["turn:10.1.2.4".into()],
                turn_secret: secret,
                ..Default::default()
            };
            assert!(matches!(
                no_secret.resolve(),
                Err(ConfigError::TurnSecretMissing)
            ));
        }
        let no_url = ServeArgs {
            turn_secret: Some("s".into()),
            ..Default::default()
        };
        assert!(matches!(no_url.resolve(), Err(ConfigError::TurnUrlMissing)));
        let zero_ttl = ServeArgs {
            turn_urls: vec!["turn:10.1.2.4".into()],
            turn_secret: Some("s".into()),
            turn_credential_ttl: Some(0),
            ..Default::default()
        };
        assert!(matches!(
            zero_ttl.resolve(),
            Err(ConfigError::TurnCredentialTtl)
        ));
    }

    #[test]
    fn nats_and_shared_paths_from_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dangwu.toml");
        std::fs::write(
            &path,
            "nats_url = \"nats://127.0.0.1:4222\"\nnats_prefix = \"prov.a\"\nnode_id = \"node-1\"\n\
             files_dir = \"/srv/shared/files\"\naudit_key_file = \"/etc/dangwu/audit.pem\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            store: StoreArgs {
                config: Some(path),
                ..Default::default()
            },
            ..Default::default()
        };
        let config = args.resolve().unwrap();
        let nats = config.nats.unwrap();
        assert_eq!(nats.url, "nats://127.0.0.1:4222");
        assert_eq!(nats.prefix, "prov.a");
        assert_eq!(config.node_id, "node-1");
        assert_eq!(config.store.files_dir(), PathBuf::from("/srv/shared/files"));
        assert_eq!(
            config.store.audit_key_path(),
            PathBuf::from("/etc/dangwu/audit.pem")
        );
    }

    #[test]
    fn single_node_defaults() {
        let config = ServeArgs::default().resolve().unwrap();
        assert!(config.nats.is_none());
        assert_eq!(config.node_id.len(), 12);
        assert_eq!(config.store.files_dir(), PathBuf::from("data/files"));
        assert_eq!(
            config.store.audit_key_path(),
            PathBuf::from("data/audit-signing-key.pem")
        );
    }

    #[test]
    fn node_options_from_file_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dangwu.toml");
        std::fs::write(
            &path,
            "public_url = \"https://dangwu.intranet/\"\nmedia_region = \"north\"\n\
             node_selection = \"least-loaded\"\n",
        )
        .unwrap();
        let mut args = ServeArgs::default();
        args.store.config = Some(path);
        let config = args.resolve().unwrap();
        assert_eq!(config.node_url, "https://dangwu.intranet");
        assert_eq!(config.media_region.as_deref(), Some("north"));
        assert_eq!(config.node_selection, NodeSelection::LeastLoaded);

        args.node_url = Some("https://dangwu.intranet:8444/".into());
        args.node_selection = Some(NodeSelection::Region);
        let config = args.resolve().unwrap();
        assert_eq!(config.node_url, "https://dangwu.intranet:8444");
        assert_eq!(config.node_selection, NodeSelection::Region);

        for region in ["", "north east", "北区", "a.b"] {
            args.media_region = Some(region.into());
            assert!(
                matches!(args.resolve(), Err(ConfigError::MediaRegion(_))),
                "{region:?}"
            );
        }
    }

    #[test]
    fn bad_nats_options_are_rejected() {
        for prefix in ["", "a..b", "a.*", "a b", "a.>", ".a"] {
            let args = ServeArgs {
                nats_url: Some("nats://127.0.0.1:4222".into()),
                nats_prefix: Some(prefix.into()),
                ..Default::default()
            };
            assert!(
                matches!(args.resolve(), Err(ConfigError::NatsPrefix(_))),
                "{prefix:?}"
            );
        }
        let without_url = ServeArgs {
            nats_prefix: Some("dangwu".into()),
            ..Default::default()
        };
        assert!(matches!(
            without_url.resolve(),
            Err(ConfigError::NatsPrefixWithoutUrl)
        ));
        let bad_node = ServeArgs {
            node_id: Some("node 1".into()),
            ..Default::default()
        };
        assert!(matches!(bad_node.resolve(), Err(ConfigError::NodeId(_))));
    }

    /// The sample in deploy/ with every commented-out `# key = value` line
    /// switched on must parse and set every key, so that it lists them all.
    #[test]
    fn sample_config_sets_every_option() {
        let sample = include_str!("../../deploy/dangwu.toml");
        let enabled: Vec<&str> = sample.lines().map(uncomment_setting).collect();
        let file: FileConfig = toml::from_str(&enabled.join("\n")).unwrap();
        let FileConfig {
            listen,
            data_dir,
            database_url,
            public_url,
            tls_cert,
            tls_key,
            log_level,
            media_bind,
            media_port,
            media_tcp_port,
            media_advertise,
            media_shards,
            turn_urls,
            turn_secret,
            turn_credential_ttl,
            files_dir,
            audit_key_file,
            nats_url,
            nats_prefix,
            node_id,
            node_url,
            media_region,
            node_selection,
        } = file;
        assert!(listen.is_some(), "listen");
        assert!(data_dir.is_some(), "data_dir");
        assert!(database_url.is_some(), "database_url");
        assert!(public_url.is_some(), "public_url");
        assert!(tls_cert.is_some(), "tls_cert");
        assert!(tls_key.is_some(), "tls_key");
        assert!(log_level.is_some(), "log_level");
        assert!(media_bind.is_some(), "media_bind");
        assert!(media_port.is_some(), "media_port");
        assert!(media_tcp_port.is_some(), "media_tcp_port");
        assert!(media_advertise.is_some(), "media_advertise");
        assert!(media_shards.is_some(), "media_shards");
        assert!(turn_urls.is_some_and(|urls| urls.iter().all(|url| valid_turn_url(url))));
        assert!(turn_secret.is_some(), "turn_secret");
        assert!(turn_credential_ttl.is_some(), "turn_credential_ttl");
        assert!(files_dir.is_some(), "files_dir");
        assert!(audit_key_file.is_some(), "audit_key_file");
        assert!(nats_url.is_some(), "nats_url");
        assert!(nats_prefix.as_deref().is_some_and(valid_nats_prefix));
        assert!(node_id.as_deref().is_some_and(valid_node_id));
        assert!(node_url.is_some(), "node_url");
        assert!(media_region.as_deref().is_some_and(valid_region));
        assert!(node_selection.is_some(), "node_selection");
    }

    /// Turns `# key = value` into `key = value` and leaves other lines.
    fn uncomment_setting(line: &str) -> &str {
        let Some(rest) = line.strip_prefix("# ") else {
            return line;
        };
        let is_setting = rest
            .split_once(" = ")
            .is_some_and(|(key, _)| key.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        if is_setting { rest } else { line }
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
