//! Alarm evaluation, as CloudWatch documents it ("Using Amazon CloudWatch alarms": evaluation
//! periods, datapoints to alarm, the evaluation range and how missing data is treated). The local
//! endpoint stores alarms but never evaluates them; this task does, for every alarm it holds:
//! it reads the alarm's data points with `GetMetricData` (the statistic, extended statistic or
//! metric math the alarm names), decides the state, records a change with `SetAlarmState` and
//! publishes CloudWatch's notification to the alarm's SNS actions.

use std::future::Future;
use std::time::Duration;

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, Metric, MetricAlarm, MetricDataQuery, MetricStat, StateValue,
};
use serde_json::json;
use tokio::sync::mpsc;

use super::metrics::now_ms;

/// How often every alarm is evaluated (CloudWatch: every minute, every 10 s for high-resolution
/// alarms; a change of state only happens at a period's end either way).
pub(crate) const EVALUATION_INTERVAL: Duration = Duration::from_secs(5);
/// Data points read beyond the evaluation periods: CloudWatch "attempts to retrieve a higher
/// number of data points than specified by Evaluation Periods"; its documented examples read
/// five for three.
pub(crate) const EXTRA_DATA_POINTS: usize = 2;

/// An alarm's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Within the threshold.
    Ok,
    /// Outside it.
    Alarm,
    /// Not enough data.
    InsufficientData,
}

impl State {
    /// As the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Alarm => "ALARM",
            Self::InsufficientData => "INSUFFICIENT_DATA",
        }
    }

    fn parse(value: Option<&StateValue>) -> Self {
        match value {
            Some(StateValue::Ok) => Self::Ok,
            Some(StateValue::Alarm) => Self::Alarm,
            _ => Self::InsufficientData,
        }
    }
}

/// How missing data points count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TreatMissing {
    /// Not considered (the default).
    Missing,
    /// The current state is kept.
    Ignore,
    /// As breaching.
    Breaching,
    /// As within the threshold.
    NotBreaching,
}

impl TreatMissing {
    fn parse(value: Option<&str>) -> Self {
        match value {
            Some("ignore") => Self::Ignore,
            Some("breaching") => Self::Breaching,
            Some("notBreaching") => Self::NotBreaching,
            _ => Self::Missing,
        }
    }
}

/// What the alarm compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Comparison {
    /// `GreaterThanThreshold`.
    Greater,
    /// `GreaterThanOrEqualToThreshold`.
    GreaterOrEqual,
    /// `LessThanThreshold`.
    Less,
    /// `LessThanOrEqualToThreshold`.
    LessOrEqual,
}

impl Comparison {
    fn parse(value: Option<&ComparisonOperator>) -> Option<Self> {
        match value? {
            ComparisonOperator::GreaterThanThreshold => Some(Self::Greater),
            ComparisonOperator::GreaterThanOrEqualToThreshold => Some(Self::GreaterOrEqual),
            ComparisonOperator::LessThanThreshold => Some(Self::Less),
            ComparisonOperator::LessThanOrEqualToThreshold => Some(Self::LessOrEqual),
            _ => None, // anomaly-detection bands are not emulated
        }
    }

    fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::Greater => value > threshold,
            Self::GreaterOrEqual => value >= threshold,
            Self::Less => value < threshold,
            Self::LessOrEqual => value <= threshold,
        }
    }

    fn words(self) -> &'static str {
        match self {
            Self::Greater => "greater than",
            Self::GreaterOrEqual => "greater than or equal to",
            Self::Less => "less than",
            Self::LessOrEqual => "less than or equal to",
        }
    }
}

/// The part of an alarm that decides its state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rule {
    /// N: the data points evaluated.
    pub(crate) evaluation_periods: usize,
    /// M: how many of them must breach.
    pub(crate) datapoints_to_alarm: usize,
    /// The comparison.
    pub(crate) comparison: Comparison,
    /// The threshold.
    pub(crate) threshold: f64,
    /// How missing data points count.
    pub(crate) treat_missing: TreatMissing,
}

