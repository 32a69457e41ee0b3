//! The HTTP endpoint Lambda delivers telemetry to. It only reads the body, hands it over and
//! answers 200: parsing and shipping happen elsewhere. It holds little: a body is read up to
//! [`MAX_DELIVERY_BYTES`] (413 beyond), and only once the queue to the pipeline has room for it
//! ([`DELIVERY_QUEUE`]); while the pipeline is behind, the answer waits, and the Telemetry API
//! keeps the records in its own buffer (reporting `platform.logsDropped` when that overflows).

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use telemetry_schema::subscription::MAX_BYTES;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// The largest delivery read: twice the Telemetry API's largest `maxBytes` (1 MiB), which counts
/// the records, not the JSON array around them nor the escaping of their text.
pub(crate) const MAX_DELIVERY_BYTES: usize = 2 * *MAX_BYTES.range.end() as usize;

/// Deliveries between the listener and the pipeline, read or being read: at most this many
/// times [`MAX_DELIVERY_BYTES`] are held there.
pub(crate) const DELIVERY_QUEUE: usize = 8;

/// The queue from the listener to the pipeline.
pub(crate) fn queue() -> (mpsc::Sender<Bytes>, mpsc::Receiver<Bytes>) {
    mpsc::channel(DELIVERY_QUEUE)
}

/// Binds the listener; with port 0 the system picks a free one (see `local_addr`).
pub(crate) async fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(address).await
}

/// Serves deliveries until the process ends, sending each body to `deliveries`.
pub(crate) async fn serve(listener: TcpListener, deliveries: mpsc::Sender<Bytes>) {
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
                    let mut response = Response::new(Empty::<Bytes>::new());
                    *response.status_mut() = deliver(request, &deliveries).await;
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            if let Err(error) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(%error, "telemetry listener: connection ended");
            }
        });
    }
}

/// Reads one delivery into the queue; the status to answer.
async fn deliver(request: Request<Incoming>, deliveries: &mpsc::Sender<Bytes>) -> StatusCode {
    let body = request.into_body();
    if body.size_hint().lower() > MAX_DELIVERY_BYTES as u64 {
        return too_large();
    }
    // A place in the queue before the body is read: waiting here is the back-pressure.
    let Ok(place) = deliveries.reserve().await else {
        // The pipeline is gone: the process is exiting.
        return StatusCode::SERVICE_UNAVAILABLE;
    };
    match Limited::new(body, MAX_DELIVERY_BYTES).collect().await {
        Ok(body) => {
            place.send(body.to_bytes());
            StatusCode::OK
        }
        Err(error) if error.is::<LengthLimitError>() => too_large(),
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

fn too_large() -> StatusCode {
    tracing::warn!(limit = MAX_DELIVERY_BYTES, "telemetry listener: a delivery over the limit was refused");
    StatusCode::PAYLOAD_TOO_LARGE
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use http_body_util::Full;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn start() -> (SocketAddr, mpsc::Receiver<Bytes>) {
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
        let address = listener.local_addr().unwrap();
        let (deliveries, incoming) = queue();
        tokio::spawn(serve(listener, deliveries));
        (address, incoming)
    }

    async fn post(address: SocketAddr, body: Vec<u8>) -> StatusCode {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let request = Request::post(format!("http://{address}/")).body(Full::new(Bytes::from(body))).unwrap();
        client.request(request).await.unwrap().status()
    }

    /// A delivery sent in chunks, without a length announced: only reading tells its size.
    async fn post_chunked(address: SocketAddr, bytes: usize) -> String {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let head = "POST / HTTP/1.1\r\nhost: sandbox\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
        stream.write_all(head.as_bytes()).await.unwrap();
        let chunk = vec![b' '; 64 << 10];
        let mut sent = 0;
        while sent < bytes {
            let size = chunk.len().min(bytes - sent);
            let framed = [format!("{size:x}\r\n").as_bytes(), &chunk[..size], b"\r\n"].concat();
            // The listener may answer and close before taking everything.
            if stream.write_all(&framed).await.is_err() {
                break;
            }
            sent += size;
        }
        let _ = stream.write_all(b"0\r\n\r\n").await;
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer).await;
        answer
    }

    #[tokio::test]
    async fn a_delivery_over_the_limit_is_413_and_never_reaches_the_pipeline() {
        assert_eq!(MAX_DELIVERY_BYTES, 2 << 20, "twice the Telemetry API's largest maxBytes");
        let (address, mut incoming) = start().await;
        assert_eq!(post(address, vec![b' '; MAX_DELIVERY_BYTES + 1]).await, StatusCode::PAYLOAD_TOO_LARGE);
        let answer = post_chunked(address, MAX_DELIVERY_BYTES + (64 << 10)).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "unannounced, refused once read past the limit: {answer:?}");
        assert!(incoming.try_recv().is_err(), "nothing over the limit was handed over");

        assert_eq!(post(address, vec![b' '; MAX_DELIVERY_BYTES]).await, StatusCode::OK, "the limit itself is fine");
        assert_eq!(incoming.recv().await.unwrap().len(), MAX_DELIVERY_BYTES);
    }

    #[tokio::test]
    async fn a_pipeline_behind_holds_the_answer_until_it_takes_a_delivery() {
        const { assert!(DELIVERY_QUEUE <= 16, "a small queue: Lambda feels the back-pressure soon") };
        let (address, mut incoming) = start().await;
        for n in 0..DELIVERY_QUEUE {
            assert_eq!(post(address, format!("[{n}]").into_bytes()).await, StatusCode::OK);
        }
        // The pipeline has taken nothing: the next delivery waits for its answer.
        let mut next = tokio::spawn(post(address, b"[\"next\"]".to_vec()));
        // Bounded, and only ever long enough: a slow machine answers later, never sooner.
        assert!(
            tokio::time::timeout(Duration::from_secs(1), &mut next).await.is_err(),
            "answered while the queue was full"
        );
        assert_eq!(incoming.recv().await.unwrap(), "[0]");
        let answered = tokio::time::timeout(Duration::from_secs(30), next).await.expect("answered once there is room");
        assert_eq!(answered.unwrap(), StatusCode::OK);
        for n in 1..DELIVERY_QUEUE {
            assert_eq!(incoming.recv().await.unwrap(), format!("[{n}]"));
        }
        assert_eq!(incoming.recv().await.unwrap(), "[\"next\"]", "in order, nothing lost");
    }
}
