//! Serving HTTP on the daemon's own thread: the accept loop, the connection cap, and one HTTP/1.1
//! service per connection, spawned beside the registry and the socket's sessions.
//!
//! Why not `actix_web::HttpServer`: it serves from worker threads of its own, so every request that
//! asks the registry crossed threads twice (there and back), each crossing a wake-up of a sleeping
//! thread. A status read over HTTP took 2.7-4.3 times the socket's; served here it crosses none.
//! The daemon's HTTP traffic is light, so one thread is plenty, and it costs no thread when idle.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix_http::HttpService;
use actix_service::{map_config, IntoServiceFactory, Service, ServiceFactory, ServiceFactoryExt};
use actix_web::dev::AppConfig;
use actix_web::App;
use pm_actors::counters::{self, Transport};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// A running server: where it listens, and the loop that accepts for it.
pub struct Serving {
    /// The bound address (the port the kernel chose for `:0`).
    pub addr: SocketAddr,
    accept: tokio::task::JoinHandle<()>,
}

impl Serving {
    /// Stops accepting. Open connections end with the daemon's system.
    pub fn stop(self) {
        self.accept.abort();
    }
}

/// Binds `addr` and serves `app` there on the current thread, at most `max_connections` at once (the
/// next waits to be accepted until one closes); a request must arrive within `request_timeout`.
pub async fn serve<F, T, B>(
    addr: SocketAddr,
    max_connections: usize,
    request_timeout: Duration,
    app: F,
) -> Result<Serving, String>
where
    F: FnOnce() -> App<T>,
    T: actix_service::ServiceFactory<
            actix_web::dev::ServiceRequest,
            Config = (),
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    B: actix_web::body::MessageBody + 'static,
{
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen for HTTP on {addr}: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot listen for HTTP on {addr}: {e}"))?;
    let host = addr.to_string();
    let factory = HttpService::build()
        .client_request_timeout(request_timeout)
        .client_disconnect_timeout(Duration::from_secs(1))
        .local_addr(addr)
        .h1(map_config(
            app().into_factory().map_err(|e| e.error_response()),
            move |_| AppConfig::__priv_test_new(false, host.clone(), addr),
        ));
    let service = Rc::new(
        factory
            .new_service(())
            .await
            .map_err(|()| "cannot build the HTTP service".to_string())?,
    );
    let slots = Arc::new(Semaphore::new(max_connections));
    let accept = actix_rt::spawn(async move {
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, most likely: wait a little rather than spin.
                    tracing::warn!("HTTP accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let service = Rc::clone(&service);
            actix_rt::spawn(async move {
                // Counted as open in the metrics until the connection ends.
                let _open = counters::daemon().connections(Transport::Http).opened();
                if let Err(e) = service.call((stream, Some(peer))).await {
                    tracing::debug!("HTTP connection from {peer}: {e:?}");
                }
                drop(slot);
            });
        }
    });
    Ok(Serving { addr, accept })
}
