//! The long-lived background tasks: feed fan-out, mention scanning, the storage writers, presence
//! upkeep, the revocation and room-rule polls, the bus loops. Each is written to survive a bad
//! item (it logs it, counts it in `switchboard_worker_skipped_total`, and goes on). Should one
//! still end by a panic, [`Workers::supervise`] runs it again after a pause (counted in
//! `switchboard_worker_restarts_total`); `readyz` reports every worker that is not running, so a
//! load balancer stops sending traffic to a node that lost one for good.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use parking_lot::Mutex;
use tokio::task::{AbortHandle, JoinHandle};

use crate::metrics;

/// Pause before a worker that panicked runs again: a worker that panics at once on every start
/// (a bad item it meets first) then costs a log line a second, not a spinning core.
const RESTART_AFTER: Duration = Duration::from_secs(1);

#[derive(Default)]
pub(crate) struct Workers {
    entries: Mutex<Vec<Entry>>,
}

struct Entry {
    name: &'static str,
    /// False while a supervised worker waits to be restarted.
    running: Arc<AtomicBool>,
    task: AbortHandle,
}

impl Workers {
    /// Spawns `name`, running `start()`'s future; when a run panics, logs it and starts a fresh
    /// run after [`RESTART_AFTER`]. The returned task ends when a run returns normally (its
    /// input closed, or shutdown).
    pub(crate) fn supervise<F, Fut>(&self, name: &'static str, start: F) -> JoinHandle<()>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let running = Arc::new(AtomicBool::new(true));
        let flag = running.clone();
        let task = tokio::spawn(async move {
            loop {
                match AssertUnwindSafe(start()).catch_unwind().await {
                    Ok(()) => return,
                    Err(panic) => {
                        flag.store(false, Ordering::Release);
                        metrics::worker_restarted(name);
                        tracing::error!(
                            worker = name,
                            panic = panic_message(&panic),
                            "worker panicked; restarting"
                        );
                        tokio::time::sleep(RESTART_AFTER).await;
                        flag.store(true, Ordering::Release);
                    }
                }
            }
        });
        self.entries.lock().push(Entry {
            name,
            running,
            task: task.abort_handle(),
        });
        task
    }

    /// Records a task that cannot be restarted (it owns a queue nothing else can feed): `readyz`
    /// reports it once it has ended.
    pub(crate) fn watch(&self, name: &'static str, task: &JoinHandle<()>) {
        self.entries.lock().push(Entry {
            name,
            running: Arc::new(AtomicBool::new(true)),
            task: task.abort_handle(),
        });
    }

    /// Workers not running now (ended, or waiting to be restarted), by name.
    pub(crate) fn down(&self) -> Vec<&'static str> {
        let mut down: Vec<&'static str> = self
            .entries
            .lock()
            .iter()
            .filter(|e| e.task.is_finished() || !e.running.load(Ordering::Acquire))
            .map(|e| e.name)
            .collect();
        down.dedup();
        down
    }
}

/// The message of a caught panic, when it has one.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use super::*;

    /// A worker that panics on its first two runs is restarted each time, reported down while
    /// it waits, and up again once it runs (time is paused: the pauses pass at once).
    #[tokio::test(start_paused = true)]
    async fn a_panicking_worker_is_restarted_and_reported_meanwhile() {
        let workers = Workers::default();
        let runs = Arc::new(AtomicU32::new(0));
        let (tx, rx) = tokio::sync::watch::channel(false);
        let counter = runs.clone();
        let task = workers.supervise("flaky", move || {
            let (runs, mut rx) = (counter.clone(), rx.clone());
            async move {
                if runs.fetch_add(1, Ordering::SeqCst) < 2 {
                    panic!("bad item");
                }
                let _ = rx.wait_for(|stop| *stop).await;
            }
        });
        tokio::time::sleep(RESTART_AFTER / 2).await;
        assert_eq!(workers.down(), ["flaky"], "down while waiting to restart");
        tokio::time::sleep(RESTART_AFTER * 3).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert!(workers.down().is_empty(), "running again");
        tx.send(true).unwrap();
        task.await.unwrap();
        assert_eq!(
            workers.down(),
            ["flaky"],
            "a worker that ended is not running"
        );
    }
}
