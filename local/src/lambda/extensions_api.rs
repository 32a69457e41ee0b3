//! The Extensions API (2020-01-01): `register`, `event/next` (INVOKE and SHUTDOWN events),
//! `init/error` and `exit/error`.

use std::sync::Arc;

use http::StatusCode;
use hyper::Response;
use serde_json::{json, Value};
use telemetry_schema::{ExtensionState, Platform};

use super::sandbox::{Extension, Sandbox};
use crate::http_util::{self, Body};

/// `accept_features` is `Lambda-Extension-Accept-Feature`, a comma-separated list; `accountId`
/// adds the function's account to the answer.
pub(super) fn register(
    sandbox: &Sandbox,
    name: Option<&str>,
    accept_features: Option<&str>,
    body: &[u8],
) -> Response<Body> {
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return http_util::lambda_error(StatusCode::BAD_REQUEST, "InvalidRequest", "Lambda-Extension-Name is required");
    };
    let events: Vec<String> = match serde_json::from_slice::<Value>(body) {
        Ok(value) => {
            value["events"].as_array().into_iter().flatten().filter_map(|e| e.as_str().map(str::to_owned)).collect()
        }
        Err(_) => return http_util::lambda_error(StatusCode::BAD_REQUEST, "InvalidRequest", "body must be JSON"),
    };
    if let Some(bad) = events.iter().find(|e| *e != "INVOKE" && *e != "SHUTDOWN") {
        return http_util::lambda_error(StatusCode::BAD_REQUEST, "InvalidEventType", &format!("unknown event {bad}"));
    }
    let id = http_util::uuid();
    let registered = sandbox.update(|s| {
        if !s.accepting_registrations {
            return Err("extensions register during the init phase only");
        }
        if s.extensions.iter().any(|e| e.name == name) {
            return Err("an extension of this name is registered already");
        }
        s.extensions.push(Extension {
            id: id.clone(),
            name: name.to_owned(),
            invoke: events.iter().any(|e| e == "INVOKE"),
            shutdown: events.iter().any(|e| e == "SHUTDOWN"),
            waiting: false,
            events: Default::default(),
            registered_at: std::time::Instant::now(),
            subscribed_at: None,
            ready_at: None,
        });
        Ok(())
    });
    if let Err(reason) = registered {
        return http_util::lambda_error(StatusCode::FORBIDDEN, "Extension.RegistrationError", reason);
    }
    sandbox.emit_platform(Platform::Extension(ExtensionState {
        name: name.to_owned(),
        state: "Ready".into(),
        events,
        error_type: None,
        other: serde_json::Map::new(),
    }));
    let spec = &sandbox.spec;
    let mut answer = json!({"functionName": spec.name, "functionVersion": spec.version, "handler": spec.handler});
    let features = accept_features.unwrap_or_default();
    if features.split(',').any(|feature| feature.trim() == "accountId") {
        // arn:aws:lambda:<region>:<account>:function:<name>
        answer["accountId"] = json!(spec.arn.split(':').nth(4).unwrap_or_default());
    }
    let mut response = http_util::json(StatusCode::OK, &answer);
    if let Ok(value) = http::HeaderValue::from_str(&id) {
        response.headers_mut().insert("lambda-extension-identifier", value);
    }
    response
}

pub(super) async fn next(sandbox: Arc<Sandbox>, id: Option<&str>) -> Response<Body> {
    let Some(id) = id else {
        return http_util::lambda_error(
            StatusCode::FORBIDDEN,
            "Extension.MissingIdentifier",
            "Lambda-Extension-Identifier is required",
        );
    };
    let known = sandbox.update(|s| {
        s.extensions.iter_mut().find(|e| e.id == id).map(|e| {
            if e.events.is_empty() {
                e.waiting = true;
                e.ready_at.get_or_insert_with(std::time::Instant::now);
            }
        })
    });
    if known.is_none() {
        return http_util::lambda_error(
            StatusCode::FORBIDDEN,
            "Extension.UnknownExtensionIdentifier",
            "unknown extension id",
        );
    }
    let event = sandbox
        .wait_for(|s| {
            let extension = s.extensions.iter_mut().find(|e| e.id == id)?;
            let event = extension.events.pop_front()?;
            extension.waiting = false;
            Some(event)
        })
        .await;
    let mut response = http_util::json(StatusCode::OK, &event);
    if let Ok(value) = http::HeaderValue::from_str(&http_util::uuid()) {
        response.headers_mut().insert("lambda-extension-event-identifier", value);
    }
    response
}

pub(super) fn error(
    sandbox: &Sandbox,
    id: Option<&str>,
    error_type: Option<&str>,
    body: &[u8],
    init: bool,
) -> Response<Body> {
    let Some(id) = id else {
        return http_util::lambda_error(
            StatusCode::FORBIDDEN,
            "Extension.MissingIdentifier",
            "Lambda-Extension-Identifier is required",
        );
    };
    // Required by the Extensions API reference; without it the report would not say what failed.
    let Some(error_type) = error_type.filter(|t| !t.is_empty()) else {
        return http_util::lambda_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "Lambda-Extension-Function-Error-Type is required",
        );
    };
    let message = format!("{error_type}: {}", String::from_utf8_lossy(body));
    let known = sandbox.update(|s| {
        let name = s.extensions.iter().find(|e| e.id == id).map(|e| e.name.clone())?;
        if init {
            s.init_error = Some(format!("extension {name}: {message}"));
        } else {
            s.exit_errors.push(format!("extension {name}: {message}"));
        }
        Some(())
    });
    match known {
        Some(()) => http_util::json(StatusCode::ACCEPTED, &json!({"status": "OK"})),
        None => http_util::lambda_error(
            StatusCode::FORBIDDEN,
            "Extension.UnknownExtensionIdentifier",
            "unknown extension id",
        ),
    }
}
