//! The CloudWatch side of the local cloud against moto: EMF in a log group becomes metric data,
//! the gateway's `AWS/ApiGateway` metrics drive an alarm through OK → ALARM → OK with
//! CloudWatch's notification delivered through SNS to a subscribed queue.

// A test crate: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod cloud_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Metric, MetricDataQuery, MetricStat, StateValue};
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use books_local::cloudwatch::alarms::{Evaluator, State, Transition};
use books_local::cloudwatch::emf::Extraction;
use books_local::cloudwatch::metrics::{now_ms, publish};
use books_local::cloudwatch::{MetricSink, Statistic};
use books_local::gateway::Gateway;
use books_local::invoke::{InvokeOutcome, Invoker};
use cloud_support::{CloudFixture, RecordingInvoker};
use serde_json::{json, Value};

fn unique(what: &str) -> String {
    format!("{what}-{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// Sends everything recorded so far to CloudWatch.
async fn flush(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    recorded: tokio::sync::mpsc::UnboundedReceiver<books_local::cloudwatch::Datum>,
) {
    publish(cloudwatch.clone(), recorded, async {}).await;
}

/// One statistic of one metric over the last hour, in one period.
async fn series(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    name: &str,
    dimensions: &[(&str, &str)],
    stat: &str,
) -> Vec<f64> {
    let now = now_ms();
    let statistic = Statistic { namespace, name, dimensions, stat };
    statistic.values(cloudwatch, 3600, now - 3_600_000, now + 60_000).await.unwrap()
}

#[tokio::test]
async fn emf_in_a_log_group_becomes_metric_data_and_rejected_documents_are_counted() {
    let aws = cloud_support::aws().await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&aws);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&aws);
    let group = format!("/books/test/{}", unique("emf"));
    let namespace = unique("Namespace");
    logs.create_log_group().log_group_name(&group).send().await.unwrap();
    logs.create_log_stream().log_group_name(&group).log_stream_name("s").send().await.unwrap();
    let now = now_ms();
    let document = |value: &str| {
        json!({"_aws": {"Timestamp": now, "CloudWatchMetrics": [{"Namespace": namespace,
            "Dimensions": [["functionVersion"]], "Metrics": [{"Name": "time", "Unit": "Milliseconds"}]}]},
            "functionVersion": "$LATEST", "time": serde_json::from_str::<Value>(value).unwrap()})
        .to_string()
    };
    let events = [document("100"), "plain text".to_owned(), document("[20, 30]"), document("\"slow\"")];
    let mut put = logs.put_log_events().log_group_name(&group).log_stream_name("s");
    for message in events {
        put = put.log_events(InputLogEvent::builder().timestamp(now).message(message).build().unwrap());
    }
    put.send().await.unwrap();

    let (sink, recorded) = MetricSink::channel();
    let mut extraction = Extraction::new(logs.clone(), sink);
    let extracted = extraction.poll().await.unwrap();
    assert!(extracted >= 2, "both valid documents (other tests' groups may add more): {extracted}");
    assert_eq!(extraction.poll().await.unwrap(), 0, "each event is read once");
    // A document that arrives after those were read, stamped earlier (an extension's held-back
    // batch): extracted once, as at ingestion.
    let late = InputLogEvent::builder().timestamp(now - 5_000).message(document("7")).build().unwrap();
    logs.put_log_events().log_group_name(&group).log_stream_name("s").log_events(late).send().await.unwrap();
    assert_eq!(extraction.poll().await.unwrap(), 1, "the late document");
    assert_eq!(extraction.poll().await.unwrap(), 0);
    drop(extraction);
    flush(&cloudwatch, recorded).await;

    let dims = [("functionVersion", "$LATEST")];
    assert_eq!(series(&cloudwatch, &namespace, "time", &dims, "Sum").await, [157.0]);
    assert_eq!(series(&cloudwatch, &namespace, "time", &dims, "SampleCount").await, [4.0]);
    let errors = series(&cloudwatch, "AWS/Logs", "EMFValidationErrors", &[("LogGroupName", &group)], "Sum").await;
    assert_eq!(errors, [1.0], "the document whose value is text");
}

/// A queue subscribed to a new topic: what the topic publishes, read back.
struct Subscriber {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    topic_arn: String,
}

