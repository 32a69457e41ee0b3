//! `cloud` reads back, from moto, everything the Terraform root module creates: the REST API's
//! routes and integrations, stage throttling, usage plan, keys, functions and the mapping.

// A test crate: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod cloud_support;

use std::path::Path;
use std::time::Duration;

use books_local::cloud::{self, StartingPosition};
use books_local::gateway::{Quota, QuotaPeriod, Throttle};
use books_local::invoke::AliasRoute;
use cloud_support::{CloudFixture, PlanLimits, METHODS, STAGE};

#[tokio::test]
async fn the_topology_terraform_created_reads_back_whole() {
    let limits = PlanLimits { rate: 50.0, burst: 100, quota: 10_000, quota_offset: 5 };
    let fixture = CloudFixture::create_with(limits).await;
    let tables = books_testkit::TestTables::create().await;
    let stream_arn = cloud_support::stream_arn(&tables).await;
    let mapping_uuid = fixture.map_stream(&stream_arn).await;

    let topology = cloud::read(&fixture.aws, &fixture.rest_api_id, STAGE).await.expect("read");
    let gateway = &topology.gateway;
    assert_eq!(gateway.rest_api_id, fixture.rest_api_id);
    assert_eq!(gateway.rest_api_name, fixture.rest_api_name);
    assert_eq!(gateway.stage, STAGE);
    assert_eq!(gateway.account_id, cloud_support::ACCOUNT);
    assert_eq!(gateway.binary_media_types, ["application/octet-stream"]);
    assert_eq!(gateway.stage_variables["tables"], fixture.rest_api_name, "the fixture names both books-<suffix>");
    assert!(gateway.deployment_id.is_some());
    assert_eq!(gateway.integration_timeout, Duration::from_secs(29));

    // Every method of the table, with its key requirement, function and timeout.
    for (path, http_method, function, key_required) in METHODS {
        let resource = gateway.resources.iter().find(|r| r.path == *path).unwrap_or_else(|| panic!("resource {path}"));
        assert_eq!(resource.id, fixture.resource_ids[*path]);
        let method = &resource.methods[*http_method];
        assert_eq!(method.http_method, *http_method);
        assert_eq!(method.api_key_required, *key_required, "{http_method} {path}");
        let expected = if *function == "command" { &fixture.command.name } else { &fixture.query.name };
        assert_eq!(&method.function_name, expected, "{http_method} {path}");
        assert_eq!(method.qualifier.as_deref(), Some("live"), "{http_method} {path} invokes the alias");
        assert_eq!(method.timeout, Some(Duration::from_secs(29)));
        let throttle = if (*path, *http_method) == ("/books/{id}", "PUT") {
            Throttle { rate: 20.0, burst: 10 }
        } else {
            Throttle { rate: 1000.0, burst: 2000 }
        };
        assert_eq!(method.throttle, Some(throttle), "{http_method} {path}");
    }
    let method_count: usize = gateway.resources.iter().map(|r| r.methods.len()).sum();
    assert_eq!(method_count, METHODS.len(), "no method more");

    // Keys: values, enabled flags, and the plan that holds them on this stage.
    let key = |id: &str| gateway.keys.iter().find(|k| k.id == id).unwrap_or_else(|| panic!("key {id}")).clone();
    let default = key(&fixture.key.id);
    assert_eq!(default.value, fixture.key.value);
    assert!(default.enabled);
    let plan = default.plan.expect("the default key is in the plan");
    assert_eq!(plan.id, fixture.usage_plan_id);
    assert_eq!(plan.throttle, Some(Throttle { rate: 50.0, burst: 100 }));
    assert_eq!(plan.quota, Some(Quota { limit: 10_000, period: QuotaPeriod::Month, offset: 5 }));
    assert_eq!(key(&fixture.key_without_plan.id).plan, None);
    let disabled = key(&fixture.disabled_key.id);
    assert!(!disabled.enabled && disabled.plan.is_some());
    let usable: Vec<&str> = gateway.usable_keys().map(|k| k.id.as_str()).collect();
    assert!(usable.contains(&fixture.key.id.as_str()));
    assert!(
        !usable.contains(&fixture.key_without_plan.id.as_str()) && !usable.contains(&fixture.disabled_key.id.as_str())
    );

    // Functions: settings, image command, reserved concurrency, and the spec laid out from them.
    let version = |name: &str, version: &str| {
        topology
            .functions
            .iter()
            .find(|f| f.name == name && f.version == version)
            .unwrap_or_else(|| panic!("function {name} version {version}"))
            .clone()
    };
    let function = |name: &str| version(name, "$LATEST");
    let command = function(&fixture.command.name);
    assert_eq!(command.arn, fixture.command.arn);
    assert_eq!(command.image_uri, fixture.command.image_uri);
    assert_eq!(command.image_kind(), "command");
    assert_eq!(command.command, ["/var/task/books-command"]);
    assert_eq!((command.memory_mb, command.timeout), (512, Duration::from_secs(10)));
    assert_eq!(command.reserved_concurrency, Some(5));
    assert_eq!(command.version, "$LATEST");
    assert_eq!(command.environment["SERVICE"], "command");
    assert_eq!(command.environment["LOG_LEVEL"], "info");
    let query = function(&fixture.query.name);
    assert_eq!((query.memory_mb, query.timeout, query.reserved_concurrency), (256, Duration::from_secs(6), None));
    let projector = function(&fixture.projector.name);
    assert_eq!(projector.image_kind(), "query", "the projector runs the query image");
    assert_eq!(projector.command, ["/var/task/books-projector"]);
    assert_eq!(projector.reserved_concurrency, Some(2));
    let spec = cloud::function_spec(&projector, Path::new("/rootfs/query"));
    assert_eq!(spec.bootstrap, Path::new("/rootfs/query/var/task/books-projector"));
    assert_eq!(spec.task_root, Path::new("/rootfs/query/var/task"));
    assert_eq!(spec.log_group, format!("/aws/lambda/{}", projector.name));
    assert_eq!((spec.memory_mb, spec.timeout), (384, Duration::from_secs(30)));

    // Each function's alias `live` names version 1, read with its own configuration.
    for function in [&fixture.command, &fixture.query, &fixture.projector] {
        let alias = topology.aliases.iter().find(|a| a.function_name == function.name).expect("the alias");
        assert_eq!(alias.name, "live");
        assert_eq!(alias.route, AliasRoute { version: "1".into(), additional: None });
        let published = version(&function.name, "1");
        assert_eq!(published.arn, function.arn, "a version's ARN read back unqualified");
        assert_eq!(published.environment, self::function(&topology, &function.name).environment);
        assert_eq!(published.reserved_concurrency, self::function(&topology, &function.name).reserved_concurrency);
    }
    assert_eq!(topology.aliases.len(), 3);

    // The projector's event source mapping.
    let mapping = topology.mappings.iter().find(|m| m.uuid == mapping_uuid).expect("the mapping");
    assert_eq!(mapping.function_name, fixture.projector.name);
    assert_eq!(mapping.qualifier.as_deref(), Some("live"));
    assert_eq!(mapping.event_source_arn, stream_arn);
    assert_eq!(mapping.batch_size, 7);
    assert_eq!(mapping.maximum_retry_attempts, Some(3));
    assert!(mapping.bisect_batch_on_function_error);
    assert_eq!(mapping.maximum_record_age, Some(Duration::from_secs(3600)));
    assert!(mapping.report_batch_item_failures);
    assert_eq!(mapping.starting_position, StartingPosition::TrimHorizon);
    assert!(mapping.enabled);
}

