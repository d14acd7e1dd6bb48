//! Round-trip time estimate and retransmission timeout.
//!
//! The same estimator as AWS's `CalculateRetransmissionTimeout` (plugin
//! `src/datachannel/streaming.go`, agent `agent/session/datachannel/datachannel.go`), which
//! is Jacobson/Karels: on each sample `R`,
//! `rttvar = 3/4·rttvar + 1/4·|srtt − R|`, `srtt = 7/8·srtt + 1/8·R`,
//! `rto = srtt + max(G, 4·rttvar)`, capped at the maximum. Initial values: srtt 100 ms,
//! rttvar 0, rto 200 ms; G (clock granularity) 10 ms; cap 1 s.
//!
//! Two additions from RFC 6298, which AWS does not have: samples are only taken from messages
//! sent once (Karn's rule: the ack of a retransmitted message cannot tell which copy it
//! answers), and every timer retransmission doubles the timeout (up to the cap), so an
//! underestimate cannot keep every message from being sampled. The doubling is undone by
//! the next acknowledgement of anything (the path works again).

use std::time::Duration;

use crate::session::Config;

#[derive(Debug, Clone)]
pub(crate) struct RttEstimator {
    srtt: u64,
    rttvar: u64,
    /// From the estimate, before back-off.
    rto: u64,
    /// Timer retransmissions since the last acknowledgement (the RTO doubles for each).
    backoffs: u32,
    granularity: u64,
    max_rto: u64,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl RttEstimator {
    pub(crate) fn new(config: &Config) -> RttEstimator {
        let max_rto = nanos(config.max_rto);
        RttEstimator {
            srtt: nanos(config.initial_rtt),
            rttvar: 0,
            rto: nanos(config.initial_rto).min(max_rto),
            backoffs: 0,
            granularity: nanos(config.clock_granularity),
            max_rto,
        }
    }

    /// A round trip measured on a message sent once.
    pub(crate) fn sample(&mut self, rtt: Duration) {
        let r = nanos(rtt);
        let deviation = self.srtt.abs_diff(r);
        self.rttvar = weighted(self.rttvar, 3, deviation, 4);
        self.srtt = weighted(self.srtt, 7, r, 8);
        self.rto = self
            .srtt
            .saturating_add(self.granularity.max(self.rttvar.saturating_mul(4)))
            .min(self.max_rto);
    }

    /// A timer retransmission happened: back off.
    pub(crate) fn back_off(&mut self) {
        self.backoffs = self.backoffs.saturating_add(1);
    }

    /// An acknowledgement arrived: the path works; forget the back-off.
    pub(crate) fn reset_back_off(&mut self) {
        self.backoffs = 0;
    }

    /// The timeout in force: the estimate doubled once per back-off, capped.
    pub(crate) fn rto(&self) -> Duration {
        let factor = 1_u64.checked_shl(self.backoffs.min(63)).unwrap_or(u64::MAX);
        Duration::from_nanos(self.rto.saturating_mul(factor).min(self.max_rto))
    }

    pub(crate) fn srtt(&self) -> Duration {
        Duration::from_nanos(self.srtt)
    }

    pub(crate) fn rttvar(&self) -> Duration {
        Duration::from_nanos(self.rttvar)
    }
}

/// `(old·keep + new) / parts`, in 128 bits so nothing overflows.
fn weighted(old: u64, keep: u64, new: u64, parts: u64) -> u64 {
    let sum = u128::from(old) * u128::from(keep) + u128::from(new);
    u64::try_from(sum / u128::from(parts)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn starts_like_aws() {
        let e = RttEstimator::new(&Config::default());
        assert_eq!(e.rto(), 200 * MS);
        assert_eq!(e.srtt(), 100 * MS);
    }

    #[test]
    fn first_sample_matches_aws_formula() {
        let mut e = RttEstimator::new(&Config::default());
        e.sample(20 * MS);
        // rttvar = 0·3/4 + |100−20|/4 = 20; srtt = 100·7/8 + 20/8 = 90; rto = 90 + 80.
        assert_eq!(e.rttvar(), 20 * MS);
        assert_eq!(e.srtt(), 90 * MS);
        assert_eq!(e.rto(), 170 * MS);
    }

    #[test]
    fn converges_and_is_clamped() {
        let mut e = RttEstimator::new(&Config::default());
        for _ in 0..200 {
            e.sample(30 * MS);
        }
        assert!(e.srtt() >= 29 * MS && e.srtt() <= 31 * MS, "{:?}", e.srtt());
        // Variance gone: the granularity floor applies.
        assert!(e.rto() >= 39 * MS && e.rto() <= 41 * MS, "{:?}", e.rto());
        for _ in 0..200 {
            e.sample(5 * Duration::from_secs(1));
        }
        assert_eq!(e.rto(), Duration::from_secs(1));
    }

    #[test]
    fn back_off_doubles_up_to_the_cap() {
        let mut e = RttEstimator::new(&Config::default());
        e.back_off();
        assert_eq!(e.rto(), 400 * MS);
        e.back_off();
        e.back_off();
        assert_eq!(e.rto(), Duration::from_secs(1));
        for _ in 0..100 {
            e.back_off();
        }
        assert_eq!(e.rto(), Duration::from_secs(1));
        e.reset_back_off();
        assert_eq!(e.rto(), 200 * MS);
    }
}
