//! Command line and environment configuration, read once at start-up.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The default embedded database: created (with its folder) on first start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./data/emulator.db";

#[derive(Debug, Parser)]
#[command(
    name = "intune-mtd-emulator",
    version,
    about = "Emulates Microsoft Intune's Mobile Threat Defense connectors and device-compliance Graph API"
)]
pub struct Cli {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the Graph, identity, partner and control-plane APIs.
    Serve(ServeArgs),
    /// Apply the database migrations and exit.
    Migrate(DatabaseArgs),
    /// Print an access token for an app of a tenant (the tenant's bootstrap admin app by default).
    Token(TokenArgs),
    /// Fill a new tenant from a YAML or JSON file: users, groups, devices by the thousand,
    /// connectors, policies and their assignments (see examples/seed.yaml).
    Seed(SeedArgs),
    /// Print the deployment's local certificate authority (PEM), creating it if none exists yet:
    /// trust it to reach the HTTPS listener (see README, "HTTPS").
    Ca(DatabaseArgs),
    /// Print the OpenAPI document (`openapi.yaml`): openapi/source.yaml with each Graph route
    /// per API version and the Graph schemas generated from the schema tables.
    Openapi,
}

#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The seed file, YAML or JSON.
    pub file: std::path::PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// `sqlite://path` (created if missing) or `postgres://user@host/db`.
    #[arg(long, env = "MTD_EMULATOR_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// Upper bound of the database connection pool.
    #[arg(long, env = "MTD_EMULATOR_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,
    /// How long a request waits for a database connection (PostgreSQL) before it is answered
    /// 503 with `Retry-After`, in milliseconds: while the database is down, requests fail this
    /// fast instead of hanging.
    #[arg(long, env = "MTD_EMULATOR_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 2000)]
    pub db_acquire_timeout_ms: u64,
    /// How long start-up keeps trying an unreachable PostgreSQL, in seconds (for a container
    /// started beside its database). 0 tries once and exits, naming the server and the cause.
    #[arg(
        long,
        env = "MTD_EMULATOR_WAIT_FOR_DATABASE",
        default_value_t = 0,
        value_name = "SECONDS"
    )]
    pub wait_for_database: u64,
}

