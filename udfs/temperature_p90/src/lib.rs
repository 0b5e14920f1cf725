//! An aggregate UDF over event fields: the 90th percentile (nearest rank) of the temperatures of a window's
//! on-time events. Its `Vec` parameter is named after the event field it takes.

use arroyo_udf_plugin::udf;

#[udf]
fn temperature_p90(temperature: Vec<f64>) -> Option<f64> {
    if temperature.is_empty() {
        return None;
    }
    let mut sorted = temperature;
    sorted.sort_by(f64::total_cmp);
    // Nearest rank: the smallest value with at least 90 % of the values at or below it.
    let rank = (0.9 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.max(1) - 1])
}
