//! API Gateway REST (payload v1) proxy events as the `v1` stage sends them, turned into the
//! `lambda_http::Request` the handlers receive in Lambda.

use serde_json::{json, Map, Value};

pub(crate) const TEST_API_KEY_ID: &str = "testkeyid01";

/// Builder of one proxy event.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    query: Vec<(String, String)>,
    body: Option<String>,
    base64: bool,
    api_key_id: String,
}

impl ApiRequest {
    /// A request of `method` to `path` (under the stage, e.g. `/books/01J…`).
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            query: Vec::new(),
            body: None,
            base64: false,
            api_key_id: TEST_API_KEY_ID.to_owned(),
        }
    }

    /// A GET.
    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }

    /// A POST.
    pub fn post(path: &str) -> Self {
        Self::new("POST", path)
    }

    /// A PUT.
    pub fn put(path: &str) -> Self {
        Self::new("PUT", path)
    }

    /// A DELETE.
    pub fn delete(path: &str) -> Self {
        Self::new("DELETE", path)
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Adds a query string parameter.
    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.query.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A JSON body with `Content-Type: application/json`.
    pub fn json(self, body: &Value) -> Self {
        self.header("Content-Type", "application/json").raw_body(&body.to_string())
    }

    /// A body as it is, without a content type.
    pub fn raw_body(mut self, body: &str) -> Self {
        self.body = Some(body.to_owned());
        self
    }

    /// Sends the body base64-encoded, as API Gateway does for binary media types.
    pub fn base64_body(mut self, bytes: &[u8]) -> Self {
        use base64::Engine as _;
        self.body = Some(base64::engine::general_purpose::STANDARD.encode(bytes));
        self.base64 = true;
        self
    }

    /// The id of the API key the gateway validated (`requestContext.identity.apiKeyId`).
    pub fn api_key_id(mut self, id: &str) -> Self {
        self.api_key_id = id.to_owned();
        self
    }

    /// The event exactly as API Gateway would send it to the Lambda function.
    pub fn event(&self) -> Value {
        let (resource, path_parameters) = match self.path.trim_end_matches('/').strip_prefix("/books/") {
            Some(id) if !id.contains('/') => ("/books/{id}".to_owned(), json!({ "id": id })),
            _ => (self.path.clone(), Value::Null),
        };
        let mut headers = Map::new();
        let mut multi_headers: Map<String, Value> = Map::new();
        let defaults = [("Host", "abc123.execute-api.us-east-1.amazonaws.com"), ("User-Agent", "books-testkit")];
        for (name, value) in defaults.iter().map(|(n, v)| (n.to_string(), v.to_string())).chain(self.headers.clone()) {
            headers.insert(name.clone(), Value::String(value.clone()));
            match multi_headers.get_mut(&name) {
                Some(Value::Array(values)) => values.push(Value::String(value)),
                _ => {
                    multi_headers.insert(name, json!([value]));
                }
            }
        }
        let (query, multi_query) = if self.query.is_empty() {
            (Value::Null, Value::Null)
        } else {
            let mut single = Map::new();
            let mut multi: Map<String, Value> = Map::new();
            for (name, value) in &self.query {
                single.insert(name.clone(), Value::String(value.clone()));
                match multi.get_mut(name) {
                    Some(Value::Array(values)) => values.push(Value::String(value.clone())),
                    _ => {
                        multi.insert(name.clone(), json!([value]));
                    }
                }
            }
            (Value::Object(single), Value::Object(multi))
        };
        let request_id = ulid::Ulid::new().to_string().to_lowercase();
        json!({
            "resource": resource,
            "path": self.path,
            "httpMethod": self.method,
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": query,
            "multiValueQueryStringParameters": multi_query,
            "pathParameters": path_parameters,
            "stageVariables": null,
            "requestContext": {
                "resourceId": "r3s0urc3",
                "resourcePath": resource,
                "httpMethod": self.method,
                "extendedRequestId": format!("ext-{request_id}"),
                "requestTime": "24/Nov/2026:12:00:00 +0000",
                "path": format!("/v1{}", self.path),
                "accountId": "123456789012",
                "protocol": "HTTP/1.1",
                "stage": "v1",
                "domainPrefix": "abc123",
                "requestTimeEpoch": 1795521600000u64,
                "requestId": request_id,
                "identity": {
                    "cognitoIdentityPoolId": null,
                    "accountId": null,
                    "cognitoIdentityId": null,
                    "caller": null,
                    "sourceIp": "127.0.0.1",
                    "principalOrgId": null,
                    "accessKey": null,
                    "cognitoAuthenticationType": null,
                    "cognitoAuthenticationProvider": null,
                    "userArn": null,
                    "userAgent": "books-testkit",
                    "user": null,
                    "apiKey": "test-api-key-value",
                    "apiKeyId": self.api_key_id
                },
                "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
                "apiId": "abc123"
            },
            "body": self.body,
            "isBase64Encoded": self.base64
        })
    }

    /// The request the handler gets in Lambda, parsed by `lambda_http` from the event.
    pub fn build(&self) -> lambda_http::Request {
        lambda_http::request::from_str(&self.event().to_string()).expect("lambda_http parses the proxy event")
    }
}
