//! `books-local invoke` with every sample event of `events/`, each run by the function it is
//! meant for, from the images' root file systems, against the local endpoint the local cloud
//! was provisioned on: the projector accepts the stream batch (and projects its book), the query
//! function then answers the book and the list, the command function creates a book (once: its
//! `Idempotency-Key` answers a second run the same). Each run prints the platform's REPORT.
//!
//! Ignored by a plain `cargo test`: `scripts/e2e-local` runs it with `--ignored` once its cloud
//! stopped, with the endpoint (`books-local endpoint`) and `BOOKS_INVOKE_ROOTFS`.

// A test crate: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

use serde_json::Value;

fn invoke(function: &str, event: &str) -> Output {
    let rootfs = std::env::var("BOOKS_INVOKE_ROOTFS")
        .expect("BOOKS_INVOKE_ROOTFS: the images' root file systems (scripts/e2e-local sets it)");
    let endpoint = books_testkit::endpoint();
    let events = books_testkit::workspace_root().join("events");
    let output = Command::new(env!("CARGO_BIN_EXE_books-local"))
        .args(["invoke", function, "--endpoint", endpoint, "--rootfs", &rootfs, "--event"])
        .arg(events.join(event))
        .output()
        .expect("run books-local invoke");
    eprintln!("--- books-local invoke {function} --event events/{event}\n{}", String::from_utf8_lossy(&output.stderr));
    output
}

/// The REPORT line of the only invocation, and the response the command printed.
fn answered(output: &Output) -> Value {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit {:?}: {stderr}", output.status);
    let reports: Vec<&str> = stderr.lines().filter(|l| l.starts_with("REPORT RequestId: ")).collect();
    assert_eq!(reports.len(), 1, "{stderr}");
    for field in ["\tDuration: ", "\tBilled Duration: ", "\tMemory Size: ", "\tMax Memory Used: ", "\tInit Duration: "]
    {
        assert!(reports[0].contains(field), "{field:?} missing from {}", reports[0]);
    }
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)))
}

fn body(response: &Value) -> Value {
    serde_json::from_str(response["body"].as_str().unwrap()).unwrap()
}

#[test]
#[ignore = "needs a provisioned local endpoint and the images' root file systems (scripts/e2e-local)"]
fn every_sample_event_is_accepted_by_its_function() {
    let projected = answered(&invoke("projector", "projector-insert-book.json"));
    assert_eq!(projected["batchItemFailures"], Value::Array(vec![]), "{projected}");

    let book = answered(&invoke("query", "query-get-book.json"));
    assert_eq!(book["statusCode"], 200, "{book}");
    assert_eq!(body(&book)["title"], "Dune");
    let list = answered(&invoke("query", "query-list-books.json"));
    assert_eq!(list["statusCode"], 200, "{list}");
    let listed = body(&list);
    let titles: Vec<&str> = listed["items"].as_array().unwrap().iter().filter_map(|b| b["title"].as_str()).collect();
    assert!(titles.contains(&"Dune"), "{listed}");

    let created = answered(&invoke("command", "command-create-book.json"));
    assert_eq!(created["statusCode"], 201, "{created}");
    let again = answered(&invoke("command", "command-create-book.json"));
    assert_eq!(body(&again), body(&created), "the same Idempotency-Key answers the first response again");
}

#[test]
#[ignore = "needs a provisioned local endpoint and the images' root file systems (scripts/e2e-local)"]
fn an_event_that_is_not_json_or_a_function_that_is_not_there_is_a_clear_failure() {
    let rootfs = std::env::var("BOOKS_INVOKE_ROOTFS").unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_books-local"))
            .args(["invoke"])
            .args(args)
            .args(["--endpoint", books_testkit::endpoint(), "--rootfs", &rootfs])
            .output()
            .unwrap()
    };
    let not_json = std::env::temp_dir().join(format!("books-invoke-{}.json", std::process::id()));
    std::fs::write(&not_json, "title=Dune").unwrap();
    let output = run(&["query", "--event", not_json.to_str().unwrap()]);
    let _ = std::fs::remove_file(&not_json);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("the event is not JSON"), "{output:?}");
    let output = run(&["nothing-of-that-name"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no function \"nothing-of-that-name\""), "{output:?}");
}
