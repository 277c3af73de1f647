//! With the `tracing` feature, the long and the contended work shows as
//! spans: commits, merges, rebases and sweeps (and, on PostgreSQL, every
//! backend call), with their phases as events.

#![cfg(feature = "tracing")]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// What the subscriber saw: the names of the spans made and how many
/// events were emitted.
#[derive(Default)]
struct Seen {
    spans: Mutex<Vec<String>>,
    events: AtomicU64,
    next: AtomicU64,
}

/// A subscriber recording into a shared [`Seen`].
#[derive(Clone, Default)]
struct Recorder(Arc<Seen>);

impl std::ops::Deref for Recorder {
    type Target = Seen;
    fn deref(&self) -> &Seen {
        &self.0
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        self.spans
            .lock()
            .expect("lock")
            .push(span.metadata().name().to_string());
        Id::from_u64(self.next.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {
        self.events.fetch_add(1, Ordering::Relaxed);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn commits_merges_rebases_and_sweeps_are_spans() {
    let recorder = Recorder::default();
    tracing::subscriber::with_default(recorder.clone(), || {
        let db = kvgit::Db::memory();
        let main = db.branch("main").expect("main");
        main.put("a", "1").expect("put");
        let dev = main.fork("dev").expect("fork");
        dev.put("b", "2").expect("put on dev");
        main.put("c", "3").expect("put on main");
        main.merge_from(&dev).expect("merge");
        db.rebase_keep("main", |k| k != b"c").expect("rebase");
        db.sweep().expect("sweep");
    });
    let spans = recorder.spans.lock().expect("lock").clone();
    for name in ["kvgit.commit", "kvgit.merge", "kvgit.rebase", "kvgit.sweep"] {
        assert!(
            spans.iter().any(|s| s == name),
            "no {name} span in {spans:?}"
        );
    }
    assert!(recorder.events.load(Ordering::Relaxed) > 0, "no events");
}
