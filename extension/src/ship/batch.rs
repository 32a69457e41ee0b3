//! Cutting log events into `PutLogEvents` batches that CloudWatch Logs accepts: within the byte
//! budget (messages in UTF-8 plus 26 bytes per event), the event count, the 24-hour span, and in
//! chronological order. An event too large for CloudWatch is truncated with a marker.

use serde_json::json;

use crate::buffer::{LogEvent, EVENT_OVERHEAD_BYTES};

/// Bytes per `PutLogEvents` batch at most (messages plus 26 bytes per event).
pub const MAX_BATCH_BYTES: usize = 1_048_576;
/// Events per batch at most.
pub const MAX_BATCH_EVENTS: usize = 10_000;
/// A batch must span less than 24 hours.
pub const MAX_BATCH_SPAN_MS: i64 = 24 * 60 * 60 * 1000;
/// The largest message we send. CloudWatch documented 256 KB per event (now 1 MB in some
/// regions); we keep to the lower bound, which every region accepts.
pub const MAX_MESSAGE_BYTES: usize = 262_144 - EVENT_OVERHEAD_BYTES;

/// The key that marks a truncated event.
pub const TRUNCATED_MARKER: &str = "books_telemetry_truncated";

/// Returns the event, or a JSON stand-in holding the first part of its message when the
/// message is larger than CloudWatch accepts.
pub fn fit(event: LogEvent) -> LogEvent {
    if event.message.len() <= MAX_MESSAGE_BYTES {
        return event;
    }
    let original = event.message.len();
    // Escaping can make the head longer than it was; shrink until the whole document fits.
    let mut keep = MAX_MESSAGE_BYTES - 256;
    loop {
        let mut cut = keep.min(original);
        while !event.message.is_char_boundary(cut) {
            cut -= 1;
        }
        let message =
            json!({TRUNCATED_MARKER: true, "original_bytes": original, "head": &event.message[..cut]}).to_string();
        if message.len() <= MAX_MESSAGE_BYTES {
            return LogEvent::new(event.timestamp_ms, message);
        }
        keep = cut.saturating_sub(message.len() - MAX_MESSAGE_BYTES + 16);
    }
}

/// Sorts the events by time (stable: equal timestamps keep their order) and cuts them into
/// batches within every `PutLogEvents` limit. Messages must already `fit`.
pub fn into_batches(mut events: Vec<LogEvent>) -> Vec<Vec<LogEvent>> {
    events.sort_by_key(|e| e.timestamp_ms);
    let mut batches = Vec::new();
    let mut batch: Vec<LogEvent> = Vec::new();
    let mut bytes = 0;
    for event in events {
        let full = batch.len() == MAX_BATCH_EVENTS
            || bytes + event.size() > MAX_BATCH_BYTES
            || batch.first().is_some_and(|first| event.timestamp_ms - first.timestamp_ms >= MAX_BATCH_SPAN_MS);
        if full {
            batches.push(std::mem::take(&mut batch));
            bytes = 0;
        }
        bytes += event.size();
        batch.push(event);
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    #[test]
    fn oversized_message_is_truncated_with_a_marker() {
        let event = fit(LogEvent::new(7, "\"quoted\"\n".repeat(60_000)));
        assert!(event.message.len() <= MAX_MESSAGE_BYTES);
        let value: Value = serde_json::from_str(&event.message).expect("the stand-in is JSON");
        assert_eq!(value[TRUNCATED_MARKER], true);
        assert_eq!(value["original_bytes"], 540_000);
        assert!(value["head"].as_str().unwrap().starts_with("\"quoted\"\n"));
        assert_eq!(event.timestamp_ms, 7);
    }

    #[test]
    fn small_message_is_untouched() {
        let event = LogEvent::new(1, "é".repeat(1000));
        assert_eq!(fit(event.clone()), event);
    }

    #[test]
    fn span_of_a_day_starts_a_new_batch() {
        let events = vec![LogEvent::new(0, "a".into()), LogEvent::new(MAX_BATCH_SPAN_MS, "b".into())];
        assert_eq!(into_batches(events).len(), 2);
    }

    fn arbitrary_events() -> impl Strategy<Value = Vec<LogEvent>> {
        proptest::collection::vec(
            (0i64..3 * MAX_BATCH_SPAN_MS, prop_oneof![0usize..200, 100_000usize..300_000]),
            0..120,
        )
        .prop_map(|specs| {
            specs
                .into_iter()
                .enumerate()
                .map(|(i, (t, len))| LogEvent::new(t, format!("{i}:{}", "x".repeat(len))))
                .collect()
        })
    }

    proptest! {
        /// Every batch is within the limits and in order; together they are exactly the input.
        #[test]
        fn batches_respect_every_limit(events in arbitrary_events(), many_small in 0usize..25_000) {
            let mut events: Vec<LogEvent> = events.into_iter().map(fit).collect();
            events.extend((0..many_small).map(|i| LogEvent::new(5, format!("s{i}"))));
            let mut expected = events.clone();
            expected.sort_by_key(|e| e.timestamp_ms);
            let batches = into_batches(events);
            for batch in &batches {
                prop_assert!(!batch.is_empty());
                prop_assert!(batch.len() <= MAX_BATCH_EVENTS);
                prop_assert!(batch.iter().map(LogEvent::size).sum::<usize>() <= MAX_BATCH_BYTES);
                prop_assert!(batch.windows(2).all(|w| w[0].timestamp_ms <= w[1].timestamp_ms));
                prop_assert!(batch.last().unwrap().timestamp_ms - batch[0].timestamp_ms < MAX_BATCH_SPAN_MS);
                prop_assert!(batch.iter().all(|e| e.message.len() <= MAX_MESSAGE_BYTES));
            }
            let flattened: Vec<LogEvent> = batches.into_iter().flatten().collect();
            prop_assert_eq!(flattened, expected);
        }
    }
}
