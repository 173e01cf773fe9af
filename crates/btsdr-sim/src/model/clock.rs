//! The simulated clock: simulated time runs at `speed` times real time from an anchor, and
//! `Group::advance` jumps it forward, running every job that falls due on the way.

use std::time::Instant;

use chrono::{Duration, NaiveDateTime};

#[derive(Debug, Clone)]
pub struct SimClock {
    base: NaiveDateTime,
    anchor: Instant,
    /// Simulated seconds per real second (0 = frozen, for deterministic tests).
    pub speed: f64,
}

impl SimClock {
    pub fn new(start: NaiveDateTime, speed: f64) -> SimClock {
        SimClock {
            base: start,
            anchor: Instant::now(),
            speed: speed.max(0.0),
        }
    }

    /// The current simulated UTC time, rounded to milliseconds like SQL Server's datetime.
    pub fn now(&self) -> NaiveDateTime {
        let real = self.anchor.elapsed().as_secs_f64() * self.speed;
        let ms = (real * 1000.0) as i64;
        self.base + Duration::milliseconds(ms)
    }

    /// Moves simulated time to `t` (never backwards).
    pub fn set(&mut self, t: NaiveDateTime) {
        let now = self.now();
        self.base = if t > now { t } else { now };
        self.anchor = Instant::now();
    }
}
