//! `kontiki node`: one durable node of a real cluster, serving the
//! replicated store to Redis clients until SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::sync::Arc;

use futures::channel::oneshot;
use kontiki_driver::{open_data_dir, NodeConfig, PeerTls, Runtime, ServerTls, Storage};
use metrics_exporter_prometheus::PrometheusHandle;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::auth::Auth;
use crate::client_limits::ClientLimits;
use crate::expiry;
use crate::kv::{KvStateMachine, Store};
use crate::metrics_endpoint;
use crate::server::{self, Service};
use crate::settings::{NodeSettings, RuntimeChoice};

/// Runs the node until a termination signal; an error is one line.
pub fn run(settings: NodeSettings) -> Result<(), String> {
    let directory = settings.data_dir.display().to_string();
    std::fs::create_dir_all(&settings.data_dir)
        .map_err(|error| format!("cannot create the data directory {directory}: {error}"))?;
    let storage = open_data_dir(&settings.data_dir)
        .map_err(|error| format!("cannot open the store in {directory}: {error}"))?;
    let secrets = Secrets::load(&settings)?;
    // Before the node starts: its measures register with the recorder.
    let scrapes = settings
        .metrics
        .map(|address| metrics_endpoint::install().map(|handle| (address, handle)))
        .transpose()?;
    reload_on_hangup(secrets.clone())?;
    let stop = termination_signal()?;
    match settings.runtime {
        RuntimeChoice::Tokio => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|error| format!("cannot start tokio: {error}"))?
            .block_on(async {
                serve(
                    kontiki_tokio::TokioRuntime::current(),
                    settings,
                    secrets,
                    scrapes,
                    storage,
                    stop,
                )
                .await
            }),
        RuntimeChoice::Smol => smol::block_on(serve(
            kontiki_smol::runtime(),
            settings,
            secrets,
            scrapes,
            storage,
            stop,
        )),
        RuntimeChoice::AsyncStd => async_std::task::block_on(serve(
            kontiki_async_std::runtime(),
            settings,
            secrets,
            scrapes,
            storage,
            stop,
        )),
    }
}

/// What a node reads from files that SIGHUP rereads: its peer TLS
/// material and its clients' users.
#[derive(Clone)]
struct Secrets {
    tls: Option<PeerTls>,
    auth: Arc<Auth>,
    client_tls: Option<ServerTls>,
}

impl Secrets {
    fn load(settings: &NodeSettings) -> Result<Secrets, String> {
        let tls = settings
            .tls
            .clone()
            .map(|files| {
                PeerTls::load(settings.id, files)
                    .map_err(|error| format!("cannot use the TLS files: {error}"))
            })
            .transpose()?;
        let auth = match &settings.auth_file {
            Some(path) => Auth::from_file(path)?,
            None => Auth::open(),
        };
        let client_tls = settings
            .client_tls
            .as_ref()
            .map(|(cert, key)| {
                ServerTls::load(cert, key)
                    .map_err(|error| format!("cannot use the client TLS files: {error}"))
            })
            .transpose()?;
        Ok(Secrets {
            tls,
            auth: Arc::new(auth),
            client_tls,
        })
    }

    /// Rereads every file, with one log line for each.
    fn reload(&self) {
        reloaded("TLS files", self.tls.as_ref().map(PeerTls::reload));
        reloaded(
            "client TLS files",
            self.client_tls.as_ref().map(ServerTls::reload),
        );
        reloaded(
            "auth file",
            self.auth.required().then(|| self.auth.reload()),
        );
    }
}

/// Logs how rereading `what` went (`None`: the node has none).
fn reloaded<E: std::fmt::Display>(what: &str, outcome: Option<Result<(), E>>) {
    match outcome {
        Some(Ok(())) => tracing::info!("SIGHUP: {what} reloaded"),
        Some(Err(error)) => {
            tracing::warn!(%error, "SIGHUP: {what} not reloaded; keeping what is in force")
        }
        None => {}
    }
}

