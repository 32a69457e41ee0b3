//! The bounded buffer between the listener and the shipper. It is capped in bytes as CloudWatch
//! counts them; when full it drops the oldest events and counts exactly how many, so the function
//! and the listener never wait for CloudWatch.

use std::collections::VecDeque;

/// CloudWatch Logs counts this many bytes per event on top of its message.
pub const EVENT_OVERHEAD_BYTES: usize = 26;

/// One log event as CloudWatch Logs stores it, and what it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    /// When, in milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// The message (a JSON object, serialised).
    pub message: String,
    /// A log line, or an EMF document the extension rendered: they are kept apart all the way
    /// to CloudWatch and back.
    pub kind: EventKind,
}

/// What a log event carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A log line (the function's or an extension's, EMF documents it wrote that are not
    /// merged included, or a platform record): kept in the byte-capped buffer.
    Log,
    /// An EMF document the extension rendered from aggregated values: kept apart from the cap,
    /// so its values (`LogsDropped` among them) are not lost with the lines.
    Metrics,
}

impl LogEvent {
    /// A log line.
    pub fn new(timestamp_ms: i64, message: String) -> Self {
        Self { timestamp_ms, message, kind: EventKind::Log }
    }

    /// An EMF document the extension rendered.
    pub fn metrics(timestamp_ms: i64, document: String) -> Self {
        Self { timestamp_ms, message: document, kind: EventKind::Metrics }
    }

    /// The bytes this event counts for in a `PutLogEvents` batch.
    pub fn size(&self) -> usize {
        self.message.len() + EVENT_OVERHEAD_BYTES
    }
}

/// The log lines waiting for a flush, at most `capacity` bytes as CloudWatch counts them.
#[derive(Debug)]
pub(crate) struct LogBuffer {
    events: VecDeque<LogEvent>,
    bytes: usize,
    capacity: usize,
    /// Events dropped since the last `take_dropped`.
    dropped: u64,
}

impl LogBuffer {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { events: VecDeque::new(), bytes: 0, capacity, dropped: 0 }
    }

    /// Appends an event, dropping the oldest ones if the cap is exceeded.
    pub(crate) fn push(&mut self, event: LogEvent) {
        self.bytes += event.size();
        self.events.push_back(event);
        self.enforce_cap();
    }

    /// Puts back events a flush could not send, ahead of what arrived meanwhile; if the buffer
    /// overflows, the oldest go first.
    pub(crate) fn restore(&mut self, events: Vec<LogEvent>) {
        for event in events.into_iter().rev() {
            self.bytes += event.size();
            self.events.push_front(event);
        }
        self.enforce_cap();
    }

    fn enforce_cap(&mut self) {
        while self.bytes > self.capacity {
            match self.events.pop_front() {
                Some(event) => {
                    self.bytes -= event.size();
                    self.dropped += 1;
                }
                None => break,
            }
        }
    }

    pub(crate) fn take_all(&mut self) -> Vec<LogEvent> {
        self.bytes = 0;
        self.events.drain(..).collect()
    }

    /// The number of events dropped since the last call.
    pub(crate) fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    pub(crate) fn len(&self) -> usize {
        self.events.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn event(i: usize, len: usize) -> LogEvent {
        LogEvent::new(i as i64, format!("{i:0>len$}"))
    }

    #[test]
    fn full_buffer_drops_the_oldest_and_counts_them() {
        let mut buffer = LogBuffer::new(3 * (10 + EVENT_OVERHEAD_BYTES));
        for i in 0..5 {
            buffer.push(event(i, 10));
        }
        assert_eq!(buffer.take_dropped(), 2);
        assert_eq!(buffer.take_dropped(), 0, "counted once");
        let kept: Vec<i64> = buffer.take_all().iter().map(|e| e.timestamp_ms).collect();
        assert_eq!(kept, [2, 3, 4]);
        assert_eq!(buffer.bytes(), 0);
    }

    #[test]
    fn restored_events_go_before_newer_ones() {
        let mut buffer = LogBuffer::new(1 << 20);
        buffer.push(event(3, 4));
        buffer.restore(vec![event(1, 4), event(2, 4)]);
        let order: Vec<i64> = buffer.take_all().iter().map(|e| e.timestamp_ms).collect();
        assert_eq!(order, [1, 2, 3]);
    }

    proptest! {
        /// Kept + dropped is everything pushed; what is kept is the newest, in order, within the cap.
        #[test]
        fn nothing_is_lost_uncounted(sizes in proptest::collection::vec(0usize..300, 0..400), capacity in 100usize..5_000) {
            let mut buffer = LogBuffer::new(capacity);
            for (i, len) in sizes.iter().enumerate() {
                buffer.push(event(i, *len));
                prop_assert!(buffer.bytes() <= capacity);
            }
            let dropped = buffer.take_dropped() as usize;
            let kept = buffer.take_all();
            prop_assert_eq!(kept.len() + dropped, sizes.len());
            let expected: Vec<i64> = (dropped..sizes.len()).map(|i| i as i64).collect();
            prop_assert_eq!(kept.iter().map(|e| e.timestamp_ms).collect::<Vec<_>>(), expected);
        }
    }
}
