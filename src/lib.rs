//! Intune MTD emulator: a stateful, multi-tenant emulator of Microsoft Intune's Mobile Threat
//! Defense connectors and the device-compliance Graph API around them.
//!
//! Layers: `http` (routing, extractors, the Graph envelope, OData) → `service` (use cases) →
//! `domain` (pure rules) and `schema` (Graph types as data) → `store` (SQLite or PostgreSQL).

pub mod clock;
pub mod config;
pub mod domain;
pub mod http;
pub mod identity;
pub mod odata;
pub mod schema;
pub mod seed;
pub mod service;
pub mod store;
pub mod telemetry;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::clock::SystemClock;
use crate::config::{DatabaseArgs, ServeArgs, TokenArgs};
use crate::http::AppState;

/// Serves `state` on `listener` until `shutdown` completes, then lets in-flight requests finish.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    http::ops::metrics_handle();
    let service = http::app(state);
    axum::serve(
        listener,
        axum::ServiceExt::<axum::extract::Request>::into_make_service(service),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Serves `state` over HTTPS on `listener` until `shutdown` completes: the same service, its
/// requests marked [`http::tls::Https`] so that absolute links name `https`.
pub async fn run_https(
    listener: http::tls::TlsListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    http::ops::metrics_handle();
    let service = tower::ServiceBuilder::new()
        .map_request(|mut req: axum::extract::Request| {
            req.extensions_mut().insert(http::tls::Https);
            req
        })
        .service(http::app(state));
    axum::serve(
        listener,
        axum::ServiceExt::<axum::extract::Request>::into_make_service(service),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// The HTTPS listener's TLS configuration: the operator's certificate (`--tls-cert`), or one
/// the deployment's local CA signs for the default names and `--tls-name`s.
pub async fn tls_config(store: &dyn store::Store, args: &config::TlsArgs) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let now = chrono::Utc::now();
    let (chain, key) = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let cert_pem = std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?;
            let key_pem = std::fs::read(key).with_context(|| format!("reading {}", key.display()))?;
            identity::tls::supplied_certificate(&cert_pem, &key_pem)?
        }
        _ => {
            let ca = identity::tls::authority(store, now).await?;
            identity::tls::server_certificate(&ca, &args.tls_names, now)?
        }
    };
    Ok(identity::tls::server_config(chain, key)?)
}

/// `ca`: the deployment's local certificate authority, as PEM.
pub async fn ca(args: DatabaseArgs) -> anyhow::Result<String> {
    let store = open_for_command(&args).await?;
    Ok(identity::tls::authority(store.as_ref(), chrono::Utc::now())
        .await?
        .certificate_pem)
}