/// On every SIGHUP, rereads the node's files (see [`Secrets::reload`]):
/// new peer connections use the TLS material they hold, new `AUTH`s the
/// users; on an error what is in force stays. A node without such files
/// logs the signal and goes on, so that a hangup never ends a node.
fn reload_on_hangup(secrets: Secrets) -> Result<(), String> {
    let mut signals = Signals::new([SIGHUP])
        .map_err(|error| format!("cannot install the SIGHUP handler: {error}"))?;
    std::thread::Builder::new()
        .name("reload".into())
        .spawn(move || {
            for _ in signals.forever() {
                if secrets.tls.is_none() && secrets.client_tls.is_none() && !secrets.auth.required()
                {
                    tracing::info!("SIGHUP: no files to reload");
                }
                secrets.reload();
            }
        })
        .map_err(|error| format!("cannot start the reload thread: {error}"))?;
    Ok(())
}

/// Completes on the first SIGTERM or SIGINT; a second one ends the
/// process at once, for an operator who will not wait (what was
/// acknowledged is durable either way).
fn termination_signal() -> Result<oneshot::Receiver<()>, String> {
    let mut signals = Signals::new([SIGTERM, SIGINT])
        .map_err(|error| format!("cannot install the signal handlers: {error}"))?;
    let (sender, receiver) = oneshot::channel();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut arrivals = signals.forever();
            if arrivals.next().is_some() {
                let _ = sender.send(());
            }
            if arrivals.next().is_some() {
                eprintln!("kontiki: second signal; exiting without a graceful shutdown");
                std::process::exit(1);
            }
        })
        .map_err(|error| format!("cannot start the signal thread: {error}"))?;
    Ok(receiver)
}

async fn serve<R: Runtime>(
    runtime: R,
    settings: NodeSettings,
    secrets: Secrets,
    scrapes: Option<(SocketAddr, PrometheusHandle)>,
    storage: Box<dyn Storage>,
    stop: oneshot::Receiver<()>,
) -> Result<(), String> {
    // The client port first: if it is taken, fail before joining the
    // cluster.
    let client_listener = runtime
        .bind(settings.client)
        .await
        .map_err(|error| format!("cannot listen for clients on {}: {error}", settings.client))?;
    let scrapes = match scrapes {
        Some((address, handle)) => Some((metrics_endpoint::bind(&runtime, address).await?, handle)),
        None => None,
    };
    let mut config = NodeConfig::new(settings.id, settings.listen, settings.peers);
    config.cluster_id = settings.cluster_id;
    config.snapshot_interval = settings.snapshot_interval;
    config.advertise = settings.advertise;
    config.join = settings.join;
    config.client_addresses = settings.client_addresses.clone();
    config.tls = secrets.tls;
    let store = Store::default();
    let handle = kontiki_driver::start(
        runtime.clone(),
        config,
        storage,
        KvStateMachine::new(store.clone()),
    )
    .await
    .map_err(|error| error.to_string())?;
    tracing::info!(
        node = settings.id.get(),
        peers = %settings.listen,
        clients = %settings.client,
        data = %settings.data_dir.display(),
        "node started"
    );
    let (limits, lowered) = ClientLimits::fitted(
        settings.max_clients,
        settings.client_addresses.len(),
        settings.client_idle_timeout,
    );
    if let Some(lowered) = lowered {
        tracing::warn!("{lowered}");
    }
    let service = Arc::new(Service {
        handle: handle.clone(),
        store,
        client_addresses: settings.client_addresses,
        limits,
        clients: Arc::default(),
        auth: secrets.auth,
        tls: secrets.client_tls,
    });
    runtime.spawn(expiry::expire_due_keys(
        runtime.clone(),
        handle.clone(),
        service.store.clone(),
    ));
    runtime.spawn(server::serve(runtime.clone(), client_listener, service));
    if let Some((listener, handle)) = scrapes {
        runtime.spawn(metrics_endpoint::serve(runtime.clone(), listener, handle));
    }
    let _ = stop.await;
    tracing::info!(node = settings.id.get(), "shutting down");
    handle.shutdown().await;
    tracing::info!(node = settings.id.get(), "stopped");
    Ok(())
}
