//! When to ship. Never before the runtime has answered: a flush starts only after
//! `platform.runtimeDone` (or at SHUTDOWN). When invocations are rare the extension flushes at
//! the end of each one, before asking for the next event, so nothing waits in a frozen
//! environment; when they are frequent it flushes in the background every interval, so
//! invocations do not pay for it, except that an invocation that starts with a flush overdue
//! (none for an interval) flushes at its end: a background flush waits for the runtime's
//! telemetry, which mostly arrives after Lambda froze the environment, so the data would wait
//! for yet another invocation. What a frozen environment holds then is at most an interval's
//! worth, until the next invocation or SHUTDOWN (an extension cannot run while frozen).
//! An end-of-invocation flush holds the environment for [`END_FLUSH_BUDGET`] at most: past it,
//! the flush goes on in the background and the extension asks for its next event, so a slow
//! CloudWatch does not keep environments busy (Lambda would start others meanwhile); it is bound
//! by the SDK's timeouts, which count running time, not by the invocation's deadline, which
//! passes by the clock while the environment is frozen and would cut off a stored call. The
//! interval is drawn anew at each flush between three quarters and the whole of the configured
//! one, so that environments started together (a burst) do not all flush at the end of the
//! same invocations.
//! `BOOKS_TELEMETRY_FLUSH` forces either strategy, without that exception. A destination
//! CloudWatch refuses (access denied, log group deleted) pauses flushing for a cool-down
//! (`BOOKS_TELEMETRY_REFUSAL_COOLDOWN_MS`) instead of retrying at every flush.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::{Config, Strategy};
use crate::pipeline::{now_ms, Backlog, Outgoing, Pipeline, Progress};
use crate::ship::freeze_aware::running_time;
use crate::ship::{Refusal, Shipper};

/// How one invocation is flushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// After the runtime answered, before the extension asks for the next event.
    End,
    /// After the runtime answered, without holding the next event, when the interval is due.
    Background,
}

/// How long an INVOKE may go without its `platform.start` before the extension stops waiting
/// for the runtime through telemetry (deliveries come every `timeoutMs`, 25 ms by default).
pub const TELEMETRY_SILENCE_LIMIT: Duration = Duration::from_secs(2);

/// How long, of its own running time, an end-of-invocation flush may hold the environment after
/// the runtime's answer: several times what a flush to CloudWatch Logs takes.
pub const END_FLUSH_BUDGET: Duration = Duration::from_millis(200);

/// The share of the interval a flush may come early by (drawn per flush).
const INTERVAL_JITTER: f64 = 0.25;

/// When the flush after one at `from` is due: an interval later, less up to [`INTERVAL_JITTER`]
/// of it (`draw` in [0, 1]).
fn due_after(from: Instant, interval: Duration, draw: f64) -> Instant {
    from + interval.mul_f64(1.0 - INTERVAL_JITTER * draw.clamp(0.0, 1.0))
}

/// Invocations the adaptive strategy looks back on.
const WINDOW: usize = 10;
/// Invocations it needs before it calls traffic frequent: two, so that under a burst a new
/// environment pays for one end-of-invocation flush only. Each such flush keeps its
/// environment busy for a telemetry delivery period (>= 25 ms) after the response, and
/// environments busy longer make Lambda start more of them, which would start in `End` too.
const MIN_SAMPLES: usize = 2;

/// Chooses the mode of each invocation from the recent invocation rate.
#[derive(Debug)]
pub(crate) struct Policy {
    strategy: Strategy,
    interval: Duration,
    starts: VecDeque<Instant>,
}

impl Policy {
    pub(crate) fn new(strategy: Strategy, interval: Duration) -> Self {
        Self { strategy, interval, starts: VecDeque::with_capacity(WINDOW) }
    }

