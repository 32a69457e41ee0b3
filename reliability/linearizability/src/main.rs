//! `books-linearizability HISTORY.json`: is the consistency run's history of single-book writes
//! linearizable?
//!
//! Each book is an object of its own (linearizability is compositional: a history is
//! linearizable if and only if each object's is), whose sequential specification is the write
//! model's contract: a create makes it live at version 1 (a replay under the same idempotency
//! key answers the same and changes nothing), `PUT` with `If-Match: v` moves version `v` to
//! `v + 1` and answers it, `DELETE` with `If-Match: v` removes version `v`; a mismatched version
//! answers 412, a deleted book 404. The final state read from the table after the run closes
//! each history. Reads through the API are not part of it: they come from the read model,
//! which is eventually consistent by design (the consistency run checks its convergence).
//!
//! An operation answered 5xx or not at all may or may not have happened: it is invoked and
//! never returns, which the tester allows to take effect at any point after its start, or not
//! at all. Refusals before the command runs (403, 429) did not happen and are left out.
//!
//! The search is stateright's `LinearizabilityTester` (a checker nobody here wrote); this file
//! only maps the history onto it. Prints a JSON summary; exits 1 when a book's history is not
//! linearizable, 2 when the history cannot be read.

use std::collections::BTreeMap;
use std::process::ExitCode;

use serde::Deserialize;
use stateright::semantics::{ConsistencyTester, LinearizabilityTester, SequentialSpec};

/// One book as the write model holds it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Book {
    Absent,
    Live(u64),
    Deleted,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    Create,
    Replace {
        if_match: u64,
    },
    Delete {
        if_match: u64,
    },
    /// The table read after the run.
    Read,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Ret {
    Created,
    Replaced(u64),
    Deleted,
    PreconditionFailed,
    NotFound,
    State(Option<u64>),
}

impl SequentialSpec for Book {
    type Op = Op;
    type Ret = Ret;

    fn invoke(&mut self, op: &Op) -> Ret {
        match (op, self.clone()) {
            (Op::Create, Book::Absent) => {
                *self = Book::Live(1);
                Ret::Created
            }
            (Op::Create, _) => Ret::Created,
            (Op::Replace { if_match }, Book::Live(version)) if *if_match == version => {
                *self = Book::Live(version + 1);
                Ret::Replaced(version + 1)
            }
            (Op::Delete { if_match }, Book::Live(version)) if *if_match == version => {
                *self = Book::Deleted;
                Ret::Deleted
            }
            (Op::Replace { .. } | Op::Delete { .. }, Book::Live(_)) => Ret::PreconditionFailed,
            (Op::Replace { .. } | Op::Delete { .. }, _) => Ret::NotFound,
            (Op::Read, Book::Live(version)) => Ret::State(Some(version)),
            (Op::Read, _) => Ret::State(None),
        }
    }
}

/// The history consistency.py writes.
#[derive(Deserialize)]
struct History {
    operations: Vec<Recorded>,
    /// The version of every live book in the table after the run.
    final_versions: BTreeMap<String, u64>,
}

#[derive(Deserialize, Clone, Debug)]
struct Recorded {
    op: String,
    client: u64,
    id: Option<String>,
    if_match: Option<u64>,
    status: Option<u16>,
    version: Option<u64>,
    start: f64,
    end: f64,
}

/// A start or an answer, on a thread of the tester.
enum Event {
    Invoke(u64, Op),
    Return(u64, Ret),
}

impl Event {
    fn is_return(&self) -> bool {
        matches!(self, Event::Return(..))
    }
}

/// What became of an operation, for the tester.
enum Outcome {
    Returned(Ret),
    Indeterminate,
    /// Refused before the command ran, or not about one book's writes.
    Ignored,
}

