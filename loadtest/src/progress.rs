//! Live progress on stderr: an indicatif spinner with connection counts and send/deliver rates,
//! shown only when stderr is a terminal (otherwise only the final summary is printed).

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::stats::Live;

/// Rates are computed over at least this long, so they do not jitter with message timing.
const RATE_WINDOW: Duration = Duration::from_secs(1);

pub struct Progress {
    bar: Option<ProgressBar>,
    planned: usize,
    /// Latest counters per engine.
    engines: Vec<Live>,
    phase: &'static str,
    last: (Instant, Live),
    rates: (f64, f64),
}

impl Progress {
    pub fn new(enabled: bool, planned: usize, engines: usize) -> Progress {
        let bar = enabled.then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                    .expect("valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            planned,
            engines: vec![Live::default(); engines],
            phase: "connecting",
            last: (Instant::now(), Live::default()),
            rates: (0.0, 0.0),
        }
    }

    pub fn phase(&mut self, phase: &'static str) {
        self.phase = phase;
        self.redraw();
    }

    pub fn update(&mut self, engine: usize, live: Live) {
        if let Some(slot) = self.engines.get_mut(engine) {
            *slot = live;
        }
        self.redraw();
    }

    fn redraw(&mut self) {
        let Some(bar) = &self.bar else { return };
        let mut total = Live::default();
        for e in &self.engines {
            total.add(e);
        }
        let elapsed = self.last.0.elapsed();
        if elapsed >= RATE_WINDOW {
            let secs = elapsed.as_secs_f64();
            self.rates = (
                total.sent.saturating_sub(self.last.1.sent) as f64 / secs,
                total.delivered.saturating_sub(self.last.1.delivered) as f64 / secs,
            );
            self.last = (Instant::now(), total);
        }
        bar.set_message(format!(
            "{} | conns {}/{} open, {} failed | sent {:.0}/s | delivered {:.0}/s",
            self.phase, total.open, self.planned, total.connect_failed, self.rates.0, self.rates.1
        ));
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