impl DatabaseArgs {
    pub fn connect_options(&self) -> crate::store::ConnectOptions {
        crate::store::ConnectOptions {
            max_connections: self.db_max_connections,
            acquire_timeout: std::time::Duration::from_millis(self.db_acquire_timeout_ms.max(1)),
            wait: std::time::Duration::from_secs(self.wait_for_database),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Address to listen on: `IP:PORT`, `localhost:PORT`, a host name and port, or `:PORT`
    /// (the default address, 127.0.0.1, on that port).
    #[arg(long, env = "MTD_EMULATOR_LISTEN", default_value = "127.0.0.1:8080", value_parser = parse_listen)]
    pub listen: SocketAddr,
    /// Bearer key the control plane (`/_emulator`) requires. Without one the control plane is
    /// open, which is only allowed while listening on a loopback address.
    #[arg(long, env = "MTD_EMULATOR_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// Base URL clients use to reach the server, for absolute links (`@odata.nextLink`,
    /// OpenID configuration). Defaults to `http://` + the request's Host header.
    #[arg(long, env = "MTD_EMULATOR_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Largest request body accepted, in bytes; larger ones get 413.
    #[arg(long, env = "MTD_EMULATOR_BODY_LIMIT", default_value_t = 4 * 1024 * 1024)]
    pub body_limit: usize,
    /// How often the background worker looks for due and queued work, in milliseconds.
    #[arg(long, env = "MTD_EMULATOR_WORKER_TICK_MS", default_value_t = 1000)]
    pub worker_tick_ms: u64,
    /// Serve without the background worker (another replica runs it, or tests settle).
    #[arg(long, env = "MTD_EMULATOR_NO_WORKER", conflicts_with = "worker_only")]
    pub no_worker: bool,
    /// Run the background worker alone, without serving HTTP.
    #[arg(long, env = "MTD_EMULATOR_WORKER_ONLY")]
    pub worker_only: bool,
    /// Do not log a line per request (at `info`: method, route, status, latency, tenant and
    /// request id).
    #[arg(long, env = "MTD_EMULATOR_NO_REQUEST_LOG")]
    pub no_request_log: bool,
    /// Days of each tenant's event log, sent messages and fired-action records kept, on the
    /// tenant's clock. Records of actions whose episode is still open are kept whatever their age.
    #[arg(long, env = "MTD_EMULATOR_RETENTION_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub retention_days: u32,
    /// Records each of those logs keeps per tenant at most (open episodes' records excepted).
    #[arg(long, env = "MTD_EMULATOR_RETENTION_RECORDS", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub retention_records: u64,
    #[command(flatten)]
    pub tls: TlsArgs,
}

#[derive(Debug, Clone, Args)]
pub struct TlsArgs {
    /// Address of the HTTPS listener (the same forms as --listen). Its certificate is signed by
    /// the deployment's local CA (`intune-mtd-emulator ca` prints it) unless --tls-cert is given.
    #[arg(long, env = "MTD_EMULATOR_HTTPS_LISTEN", default_value = "127.0.0.1:8443", value_parser = parse_listen)]
    pub https_listen: SocketAddr,
    /// Serve plain HTTP only.
    #[arg(long, env = "MTD_EMULATOR_NO_HTTPS")]
    pub no_https: bool,
    /// More names (DNS names or IP addresses) the generated server certificate covers, besides
    /// localhost, 127.0.0.1 and ::1. Repeat the flag, or separate them with commas.
    #[arg(long = "tls-name", env = "MTD_EMULATOR_TLS_NAMES", value_delimiter = ',')]
    pub tls_names: Vec<String>,
    /// A PEM certificate chain to serve instead of one the local CA signs (with --tls-key).
    #[arg(long, env = "MTD_EMULATOR_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "MTD_EMULATOR_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The tenant id.
    #[arg(long)]
    pub tenant: String,
    /// The app's client id; the tenant's bootstrap admin app when omitted.
    #[arg(long)]
    pub client_id: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log format.
    #[arg(long, global = true, env = "MTD_EMULATOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter in `tracing` syntax, e.g. `info` or `intune_mtd_emulator=debug,sqlx=warn`.
    #[arg(long, global = true, env = "MTD_EMULATOR_LOG", default_value = "info")]
    pub log_filter: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `--listen`: `IP:PORT`, `:PORT` (on 127.0.0.1), or `HOST:PORT` (`localhost` is 127.0.0.1;
/// another name is resolved, its first IPv4 address preferred).
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let refuse = || {
        format!("expected IP:PORT, HOST:PORT or :PORT (such as 127.0.0.1:8080, localhost:8080 or :8080), got '{text}'")
    };
    let (host, port) = text.rsplit_once(':').ok_or_else(refuse)?;
    let port: u16 = port.parse().map_err(|_| refuse())?;
    match host {
        "" | "localhost" => Ok(SocketAddr::from(([127, 0, 0, 1], port))),
        host => {
            use std::net::ToSocketAddrs;
            let found: Vec<SocketAddr> = (host, port)
                .to_socket_addrs()
                .map_err(|e| format!("cannot resolve '{host}' for --listen: {e}"))?
                .collect();
            found
                .iter()
                .find(|a| a.is_ipv4())
                .or(found.first())
                .copied()
                .ok_or_else(|| format!("'{host}' has no address for --listen"))
        }
    }
}

/// What the HTTP layer needs to know of the configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub admin_key: Option<String>,
    pub public_url: Option<String>,
    pub body_limit: usize,
    /// Log a line per request.
    pub request_log: bool,
}

impl ServeArgs {
    /// Refuses configurations that would expose an unauthenticated control plane.
    pub fn check(&self) -> Result<(), String> {
        if self.admin_key.as_deref().is_some_and(str::is_empty) {
            return Err("MTD_EMULATOR_ADMIN_KEY / --admin-key must not be empty".into());
        }
        let https_in_the_open = !self.tls.no_https && !self.tls.https_listen.ip().is_loopback();
        if self.admin_key.is_none() && (!self.listen.ip().is_loopback() || https_in_the_open) {
            return Err(format!(
                "refusing to listen on {} without an admin key: the control plane (/_emulator) would be open \
                 to the network. Set --admin-key (or MTD_EMULATOR_ADMIN_KEY), or listen on a loopback address \
                 such as 127.0.0.1.",
                if self.listen.ip().is_loopback() {
                    self.tls.https_listen
                } else {
                    self.listen
                }
            ));
        }
        if let Some(url) = &self.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!("--public-url must start with http:// or https://, got '{url}'"));
            }
        }
        Ok(())
    }

    pub fn retention(&self) -> crate::service::worker::Retention {
        crate::service::worker::Retention {
            max_age: chrono::Duration::days(i64::from(self.retention_days)),
            max_records: self.retention_records,
        }
    }

    pub fn server_config(&self) -> ServerConfig {
        ServerConfig {
            admin_key: self.admin_key.clone(),
            public_url: self.public_url.as_ref().map(|u| u.trim_end_matches('/').to_string()),
            body_limit: self.body_limit,
            request_log: !self.no_request_log,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_takes_a_port_alone_and_localhost() {
        assert_eq!(serve(&["--listen", ":8095"]).listen, "127.0.0.1:8095".parse().unwrap());
        assert_eq!(
            serve(&["--listen", "localhost:8091"]).listen,
            "127.0.0.1:8091".parse().unwrap()
        );
        assert_eq!(serve(&["--listen", "[::1]:8092"]).listen, "[::1]:8092".parse().unwrap());
        assert_eq!(serve(&["--listen", "0.0.0.0:80"]).listen, "0.0.0.0:80".parse().unwrap());
        for bad in ["8080", "localhost", ":http", "localhost:99999"] {
            let err = parse_listen(bad).unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
    }

    fn serve(args: &[&str]) -> ServeArgs {
        let mut argv = vec!["intune-mtd-emulator", "serve"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Serve(s) => s,
            other => panic!("expected serve, got {other:?}"),
        }
    }

    #[test]
    fn defaults_listen_on_loopback_with_the_embedded_database() {
        let s = serve(&[]);
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.database.database_url, DEFAULT_DATABASE_URL);
        assert!(s.check().is_ok());
    }

    #[test]
    fn a_public_address_without_an_admin_key_is_refused() {
        let err = serve(&["--listen", "0.0.0.0:8080"]).check().unwrap_err();
        assert!(err.contains("without an admin key"), "{err}");
        assert!(serve(&["--listen", "0.0.0.0:8080", "--admin-key", "k"]).check().is_ok());
        assert!(serve(&["--listen", "[::1]:8080"]).check().is_ok());
    }

    #[test]
    fn an_empty_admin_key_is_refused() {
        assert!(serve(&["--admin-key", ""]).check().is_err());
    }
}
