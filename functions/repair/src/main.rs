//! `books-repair`: replays the projector's failure queue or rebuilds the read model of one
//! environment (make aws-lambda-replay / aws-lambda-rebuild-view; see the crate's docs).
//! Credentials, region and endpoint come the way every AWS SDK reads them.

use std::process::ExitCode;

use books::store::{BookStore, ViewStore};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Repair an environment's read model")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply again the batches the projector gave up on, then remove them from its failure queue.
    Replay {
        /// The failure queue (URL or name).
        #[arg(long)]
        queue: String,
        /// The read model's table.
        #[arg(long)]
        view_table: String,
    },
    /// Make the read model show the write model, while the API and the projector go on.
    RebuildView {
        /// The write model's table.
        #[arg(long)]
        table: String,
        /// The read model's table.
        #[arg(long)]
        view_table: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("BOOKS_LOG").unwrap_or_else(|_| "warn".into()))
        .init();
    let aws = books::config::aws().await;
    let dynamodb = books::config::dynamodb(&aws);
    match Cli::parse().command {
        Command::Replay { queue, view_table } => {
            let view = ViewStore::new(dynamodb, view_table);
            let queue_url = match queue_url(&aws, &queue).await {
                Ok(url) => url,
                Err(err) => {
                    return fail(&format!(
                        "the failure queue {queue}: {}",
                        aws_sdk_sqs::error::DisplayErrorContext(&err)
                    ))
                }
            };
            match books_repair::replay(&aws, &queue_url, &view).await {
                Ok(report) => {
                    println!(
                        "replayed {} batches ({} records, {} view items changed)",
                        report.batches, report.records, report.changed
                    );
                    for left in &report.left {
                        println!("left in the queue: {left}");
                    }
                    if report.left.is_empty() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(err) => fail(&format!("the failure queue: {}", aws_sdk_sqs::error::DisplayErrorContext(&err))),
            }
        }
        Command::RebuildView { table, view_table } => {
            let store = BookStore::new(dynamodb.clone(), table);
            let view = ViewStore::new(dynamodb, view_table);
            match books_repair::rebuild_view(&store, &view, chrono::Utc::now().timestamp()).await {
                Ok(report) => {
                    println!(
                        "rebuilt the view of {} books: {} items written ({} tombstones), {} newer ones kept",
                        report.books, report.written, report.tombstones, report.newer_kept
                    );
                    ExitCode::SUCCESS
                }
                Err(err) => fail(&format!("{err}: {:?}", std::error::Error::source(&err))),
            }
        }
    }
}

/// A queue's URL from its URL or its name.
async fn queue_url(aws: &aws_config::SdkConfig, queue: &str) -> Result<String, aws_sdk_sqs::Error> {
    if queue.starts_with("https://") || queue.starts_with("http://") {
        return Ok(queue.to_owned());
    }
    let found = aws_sdk_sqs::Client::new(aws).get_queue_url().queue_name(queue).send().await?;
    // GetQueueUrl always names the URL when it answers.
    Ok(found.queue_url.unwrap_or_default())
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}
