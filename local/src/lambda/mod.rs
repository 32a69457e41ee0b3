//! The emulated Lambda service: per function a pool of execution environments, each with its
//! own Runtime, Extensions and Telemetry API endpoint, running the unchanged binaries.
//!
//! A function has versions (`$LATEST` and the published ones, each its own configuration) and
//! aliases; an invocation names one or the other (or neither: `$LATEST`), an alias runs the
//! version it names or, when it routes a share to another version, one of the two drawn by
//! weight. Every environment runs one version, and is reused only for that version; the
//! function's concurrency is shared by all of them, as Lambda's is.

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
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
use telemetry_schema::Phase;
use tokio::sync::Mutex;

use self::environment::Environment;
use crate::invoke::{AliasRoute, FunctionSpec, InvokeOutcome, InvokeRequest, Invoker};

/// The environments of one function.
struct Pool {
    name: String,
    /// Each version's configuration, by version (`$LATEST`, `1`, …).
    versions: RwLock<HashMap<String, Arc<FunctionSpec>>>,
    /// Where each alias sends invocations; it follows `UpdateAlias` while the cloud runs.
    aliases: RwLock<HashMap<String, AliasRoute>>,
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
    /// `functions` holds each version of a function it is to run (versions of one function share
    /// its pool, the reserved concurrency the first of them carries).
    pub fn new(functions: Vec<FunctionSpec>, settings: LambdaSettings) -> Arc<Self> {
        let mut pools: HashMap<String, Arc<Pool>> = HashMap::new();
        for spec in functions {
            let pool = pools.entry(spec.name.clone()).or_insert_with(|| {
                let limit = spec.reserved_concurrency.unwrap_or(settings.default_concurrency);
                Arc::new(Pool {
                    name: spec.name.clone(),
                    versions: RwLock::default(),
                    aliases: RwLock::default(),
                    idle: Mutex::new(Vec::new()),
                    count: Default::default(),
                    busy: Default::default(),
                    limit: AtomicU32::new(limit),
                    generation: AtomicU64::new(0),
                })
            });
            write(&pool.versions).insert(spec.version.clone(), Arc::new(spec));
        }
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

    /// Adds (or replaces) a version of a known function, as `PublishVersion` makes one; `false`
    /// for an unknown function.
    pub fn add_version(&self, spec: FunctionSpec) -> bool {
        let Some(pool) = self.pools.get(&spec.name) else { return false };
        write(&pool.versions).insert(spec.version.clone(), Arc::new(spec));
        true
    }

    /// Points a function's alias where `route` says (`CreateAlias`, `UpdateAlias`): the next
    /// invocations of the alias run those versions, invocations in flight finish on theirs.
    /// `false` for an unknown function or a version it does not have.
    pub fn set_alias(&self, function: &str, alias: &str, route: AliasRoute) -> bool {
        let Some(pool) = self.pools.get(function) else { return false };
        if !route.versions().all(|v| read(&pool.versions).contains_key(v)) {
            return false;
        }
        write(&pool.aliases).insert(alias.to_owned(), route);
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
        let Some(spec) = pool.resolve(request.qualifier.as_deref()) else { return InvokeOutcome::NotFound };
        // The invocation runs to its end on its own task: a caller going away (a client hanging
        // up on API Gateway) does not stop the function or lose its environment, and the caller
        // gets the response while the extensions may still be busy with the invocation.
        let (respond, response) = tokio::sync::oneshot::channel();
        tokio::spawn(Self::run_in(pool, spec, Arc::clone(&self.settings), request, respond));
        response.await.unwrap_or_else(|_| InvokeOutcome::Failed {
            error_type: "ServiceException".into(),
            message: "the invocation ended without an outcome".into(),
        })
    }

    async fn run_in(
        pool: Arc<Pool>,
        spec: Arc<FunctionSpec>,
        settings: Arc<LambdaSettings>,
        request: InvokeRequest,
        respond: tokio::sync::oneshot::Sender<InvokeOutcome>,
    ) {
        // The invocation takes one of the function's concurrency first: beyond it, Lambda throttles.
        let limit = pool.limit.load(SeqCst);
        let Ok(before) = pool.busy.fetch_update(SeqCst, SeqCst, |n| (n < limit).then_some(n + 1)) else {
            return Self::throttle(&settings, &pool, respond);
        };
        let reused = pool.take_idle(&spec.version).await;
        let generation = pool.generation.load(SeqCst);
        let mut environment = match reused {
            Some(environment) => environment,
            None => {
                // A cold start, if the function's concurrency allows another environment: an
                // idle one of another version gives its place up.
                if !pool.make_room(limit).await {
                    pool.busy.fetch_sub(1, SeqCst);
                    return Self::throttle(&settings, &pool, respond);
                }
                let first = Environment::init(&spec, &settings, Phase::Init, settings.init_limit).await;
                // An init that failed or ran out of time is retried once inside the invocation,
                // within the function's timeout, as Lambda does for on-demand environments.
                let retried = match first {
                    Ok(environment) => Ok(environment),
                    Err(failure) => {
                        tracing::info!(function = %pool.name, %failure, "init failed: retried in the invoke phase");
                        Environment::init(&spec, &settings, Phase::Invoke, spec.timeout).await
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
        metrics.record(crate::cloudwatch::Datum::now("AWS/Lambda", name, &[("FunctionName", &pool.name)], unit, value));
    }
}

impl Pool {
    /// The version an invocation with `qualifier` runs: the alias's (drawn by weight when it
    /// routes to two), the version named, or `$LATEST`; `None` when the function has no such
    /// alias or version.
    fn resolve(&self, qualifier: Option<&str>) -> Option<Arc<FunctionSpec>> {
        let version = match qualifier {
            None | Some("$LATEST") => "$LATEST".to_owned(),
            Some(alias) if !alias.bytes().all(|b| b.is_ascii_digit()) => {
                read(&self.aliases).get(alias)?.pick(fastrand::f64()).to_owned()
            }
            Some(version) => version.to_owned(),
        };
        read(&self.versions).get(&version).cloned()
    }

    /// The most recently used idle environment of `version`.
    async fn take_idle(&self, version: &str) -> Option<Environment> {
        let mut idle = self.idle.lock().await;
        let position = idle.iter().rposition(|e| e.sandbox.spec.version == version)?;
        Some(idle.remove(position))
    }

    /// Counts one more environment if `limit` allows it, else spins down the least recently used
    /// idle environment (of another version: one of this version would have been reused) to
    /// take its place; `false` when every environment is busy.
    async fn make_room(&self, limit: u32) -> bool {
        loop {
            if self.count.fetch_update(SeqCst, SeqCst, |n| (n < limit).then_some(n + 1)).is_ok() {
                return true;
            }
            let oldest = {
                let mut idle = self.idle.lock().await;
                let oldest = idle.iter().enumerate().min_by_key(|(_, e)| e.last_used).map(|(i, _)| i);
                oldest.map(|i| idle.remove(i))
            };
            let Some(mut environment) = oldest else { return false };
            environment.shutdown(ShutdownReason::Spindown).await;
            self.count.fetch_sub(1, SeqCst);
        }
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Invoker for LambdaService {
    fn invoke(&self, request: InvokeRequest) -> BoxFuture<'_, InvokeOutcome> {
        Box::pin(self.run(request))
    }
}