    /// Adaptive: background once the mean gap between recent invocations is shorter than the
    /// flush interval (flushing at every end would then ship more often than asked for), but at
    /// the end when a flush is `overdue` as the invocation starts.
    pub(crate) fn on_invoke(&mut self, now: Instant, overdue: bool) -> Mode {
        if self.starts.len() == WINDOW {
            self.starts.pop_front();
        }
        self.starts.push_back(now);
        match self.strategy {
            Strategy::End => Mode::End,
            Strategy::Background => Mode::Background,
            Strategy::Adaptive => {
                let (Some(first), Some(last)) = (self.starts.front(), self.starts.back()) else { return Mode::End };
                let samples = self.starts.len();
                if !overdue && samples >= MIN_SAMPLES && (*last - *first) / (samples as u32 - 1) < self.interval {
                    Mode::Background
                } else {
                    Mode::End
                }
            }
        }
    }
}

/// The outcome of one flush.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FlushReport {
    /// Events CloudWatch stored.
    pub sent: usize,
    /// Events CloudWatch refused for good.
    pub rejected: usize,
    /// Log lines dropped because CloudWatch refused the destination (counted as `LogsDropped`).
    pub dropped: usize,
    /// Why the destination is refused: set by the flush that met the refusal, and by those
    /// skipped during the cool-down after it.
    pub refusal: Option<Refusal>,
    /// Events given back to the pipeline for the next flush.
    pub unsent: usize,
    /// Why they were not sent.
    pub error: Option<String>,
}

/// Runs flushes: one at a time, backing off after a failed one so that an unreachable
/// CloudWatch does not cost every invocation its retries, and pausing after a refused one.
pub struct Flusher {
    pipeline: Arc<Pipeline>,
    shipper: Shipper,
    policy: Mutex<Policy>,
    interval: Duration,
    shutdown_margin: Duration,
    delivery_timeout: Duration,
    refusal_cool_down: Duration,
    /// Buffered log bytes that make a background flush due (see [`Config::flush_bytes`]).
    flush_bytes: usize,
    running: tokio::sync::Mutex<()>,
    /// When the next flush is due (see [`due_after`]).
    due: Mutex<Instant>,
    retry: Mutex<Retry>,
}

#[derive(Debug, Default)]
struct Retry {
    failures: u32,
    not_before: Option<Instant>,
    /// The refusal met last, until a flush goes through: it is written on stderr once, not at
    /// every try.
    refusal: Option<Refusal>,
    /// No flush before then: the cool-down after a refusal.
    refused_until: Option<Instant>,
}

impl Flusher {
    /// A flusher of `pipeline` through `shipper`, by the configured strategy.
    pub fn new(pipeline: Arc<Pipeline>, shipper: Shipper, config: &Config) -> Self {
        Self {
            pipeline,
            shipper,
            policy: Mutex::new(Policy::new(config.flush, config.flush_interval)),
            interval: config.flush_interval,
            shutdown_margin: config.shutdown_margin,
            delivery_timeout: Duration::from_millis(config.delivery_timeout_ms.into()),
            refusal_cool_down: config.refusal_cool_down,
            flush_bytes: config.flush_bytes,
            running: tokio::sync::Mutex::new(()),
            due: Mutex::new(due_after(Instant::now(), config.flush_interval, fastrand::f64())),
            retry: Mutex::new(Retry::default()),
        }
    }

    /// The pipeline it flushes.
    pub fn pipeline(&self) -> &Arc<Pipeline> {
        &self.pipeline
    }