/// The state the data points of the evaluation range (oldest first, `None` where missing) call
/// for, with CloudWatch's reason.
///
/// It follows the documented procedure: with at least N real data points, the N most recent
/// decide; with fewer, missing ones are filled in as few times as possible as the alarm says
/// (breaching, not breaching); with `missing` an alarm with no real data point is
/// INSUFFICIENT_DATA, one with a non-breaching point is OK, and one whose only points all breach
/// goes to ALARM once they are older than the last N periods; `ignore` keeps the state where
/// `missing` would not decide on data — every row of the two documented tables, which the
/// tests below replay.
pub(crate) fn evaluate(rule: &Rule, range: &[Option<f64>], current: State) -> (State, String) {
    let n = rule.evaluation_periods.max(1);
    let m = rule.datapoints_to_alarm.clamp(1, n);
    let real: Vec<(usize, f64)> = range.iter().enumerate().filter_map(|(i, v)| v.map(|v| (i, v))).collect();
    let breaches = |v: f64| rule.comparison.breaches(v, rule.threshold);
    let crossed = |evaluated: &[f64], filled: usize, fill_breaches: bool| {
        let breaching = evaluated.iter().filter(|v| breaches(**v)).count() + if fill_breaches { filled } else { 0 };
        let state = if breaching >= m { State::Alarm } else { State::Ok };
        let shown: Vec<String> = evaluated.iter().map(|v| format!("{v}")).collect();
        let reason = format!(
            "Threshold Crossed: {breaching} out of the last {n} datapoints [{}{}] were {} the threshold ({}) (minimum {m} datapoints for OK -> ALARM transition).",
            shown.join(", "),
            if filled > 0 { format!("; {filled} missing, treated as {}", if fill_breaches { "breaching" } else { "not breaching" }) } else { String::new() },
            rule.comparison.words(),
            rule.threshold,
        );
        (state, reason)
    };
    if real.len() >= n {
        let evaluated: Vec<f64> = real[real.len() - n..].iter().map(|(_, v)| *v).collect();
        return crossed(&evaluated, 0, false);
    }
    let values: Vec<f64> = real.iter().map(|(_, v)| *v).collect();
    match rule.treat_missing {
        TreatMissing::Breaching => crossed(&values, n - real.len(), true),
        TreatMissing::NotBreaching => crossed(&values, n - real.len(), false),
        TreatMissing::Missing | TreatMissing::Ignore => {
            let unknown = |current: State| {
                let state = if rule.treat_missing == TreatMissing::Ignore { current } else { State::InsufficientData };
                (state, format!("Insufficient Data: {} datapoints were unknown.", n - real.len()))
            };
            let breaching = values.iter().filter(|v| breaches(**v)).count();
            if real.is_empty() {
                unknown(current)
            } else if breaching >= m || values.iter().any(|v| !breaches(*v)) {
                crossed(&values, 0, false)
            } else if rule.treat_missing == TreatMissing::Missing
                && real.last().is_some_and(|(i, _)| *i + n < range.len())
            {
                // Only breaching points, all older than the last N periods.
                (State::Alarm, crossed(&values, n - real.len(), true).1)
            } else {
                unknown(current)
            }
        }
    }
}

/// A change of an alarm's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The alarm.
    pub alarm: String,
    /// Its state before.
    pub from: State,
    /// Its state now.
    pub to: State,
    /// Why.
    pub reason: String,
}

/// Evaluates every alarm of the local endpoint.
pub struct Evaluator {
    cloudwatch: aws_sdk_cloudwatch::Client,
    sns: aws_sdk_sns::Client,
    region: String,
    transitions: Option<mpsc::UnboundedSender<Transition>>,
    prefix: Option<String>,
}

impl Evaluator {
    /// An evaluator reading alarms and metrics from `cloudwatch`, notifying through `sns`.
    pub fn new(cloudwatch: aws_sdk_cloudwatch::Client, sns: aws_sdk_sns::Client, region: &str) -> Self {
        Self { cloudwatch, sns, region: region.to_owned(), transitions: None, prefix: None }
    }

