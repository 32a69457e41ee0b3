//! The emulated Lambda service: per function a pool of execution environments, each with its
//! own Runtime, Extensions and Telemetry API endpoint, running the unchanged binaries.

mod api;
mod environment;
mod extensions_api;
pub mod observe;
mod process;
mod runtime_api;
mod sandbox;
mod settings;
mod telemetry_api;

pub use environment::{
    ShutdownReason, HIDDEN_FROM_EXTENSIONS, INIT_LIMIT, MEMORY_ENFORCEMENT, SHUTDOWN_RUNTIME_GRACE,
    SHUTDOWN_WITH_EXTENSIONS,
};
pub use settings::LambdaSettings;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use telemetry_schema::Phase;
use tokio::sync::Mutex;

use self::environment::Environment;
use crate::invoke::{FunctionSpec, InvokeOutcome, InvokeRequest, Invoker};

/// The environments of one function.
struct Pool {
    spec: FunctionSpec,
    idle: Mutex<Vec<Environment>>,
    /// Environments that exist (idle or busy).
    count: AtomicU32,
    /// Invocations running now (Lambda's `ConcurrentExecutions`).
    busy: AtomicU32,
    /// Most invocations at once: the reserved concurrency (0 throttles every invocation), else
    /// the account's default. It follows `PutFunctionConcurrency` while the cloud runs.
    limit: AtomicU32,
    /// Which code environments must run: [`LambdaService::recycle`] moves it on, and an
    /// environment of an older generation is spun down instead of being used again.
    generation: AtomicU64,
}

/// The emulated Lambda service: invoke a function by name, as the `Invoke` API does.
pub struct LambdaService {
    pools: HashMap<String, Arc<Pool>>,
    settings: Arc<LambdaSettings>,
}

impl LambdaService {
    /// A service running `functions` (no environment exists until the first invocation).
    pub fn new(functions: Vec<FunctionSpec>, settings: LambdaSettings) -> Arc<Self> {
        let pools = functions
            .into_iter()
            .map(|spec| {
                let limit = spec.reserved_concurrency.unwrap_or(settings.default_concurrency);
                let pool = Pool {
                    spec: spec.clone(),
                    idle: Mutex::new(Vec::new()),
                    count: Default::default(),
                    busy: Default::default(),
                    limit: AtomicU32::new(limit),
                    generation: AtomicU64::new(0),
                };
                (spec.name.clone(), Arc::new(pool))
            })
            .collect();
        let service = Arc::new(Self { pools, settings: Arc::new(settings) });
        tokio::spawn(Arc::clone(&service).spin_down_idle());
        service
    }