fn operation(recorded: &Recorded) -> Option<(String, Op, Outcome)> {
    let id = recorded.id.clone()?;
    let op = match (recorded.op.as_str(), recorded.if_match) {
        ("create" | "replay", _) => Op::Create,
        ("replace", Some(if_match)) => Op::Replace { if_match },
        ("delete", Some(if_match)) => Op::Delete { if_match },
        _ => return None,
    };
    let outcome = match (&op, recorded.status) {
        (_, None) => Outcome::Indeterminate,
        (_, Some(status)) if status >= 500 => Outcome::Indeterminate,
        (Op::Create, Some(201)) => Outcome::Returned(Ret::Created),
        (Op::Replace { .. }, Some(200)) => Outcome::Returned(Ret::Replaced(recorded.version?)),
        (Op::Delete { .. }, Some(204)) => Outcome::Returned(Ret::Deleted),
        (Op::Replace { .. } | Op::Delete { .. }, Some(412)) => Outcome::Returned(Ret::PreconditionFailed),
        (Op::Replace { .. } | Op::Delete { .. }, Some(404)) => Outcome::Returned(Ret::NotFound),
        _ => Outcome::Ignored,
    };
    Some((id, op, outcome))
}

/// Why a book's history is not linearizable: its operations, in the order they started.
#[derive(Debug)]
struct Violation {
    book: String,
    operations: Vec<String>,
}

