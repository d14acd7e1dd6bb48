//! Jittered exponential backoff for reconnecting to the server.

use std::time::Duration;

use rand::Rng as _;

/// Delays that double from `initial` up to `cap`, each drawn uniformly from the upper half
/// of the current step ("equal jitter"), so a fleet of agents that lost the same server does
/// not come back in lockstep, and no delay is shorter than half the step.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    cap: Duration,
    step: Duration,
}

impl Backoff {
    /// Starts at `initial`, never above `cap`.
    pub fn new(initial: Duration, cap: Duration) -> Backoff {
        let initial = initial.min(cap);
        Backoff {
            initial,
            cap,
            step: initial,
        }
    }

    /// The next delay; the one after is (up to) twice as long.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = step.saturating_mul(2).min(self.cap);
        let half = step / 2;
        let jitter = rand::rng().random_range(0..=duration_ms(half));
        half.saturating_add(Duration::from_millis(jitter))
    }

    /// Back to `initial` (after a connection that held).
    pub fn reset(&mut self) {
        self.step = self.initial;
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_with_jitter_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let mut step = Duration::from_millis(500);
        for _ in 0..20 {
            let d = b.next_delay();
            assert!(
                d >= step / 2 && d <= step,
                "{d:?} not in [{:?}, {step:?}]",
                step / 2
            );
            step = (step * 2).min(Duration::from_secs(30));
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(500));
    }
}