impl Subscriber {
    async fn create(aws: &aws_config::SdkConfig) -> Self {
        let sns = aws_sdk_sns::Client::new(aws);
        let sqs = aws_sdk_sqs::Client::new(aws);
        let topic_arn = sns.create_topic().name(unique("alarms")).send().await.unwrap().topic_arn().unwrap().to_owned();
        let queue_url =
            sqs.create_queue().queue_name(unique("inbox")).send().await.unwrap().queue_url().unwrap().to_owned();
        let arn_attribute = aws_sdk_sqs::types::QueueAttributeName::QueueArn;
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(arn_attribute.clone())
            .send()
            .await
            .unwrap();
        let queue_arn = attributes.attributes().unwrap()[&arn_attribute].clone();
        sns.subscribe().topic_arn(&topic_arn).protocol("sqs").endpoint(queue_arn).send().await.unwrap();
        Self { sqs, queue_url, topic_arn }
    }

    /// The alarm notifications received so far (the `Message` of each SNS envelope).
    async fn notifications(&self) -> Vec<Value> {
        let mut received = Vec::new();
        loop {
            let page =
                self.sqs.receive_message().queue_url(&self.queue_url).max_number_of_messages(10).send().await.unwrap();
            if page.messages().is_empty() {
                return received;
            }
            for message in page.messages() {
                let envelope: Value = serde_json::from_str(message.body().unwrap()).unwrap();
                received.push(serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap());
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(message.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
}

#[tokio::test]
async fn the_gateway_s_5xx_errors_drive_an_alarm_to_alarm_and_back_with_notifications() {
    let aws = cloud_support::aws().await;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&aws);
    let fixture = CloudFixture::create().await;
    let config = fixture.gateway_config().await;
    let key = config.usable_keys().next().unwrap().value.clone();
    let inbox = Subscriber::create(&aws).await;

    // A 10-second, 1-of-1 alarm, so that the test takes seconds; the evaluation is the same
    // code for the Terraform alarms' 60-second, 3-of-5 ones (unit tests replay those rules).
    let alarm = unique("api-5xx");
    cloudwatch
        .put_metric_alarm()
        .alarm_name(&alarm)
        .namespace("AWS/ApiGateway")
        .metric_name("5XXError")
        .dimensions(Dimension::builder().name("ApiName").value(&config.rest_api_name).build())
        .dimensions(Dimension::builder().name("Stage").value(&config.stage).build())
        .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
        .period(10)
        .evaluation_periods(1)
        .threshold(0.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .treat_missing_data("notBreaching")
        .alarm_actions(&inbox.topic_arn)
        .ok_actions(&inbox.topic_arn)
        .send()
        .await
        .unwrap();

    let failing = Arc::new(AtomicBool::new(true));
    let invoker = RecordingInvoker::new({
        let failing = Arc::clone(&failing);
        move |_| {
            let fail = failing.load(Ordering::SeqCst);
            async move {
                if fail {
                    InvokeOutcome::Failed { error_type: "Runtime.ExitError".into(), message: "crashed".into() }
                } else {
                    InvokeOutcome::Response(json!({"statusCode": 200, "body": "{}"}).to_string().into_bytes())
                }
            }
        }
    });
    let (sink, recorded) = MetricSink::channel();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let publisher = tokio::spawn(publish(cloudwatch.clone(), recorded, until_stopped(stopped.clone())));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/{}", listener.local_addr().unwrap(), config.stage);
    let stage = config.stage.clone();
    let gateway = Gateway::with_metrics(config, Arc::new(invoker) as Arc<dyn Invoker>, sink, None);
    let server = tokio::spawn(gateway.serve(listener, until_stopped(stopped.clone())));
    let evaluator =
        Evaluator::new(cloudwatch.clone(), aws_sdk_sns::Client::new(&aws), "us-east-1").with_alarm_name_prefix(&alarm);

    // Requests until the alarm's state is `want` (generous bound: a period must end first).
    let drive = |want: State| {
        let (base, key, evaluator) = (&base, &key, &evaluator);
        async move {
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                let reply = cloud_support::send("GET", &format!("{base}/books"), &[("x-api-key", key)], "").await;
                assert!(reply.status == 502 || reply.status == 200, "{}", reply.status);
                let transitions: Vec<Transition> = evaluator.evaluate_all().await.unwrap();
                if let Some(transition) = transitions.into_iter().find(|t| t.to == want) {
                    return transition;
                }
                assert!(Instant::now() < deadline, "the alarm never went to {want:?}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    let alarmed = drive(State::Alarm).await;
    // A new alarm starts with insufficient data; missing data treated as not breaching made it
    // OK at its first evaluation, before the first failing period ended.
    assert_eq!(alarmed.from, State::Ok);
    assert!(alarmed.reason.starts_with("Threshold Crossed: 1 out of the last 1 datapoints"), "{}", alarmed.reason);
    failing.store(false, Ordering::SeqCst);
    let recovered = drive(State::Ok).await;
    assert_eq!(recovered.from, State::Alarm);

    let _ = stop.send(true);
    server.await.unwrap();
    publisher.await.unwrap();

    let described = cloudwatch.describe_alarms().alarm_names(&alarm).send().await.unwrap();
    assert_eq!(described.metric_alarms()[0].state_value(), Some(&StateValue::Ok));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut notifications = Vec::new();
    while notifications.len() < 3 && Instant::now() < deadline {
        notifications.extend(inbox.notifications().await);
    }
    let states: Vec<(&str, &str)> = notifications
        .iter()
        .map(|n| (n["OldStateValue"].as_str().unwrap(), n["NewStateValue"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [("INSUFFICIENT_DATA", "OK"), ("OK", "ALARM"), ("ALARM", "OK")], "{notifications:?}");
    let first = &notifications[1];
    assert_eq!(first["AlarmName"], alarm.as_str());
    assert_eq!(first["Trigger"]["MetricName"], "5XXError");
    assert_eq!(first["Trigger"]["Namespace"], "AWS/ApiGateway");
    assert_eq!(first["Trigger"]["Period"], 10);

    // The gateway published its other metrics too, on the same dimensions.
    let dims = [("ApiName", fixture.rest_api_name.as_str()), ("Stage", stage.as_str())];
    let count = series(&cloudwatch, "AWS/ApiGateway", "Count", &dims, "Sum").await;
    let server_errors = series(&cloudwatch, "AWS/ApiGateway", "5XXError", &dims, "Sum").await;
    assert!(count[0] > server_errors[0] && server_errors[0] >= 1.0, "{count:?} {server_errors:?}");
    assert_eq!(series(&cloudwatch, "AWS/ApiGateway", "4XXError", &dims, "Sum").await, [0.0]);
    assert!(!series(&cloudwatch, "AWS/ApiGateway", "IntegrationLatency", &dims, "p99").await.is_empty());
}

#[tokio::test]
async fn a_function_that_runs_without_its_telemetry_trips_the_silence_alarm() {
    // The shape of Terraform's telemetry-silence alarm (metric math over the platform's
    // Invocations and the extension's Duration count), on 10-second periods.
    let aws = cloud_support::aws().await;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&aws);
    let function = unique("silent");
    let alarm = format!("{function}-telemetry-silence");
    let stat = |id: &str, namespace: &str, name: &str, dimension: (&str, &str), stat: &str| {
        let metric = Metric::builder()
            .namespace(namespace)
            .metric_name(name)
            .dimensions(Dimension::builder().name(dimension.0).value(dimension.1).build())
            .build();
        MetricDataQuery::builder()
            .id(id)
            .metric_stat(MetricStat::builder().metric(metric).period(10).stat(stat).build())
            .return_data(false)
            .build()
    };
    cloudwatch
        .put_metric_alarm()
        .alarm_name(&alarm)
        .metrics(
            MetricDataQuery::builder()
                .id("share")
                .expression("(FILL(reported, 0) + 2) / invocations")
                .return_data(true)
                .build(),
        )
        .metrics(stat("reported", "Books", "Duration", ("Service", &function), "SampleCount"))
        .metrics(stat("invocations", "AWS/Lambda", "Invocations", ("FunctionName", &function), "Sum"))
        .evaluation_periods(1)
        .threshold(0.5)
        .comparison_operator(ComparisonOperator::LessThanThreshold)
        .treat_missing_data("notBreaching")
        .send()
        .await
        .unwrap();
    let evaluator =
        Evaluator::new(cloudwatch.clone(), aws_sdk_sns::Client::new(&aws), "us-east-1").with_alarm_name_prefix(&alarm);
    // Each round records what happened since the last one, as the platform and the extension would.
    let until = |want: State, reported: bool| {
        let (cloudwatch, evaluator, function) = (&cloudwatch, &evaluator, &function);
        async move {
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                let (sink, recorded) = MetricSink::channel();
                sink.record(books_local::cloudwatch::Datum::now(
                    "AWS/Lambda",
                    "Invocations",
                    &[("FunctionName", function)],
                    "Count",
                    1.0,
                ));
                if reported {
                    sink.record(books_local::cloudwatch::Datum::now(
                        "Books",
                        "Duration",
                        &[("Service", function)],
                        "Milliseconds",
                        12.0,
                    ));
                }
                drop(sink);
                flush(cloudwatch, recorded).await;
                if let Some(t) = evaluator.evaluate_all().await.unwrap().into_iter().find(|t| t.to == want) {
                    return t;
                }
                assert!(Instant::now() < deadline, "the silence alarm never went to {want:?}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    let silent = until(State::Alarm, false).await;
    assert!(silent.reason.contains("less than the threshold (0.5)"), "{}", silent.reason);
    let heard = until(State::Ok, true).await;
    assert_eq!(heard.from, State::Alarm);
}
