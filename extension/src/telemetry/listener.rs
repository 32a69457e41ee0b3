//! The HTTP endpoint Lambda delivers telemetry to. It only reads the body, hands it over and
//! answers 200: parsing and shipping happen elsewhere, so delivery is never held up.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc::UnboundedSender;

/// Binds the listener; with port 0 the system picks a free one (see `local_addr`).
pub(crate) async fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(address).await
}

/// Serves deliveries until the process ends, sending each body to `deliveries`.
pub(crate) async fn serve(listener: TcpListener, deliveries: UnboundedSender<Bytes>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "telemetry listener: accept failed");
                continue;
            }
        };
        let deliveries = deliveries.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let deliveries = deliveries.clone();
                async move {
                    let status = match request.into_body().collect().await {
                        Ok(body) => {
                            // The receiver lives as long as the process; a send error means we are exiting.
                            let _ = deliveries.send(body.to_bytes());
                            StatusCode::OK
                        }
                        Err(_) => StatusCode::BAD_REQUEST,
                    };
                    let mut response = Response::new(Empty::<Bytes>::new());
                    *response.status_mut() = status;
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            if let Err(error) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(%error, "telemetry listener: connection ended");
            }
        });
    }
}
