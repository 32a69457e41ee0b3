//! The HTTP endpoint Lambda delivers telemetry to. It only reads the body, hands it over and
//! answers 200: parsing and shipping happen elsewhere. It holds little: a body is read up to
//! [`MAX_DELIVERY_BYTES`] (413 beyond), and only once the queue to the pipeline has room for it
//! ([`DELIVERY_QUEUE`]); while the pipeline is behind, the answer waits, and the Telemetry API
//! keeps the records in its own buffer (reporting `platform.logsDropped` when that overflows).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use telemetry_schema::subscription::MAX_BYTES;
use tokio::net::{TcpListener, TcpStream};
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

/// Where the listener's connections come from: the socket, or a script in tests.
pub(crate) trait Accept {
    /// The next connection.
    fn accept(&mut self) -> impl std::future::Future<Output = std::io::Result<TcpStream>> + Send;
}

impl Accept for TcpListener {
    async fn accept(&mut self) -> std::io::Result<TcpStream> {
        TcpListener::accept(self).await.map(|(stream, _)| stream)
    }
}

/// The wait after an accept that failed for a reason of our own (out of file descriptors or
/// memory), doubling from the first to the last while failures go on: retrying at once would
/// spin a core the function needs, and the failure lasts until something is released.
pub(crate) const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));

/// Serves deliveries until the process ends, sending each body to `deliveries`.
pub(crate) async fn serve(mut listener: impl Accept, deliveries: mpsc::Sender<Bytes>) {
    let mut backoff = ACCEPT_BACKOFF.0;
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => {
                backoff = ACCEPT_BACKOFF.0;
                stream
            }
            // That one connection went away before it was taken: the next one is fine.
            Err(error) if is_connection_error(&error) => {
                tracing::debug!(%error, "telemetry listener: a connection ended before it was accepted");
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = backoff.as_millis(), "telemetry listener: accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
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

fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(error.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset)
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

    /// Accepts as scripted: `None` is a real connection (a client of its own socket), an error
    /// kind is a failed accept; after the script, nothing more comes. Records when each call
    /// came, on tokio's clock.
    struct Script {
        steps: std::collections::VecDeque<Option<std::io::ErrorKind>>,
        calls: std::sync::Arc<std::sync::Mutex<Vec<tokio::time::Instant>>>,
        socket: TcpListener,
    }

    impl Accept for Script {
        async fn accept(&mut self) -> std::io::Result<TcpStream> {
            self.calls.lock().unwrap().push(tokio::time::Instant::now());
            match self.steps.pop_front() {
                Some(Some(kind)) => Err(std::io::Error::from(kind)),
                Some(None) => {
                    let address = self.socket.local_addr()?;
                    let (_client, accepted) = tokio::join!(TcpStream::connect(address), self.socket.accept());
                    accepted.map(|(stream, _)| stream)
                }
                None => std::future::pending().await,
            }
        }
    }

    /// The gaps between the accept calls of `steps`, once all of them were made.
    async fn gaps(steps: Vec<Option<std::io::ErrorKind>>) -> Vec<Duration> {
        let calls = std::sync::Arc::default();
        let socket = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
        let count = steps.len() + 1;
        let script = Script { steps: steps.into(), calls: std::sync::Arc::clone(&calls), socket };
        let (deliveries, _incoming) = queue();
        let serving = tokio::spawn(serve(script, deliveries));
        while calls.lock().unwrap().len() < count {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        serving.abort();
        let calls = calls.lock().unwrap();
        calls.windows(2).map(|pair| pair[1] - pair[0]).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn failed_accepts_back_off_doubling_and_a_connection_resets_the_wait() {
        use std::io::ErrorKind::{ConnectionAborted, Other, OutOfMemory};
        let (first, last) = ACCEPT_BACKOFF;
        let out_of_files = Other; // EMFILE maps to no kind of its own
        let mut steps = vec![Some(out_of_files); 9];
        steps.extend([None, Some(OutOfMemory), Some(ConnectionAborted)]);
        let gaps = gaps(steps).await;
        let waits: Vec<Duration> = (0..9).map(|n| (first * 2u32.pow(n)).min(last)).collect();
        for (n, wait) in waits.iter().enumerate() {
            assert!(gaps[n] >= *wait, "after failure {n}: waited {:?}, at least {wait:?} expected", gaps[n]);
        }
        assert_eq!(waits[8], last, "the wait stops growing at {last:?}");
        assert!(gaps[9] < last, "a connection came: the next failure waits the least again ({:?})", gaps[9]);
        assert!(gaps[10] >= first, "and still waits: {:?}", gaps[10]);
        assert!(gaps[11] < first, "a connection that went away is retried at once: {:?}", gaps[11]);
    }
}
