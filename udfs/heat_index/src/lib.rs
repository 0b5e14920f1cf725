//! A scalar UDF over window columns: the heat index (apparent temperature, °C) of a window, from its mean
//! temperature (°C) and mean relative humidity (%), by Steadman's simple formula as the US National Weather
//! Service gives it. Its parameters are named after the window columns they take.

use arroyo_udf_plugin::udf;

#[udf]
fn heat_index(avg_temperature: f64, avg_humidity: f64) -> f64 {
    let fahrenheit = avg_temperature * 9.0 / 5.0 + 32.0;
    let index = 0.5 * (fahrenheit + 61.0 + (fahrenheit - 68.0) * 1.2 + avg_humidity * 0.094);
    (index - 32.0) * 5.0 / 9.0
}
