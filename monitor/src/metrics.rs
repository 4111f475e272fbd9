//! Prometheus metrics: counters the monitor updates, and a tiny HTTP responder
//! that serves them on a loopback address.
//!
//! Hand-written rather than a web framework: it answers one GET with one text
//! body, and the monitor should not carry a second HTTP server stack for that.
//! The endpoint has no authentication, which is why the configuration only
//! accepts loopback addresses.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::config::InstanceRef;

/// The monitor's counters. Shared between the poll loop and the responder.
#[derive(Debug, Default)]
pub struct Metrics {
    polls: AtomicU64,
    api_errors: AtomicU64,
    changes_published: AtomicU64,
    promotions: AtomicU64,
    fenced: AtomicU64,
    last_change_unix: AtomicU64,
    writer: Mutex<Option<InstanceRef>>,
}

impl Metrics {
    /// A new, zeroed set.
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    pub(crate) fn poll(&self) {
        self.polls.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn api_error(&self) {
        self.api_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn published(&self, at: SystemTime) {
        self.changes_published.fetch_add(1, Ordering::Relaxed);
        let secs = at
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        self.last_change_unix.store(secs, Ordering::Relaxed);
    }

    pub(crate) fn promoted(&self) {
        self.promotions.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn fenced(&self) {
        self.fenced.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set_writer(&self, writer: Option<InstanceRef>) {
        *self.writer.lock().unwrap_or_else(|p| p.into_inner()) = writer;
    }

    /// Changes published so far (for tests and the exit summary).
    pub fn changes_published(&self) -> u64 {
        self.changes_published.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, v: &AtomicU64| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                v.load(Ordering::Relaxed)
            ));
        };
        counter(
            &mut out,
            "ssm_db_monitor_polls_total",
            "Polls started.",
            &self.polls,
        );
        counter(
            &mut out,
            "ssm_db_monitor_api_errors_total",
            "AWS calls that failed.",
            &self.api_errors,
        );
        counter(
            &mut out,
            "ssm_db_monitor_changes_published_total",
            "Parameter writes that changed the endpoint.",
            &self.changes_published,
        );
        counter(
            &mut out,
            "ssm_db_monitor_promotions_total",
            "Replicas promoted.",
            &self.promotions,
        );
        counter(
            &mut out,
            "ssm_db_monitor_fenced_total",
            "Old primaries stopped.",
            &self.fenced,
        );
        out.push_str(&format!(
            "# HELP ssm_db_monitor_last_change_timestamp_seconds When an endpoint was last published (0: never).\n# TYPE ssm_db_monitor_last_change_timestamp_seconds gauge\nssm_db_monitor_last_change_timestamp_seconds {}\n",
            self.last_change_unix.load(Ordering::Relaxed)
        ));
        out.push_str("# HELP ssm_db_monitor_current_writer The instance the monitor considers the writer (1), if any.\n# TYPE ssm_db_monitor_current_writer gauge\n");
        if let Some(w) = &*self.writer.lock().unwrap_or_else(|p| p.into_inner()) {
            out.push_str(&format!(
                "ssm_db_monitor_current_writer{{instance=\"{}\",region=\"{}\"}} 1\n",
                w.id, w.region
            ));
        }
        out
    }
}

/// Serves `GET /metrics` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut head = Vec::with_capacity(512);
            let mut buf = [0u8; 512];
            // Read the request head only (no body is expected), within a
            // budget, so that an idle connection cannot pin a task forever.
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
                    let n = stream.read(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    head.extend_from_slice(&buf[..n]);
                }
                Ok::<_, std::io::Error>(())
            })
            .await;
            if !matches!(read, Ok(Ok(()))) {
                return;
            }
            let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
            let (status, body) =
                if line.starts_with(b"GET /metrics ") || line.starts_with(b"GET /metrics?") {
                    ("200 OK", metrics.render())
                } else {
                    ("404 Not Found", "not found: try GET /metrics\n".to_owned())
                };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}