type Move = (cloud::AliasConfig, Vec<cloud::FunctionConfig>);

async fn next_move(moves: &mut tokio::sync::mpsc::UnboundedReceiver<Move>) -> Move {
    let received = tokio::time::timeout(Duration::from_secs(60), moves.recv()).await;
    received.expect("the alias's move reported within 60 s").expect("a move")
}

fn function(topology: &cloud::Topology, name: &str) -> cloud::FunctionConfig {
    topology.functions.iter().find(|f| f.name == name && f.version == "$LATEST").expect("the function").clone()
}

/// A release as the deployment program makes one: a new version published, the alias routing a
/// share of the invocations to it, then all of them; the follower reads the new version's own
/// configuration once and reports each move.
#[tokio::test]
async fn an_alias_that_moves_is_followed_with_the_version_it_now_names() {
    let fixture = CloudFixture::create().await;
    let topology = cloud::read(&fixture.aws, &fixture.rest_api_id, STAGE).await.expect("read");
    let lambda = aws_sdk_lambda::Client::new(&fixture.aws);
    let name = fixture.command.name.clone();
    let mut variables = function(&topology, &name).environment;
    variables.insert("SERVICE".into(), "command-2".into());
    let environment =
        aws_sdk_lambda::types::Environment::builder().set_variables(Some(variables.into_iter().collect()));
    lambda.update_function_configuration().function_name(&name).environment(environment.build()).send().await.unwrap();
    let published = lambda.publish_version().function_name(&name).send().await.unwrap();
    assert_eq!(published.version(), Some("2"));

    let (moved, mut moves) = tokio::sync::mpsc::unbounded_channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let versions = topology.functions.iter().map(|f| (f.name.clone(), f.version.clone())).collect();
    let follower = tokio::spawn({
        let (aws, aliases) = (fixture.aws.clone(), topology.aliases.clone());
        async move {
            let changed = |alias: &cloud::AliasConfig, read: Vec<cloud::FunctionConfig>| {
                let _ = moved.send((alias.clone(), read));
            };
            let stop = async move {
                let _ = stopped.await;
            };
            cloud::follow_aliases(&aws, aliases, versions, Duration::from_millis(50), changed, stop).await;
        }
    });
    let routing = aws_sdk_lambda::types::AliasRoutingConfiguration::builder().additional_version_weights("2", 0.25);
    lambda.update_alias().function_name(&name).name("live").routing_config(routing.build()).send().await.unwrap();
    let (alias, read) = next_move(&mut moves).await;
    assert_eq!((alias.function_name.as_str(), alias.name.as_str()), (name.as_str(), "live"));
    assert_eq!(alias.route, AliasRoute { version: "1".into(), additional: Some(("2".into(), 0.25)) });
    assert_eq!(read.len(), 1, "version 2 read once");
    assert_eq!((read[0].version.as_str(), read[0].environment["SERVICE"].as_str()), ("2", "command-2"));

    let everything = aws_sdk_lambda::types::AliasRoutingConfiguration::builder().build();
    lambda
        .update_alias()
        .function_name(&name)
        .name("live")
        .function_version("2")
        .routing_config(everything)
        .send()
        .await
        .unwrap();
    let (alias, read) = next_move(&mut moves).await;
    assert_eq!(alias.route, AliasRoute { version: "2".into(), additional: None });
    assert!(read.is_empty(), "version 2 was already read");
    let _ = stop.send(());
    follower.await.unwrap();
}

#[tokio::test]
async fn the_rest_api_can_be_named_instead_of_identified() {
    let fixture = CloudFixture::create().await;
    let by_name = cloud::read(&fixture.aws, &fixture.rest_api_name, STAGE).await.expect("read by name");
    assert_eq!(by_name.gateway.rest_api_id, fixture.rest_api_id);

    let missing = cloud::read(&fixture.aws, "no-such-api", STAGE).await.expect_err("no such API");
    assert!(matches!(missing, cloud::CloudError::RestApiNotFound(_)), "{missing}");
    let no_stage = cloud::read(&fixture.aws, &fixture.rest_api_id, "v9").await.expect_err("no such stage");
    assert!(matches!(no_stage, cloud::CloudError::StageNotFound { .. }), "{no_stage}");
}
