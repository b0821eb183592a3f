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
    Serve(ServeArgs),
    /// Create a TLS certificate for the server's names and addresses.
    Cert(CertArgs),
    /// Write a consistent snapshot of the database and stored files.
    Backup(BackupArgs),
    /// Restore a snapshot into an empty data directory or database.
    Restore(RestoreArgs),
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
        Command::Audit {
            command: AuditCommand::Verify(store),
        } => {
            init_tracing("warn");
            return server::audit::verify_command(&store.resolve()?).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}
