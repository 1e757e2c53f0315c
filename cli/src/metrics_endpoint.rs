//! `kontiki node --metrics ADDR`: the node's measurements (the driver's,
//! listed in its `metrics` module, and the client port's) for Prometheus
//! to scrape, at `http://ADDR/metrics`.
//!
//! The recorder is `metrics-exporter-prometheus`'s; the HTTP side is the
//! least a scrape needs — one `GET` per connection, answered and closed —
//! served on the node's own runtime, whichever it is, so that no second
//! runtime runs beside it.

use std::net::SocketAddr;
use std::time::Duration;

use futures::io::{AsyncReadExt, AsyncWriteExt};
use kontiki_driver::Runtime;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::client_limits::within;

/// Buckets for durations, in seconds: 50 µs to 10 s.
const SECONDS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 10.0,
];
/// Buckets for entries per write.
const ENTRIES: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0];
/// The longest request head read.
const MAX_REQUEST: usize = 8 * 1024;
/// How long a scraper may take to send its request and read the answer.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

/// Installs the Prometheus recorder for the whole process.
pub fn install() -> Result<PrometheusHandle, String> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
        .and_then(|builder| {
            builder.set_buckets_for_metric(Matcher::Suffix("_entries".into()), ENTRIES)
        })
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|error| format!("cannot install the metrics recorder: {error}"))
}

/// Answers scrapes on `listener` until the process ends.
pub async fn serve<R: Runtime>(runtime: R, listener: R::Listener, handle: PrometheusHandle) {
    loop {
        match R::accept(&listener).await {
            Ok((stream, remote)) => {
                let handle = handle.clone();
                let timer = runtime.clone();
                runtime.spawn(async move {
                    if within(&timer, SCRAPE_TIMEOUT, answer(stream, &handle))
                        .await
                        .is_none()
                    {
                        tracing::debug!(%remote, "metrics request timed out");
                    }
                });
            }
            Err(error) => {
                tracing::warn!(%error, "cannot accept a metrics connection");
                runtime
                    .sleep_until(runtime.now() + Duration::from_millis(50))
                    .await;
            }
        }
    }
}

/// Reads one request head and answers it: the measurements for
/// `GET /metrics`, 404 for another path, 405 for another method.
async fn answer<S>(mut stream: S, handle: &PrometheusHandle)
where
    S: futures::io::AsyncRead + futures::io::AsyncWrite + Unpin,
{
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(read) => head.extend_from_slice(&chunk[..read]),
        }
        if head.len() > MAX_REQUEST {
            return;
        }
    }
    let line = head.split(|&byte| byte == b'\r').next().unwrap_or_default();
    let mut words = line.split(|&byte| byte == b' ');
    let (method, path) = (
        words.next().unwrap_or_default(),
        words.next().unwrap_or_default(),
    );
    let (status, body) = match (method, path) {
        (b"GET", b"/metrics") => {
            handle.run_upkeep();
            ("200 OK", handle.render())
        }
        (b"GET", _) => (
            "404 Not Found",
            "not found: the measurements are at /metrics\n".into(),
        ),
        _ => ("405 Method Not Allowed", "only GET\n".into()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.close().await;
}

/// Binds `address` for scrapes.
pub async fn bind<R: Runtime>(runtime: &R, address: SocketAddr) -> Result<R::Listener, String> {
    runtime
        .bind(address)
        .await
        .map_err(|error| format!("cannot listen for metrics on {address}: {error}"))
}