    /// Only the alarms whose names start with `prefix` (tests sharing an endpoint).
    pub fn with_alarm_name_prefix(mut self, prefix: &str) -> Self {
        self.prefix = Some(prefix.to_owned());
        self
    }

    /// Also sends every transition to `sender` (`serve` prints them).
    pub fn with_transitions(mut self, sender: mpsc::UnboundedSender<Transition>) -> Self {
        self.transitions = Some(sender);
        self
    }

    /// Evaluates every [`EVALUATION_INTERVAL`] until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = tokio::time::sleep(EVALUATION_INTERVAL) => {}
                () = &mut shutdown => return,
            }
            if let Err(error) = self.evaluate_all().await {
                tracing::warn!(%error, "alarm evaluation failed");
            }
        }
    }

    /// Evaluates every alarm once; returns the transitions made.
    pub async fn evaluate_all(&self) -> Result<Vec<Transition>, String> {
        let alarms = self
            .cloudwatch
            .describe_alarms()
            .set_alarm_name_prefix(self.prefix.clone())
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| aws_sdk_cloudwatch::error::DisplayErrorContext(e).to_string())?;
        let mut transitions = Vec::new();
        for alarm in
            alarms.iter().flat_map(aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput::metric_alarms)
        {
            let outcome = self.evaluate_one(alarm).await;
            if let Err(error) = &outcome {
                tracing::warn!(alarm = alarm.alarm_name().unwrap_or_default(), %error, "alarm not evaluated");
            }
            if let Ok(Some(transition)) = outcome {
                transitions.push(transition);
            }
        }
        Ok(transitions)
    }

    async fn evaluate_one(&self, alarm: &MetricAlarm) -> Result<Option<Transition>, String> {
        let name = alarm.alarm_name().unwrap_or_default().to_owned();
        let Some(comparison) = Comparison::parse(alarm.comparison_operator()) else { return Ok(None) };
        let (queries, period) = queries_of(alarm).ok_or("neither a metric nor metric math")?;
        let n = usize::try_from(alarm.evaluation_periods().unwrap_or(1)).unwrap_or(1).max(1);
        let rule = Rule {
            evaluation_periods: n,
            datapoints_to_alarm: alarm.datapoints_to_alarm().map_or(n, |m| usize::try_from(m).unwrap_or(n)),
            comparison,
            threshold: alarm.threshold().unwrap_or_default(),
            // "Alarms that evaluate metrics in the AWS/DynamoDB namespace always ignore missing data."
            treat_missing: if alarm.namespace() == Some("AWS/DynamoDB") {
                TreatMissing::Ignore
            } else {
                TreatMissing::parse(alarm.treat_missing_data())
            },
        };
        // Complete periods only, aligned to the period as GetMetricData aligns them.
        let period_ms = i64::from(period) * 1000;
        let end = now_ms().div_euclid(period_ms) * period_ms;
        let slots = n + EXTRA_DATA_POINTS;
        let start = end - period_ms * slots as i64;
        let answer = self
            .cloudwatch
            .get_metric_data()
            .set_metric_data_queries(Some(queries))
            .start_time(DateTime::from_millis(start))
            .end_time(DateTime::from_millis(end))
            .send()
            .await
            .map_err(|e| aws_sdk_cloudwatch::error::DisplayErrorContext(e).to_string())?;
        let mut range = vec![None; slots];
        if let Some(result) = answer.metric_data_results().first() {
            for (at, value) in result.timestamps().iter().zip(result.values()) {
                let offset = at.to_millis().unwrap_or_default() - start;
                if let Ok(slot) = usize::try_from(offset / period_ms) {
                    if slot < slots && offset >= 0 {
                        range[slot] = Some(*value);
                    }
                }
            }
        }
        let current = State::parse(alarm.state_value());
        let (state, reason) = evaluate(&rule, &range, current);
        if state == current {
            return Ok(None);
        }
        let reason_data = json!({"version": "1.0", "queryDate": chrono::Utc::now().to_rfc3339(),
            "startDate": DateTime::from_millis(start).to_string(), "period": period, "threshold": rule.threshold,
            "evaluatedDatapoints": range.iter().flatten().collect::<Vec<_>>()});
        self.cloudwatch
            .set_alarm_state()
            .alarm_name(&name)
            .state_value(StateValue::from(state.as_str()))
            .state_reason(&reason)
            .state_reason_data(reason_data.to_string())
            .send()
            .await
            .map_err(|e| aws_sdk_cloudwatch::error::DisplayErrorContext(e).to_string())?;
        let transition = Transition { alarm: name, from: current, to: state, reason };
        if alarm.actions_enabled().unwrap_or(true) {
            self.notify(alarm, &transition).await;
        }
        if let Some(sender) = &self.transitions {
            let _ = sender.send(transition.clone());
        }
        Ok(Some(transition))
    }

    /// Publishes CloudWatch's notification to the SNS actions of the new state.
    async fn notify(&self, alarm: &MetricAlarm, transition: &Transition) {
        let actions = match transition.to {
            State::Alarm => alarm.alarm_actions(),
            State::Ok => alarm.ok_actions(),
            State::InsufficientData => alarm.insufficient_data_actions(),
        };
        let account = alarm.alarm_arn().and_then(|arn| arn.split(':').nth(4)).unwrap_or_default();
        let message = json!({
            "AlarmName": transition.alarm,
            "AlarmDescription": alarm.alarm_description(),
            "AWSAccountId": account,
            "NewStateValue": transition.to.as_str(),
            "NewStateReason": transition.reason,
            "StateChangeTime": chrono::Utc::now().to_rfc3339(),
            "Region": self.region,
            "AlarmArn": alarm.alarm_arn(),
            "OldStateValue": transition.from.as_str(),
            "Trigger": {
                "MetricName": alarm.metric_name(),
                "Namespace": alarm.namespace(),
                "Statistic": alarm.statistic().map(|s| s.as_str().to_uppercase()),
                "ExtendedStatistic": alarm.extended_statistic(),
                "Dimensions": alarm.dimensions().iter().map(|d| json!({"name": d.name(), "value": d.value()})).collect::<Vec<_>>(),
                "Period": alarm.period(),
                "EvaluationPeriods": alarm.evaluation_periods(),
                "DatapointsToAlarm": alarm.datapoints_to_alarm(),
                "ComparisonOperator": alarm.comparison_operator().map(ComparisonOperator::as_str),
                "Threshold": alarm.threshold(),
                "TreatMissingData": alarm.treat_missing_data(),
            },
        });
        let subject = format!("{}: \"{}\" in {}", transition.to.as_str(), transition.alarm, self.region);
        for topic in actions.iter().filter(|arn| arn.starts_with("arn:aws:sns:")) {
            let published =
                self.sns.publish().topic_arn(topic).subject(&subject).message(message.to_string()).send().await;
            if let Err(error) = published {
                tracing::warn!(alarm = %transition.alarm, %topic,
                    error = %aws_sdk_sns::error::DisplayErrorContext(&error), "alarm notification not published");
            }
        }
    }
}

