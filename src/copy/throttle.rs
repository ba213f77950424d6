//! Rate limits (`-r RATE` of `convert` and `commit`): a copy that must not
//! starve a busy host waits between pieces so that, on average since it
//! began, it moves no more than RATE bytes a second.

use std::time::{Duration, Instant};

/// Paces a copy to at most `rate` bytes a second.
#[derive(Debug)]
pub struct Throttle {
    rate: u64,
    start: Instant,
    moved: u64,
}

impl Throttle {
    /// A throttle for `rate` bytes a second; `None` (or 0) for no limit.
    pub fn new(rate: Option<u64>) -> Option<Throttle> {
        rate.filter(|&r| r > 0).map(|rate| Throttle {
            rate,
            start: Instant::now(),
            moved: 0,
        })
    }

    /// Count `bytes` more as moved, and wait until moving them keeps the
    /// average at the rate.
    pub fn pace(&mut self, bytes: u64) {
        self.moved += bytes;
        let due = Duration::from_secs_f64(self.moved as f64 / self.rate as f64);
        if let Some(wait) = due.checked_sub(self.start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}

/// Pace `bytes` through `throttle` when there is one.
pub fn pace(throttle: &mut Option<Throttle>, bytes: u64) {
    if let Some(t) = throttle {
        t.pace(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_average_stays_at_the_rate() {
        let mut t = Throttle::new(Some(10 << 20)).unwrap();
        let start = Instant::now();
        for _ in 0..4 {
            t.pace(1 << 20);
        }
        let took = start.elapsed().as_secs_f64();
        assert!((0.38..1.0).contains(&took), "{took}");
        assert!(Throttle::new(Some(0)).is_none());
        assert!(Throttle::new(None).is_none());
    }
}