/// `serve`: open and migrate the database, then serve until SIGTERM or SIGINT.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    args.check().map_err(anyhow::Error::msg)?;
    let clock: Arc<dyn clock::Clock> = Arc::new(SystemClock);
    let store = open_database(
        &args.database.database_url,
        &args.database.connect_options(),
        clock.clone(),
    )
    .await?;
    let app = service::App::new(store.clone(), clock.clone()).with_retention(args.retention());
    let state = AppState::new(app, args.server_config());
    http::ops::metrics_handle();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let tick = std::time::Duration::from_millis(args.worker_tick_ms.max(1));
    let worker = (!args.no_worker).then(|| {
        tracing::info!(tick_ms = args.worker_tick_ms, "background worker on");
        tokio::spawn(service::worker::run(
            service::worker::Worker::new(store.clone(), clock.clone()).with_retention(args.retention()),
            tick,
            stop_rx,
        ))
    });
    if args.worker_only {
        tracing::info!(database = store.backend(), "running the worker only");
        shutdown_signal().await;
        let _ = stop_tx.send(true);
        if let Some(w) = worker {
            let _ = w.await;
        }
        return Ok(());
    }
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let address = listener.local_addr()?;
    let https = if args.tls.no_https {
        None
    } else {
        let config = tls_config(store.as_ref(), &args.tls).await.context("preparing HTTPS")?;
        let tcp = TcpListener::bind(args.tls.https_listen)
            .await
            .with_context(|| format!("binding {} (--https-listen)", args.tls.https_listen))?;
        Some(http::tls::TlsListener::new(tcp, config)?)
    };
    let https_address = https.as_ref().map(axum::serve::Listener::local_addr).transpose()?;
    tracing::info!(address = %address, https = ?https_address, database = store.backend(), "serving");
    println!("{}", banner(&args, address, https_address));
    let stopping = tokio_util::sync::CancellationToken::new();
    tokio::spawn({
        let stopping = stopping.clone();
        async move {
            shutdown_signal().await;
            stopping.cancel();
        }
    });
    let plain = run(listener, state.clone(), stopping.clone().cancelled_owned());
    match https {
        Some(tls) => {
            tokio::try_join!(plain, run_https(tls, state, stopping.clone().cancelled_owned()))?;
        }
        None => plain.await?,
    }
    // In-flight requests are done; the worker finishes its batch under way.
    let _ = stop_tx.send(true);
    if let Some(w) = worker {
        let _ = w.await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// What a person starting the server needs to know first: what runs, on which database, where,
/// and what to do next.
fn banner(args: &ServeArgs, address: std::net::SocketAddr, https: Option<std::net::SocketAddr>) -> String {
    let base = args
        .public_url
        .clone()
        .map(|u| u.trim_end_matches('/').to_string())
        .unwrap_or_else(|| format!("http://{address}"));
    let worker = if args.no_worker {
        "off (--no-worker)".to_string()
    } else {
        format!("every {} ms", args.worker_tick_ms)
    };
    let control = if args.admin_key.is_some() {
        " -H 'authorization: Bearer <admin key>'"
    } else {
        ""
    };
    let https = match https {
        Some(a) => format!("\n\x20 https      https://{a} (trust the CA that `intune-mtd-emulator ca` prints)"),
        None => String::new(),
    };
    format!(
        "Intune MTD emulator {version}\n\
         \x20 database   {database}\n\
         \x20 listening  {base}{https}\n\
         \x20 worker     {worker}\n\
         \x20 API        {base}/openapi.yaml (every route), {base}/ (the surfaces)\n\
         \x20 next       create a tenant, as README.md's first session does:\n\
         \x20            curl -s -X POST {base}/_emulator/tenants{control} -H 'content-type: application/json' -d '{{}}'",
        version = env!("CARGO_PKG_VERSION"),
        database = store::describe_url(&args.database.database_url),
    )
}

/// Opens the database every subcommand works on and applies the migrations.
pub async fn open_database(
    url: &str,
    options: &store::ConnectOptions,
    clock: Arc<dyn clock::Clock>,
) -> anyhow::Result<Arc<dyn store::Store>> {
    let store = store::connect_with_clock(url, options, clock)
        .await
        .context("opening the database")?;
    store.migrate().await.context("applying migrations")?;
    Ok(store)
}

/// The database for a one-shot subcommand (`token`, `ca`): a small pool.
async fn open_for_command(args: &DatabaseArgs) -> anyhow::Result<Arc<dyn store::Store>> {
    let options = store::ConnectOptions {
        max_connections: 2,
        ..args.connect_options()
    };
    open_database(&args.database_url, &options, Arc::new(SystemClock)).await
}

/// `migrate`: apply the migrations and exit.
pub async fn migrate(args: DatabaseArgs) -> anyhow::Result<()> {
    let store = open_database(&args.database_url, &args.connect_options(), Arc::new(SystemClock)).await?;
    tracing::info!(database = store.backend(), "migrations applied");
    Ok(())
}

/// `token`: an access token for an app of a tenant, minted straight from the database.
pub async fn token(args: TokenArgs) -> anyhow::Result<String> {
    let store = open_for_command(&args.database).await?;
    let app = service::App::new(store, Arc::new(SystemClock));
    Ok(service::identity::mint_app_token(&app, &args.tenant, args.client_id).await?)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
