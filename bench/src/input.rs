//! Benchmark input made by the seeded simulator (`producer::sim::Fleet`): JSON-lines files for the replay and
//! core scenarios, and the same payloads in memory for the in-process loop. Event times advance evenly at a
//! simulated rate and end a minute before now, so no event is `far_future` and, read in order, none is late.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use producer::sim::{Fleet, Mix};

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct InputSpec {
    /// Records.
    pub events: u64,
    /// Devices (round-robin).
    pub devices: usize,
    /// Simulated event-time rate of the whole fleet, events per second.
    pub rate: f64,
    /// Share of malformed records (the simulator's kinds, without tombstones).
    pub bad_fraction: f64,
    /// Fleet seed.
    pub seed: u64,
}

impl InputSpec {
    /// A short description for result lines.
    pub fn describe(&self) -> String {
        let bad = if self.bad_fraction > 0.0 {
            format!(", {}% bad", self.bad_fraction * 100.0)
        } else {
            String::new()
        };
        format!("{} events, {} devices{bad}", human(self.events as f64), self.devices)
    }

    fn mix(&self) -> Mix {
        Mix {
            late_fraction: 0.0,
            max_delay_ms: 0,
            bad_fraction: self.bad_fraction,
            tombstones: false,
        }
    }

    /// Calls `each` with every payload in order.
    pub fn generate(&self, mut each: impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let mut fleet = Fleet::new(self.devices, self.seed);
        let mix = self.mix();
        let span_ms = (self.events as f64 * 1000.0 / self.rate) as u64;
        let start_ms = model::time::now_ms().saturating_sub(span_ms + 60_000);
        for i in 0..self.events {
            let ts = start_ms + (i as f64 * 1000.0 / self.rate) as u64;
            let record = fleet.next_record(ts, &mix);
            each(record.value.as_deref().unwrap_or_default())?;
        }
        Ok(())
    }

    /// Writes the payloads as JSON lines under `dir`, reusing a file made earlier with the same spec today
    /// (its event times stay valid for hours: only the future is refused).
    pub fn jsonl(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let day = model::time::now_ms() / 86_400_000;
        let path = dir.join(format!(
            "input-{}-d{}-r{}-b{}-s{}-day{day}.jsonl",
            self.events, self.devices, self.rate, self.bad_fraction, self.seed
        ));
        if path.is_file() {
            return Ok(path);
        }
        let partial = path.with_extension(format!("partial-{}", std::process::id()));
        let mut out = BufWriter::with_capacity(
            1 << 20,
            File::create(&partial).with_context(|| format!("cannot create {}", partial.display()))?,
        );
        self.generate(|payload| {
            out.write_all(payload)?;
            out.write_all(b"\n")?;
            Ok(())
        })?;
        out.flush()?;
        drop(out);
        std::fs::rename(&partial, &path)?;
        Ok(path)
    }
}

/// Reads a file once so that a timed run reads it from the page cache.
pub fn warm(path: &Path) -> Result<u64> {
    let mut f = File::open(path)?;
    Ok(std::io::copy(&mut f, &mut std::io::sink())?)
}

/// `1.5M`, `20k`, `950`.
pub fn human(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.0}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}
