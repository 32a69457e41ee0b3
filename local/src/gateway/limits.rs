//! The stage's counters: token buckets for throttling and per-key quota counters whose periods
//! follow the UTC calendar, as usage plans count them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};

use super::config::{Quota, QuotaPeriod, Throttle};

/// A token bucket that starts full.
#[derive(Debug)]
pub(super) struct TokenBucket {
    tokens: f64,
    refilled: Instant,
}

impl TokenBucket {
    pub(super) fn full(limits: Throttle, now: Instant) -> Self {
        Self { tokens: f64::from(limits.burst), refilled: now }
    }

    /// Takes one token if there is one.
    pub(super) fn try_take(&mut self, limits: Throttle, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * limits.rate).min(f64::from(limits.burst));
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The first day of the quota period holding `now`: UTC midnight, the Sunday of the week, or the
/// first of the month.
pub(super) fn period_start(period: QuotaPeriod, now: DateTime<Utc>) -> NaiveDate {
    let today = now.date_naive();
    match period {
        QuotaPeriod::Day => today,
        QuotaPeriod::Week => today - Days::new(u64::from(today.weekday().num_days_from_sunday())),
        QuotaPeriod::Month => today.with_day(1).unwrap_or(today),
    }
}

#[derive(Debug)]
struct QuotaUse {
    period: NaiveDate,
    used: u64,
    first_period: bool,
}

/// A key's use of its quota, as it is kept across restarts of the local cloud (API Gateway keeps
/// it for the usage plan: a restart does not give a spent quota back).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QuotaUsage {
    /// The first day of the period counted (`YYYY-MM-DD`).
    pub(crate) period: String,
    /// Requests counted in it.
    pub(crate) used: u64,
    /// Whether it is the plan's first period here (the quota's offset applies).
    pub(crate) first_period: bool,
}

/// The guarded value, even when a panic elsewhere poisoned the lock: every update here leaves
/// the maps whole, and a poisoned lock must not turn throttling and quotas off.
fn unpoisoned<T>(lock: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Token buckets by name (a key id, a method) and quota use by key id.
#[derive(Debug, Default)]
pub(super) struct Limits {
    buckets: Mutex<HashMap<String, TokenBucket>>,
    quotas: Mutex<HashMap<String, QuotaUse>>,
}

impl Limits {
    /// Takes a token from the named bucket; `false` means throttled.
    pub(super) fn take_token(&self, bucket: &str, limits: Throttle) -> bool {
        let now = Instant::now();
        let mut buckets = unpoisoned(&self.buckets);
        buckets.entry(bucket.to_owned()).or_insert_with(|| TokenBucket::full(limits, now)).try_take(limits, now)
    }

    /// Each key's quota use so far.
    pub(super) fn quota_usage(&self) -> BTreeMap<String, QuotaUsage> {
        let quotas = unpoisoned(&self.quotas);
        quotas
            .iter()
            .map(|(key, u)| {
                let usage = QuotaUsage { period: u.period.to_string(), used: u.used, first_period: u.first_period };
                (key.clone(), usage)
            })
            .collect()
    }

    /// Goes on counting from an earlier run's use (entries whose period cannot be read are
    /// left out).
    pub(super) fn resume_quota_usage(&self, usage: &BTreeMap<String, QuotaUsage>) {
        let mut quotas = unpoisoned(&self.quotas);
        for (key, u) in usage {
            if let Ok(period) = NaiveDate::parse_from_str(&u.period, "%Y-%m-%d") {
                quotas.insert(key.clone(), QuotaUse { period, used: u.used, first_period: u.first_period });
            }
        }
    }

    /// Counts one request against the key's quota; `false` means the quota is spent. The first
    /// period this stage counts is the plan's "initial" one, where `offset` requests are gone.
    pub(super) fn count_request(&self, key_id: &str, quota: Quota) -> bool {
        let period = period_start(quota.period, Utc::now());
        let mut quotas = unpoisoned(&self.quotas);
        let usage = quotas.entry(key_id.to_owned()).or_insert(QuotaUse { period, used: 0, first_period: true });
        if usage.period != period {
            *usage = QuotaUse { period, used: 0, first_period: false };
        }
        let limit = if usage.first_period { quota.limit.saturating_sub(quota.offset) } else { quota.limit };
        if usage.used >= limit {
            return false;
        }
        usage.used += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_quota_spent_before_a_restart_stays_spent_after_it() {
        let quota = Quota { limit: 2, period: QuotaPeriod::Day, offset: 0 };
        let before = Limits::default();
        assert!(before.count_request("a", quota) && before.count_request("a", quota));
        assert!(!before.count_request("a", quota));
        let saved = serde_json::to_string(&before.quota_usage()).unwrap();
        let after = Limits::default();
        after.resume_quota_usage(&serde_json::from_str(&saved).unwrap());
        assert!(!after.count_request("a", quota), "still spent");
        assert!(after.count_request("b", quota), "another key has its own");
    }

    #[test]
    fn a_bucket_allows_the_burst_then_refills_at_the_rate() {
        let limits = Throttle { rate: 2.0, burst: 3 };
        let start = Instant::now();
        let mut bucket = TokenBucket::full(limits, start);
        assert_eq!((0..10).filter(|_| bucket.try_take(limits, start)).count(), 3);
        let later = start + Duration::from_secs(1);
        assert_eq!((0..10).filter(|_| bucket.try_take(limits, later)).count(), 2);
        let much_later = later + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| bucket.try_take(limits, much_later)).count(), 3, "capped at the burst");
    }

    #[test]
    fn quota_periods_follow_the_utc_calendar() {
        // 2026-11-25 is a Wednesday.
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 17, 30, 0).unwrap();
        let date = |d| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
        assert_eq!(period_start(QuotaPeriod::Day, now), date(25));
        assert_eq!(period_start(QuotaPeriod::Week, now), date(22));
        assert_eq!(period_start(QuotaPeriod::Month, now), date(1));
    }

    #[test]
    fn a_quota_counts_per_key_and_honours_the_offset() {
        let limits = Limits::default();
        let quota = Quota { limit: 3, period: QuotaPeriod::Month, offset: 1 };
        assert_eq!((0..5).filter(|_| limits.count_request("a", quota)).count(), 2);
        assert_eq!((0..5).filter(|_| limits.count_request("b", quota)).count(), 2);
    }

    #[test]
    fn a_panic_while_counting_leaves_throttles_and_quotas_on() {
        let limits = std::sync::Arc::new(Limits::default());
        for lock in ["buckets", "quotas"] {
            let limits = std::sync::Arc::clone(&limits);
            let poisoned = std::thread::spawn(move || {
                let _buckets = limits.buckets.lock();
                let _quotas = (lock == "quotas").then(|| limits.quotas.lock());
                panic!("planted while holding the {lock}");
            })
            .join();
            assert!(poisoned.is_err());
        }
        assert!(limits.buckets.is_poisoned() && limits.quotas.is_poisoned());
        let throttle = Throttle { rate: 0.001, burst: 2 };
        assert_eq!((0..5).filter(|_| limits.take_token("key a", throttle)).count(), 2, "still throttled");
        let quota = Quota { limit: 1, period: QuotaPeriod::Day, offset: 0 };
        assert_eq!((0..5).filter(|_| limits.count_request("a", quota)).count(), 1, "still counted");
        assert_eq!(limits.quota_usage()["a"].used, 1, "and still reported");
    }
}