    /// Ships everything the pipeline holds now; what cannot be sent goes back to it. During the
    /// cool-down after a refusal it ships nothing: the events wait in their bounded buffers.
    pub async fn flush(&self, deadline: Option<Instant>) -> FlushReport {
        let _one_at_a_time = self.running.lock().await;
        if let Some(refusal) = self.cooling_down() {
            return FlushReport { refusal: Some(refusal), ..FlushReport::default() };
        }
        let outgoing = self.pipeline.take_outgoing(now_ms());
        if outgoing.is_empty() {
            self.shipped_now(); // nothing was waiting: as good as shipped
            return FlushReport::default();
        }
        let shipment = self.shipper.ship(outgoing.into_events(), deadline).await;
        self.pipeline.count_dropped(shipment.rejected + shipment.dropped);
        let report = FlushReport {
            sent: shipment.sent,
            rejected: shipment.rejected,
            dropped: shipment.dropped,
            refusal: shipment.refusal,
            unsent: shipment.unsent.len(),
            error: shipment.error,
        };
        self.pipeline.give_back(Outgoing::from_events(shipment.unsent));
        self.shipped_now();
        let mut retry = lock(&self.retry);
        if let Some(refusal) = report.refusal {
            let cool_down = self.refusal_cool_down;
            if retry.refusal != Some(refusal) {
                tracing::error!(
                    reason = refusal.as_str(),
                    log_group = self.shipper.log_group(),
                    dropped = report.dropped,
                    error = report.error.as_deref().unwrap_or(""),
                    ?cool_down,
                    "CloudWatch Logs refuses the destination: log lines are dropped and counted as LogsDropped, \
                     and shipping tries again once per cool-down until it is fixed"
                );
            } else {
                tracing::debug!(reason = refusal.as_str(), dropped = report.dropped, "still refused");
            }
            *retry =
                Retry { refusal: Some(refusal), refused_until: Some(Instant::now() + cool_down), ..Retry::default() };
        } else if report.unsent > 0 {
            retry.failures = retry.failures.saturating_add(1);
            let backoff = Duration::from_millis(500u64.saturating_mul(1 << retry.failures.min(6)).min(30_000));
            retry.not_before = Some(Instant::now() + backoff.mul_f64(0.5 + fastrand::f64() / 2.0));
            tracing::warn!(
                unsent = report.unsent,
                error = report.error.as_deref().unwrap_or(""),
                ?backoff,
                "flush failed"
            );
        } else {
            if let Some(refusal) = retry.refusal {
                tracing::info!(reason = refusal.as_str(), "CloudWatch Logs accepts the events again");
            }
            *retry = Retry::default();
        }
        report
    }

    fn shipped_now(&self) {
        *lock(&self.due) = due_after(Instant::now(), self.interval, fastrand::f64());
    }

    fn flush_due(&self) -> bool {
        Instant::now() >= *lock(&self.due)
    }

    /// The refusal whose cool-down is running, if one is.
    fn cooling_down(&self) -> Option<Refusal> {
        let retry = lock(&self.retry);
        retry.refusal.filter(|_| retry.refused_until.is_some_and(|until| Instant::now() < until))
    }

    fn may_flush(&self) -> bool {
        self.cooling_down().is_none() && lock(&self.retry).not_before.is_none_or(|at| Instant::now() >= at)
    }

    fn background_due(&self) -> bool {
        let (bytes, capacity) = self.pipeline.buffered_bytes();
        let (metrics, metrics_capacity) = self.pipeline.metrics_bytes();
        // Early when the buffer holds a good batch: a PutLogEvents of a few hundred KiB costs
        // little more than a small one, and what waits is memory held and lines not yet in
        // CloudWatch (make bench, section 10, measures the trade-off).
        let enough = self.flush_bytes.min(capacity / 2);
        self.may_flush() && (self.flush_due() || bytes >= enough || metrics >= metrics_capacity / 2)
    }

