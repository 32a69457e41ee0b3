//! The CloudWatch Logs client's settings from the environment Lambda gives every process of a
//! function, its extensions included: the region (`AWS_REGION`), the execution role's
//! credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) and, where
//! one is set (the local cloud), the endpoint the SDKs read from
//! `AWS_ENDPOINT_URL_CLOUDWATCH_LOGS` or `AWS_ENDPOINT_URL`.
//!
//! Read here rather than through aws-config's default chain: in Lambda these variables are the
//! whole of it, and the chain's other sources (profiles, SSO, web identity through STS, ECS and
//! EC2 metadata) were a fifth of the extension's binary, a second thread and runtime at each
//! cold start to load them, and memory held for its life (bench/report.md, section 10).

use aws_sdk_cloudwatchlogs::config::{BehaviorVersion, Builder, Credentials, Region};

/// What a credentials object says it came from (the SDK prints it in its diagnostics).
const CREDENTIALS_SOURCE: &str = "Lambda environment";

/// The client's settings from `lookup` (the process environment in production). Without a
/// region or credentials the settings are left unset, and every call fails with the SDK's own
/// message saying which, as it would with aws-config.
pub(crate) fn client_settings(lookup: impl Fn(&str) -> Option<String>) -> Builder {
    let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let mut settings = Builder::new().behavior_version(BehaviorVersion::latest());
    if let Some(region) = get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")) {
        settings = settings.region(Region::new(region));
    }
    if let (Some(key), Some(secret)) = (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
        let credentials = Credentials::new(key, secret, get("AWS_SESSION_TOKEN"), None, CREDENTIALS_SOURCE);
        settings = settings.credentials_provider(credentials);
    }
    if let Some(endpoint) = get("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS").or_else(|| get("AWS_ENDPOINT_URL")) {
        settings = settings.endpoint_url(endpoint);
    }
    settings
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudwatchlogs::error::DisplayErrorContext;
    use aws_sdk_cloudwatchlogs::Client;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn client(vars: &[(&str, String)]) -> Client {
        let settings = client_settings(|name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone()));
        Client::from_conf(settings.http_client(crate::ship::https_client()).build())
    }

    /// One request's head, as a listener on 127.0.0.1 received it (answered with an empty
    /// JSON document), while `call` runs.
    async fn received(call: impl std::future::Future<Output = ()>, listener: tokio::net::TcpListener) -> String {
        let serve = async {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                let mut byte = [0u8; 1];
                socket.read_exact(&mut byte).await.unwrap();
                head.push(byte[0]);
            }
            let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: 2\r\n\r\n{}";
            socket.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8(head).unwrap().to_lowercase()
        };
        let (head, ()) = tokio::join!(serve, call);
        head
    }

    #[tokio::test]
    async fn calls_go_to_the_endpoint_signed_with_the_role_s_credentials_for_the_region() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let logs = client(&[
            ("AWS_REGION", "eu-west-1".into()),
            ("AWS_DEFAULT_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE".into()),
            ("AWS_SECRET_ACCESS_KEY", "secret".into()),
            ("AWS_SESSION_TOKEN", "the-session-token".into()),
            // The service's own variable wins over the general one (which points nowhere).
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1".into()),
            ("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", format!("http://127.0.0.1:{port}")),
        ]);
        let call = async {
            logs.create_log_stream()
                .log_group_name("g")
                .log_stream_name("s")
                .send()
                .await
                .expect("the listener's answer");
        };
        let head = received(call, listener).await;
        assert!(head.contains("credential=asiaexample/") && head.contains("/eu-west-1/logs/aws4_request"), "{head}");
        assert!(head.contains("x-amz-security-token: the-session-token"), "{head}");
        assert!(head.contains(&format!("host: 127.0.0.1:{port}")), "{head}");
    }

    #[tokio::test]
    async fn without_a_region_or_credentials_a_call_says_which_is_missing() {
        let endpoint = ("AWS_ENDPOINT_URL", "http://127.0.0.1:1".to_owned());
        let no_region =
            client(&[("AWS_ACCESS_KEY_ID", "k".into()), ("AWS_SECRET_ACCESS_KEY", "s".into()), endpoint.clone()]);
        let error = no_region.create_log_stream().log_group_name("g").log_stream_name("s").send().await.unwrap_err();
        assert!(format!("{}", DisplayErrorContext(&error)).contains("region"), "{}", DisplayErrorContext(&error));
        let no_credentials =
            client(&[("AWS_REGION", "eu-west-1".into()), ("AWS_ACCESS_KEY_ID", "only the key".into()), endpoint]);
        let error =
            no_credentials.create_log_stream().log_group_name("g").log_stream_name("s").send().await.unwrap_err();
        assert!(format!("{}", DisplayErrorContext(&error)).contains("credentials"), "{}", DisplayErrorContext(&error));
    }
}
