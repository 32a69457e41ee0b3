//! A sleep for the SDK's timeouts that counts only the time the extension was running. Lambda
//! freezes an environment between invocations: a `PutLogEvents` in flight at the freeze gets
//! its answer on the socket while the extension is stopped, and at the thaw a plain timer finds
//! its deadline long past, fails the attempt, and the SDK's retry stores the batch a second
//! time. Here the time spent frozen does not count.
//!
//! Written here because no crate offers it: tokio's timers run on `CLOCK_MONOTONIC`, which goes
//! on while a process is stopped.

use std::time::Duration;

use aws_sdk_cloudwatchlogs::config::{AsyncSleep, Sleep};
use tokio::time::Instant;

/// How often a sleeping timeout looks at the clock.
const TICK: Duration = Duration::from_millis(50);
/// A tick late by more than this was interrupted by a freeze (a loaded machine delays a tick by
/// far less; if it ever does more, a timeout is only extended by that delay).
const FROZEN_AFTER: Duration = Duration::from_millis(500);

/// The SDK's sleep (timeouts, retry backoff), freeze-aware.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FreezeAwareSleep;

impl AsyncSleep for FreezeAwareSleep {
    fn sleep(&self, duration: Duration) -> Sleep {
        Sleep::new(running_time(duration))
    }
}

/// Sleeps until the process has been running for `duration`: a tick that took far longer than
/// asked (the environment was frozen meanwhile) counts as the tick asked for.
pub(crate) async fn running_time(duration: Duration) {
    let mut left = duration;
    while !left.is_zero() {
        let step = left.min(TICK);
        let before = Instant::now();
        tokio::time::sleep(step).await;
        let took = before.elapsed();
        left = left.saturating_sub(if took > step + FROZEN_AFTER { step } else { took });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A blocked runtime thread stands for a frozen process: no timer fires, the clock runs on.
    #[test]
    fn time_spent_frozen_does_not_count() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        runtime.block_on(async {
            let asked = Duration::from_millis(400);
            let plain = tokio::spawn(async move {
                tokio::time::sleep(asked).await;
                Instant::now()
            });
            let aware = tokio::spawn(async move {
                running_time(asked).await;
                Instant::now()
            });
            tokio::task::yield_now().await; // both sleeps armed
            std::thread::sleep(Duration::from_millis(1_500)); // frozen
            let thawed = Instant::now();
            let (plain, aware) = (plain.await.unwrap(), aware.await.unwrap());
            assert!(plain < aware, "a plain timer fires first, at the thaw");
            assert!(
                aware.saturating_duration_since(thawed) >= Duration::from_millis(250),
                "the freeze-aware one still has most of its time: {:?}",
                aware.saturating_duration_since(thawed)
            );
        });
    }
}
