//! End to end through the local cloud that `scripts/e2e-local` started (`books-local up`: Terraform
//! applied to the local endpoint, the stage served): keys, routes, throttling and the contract across the
//! command function, the stream poller, the projector and the query function.
//!
//! Ignored by a plain `cargo test` (it needs the cloud running) rather than hidden behind a
//! feature: the whole workspace then builds with one set of features, once.

// A test crate: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

struct Reply {
    status: u16,
    headers: http::HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

struct Api {
    base: String,
    key: String,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

impl Api {
    /// The cloud `scripts/e2e-local` started, from the ready file books-local wrote.
    fn from_ready_file() -> Self {
        let path = std::env::var("BOOKS_LOCAL_READY")
            .unwrap_or_else(|_| panic!("BOOKS_LOCAL_READY is not set: run this suite with `make test-local-e2e`"));
        let ready = books_local::serve::Ready::read(path.as_ref()).unwrap_or_else(|e| panic!("{path}: {e}"));
        Self {
            base: ready.base_url,
            key: ready.api_key.unwrap_or_else(|| panic!("{path} has no API key")),
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Reply {
        let mut request = http::Request::builder().method(method).uri(format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let response = self.client.request(request.body(Full::new(body)).unwrap()).await.expect("the gateway answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = String::from_utf8_lossy(&response.into_body().collect().await.unwrap().to_bytes()).into_owned();
        Reply { status, headers, body }
    }

    async fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&Value>) -> Reply {
        self.send(method, path, Some(&self.key), headers, body).await
    }

    /// Polls until the read model shows `status` for `path` (projection is asynchronous).
    async fn eventually(&self, path: &str, status: u16) -> Reply {
        for _ in 0..300 {
            let reply = self.call("GET", path, &[], None).await;
            if reply.status == status {
                return reply;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("GET {path} never answered {status}");
    }
}

fn book() -> Value {
    json!({"title": "The Left Hand of Darkness", "authors": ["Ursula K. Le Guin"], "isbn": "978-0-441-47812-5",
           "published_year": 1969, "tags": ["sci-fi"]})
}

#[tokio::test]
#[ignore = "needs a running local cloud: `make test-local-e2e` starts one and runs this with --ignored"]
async fn the_local_cloud_serves_the_books_api_behind_keys_and_a_usage_plan() {
    let api = Api::from_ready_file();
    let id = ulid::Ulid::new().to_string();
    let routes = [
        ("POST", "/books".to_owned()),
        ("GET", "/books".to_owned()),
        ("GET", format!("/books/{id}")),
        ("PUT", format!("/books/{id}")),
        ("DELETE", format!("/books/{id}")),
    ];

    // Every route refuses a request without a key, or with a key that does not exist.
    for (method, path) in &routes {
        for key in [None, Some("not-a-key")] {
            let reply = api.send(method, path, key, &[], None).await;
            assert_eq!(reply.status, 403, "{method} {path} with {key:?}");
            assert_eq!(reply.json(), json!({"message": "Forbidden"}));
            assert_eq!(reply.headers["x-amzn-errortype"], "ForbiddenException");
            assert!(reply.headers.contains_key("x-amzn-requestid"));
        }
    }
    // Unknown resources and methods look like API Gateway's.
    for (method, path) in [("GET", "/authors"), ("PATCH", "/books")] {
        let reply = api.call(method, path, &[], None).await;
        assert_eq!(reply.status, 403, "{method} {path}");
        assert_eq!(reply.json(), json!({"message": "Missing Authentication Token"}));
    }

    // The contract, through command → stream → projector → query.
    let created = api.call("POST", "/books", &[("idempotency-key", "e2e-1")], Some(&book())).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert!(created.headers.contains_key("x-amz-apigw-id") && created.headers.contains_key("x-amzn-trace-id"));
    assert_eq!(created.headers["etag"], "\"1\"");
    let book_id = created.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(created.headers["location"], format!("/v1/books/{book_id}"));
    let replay = api.call("POST", "/books", &[("idempotency-key", "e2e-1")], Some(&book())).await;
    assert_eq!((replay.status, replay.body.as_str()), (201, created.body.as_str()));
    let taken = api.call("POST", "/books", &[], Some(&book())).await;
    assert_eq!(taken.status, 409, "the ISBN is taken: {}", taken.body);
    assert_eq!(taken.headers["content-type"], "application/problem+json");
    let path = format!("/books/{book_id}");
    let read = api.eventually(&path, 200).await;
    assert_eq!(read.json(), created.json());
    assert_eq!(api.call("GET", &path, &[("if-none-match", "\"1\"")], None).await.status, 304);
    let listed = api.call("GET", "/books?author=ursula%20k.%20le%20guin&limit=5", &[], None).await.json();
    assert!(listed["items"].as_array().unwrap().iter().any(|b| b["id"] == book_id.as_str()));
    assert_eq!(api.call("PUT", &path, &[], Some(&book())).await.status, 428);
    let mut changed = book();
    changed["tags"] = json!(["classic"]);
    let replaced = api.call("PUT", &path, &[("if-match", "\"1\"")], Some(&changed)).await;
    assert_eq!((replaced.status, replaced.headers["etag"].to_str().unwrap()), (200, "\"2\""));
    assert_eq!(api.call("DELETE", &path, &[("if-match", "\"1\"")], None).await.status, 412);
    let invalid = api.call("POST", "/books", &[], Some(&json!({"title": ""}))).await;
    assert_eq!(invalid.status, 400);
    assert_eq!(invalid.headers["content-type"], "application/problem+json");
    assert_eq!(api.call("DELETE", &path, &[("if-match", "\"2\"")], None).await.status, 204);
    api.eventually(&path, 404).await;

    // A burst over the usage plan's rate (set low for this suite) meets 429s, not errors. Sent
    // at once: one after the other, a loaded machine could answer slower than the refill rate.
    let path = format!("/books/{id}");
    let replies = futures::future::join_all((0..80).map(|_| api.call("GET", &path, &[], None))).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert!(statuses.iter().all(|s| *s == 404 || *s == 429), "{statuses:?}");
    let reply = replies
        .into_iter()
        .find(|r| r.status == 429)
        .unwrap_or_else(|| panic!("a burst of 80 over burst 20 / rate 10 is throttled: {statuses:?}"));
    assert_eq!(reply.json(), json!({"message": "Too Many Requests"}));
    assert_eq!(reply.headers["x-amzn-errortype"], "TooManyRequestsException");
}