/// Checks every book; the number of operations checked, indeterminate ones, and violations.
fn check(history: &History) -> Result<(usize, usize, Vec<Violation>), String> {
    let mut by_book: BTreeMap<String, Vec<(Recorded, Op, Outcome)>> = BTreeMap::new();
    for recorded in &history.operations {
        if let Some((id, op, outcome)) = operation(recorded) {
            if !matches!(outcome, Outcome::Ignored) {
                by_book.entry(id).or_default().push((recorded.clone(), op, outcome));
            }
        }
    }
    let (mut checked, mut indeterminate, mut violations) = (0, 0, Vec::new());
    let last = history.operations.iter().map(|o| o.end.max(o.start)).fold(0.0_f64, f64::max);
    for (book, operations) in by_book {
        let mut events: Vec<(f64, Event)> = Vec::new();
        let mut fresh_thread = 1_000_000;
        for (recorded, op, outcome) in &operations {
            checked += 1;
            match outcome {
                Outcome::Returned(ret) => {
                    events.push((recorded.start, Event::Invoke(recorded.client, op.clone())));
                    events.push((recorded.end, Event::Return(recorded.client, ret.clone())));
                }
                // A thread of its own: it never returns, and its client went on.
                Outcome::Indeterminate => {
                    indeterminate += 1;
                    fresh_thread += 1;
                    events.push((recorded.start, Event::Invoke(fresh_thread, op.clone())));
                }
                Outcome::Ignored => {}
            }
        }
        let read = Ret::State(history.final_versions.get(&book).copied());
        events.push((last + 1.0, Event::Invoke(u64::MAX, Op::Read)));
        events.push((last + 2.0, Event::Return(u64::MAX, read)));
        // At equal times a start comes first: the weaker constraint.
        events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.is_return().cmp(&b.1.is_return())));
        let mut tester = LinearizabilityTester::new(Book::Absent);
        for (_, event) in events {
            let step = match event {
                Event::Invoke(thread, op) => tester.on_invoke(thread, op).map(|_| ()),
                Event::Return(thread, ret) => tester.on_return(thread, ret).map(|_| ()),
            };
            step.map_err(|err| format!("book {book}: the history is malformed: {err}"))?;
        }
        if !tester.is_consistent() {
            let operations = operations
                .iter()
                .map(|(r, op, _)| {
                    format!("client {} {:?} at {:.3}-{:.3}: {:?}", r.client, op, r.start, r.end, r.status)
                })
                .chain(std::iter::once(format!("final: {:?}", history.final_versions.get(&book))))
                .collect();
            violations.push(Violation { book, operations });
        }
    }
    Ok((checked, indeterminate, violations))
}

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: books-linearizability HISTORY.json");
        return ExitCode::from(2);
    };
    let history: History = match std::fs::read(&path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()))
    {
        Ok(history) => history,
        Err(err) => {
            eprintln!("error: {path}: {err}");
            return ExitCode::from(2);
        }
    };
    match check(&history) {
        Ok((checked, indeterminate, violations)) => {
            let summary = serde_json::json!({
                "checker": "stateright LinearizabilityTester",
                "books": history.operations.iter().filter_map(|o| o.id.as_ref()).collect::<std::collections::BTreeSet<_>>().len(),
                "operations": checked,
                "indeterminate": indeterminate,
                "violations": violations.iter().map(|v| serde_json::json!({"book": v.book, "operations": v.operations})).collect::<Vec<_>>(),
            });
            println!("{summary}");
            if violations.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(
        op: &str,
        client: u64,
        if_match: Option<u64>,
        status: Option<u16>,
        version: Option<u64>,
        span: (f64, f64),
    ) -> Recorded {
        Recorded { op: op.into(), client, id: Some("b".into()), if_match, status, version, start: span.0, end: span.1 }
    }

    fn linearizable(operations: Vec<Recorded>, final_version: Option<u64>) -> bool {
        let final_versions = final_version.map(|v| BTreeMap::from([("b".to_owned(), v)])).unwrap_or_default();
        check(&History { operations, final_versions }).unwrap().2.is_empty()
    }

    #[test]
    fn concurrent_replaces_of_one_version_have_one_winner() {
        let create = op("create", 0, None, Some(201), None, (0.0, 1.0));
        let a = op("replace", 1, Some(1), Some(200), Some(2), (2.0, 4.0));
        let b = op("replace", 2, Some(1), Some(412), None, (2.5, 3.5));
        assert!(linearizable(vec![create.clone(), a.clone(), b], Some(2)));
        let both = op("replace", 2, Some(1), Some(200), Some(2), (2.5, 3.5));
        assert!(!linearizable(vec![create, a, both], Some(2)), "two winners of If-Match 1");
    }

    #[test]
    fn a_write_after_a_completed_delete_is_not_found() {
        let create = op("create", 0, None, Some(201), None, (0.0, 1.0));
        let delete = op("delete", 1, Some(1), Some(204), None, (2.0, 3.0));
        let late = op("replace", 2, Some(1), Some(200), Some(2), (4.0, 5.0));
        assert!(!linearizable(vec![create.clone(), delete.clone(), late], None), "a stale success");
        let overlapping = op("replace", 2, Some(1), Some(200), Some(2), (2.5, 5.0));
        // Overlapping the delete, the replace may come first; then the delete must fail... it did not.
        assert!(!linearizable(vec![create.clone(), delete.clone(), overlapping], None));
        let refused = op("replace", 2, Some(1), Some(404), None, (4.0, 5.0));
        assert!(linearizable(vec![create, delete, refused], None));
    }

    #[test]
    fn an_indeterminate_write_may_or_may_not_have_happened() {
        let create = op("create", 0, None, Some(201), None, (0.0, 1.0));
        let lost = op("replace", 1, Some(1), Some(500), None, (2.0, 3.0));
        assert!(linearizable(vec![create.clone(), lost.clone()], Some(2)), "it happened");
        assert!(linearizable(vec![create.clone(), lost.clone()], Some(1)), "it did not");
        assert!(!linearizable(vec![create, lost], Some(3)), "but not twice");
    }

    #[test]
    fn the_final_state_must_follow_from_the_acknowledged_writes() {
        let create = op("create", 0, None, Some(201), None, (0.0, 1.0));
        let replay = op("replay", 3, None, Some(201), None, (5.0, 6.0));
        let replace = op("replace", 1, Some(1), Some(200), Some(2), (2.0, 3.0));
        assert!(
            linearizable(vec![create.clone(), replace.clone(), replay.clone()], Some(2)),
            "a replay changes nothing"
        );
        assert!(!linearizable(vec![create.clone(), replace.clone()], Some(1)), "an acknowledged replace lost");
        assert!(!linearizable(vec![create, replace], None), "a book gone without a delete");
    }
}