    /// INVOKE: flush once the runtime has answered this request, at the end or in the background.
    pub async fn on_invoke(self: &Arc<Self>, request_id: String, deadline_ms: u64) {
        // Not while a refusal's cool-down or a failure's backoff holds flushes back: the
        // invocation would wait for its telemetry for nothing.
        let overdue = self.flush_due() && self.may_flush();
        let mode = lock(&self.policy).on_invoke(Instant::now(), overdue);
        let deadline = instant_at(deadline_ms);
        let wait = deadline.saturating_duration_since(Instant::now());
        let this = Arc::clone(self);
        let flush_after_runtime = async move {
            // The platform announces the invocation within a delivery period; if it stays silent
            // the Telemetry API is not reaching us, and waiting for runtimeDone would hold the
            // invocation until its deadline.
            // The limit counts running time only: frozen right after the invocation, the
            // extension gets its telemetry at the thaw, with the limit long past by the clock.
            let announced = tokio::select! {
                announced = this.pipeline.wait_for(wait, |p| p.has_started(&request_id)) => announced,
                () = running_time(TELEMETRY_SILENCE_LIMIT.min(wait)) => false,
            };
            if !announced {
                tracing::warn!(request_id, "no telemetry for this invocation: not waiting for it to end");
                return;
            }
            let answered = this.pipeline.wait_for(wait, |p| p.runtime_done(&request_id)).await;
            match mode {
                Mode::End if answered && this.may_flush() => {
                    // Within the budget (and the invocation's deadline); past it the flush goes
                    // on on its own task, not cancelled: a call cut off might have been stored,
                    // and shipped again. For the same reason the flush is not bound by the
                    // invocation's deadline, which passes by the clock while the environment is
                    // frozen: only by the SDK's timeouts, which count running time.
                    let flushing = tokio::spawn({
                        let this = Arc::clone(&this);
                        async move { this.flush(None).await }
                    });
                    let budget = END_FLUSH_BUDGET.min(deadline.saturating_duration_since(Instant::now()));
                    tokio::select! {
                        _ = flushing => {}
                        () = running_time(budget) => {
                            tracing::debug!(request_id, "end-of-invocation flush past its budget: going on in the background");
                        }
                    }
                }
                Mode::Background if answered && this.background_due() => {
                    this.flush(None).await;
                }
                _ => {}
            }
        };
        match mode {
            Mode::End => flush_after_runtime.await,
            Mode::Background => {
                tokio::spawn(flush_after_runtime);
            }
        }
    }

