//! Latency histograms (microsecond resolution, reported in milliseconds), the measurement window
//! that excludes warm-up, and the compact form in which worker processes ship histograms to the
//! coordinator (HdrHistogram V2 serialisation, base64) so percentiles merge exactly.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Largest recordable value: one hour in µs. Anything slower is clamped, not dropped, so it
/// still shows as the maximum.
const MAX_US: u64 = 3_600_000_000;
/// Three significant digits: 0.1% relative error at every magnitude, ~190 KB per histogram.
const SIGFIGS: u8 = 3;

/// The measured part of the run, in Unix nanoseconds: messages *sent* inside it count towards
/// latency; warm-up (before `start_ns`) and drain (after `end_ns`) do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Window {
    pub start_ns: u64,
    pub end_ns: u64,
}

impl Window {
    pub fn contains(&self, t_ns: u64) -> bool {
        self.start_ns != 0 && (self.start_ns..=self.end_ns).contains(&t_ns)
    }

    pub fn secs(&self) -> f64 {
        self.end_ns.saturating_sub(self.start_ns) as f64 / 1e9
    }
}

#[derive(Debug, Clone)]
pub struct Latency {
    hist: Histogram<u64>,
}

/// Percentiles of one histogram in milliseconds (all zero when nothing was recorded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Default for Latency {
    fn default() -> Self {
        Latency::new()
    }
}

impl Latency {
    pub fn new() -> Latency {
        Latency {
            hist: Histogram::new_with_bounds(1, MAX_US, SIGFIGS).expect("valid histogram bounds"),
        }
    }

    pub fn record_us(&mut self, us: u64) {
        // saturating_record clamps above the maximum; 0 µs (same-microsecond delivery) is
        // recorded as 1, the lowest trackable value.
        self.hist.saturating_record(us.max(1));
    }

    /// Records a publish→deliver latency when the message was sent inside `window`; returns
    /// whether it counted.
    pub fn record_delivery(&mut self, sent_ns: u64, received_ns: u64, window: Window) -> bool {
        if !window.contains(sent_ns) {
            return false;
        }
        self.record_us(received_ns.saturating_sub(sent_ns) / 1_000);
        true
    }

    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    pub fn merge(&mut self, other: &Latency) {
        self.hist
            .add(&other.hist)
            .expect("histograms share their bounds");
    }

    pub fn percentiles(&self) -> Percentiles {
        if self.hist.is_empty() {
            return Percentiles::default();
        }
        let ms = |us: u64| us as f64 / 1_000.0;
        Percentiles {
            count: self.hist.len(),
            p50: ms(self.hist.value_at_quantile(0.50)),
            p90: ms(self.hist.value_at_quantile(0.90)),
            p99: ms(self.hist.value_at_quantile(0.99)),
            p999: ms(self.hist.value_at_quantile(0.999)),
            max: ms(self.hist.max()),
        }
    }

    pub fn to_base64(&self) -> String {
        let mut bytes = Vec::new();
        V2Serializer::new()
            .serialize(&self.hist, &mut bytes)
            .expect("serialising into memory");
        STANDARD.encode(bytes)
    }

    pub fn from_base64(text: &str) -> anyhow::Result<Latency> {
        let bytes = STANDARD.decode(text)?;
        let decoded: Histogram<u64> = Deserializer::new().deserialize(&mut bytes.as_slice())?;
        let mut latency = Latency::new();
        latency.hist.add(&decoded)?;
        Ok(latency)
    }
}

/// A histogram in the wire form used between worker and coordinator.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Encoded(pub String);

impl From<&Latency> for Encoded {
    fn from(l: &Latency) -> Encoded {
        Encoded(l.to_base64())
    }
}

impl TryFrom<&Encoded> for Latency {
    type Error = anyhow::Error;
    fn try_from(e: &Encoded) -> anyhow::Result<Latency> {
        if e.0.is_empty() {
            return Ok(Latency::new());
        }
        Latency::from_base64(&e.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000; // nanoseconds

    #[test]
    fn warm_up_and_drain_are_excluded() {
        let window = Window {
            start_ns: 10_000 * MS,
            end_ns: 20_000 * MS,
        };
        let mut l = Latency::new();
        // Sent during warm-up: excluded however it performed.
        assert!(!l.record_delivery(9_999 * MS, 10_500 * MS, window));
        // Sent inside the window: counted.
        assert!(l.record_delivery(10_000 * MS, 10_002 * MS, window));
        assert!(l.record_delivery(15_000 * MS, 15_004 * MS, window));
        // Sent after publishing should have stopped: excluded.
        assert!(!l.record_delivery(20_001 * MS, 20_002 * MS, window));
        let p = l.percentiles();
        assert_eq!(p.count, 2);
        assert!((p.max - 4.0).abs() < 0.01, "{p:?}");
        // An unset window counts nothing.
        assert!(!l.record_delivery(1, 2, Window::default()));
    }

    #[test]
    fn percentiles_from_known_values() {
        let mut l = Latency::new();
        for ms in 1..=1000u64 {
            l.record_us(ms * 1_000);
        }
        let p = l.percentiles();
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.002;
        assert_eq!(p.count, 1000);
        assert!(close(p.p50, 500.0), "{p:?}");
        assert!(close(p.p90, 900.0), "{p:?}");
        assert!(close(p.p99, 990.0), "{p:?}");
        assert!(close(p.p999, 999.0), "{p:?}");
        assert!(close(p.max, 1000.0), "{p:?}");
        assert_eq!(Latency::new().percentiles(), Percentiles::default());
    }

    #[test]
    fn histograms_survive_the_wire_and_merge() {
        let mut a = Latency::new();
        let mut b = Latency::new();
        for us in [100, 200, 300] {
            a.record_us(us);
        }
        b.record_us(50_000);
        let mut merged = Latency::try_from(&Encoded::from(&a)).unwrap();
        merged.merge(&Latency::try_from(&Encoded::from(&b)).unwrap());
        assert_eq!(merged.count(), 4);
        assert!((merged.percentiles().max - 50.0).abs() < 0.05);
        assert_eq!(Latency::try_from(&Encoded::default()).unwrap().count(), 0);
    }
}
