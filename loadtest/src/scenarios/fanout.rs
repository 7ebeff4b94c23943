//! `fanout`: N subscribers on one channel while a few publishers share R msg/s. Measures
//! delivery latency and throughput of one hot channel.

use super::{publishers, subscribers, PeerPlan};
use crate::options::{publishers_for, FanoutParams};

pub fn plan(p: &FanoutParams, run_id: &str) -> Vec<PeerPlan> {
    let channel = format!("room:lt-fanout-{run_id}");
    let count = publishers_for(p.rate, p.publishers);
    publishers(&channel, count, p.rate)
        .chain(subscribers(&channel, count, p.subscribers, false))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishers_share_the_rate_and_subscribers_follow() {
        let plans = plan(
            &FanoutParams {
                subscribers: 3,
                rate: 250.0,
                publishers: None,
            },
            "r",
        );
        assert_eq!(plans.len(), 6);
        let rates: Vec<f64> = plans
            .iter()
            .filter_map(|p| p.publish.as_ref())
            .map(|p| p.rate)
            .collect();
        assert_eq!(rates.len(), 3);
        assert!((rates.iter().sum::<f64>() - 250.0).abs() < 1e-9);
        assert!(plans[3..]
            .iter()
            .all(|p| p.subscribe == vec!["room:lt-fanout-r".to_owned()]));
        let indices: Vec<u64> = plans.iter().map(|p| p.index).collect();
        assert_eq!(indices, vec![0, 1, 2, 3, 4, 5]);
    }
}