    /// Spins every environment down cleanly; busy ones first finish their invocation (their
    /// post-runtime phase included, bounded by the function's timeout).
    pub async fn shutdown(&self) {
        for pool in self.pools.values() {
            loop {
                let environments: Vec<Environment> = std::mem::take(&mut *pool.idle.lock().await);
                let stopped = environments.len() as u32;
                let shutdowns = environments.into_iter().map(|mut env| async move {
                    env.shutdown(ShutdownReason::Spindown).await;
                });
                futures::future::join_all(shutdowns).await;
                if pool.count.fetch_sub(stopped, SeqCst) == stopped {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    /// Waits until no environment of `function` is busy (post-runtime phases included): the
    /// next invocation then finds a warm one, if any exists.
    pub async fn idle(&self, function: &str) {
        let Some(pool) = self.pools.get(function) else { return };
        while pool.idle.lock().await.len() < pool.count.load(SeqCst) as usize {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Sets a function's reserved concurrency (`None`: the account's default), as
    /// `PutFunctionConcurrency` and `DeleteFunctionConcurrency` do; `false` for an unknown
    /// function. Invocations already running finish; environments beyond the new limit stay
    /// idle until they are spun down.
    pub fn set_reserved_concurrency(&self, function: &str, reserved: Option<u32>) -> bool {
        let Some(pool) = self.pools.get(function) else { return false };
        pool.limit.store(reserved.unwrap_or(self.settings.default_concurrency), SeqCst);
        true
    }

    /// Makes a function's next invocations run its code as it is now on disk (watch mode, after
    /// a rebuild), as a deployment of new code does: idle environments are spun down now, busy
    /// ones finish their invocation and are spun down then; new ones start from the new files.
    /// `false` for an unknown function.
    pub(crate) async fn recycle(&self, function: &str) -> bool {
        let Some(pool) = self.pools.get(function) else { return false };
        pool.generation.fetch_add(1, SeqCst);
        let stale: Vec<Environment> = std::mem::take(&mut *pool.idle.lock().await);
        for mut environment in stale {
            environment.shutdown(ShutdownReason::Spindown).await;
            pool.count.fetch_sub(1, SeqCst);
        }
        true
    }

    /// Environments of a function that exist right now.
    pub fn environments(&self, function: &str) -> u32 {
        self.pools.get(function).map_or(0, |p| p.count.load(SeqCst))
    }

    async fn spin_down_idle(self: Arc<Self>) {
        let period = (self.settings.idle_timeout / 4).max(Duration::from_millis(50));
        loop {
            tokio::time::sleep(period).await;
            for pool in self.pools.values() {
                let expired: Vec<Environment> = {
                    let mut idle = pool.idle.lock().await;
                    let (old, fresh): (Vec<_>, Vec<_>) =
                        idle.drain(..).partition(|e| e.last_used.elapsed() >= self.settings.idle_timeout);
                    *idle = fresh;
                    old
                };
                for mut environment in expired {
                    environment.shutdown(ShutdownReason::Spindown).await;
                    pool.count.fetch_sub(1, SeqCst);
                }
            }
        }
    }

    async fn run(&self, request: InvokeRequest) -> InvokeOutcome {
        let Some(pool) = self.pools.get(&request.function_name).cloned() else { return InvokeOutcome::NotFound };
        // The invocation runs to its end on its own task: a caller going away (a client hanging
        // up on API Gateway) does not stop the function or lose its environment, and the caller
        // gets the response while the extensions may still be busy with the invocation.
        let (respond, response) = tokio::sync::oneshot::channel();
        tokio::spawn(Self::run_in(pool, Arc::clone(&self.settings), request, respond));
        response.await.unwrap_or_else(|_| InvokeOutcome::Failed {
            error_type: "ServiceException".into(),
            message: "the invocation ended without an outcome".into(),
        })
    }

    async fn run_in(
        pool: Arc<Pool>,
        settings: Arc<LambdaSettings>,
        request: InvokeRequest,
        respond: tokio::sync::oneshot::Sender<InvokeOutcome>,
    ) {
        // The invocation takes one of the function's concurrency first: beyond it, Lambda throttles.
        let limit = pool.limit.load(SeqCst);
        let Ok(before) = pool.busy.fetch_update(SeqCst, SeqCst, |n| (n < limit).then_some(n + 1)) else {
            return Self::throttle(&settings, &pool, respond);
        };
        let reused = pool.idle.lock().await.pop();
        let generation = pool.generation.load(SeqCst);
        let mut environment = match reused {
            Some(environment) => environment,
            None => {
                // A cold start, if the function's concurrency allows another environment.
                if pool.count.fetch_update(SeqCst, SeqCst, |n| (n < limit).then_some(n + 1)).is_err() {
                    pool.busy.fetch_sub(1, SeqCst);
                    return Self::throttle(&settings, &pool, respond);
                }
                let first = Environment::init(&pool.spec, &settings, Phase::Init, settings.init_limit).await;
                // An init that failed or ran out of time is retried once inside the invocation,
                // within the function's timeout, as Lambda does for on-demand environments.
                let retried = match first {
                    Ok(environment) => Ok(environment),
                    Err(failure) => {
                        tracing::info!(function = %pool.spec.name, %failure, "init failed: retried in the invoke phase");
                        Environment::init(&pool.spec, &settings, Phase::Invoke, pool.spec.timeout).await
                    }
                };
                match retried {
                    Ok(environment) => environment,
                    Err(failure) => {
                        pool.count.fetch_sub(1, SeqCst);
                        pool.busy.fetch_sub(1, SeqCst);
                        // Lambda counts an invocation whose init failed, as an error.
                        record(&settings, &pool, "Invocations", 1.0);
                        record(&settings, &pool, "Errors", 1.0);
                        record(&settings, &pool, "Throttles", 0.0);
                        let _ = respond.send(InvokeOutcome::Failed {
                            error_type: failure.error_type.to_owned(),
                            message: failure.message,
                        });
                        return;
                    }
                }
            }
        };
        if environment.generation.is_none() {
            environment.generation = Some(generation);
        }
        let mut respond = Some(respond);
        record(&settings, &pool, "ConcurrentExecutions", f64::from(before + 1));
        let outcome = environment.invoke(&request, &mut respond).await;
        // Idle again before its concurrency is given back: whoever takes the concurrency then
        // finds the environment warm. One whose code was replaced meanwhile is spun down, after
        // the concurrency and the outcome are given back.
        let replaced = if !environment.healthy {
            pool.count.fetch_sub(1, SeqCst);
            None
        } else if environment.generation == Some(pool.generation.load(SeqCst)) {
            pool.idle.lock().await.push(environment);
            None
        } else {
            Some(environment)
        };
        pool.busy.fetch_sub(1, SeqCst);
        if let Some(respond) = respond {
            let _ = respond.send(outcome);
        }
        if let Some(mut environment) = replaced {
            environment.shutdown(ShutdownReason::Spindown).await;
            pool.count.fetch_sub(1, SeqCst);
        }
    }

    fn throttle(settings: &LambdaSettings, pool: &Pool, respond: tokio::sync::oneshot::Sender<InvokeOutcome>) {
        record(settings, pool, "Throttles", 1.0);
        let _ = respond.send(InvokeOutcome::Throttled);
    }
}

/// One `AWS/Lambda` value of the pool's function, when metrics are recorded.
fn record(settings: &LambdaSettings, pool: &Pool, name: &str, value: f64) {
    if let Some(metrics) = &settings.metrics {
        let unit = if name == "ConcurrentExecutions" { "None" } else { "Count" };
        metrics.record(crate::cloudwatch::Datum::now(
            "AWS/Lambda",
            name,
            &[("FunctionName", &pool.spec.name)],
            unit,
            value,
        ));
    }
}

impl Invoker for LambdaService {
    fn invoke(&self, request: InvokeRequest) -> BoxFuture<'_, InvokeOutcome> {
        Box::pin(self.run(request))
    }
}
