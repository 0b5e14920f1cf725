//! The distribution of a metric over devices: bins of a round width (1, 2, 2.5 or 5 times a power of ten)
//! starting at a multiple of it, about twenty of them, every value in exactly one bin, so that the page's
//! histogram reads `20 to 20.5`, not `19.87 to 20.41`.

use serde::Serialize;

/// Bins the histogram aims at (nice bin widths give between about 8 and 25).
const TARGET_BINS: f64 = 20.0;

/// One bin of a histogram: values in `[lo, hi)` (the last bin also holds `hi`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bin {
    /// Lower edge.
    pub lo: f64,
    /// Upper edge.
    pub hi: f64,
    /// Devices whose value falls in the bin.
    pub count: usize,
}

/// The distribution of a metric over devices, in bins of a round width.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Histogram {
    /// The metric's name as the query spells it (`temperature`, `udf:heat_index`, …).
    pub metric: String,
    /// Devices with a value.
    pub count: usize,
    /// Devices without one (null, absent, not a number).
    pub missing: usize,
    /// Smallest value (`null` without values).
    pub min: Option<f64>,
    /// Largest value (`null` without values).
    pub max: Option<f64>,
    /// Bin width (0 when every value is the same).
    pub step: f64,
    /// The bins, lowest first; empty without values.
    pub bins: Vec<Bin>,
}

/// The smallest round width (1, 2, 2.5 or 5 times a power of ten) of at least `raw`.
fn round_step(raw: f64) -> f64 {
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * power)
}

/// The distribution of `values` (one per device; `None`: the device has no value) in bins of a round width that
/// start at a multiple of it, about [`TARGET_BINS`] of them. Every value is in exactly one bin.
pub fn histogram(metric: &str, values: impl Iterator<Item = Option<f64>>) -> Histogram {
    let mut present = Vec::new();
    let mut missing = 0;
    for v in values {
        match v.filter(|v| v.is_finite()) {
            Some(v) => present.push(v),
            None => missing += 1,
        }
    }
    let mut h = Histogram {
        metric: metric.to_string(),
        count: present.len(),
        missing,
        min: None,
        max: None,
        step: 0.0,
        bins: Vec::new(),
    };
    let Some(min) = present.iter().copied().reduce(f64::min) else {
        return h;
    };
    let max = present.iter().copied().fold(min, f64::max);
    (h.min, h.max) = (Some(min), Some(max));
    if max == min {
        h.bins.push(Bin {
            lo: min,
            hi: max,
            count: present.len(),
        });
        return h;
    }
    let step = round_step((max - min) / TARGET_BINS);
    let first = (min / step).floor();
    let n = (((max / step).floor() - first) as usize + 1).max(1);
    let mut counts = vec![0usize; n];
    for v in present {
        let i = ((v / step).floor() - first) as usize;
        counts[i.min(n - 1)] += 1;
    }
    // A value exactly on the top edge of the last full bin would open a bin of its own: fold it in.
    if n > 1 && counts[n - 1] > 0 && (first + (n - 1) as f64) * step == max {
        counts[n - 2] += counts[n - 1];
        counts.pop();
    }
    h.step = step;
    h.bins = counts
        .into_iter()
        .enumerate()
        .map(|(i, count)| Bin {
            lo: (first + i as f64) * step,
            hi: (first + i as f64 + 1.0) * step,
            count,
        })
        .collect();
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_puts_every_value_in_one_round_bin() {
        let values: Vec<Option<f64>> = (0..=100).map(|i| Some(15.0 + i as f64 * 0.1)).chain([None]).collect();
        let h = histogram("temperature", values.into_iter());
        assert_eq!((h.count, h.missing, h.min, h.max), (101, 1, Some(15.0), Some(25.0)));
        assert_eq!(h.step, 0.5);
        assert_eq!(h.bins.len(), 20, "15..25 in bins of 0.5; 25 itself joins the last bin");
        assert_eq!(h.bins.iter().map(|b| b.count).sum::<usize>(), 101);
        assert_eq!((h.bins[0].lo, h.bins.last().unwrap().hi), (15.0, 25.0));
        for pair in h.bins.windows(2) {
            assert_eq!(pair[0].hi, pair[1].lo);
        }

        let same = histogram("battery", [Some(80.0), Some(80.0)].into_iter());
        assert_eq!(
            same.bins,
            [Bin {
                lo: 80.0,
                hi: 80.0,
                count: 2
            }]
        );
        let none = histogram("battery", [None].into_iter());
        assert!(none.bins.is_empty() && none.min.is_none());
        assert_eq!(
            [round_step(0.3), round_step(0.07), round_step(4.0), round_step(2.2)],
            [0.5, 0.1, 5.0, 2.5]
        );
    }
}