    /// SHUTDOWN: wait briefly for the last records, then ship everything before the deadline
    /// (less a margin). Returns what could not be sent, which is also written to stderr.
    pub async fn on_shutdown(&self, deadline_ms: u64) -> Backlog {
        let deadline = instant_at(deadline_ms).checked_sub(self.shutdown_margin).unwrap_or_else(Instant::now);
        // A flush already in flight (background) ends by then too, handing back what it holds.
        self.shipper.cut_off_at(deadline);
        // The report of the last invocation comes after it; give the platform a moment for it.
        let grace = deadline.saturating_duration_since(Instant::now()) / 3;
        self.pipeline.wait_for(grace, Progress::settled).await;
        tokio::time::sleep((self.delivery_timeout * 2).min(grace)).await;
        loop {
            let report = self.flush(Some(deadline)).await;
            let idle = report.sent == 0 && report.unsent == 0;
            if idle || Instant::now() >= deadline {
                break;
            }
            if report.unsent > 0 {
                tokio::time::sleep(Duration::from_millis(50).min(deadline.saturating_duration_since(Instant::now())))
                    .await;
            }
        }
        let backlog = self.pipeline.backlog();
        if backlog != Backlog::default() {
            // stderr reaches Lambda's own log of the function: the last place left to say it.
            tracing::error!(
                unsent_log_events = backlog.logs,
                unsent_metric_documents = backlog.documents,
                unsent_metric_values = backlog.metric_values,
                dropped_unreported = backlog.dropped_unreported,
                refused = self.cooling_down().map_or("", Refusal::as_str),
                "shutdown: telemetry could not be shipped before the deadline"
            );
        }
        backlog
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The instant of an epoch-milliseconds deadline from the Extensions API.
fn instant_at(epoch_ms: u64) -> Instant {
    let remaining = (epoch_ms as i64 - now_ms()).max(0) as u64;
    Instant::now() + Duration::from_millis(remaining)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mode of each invocation after `gaps_ms`, no flush ever overdue.
    fn modes(strategy: Strategy, gaps_ms: &[u64]) -> Vec<Mode> {
        let mut policy = Policy::new(strategy, Duration::from_secs(1));
        let mut now = Instant::now();
        let mut modes = vec![policy.on_invoke(now, false)];
        for gap in gaps_ms {
            now += Duration::from_millis(*gap);
            modes.push(policy.on_invoke(now, false));
        }
        modes
    }

    #[test]
    fn rare_invocations_flush_at_the_end() {
        assert!(modes(Strategy::Adaptive, &[5_000; 12]).iter().all(|m| *m == Mode::End));
    }

    #[test]
    fn frequent_invocations_flush_in_the_background() {
        let modes = modes(Strategy::Adaptive, &[100; 12]);
        assert_eq!(modes[0], Mode::End, "one invocation says nothing of the rate");
        assert!(modes[1..].iter().all(|m| *m == Mode::Background), "{modes:?}");
    }

    #[test]
    fn traffic_that_slows_down_returns_to_end() {
        let mut gaps = vec![100; 10];
        gaps.extend([20_000; 3]);
        assert_eq!(*modes(Strategy::Adaptive, &gaps).last().unwrap(), Mode::End);
    }

    #[test]
    fn frequent_invocations_flush_at_the_end_when_a_flush_is_overdue() {
        let mut policy = Policy::new(Strategy::Adaptive, Duration::from_secs(1));
        let start = Instant::now();
        for n in 0..5 {
            policy.on_invoke(start + Duration::from_millis(100 * n), false);
        }
        let next = start + Duration::from_millis(500);
        assert_eq!(policy.on_invoke(next, true), Mode::End, "overdue: shipped before the freeze");
        assert_eq!(policy.on_invoke(next + Duration::from_millis(100), false), Mode::Background);
    }

    #[test]
    fn forced_strategies_ignore_the_rate() {
        assert!(modes(Strategy::End, &[1; 20]).iter().all(|m| *m == Mode::End));
        assert!(modes(Strategy::Background, &[60_000; 3]).iter().all(|m| *m == Mode::Background));
        let mut forced = Policy::new(Strategy::Background, Duration::from_secs(1));
        assert_eq!(forced.on_invoke(Instant::now(), true), Mode::Background, "forced: never at the end");
    }

    #[test]
    fn a_flush_is_due_between_three_quarters_and_the_whole_interval_after_the_last() {
        let (from, interval) = (Instant::now(), Duration::from_secs(10));
        assert_eq!(due_after(from, interval, 0.0), from + interval);
        assert_eq!(due_after(from, interval, 1.0), from + Duration::from_millis(7_500));
        assert_eq!(due_after(from, interval, 7.0), from + Duration::from_millis(7_500), "a draw is clamped");
    }

    #[test]
    fn flushers_started_together_are_due_at_different_times() {
        let config =
            crate::config::Config::from_lookup(|name| (name == "BOOKS_TELEMETRY_LOG_GROUP").then(|| "g".into()))
                .unwrap();
        let flusher = || {
            let shipper = Shipper::new(crate::ship::environment::client_settings(|_| None), "g".into(), "s".into());
            Flusher::new(Arc::new(Pipeline::new(&config)), shipper, &config)
        };
        let dues: Vec<Instant> = (0..20).map(|_| *lock(&flusher().due)).collect();
        let (first, last) = (dues.iter().min().unwrap(), dues.iter().max().unwrap());
        // 20 draws in a 2.5 s window: all within 100 ms of each other has odds of about 1e-25.
        assert!(*last - *first > Duration::from_millis(100), "not spread: {:?}", *last - *first);
    }

    #[test]
    fn strategy_names() {
        assert_eq!(Strategy::parse("END"), Some(Strategy::End));
        assert_eq!(Strategy::parse("background"), Some(Strategy::Background));
        assert_eq!(Strategy::parse("never"), None);
    }
}
