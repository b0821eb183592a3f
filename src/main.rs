//! The `dangwu` command: serve, create certificates, back up and restore,
//! and verify the audit trail.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use server::config::{ServeArgs, StoreArgs};

#[derive(Parser)]
#[command(
    name = "dangwu",
    version,
    about = "党务: self-hosted collaboration and video meetings for party organizations"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Create a TLS certificate for the server's names and addresses.
    Cert(CertArgs),
    /// Write a consistent snapshot of the database and stored files.
    Backup(BackupArgs),
    /// Restore a snapshot into an empty data directory or database.
    Restore(RestoreArgs),
    /// Check an exported approval record offline: signatures and body hashes.
    VerifyRecord(VerifyRecordArgs),
    /// Audit trail commands.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(clap::Args)]
struct CertArgs {
    /// DNS names and IP addresses, e.g. `dangwu.intranet 10.0.0.5`.
    #[arg(required = true)]
    names: Vec<String>,
    /// Output certificate (PEM).
    #[arg(long, default_value = "dangwu-cert.pem")]
    cert: PathBuf,
    /// Output private key (PEM, mode 0600).
    #[arg(long, default_value = "dangwu-key.pem")]
    key: PathBuf,
    /// Intranet CA certificate (PEM) to sign with; self-signed without it.
    #[arg(long, requires = "ca_key")]
    ca_cert: Option<PathBuf>,
    /// Intranet CA private key (PEM).
    #[arg(long, requires = "ca_cert")]
    ca_key: Option<PathBuf>,
    /// Validity in days.
    #[arg(long, default_value_t = 825)]
    days: u32,
}

#[derive(clap::Args)]
struct BackupArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Output file (.tar).
    #[arg(long, short)]
    out: PathBuf,
}

#[derive(clap::Args)]
struct RestoreArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Snapshot written by `dangwu backup`.
    #[arg(long, short)]
    from: PathBuf,
}

#[derive(clap::Args)]
struct VerifyRecordArgs {
    /// The record, as exported from a document's page: the JSON file or the
    /// PDF that carries it.
    file: PathBuf,
    /// The deployment's public key (64 hex digits, as published by its
    /// administrators), or its key file (audit-signing-key.pem). Without it
    /// the key inside the record is used, which proves only that the record
    /// is internally consistent.
    #[arg(long)]
    key: Option<String>,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check every hash link and the signed head; exit 1 naming the first bad entry.
    Verify(StoreArgs),
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            let config = args.resolve()?;
            init_tracing(&config.log_level);
            let server = server::serve::Server::bind(config).await?;
            println!("Dangwu is listening on {}", server.state.config.public_url);
            server.run(server::serve::shutdown_signal()).await?;
        }
        Command::Cert(args) => {
            server::cert::create(&server::cert::CertRequest {
                names: args.names,
                out_cert: args.cert.clone(),
                out_key: args.key.clone(),
                ca: args.ca_cert.zip(args.ca_key),
                days: args.days,
            })?;
            println!("wrote {} and {}", args.cert.display(), args.key.display());
        }
        Command::Backup(args) => {
            init_tracing("warn");
            let summary = server::backup::backup(&args.store.resolve()?, &args.out).await?;
            println!("{summary}");
        }
        Command::Restore(args) => {
            init_tracing("warn");
            let summary = server::backup::restore(&args.store.resolve()?, &args.from).await?;
            println!("{summary}");
        }
        Command::VerifyRecord(args) => return verify_record(&args),
        Command::Audit {
            command: AuditCommand::Verify(store),
        } => {
            init_tracing("warn");
            return server::audit::verify_command(&store.resolve()?).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn verify_record(args: &VerifyRecordArgs) -> anyhow::Result<ExitCode> {
    use server::approvals::record::{ApprovalRecord, parse_key, verify_record};
    use server::approvals::record_pdf::embedded_record;
    let mut bytes = std::fs::read(&args.file)
        .map_err(|error| anyhow::anyhow!("failed to read {}: {error}", args.file.display()))?;
    if bytes.starts_with(b"%PDF-") {
        bytes = embedded_record(&bytes)
            .map_err(|error| anyhow::anyhow!("{}: {error}", args.file.display()))?;
    }
    let record: ApprovalRecord = serde_json::from_slice(&bytes).map_err(|error| {
        anyhow::anyhow!("{} is not an approval record: {error}", args.file.display())
    })?;
    let key = match &args.key {
        Some(key) if std::path::Path::new(key).is_file() => {
            parse_key(&std::fs::read_to_string(key)?)?
        }
        Some(key) => parse_key(key)?,
        None => {
            println!(
                "no --key given: checking against the key inside the record ({})",
                record.public_key
            );
            parse_key(&record.public_key)?
        }
    };
    if hex_of(&key) != record.public_key {
        println!(
            "record names key {}, checking against {}",
            record.public_key,
            hex_of(&key)
        );
    }
    match verify_record(&record, &key) {
        Ok(summary) => {
            println!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
        Err(fault) => {
            println!("record invalid: {fault}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn hex_of(key: &ed25519_dalek::VerifyingKey) -> String {
    key.to_bytes().iter().map(|b| format!("{b:02x}")).collect()
}
