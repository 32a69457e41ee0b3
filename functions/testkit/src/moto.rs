//! The local AWS endpoint. `make test` starts one moto server for the whole run and passes it
//! in `BOOKS_TEST_AWS_ENDPOINT`; a bare `cargo test` starts a private one on a free port that
//! dies with the test process.

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

pub(crate) const REGION: &str = "us-east-1";

/// The endpoint URL of the moto server every test talks to.
pub fn endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| match std::env::var("BOOKS_TEST_AWS_ENDPOINT") {
        Ok(url) if !url.is_empty() => url,
        _ => start_private_moto(),
    })
}

/// AWS SDK configuration aimed at moto with fake credentials.
pub async fn aws_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .endpoint_url(endpoint())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "books-testkit"))
        .load()
        .await
}

/// The SDK's HTTP client on rustls with ring, as everywhere in the workspace (see its manifest).
pub(crate) fn http_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}

fn start_private_moto() -> String {
    let python = crate::workspace_root().join(".venv/bin/python");
    let launcher = crate::workspace_root().join("scripts/moto_server.py");
    assert!(
        python.exists(),
        "the project's venv with moto is missing at {}.\nFix: run `make venv` (or run the tests with `make test-rust`).",
        python.display()
    );
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port");
    // The child is spawned from a thread that lives as long as the process: PR_SET_PDEATHSIG
    // fires when the spawning *thread* ends, and then moto must end with us.
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut command = Command::new(python);
        command
            .arg(launcher)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: prctl is async-signal-safe and touches only the child's own state.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = command.spawn();
        let _ = sender.send(child.map(|c| c.stderr));
        loop {
            std::thread::park();
        }
    });
    let mut stderr = receiver.recv().expect("moto spawner").expect("spawn moto server").expect("piped stderr");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            let mut log = String::new();
            let _ = stderr.read_to_string(&mut log);
            panic!("moto server did not start on {url}:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    url
}