/// The queries that give an alarm's data points, and their period.
fn queries_of(alarm: &MetricAlarm) -> Option<(Vec<MetricDataQuery>, i32)> {
    if !alarm.metrics().is_empty() {
        let period = alarm
            .metrics()
            .iter()
            .find_map(|q| q.metric_stat().map(MetricStat::period))
            .flatten()
            .or_else(|| alarm.metrics().iter().find_map(MetricDataQuery::period))?;
        return Some((alarm.metrics().to_vec(), period));
    }
    let period = alarm.period()?;
    let stat =
        alarm.extended_statistic().map(str::to_owned).or_else(|| alarm.statistic().map(|s| s.as_str().to_owned()))?;
    let metric = Metric::builder()
        .namespace(alarm.namespace()?)
        .metric_name(alarm.metric_name()?)
        .set_dimensions(Some(
            alarm
                .dimensions()
                .iter()
                .map(|d| {
                    Dimension::builder()
                        .set_name(d.name().map(str::to_owned))
                        .set_value(d.value().map(str::to_owned))
                        .build()
                })
                .collect(),
        ))
        .build();
    let query = MetricDataQuery::builder()
        .id("m")
        .metric_stat(
            MetricStat::builder().metric(metric).period(period).stat(stat).set_unit(alarm.unit().cloned()).build(),
        )
        .return_data(true)
        .build();
    Some((vec![query], period))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A data point row of the documentation: `0` within the threshold, `X` breaching, `-` missing.
    fn row(text: &str) -> Vec<Option<f64>> {
        text.split_whitespace()
            .map(|p| match p {
                "0" => Some(1.0),
                "X" => Some(10.0),
                _ => None,
            })
            .collect()
    }

    fn rule(m: usize, n: usize, treat_missing: TreatMissing) -> Rule {
        Rule {
            evaluation_periods: n,
            datapoints_to_alarm: m,
            comparison: Comparison::Greater,
            threshold: 5.0,
            treat_missing,
        }
    }

    use State::{Alarm as A, InsufficientData as I, Ok as O};
    /// "Retain current state": checked from both OK and ALARM.
    const KEEP: Option<State> = None;

    fn check(m: usize, n: usize, data: &str, expected: [Option<State>; 4]) {
        let treatments =
            [TreatMissing::Missing, TreatMissing::Ignore, TreatMissing::Breaching, TreatMissing::NotBreaching];
        for (treat, expected) in treatments.into_iter().zip(expected) {
            for current in [O, A] {
                let (state, reason) = evaluate(&rule(m, n, treat), &row(data), current);
                assert_eq!(
                    state,
                    expected.unwrap_or(current),
                    "{m} of {n}, {data:?}, {treat:?}, from {current:?}: {reason}"
                );
            }
        }
    }

    #[test]
    fn three_of_three_as_the_documentation_s_first_table() {
        check(3, 3, "0 - X - X", [Some(O), Some(O), Some(O), Some(O)]);
        check(3, 3, "0 - - - -", [Some(O), Some(O), Some(O), Some(O)]);
        check(3, 3, "- - - - -", [Some(I), KEEP, Some(A), Some(O)]);
        check(3, 3, "0 X X - X", [Some(A), Some(A), Some(A), Some(A)]);
        check(3, 3, "- - - - X", [Some(I), KEEP, Some(A), Some(O)]);
        check(3, 3, "X - - - -", [Some(A), KEEP, Some(A), Some(O)]);
    }

    #[test]
    fn two_of_three_as_the_documentation_s_second_table() {
        check(2, 3, "0 - X - X", [Some(A), Some(A), Some(A), Some(A)]);
        check(2, 3, "0 0 X 0 X", [Some(A), Some(A), Some(A), Some(A)]);
        check(2, 3, "0 - X - -", [Some(O), Some(O), Some(A), Some(O)]);
        check(2, 3, "- - - - 0", [Some(O), Some(O), Some(A), Some(O)]);
        check(2, 3, "- - - - X", [Some(I), KEEP, Some(A), Some(O)]);
    }

    #[test]
    fn the_most_recent_n_real_points_decide_and_the_comparison_is_the_alarm_s() {
        // 1 of 1: only the newest point counts.
        check(1, 1, "X X X 0", [Some(O), Some(O), Some(O), Some(O)]);
        check(1, 1, "0 0 0 X", [Some(A), Some(A), Some(A), Some(A)]);
        let at_threshold = |comparison| {
            let rule = Rule { comparison, ..rule(1, 1, TreatMissing::Missing) };
            evaluate(&rule, &[Some(5.0)], O).0
        };
        assert_eq!(at_threshold(Comparison::Greater), O);
        assert_eq!(at_threshold(Comparison::GreaterOrEqual), A);
        assert_eq!(at_threshold(Comparison::Less), O);
        assert_eq!(at_threshold(Comparison::LessOrEqual), A);
    }

    #[test]
    fn the_reason_reads_like_cloudwatch_s() {
        let (_, reason) = evaluate(&rule(2, 3, TreatMissing::Missing), &row("0 0 X 0 X"), O);
        assert!(reason.starts_with("Threshold Crossed: 2 out of the last 3 datapoints [10, 1, 10]"), "{reason}");
        assert!(reason.contains("greater than the threshold (5)"), "{reason}");
    }
}
