//! Binding by parameter name, the only configuration a UDF has: a scalar UDF's parameters name aggregate columns
//! of the window, an aggregate UDF's parameters (`Vec<T>`) name fields of the window's on-time events. A name
//! that binds nothing, or a type that does not fit the column, fails at start with the valid choices. Pure.

use super::signature::{Param, RustType, Signature};

/// A window column a scalar UDF can take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    /// Events in the window.
    Count,
    /// Mean temperature.
    AvgTemperature,
    /// Mean humidity.
    AvgHumidity,
    /// Lowest battery.
    MinBattery,
    /// Highest battery.
    MaxBattery,
    /// Population standard deviation of temperature.
    StddevTemperature,
    /// Events with status `warn`.
    WarnCount,
    /// Events with status `error`.
    ErrorCount,
    /// Window start, epoch ms.
    WindowStart,
    /// Window end, epoch ms.
    WindowEnd,
    /// The device.
    DeviceId,
    /// The device's location.
    Location,
}

/// Every column, in the order the error message lists them.
pub const COLUMNS: [Column; 12] = [
    Column::Count,
    Column::AvgTemperature,
    Column::AvgHumidity,
    Column::MinBattery,
    Column::MaxBattery,
    Column::StddevTemperature,
    Column::WarnCount,
    Column::ErrorCount,
    Column::WindowStart,
    Column::WindowEnd,
    Column::DeviceId,
    Column::Location,
];

impl Column {
    /// The parameter name that binds it.
    pub fn name(self) -> &'static str {
        match self {
            Column::Count => "count",
            Column::AvgTemperature => "avg_temperature",
            Column::AvgHumidity => "avg_humidity",
            Column::MinBattery => "min_battery",
            Column::MaxBattery => "max_battery",
            Column::StddevTemperature => "stddev_temperature",
            Column::WarnCount => "warn_count",
            Column::ErrorCount => "error_count",
            Column::WindowStart => "window_start",
            Column::WindowEnd => "window_end",
            Column::DeviceId => "device_id",
            Column::Location => "location",
        }
    }

    /// The Rust types a parameter bound to it may have; the first is the natural one.
    pub fn types(self) -> &'static [RustType] {
        match self {
            Column::Count | Column::WarnCount | Column::ErrorCount => &[RustType::U64, RustType::I64],
            Column::WindowStart | Column::WindowEnd => &[RustType::I64, RustType::U64],
            Column::DeviceId | Column::Location => &[RustType::Str],
            _ => &[RustType::F64],
        }
    }
}

/// An event field an aggregate UDF can take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventField {
    /// Temperature.
    Temperature,
    /// Humidity.
    Humidity,
    /// Battery level.
    Battery,
    /// Event time, epoch ms.
    Ts,
}

/// Every event field.
pub const EVENT_FIELDS: [EventField; 4] = [
    EventField::Temperature,
    EventField::Humidity,
    EventField::Battery,
    EventField::Ts,
];

impl EventField {
    /// The parameter name that binds it.
    pub fn name(self) -> &'static str {
        match self {
            EventField::Temperature => "temperature",
            EventField::Humidity => "humidity",
            EventField::Battery => "battery",
            EventField::Ts => "ts",
        }
    }

    /// The element types a `Vec` parameter bound to it may have.
    pub fn types(self) -> &'static [RustType] {
        match self {
            EventField::Ts => &[RustType::I64, RustType::U64],
            _ => &[RustType::F64],
        }
    }
}

/// What a UDF's parameters bind to, in parameter order, with the type each is passed as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Binding {
    /// A scalar UDF over window columns.
    Scalar(Vec<(Column, RustType)>),
    /// An aggregate UDF over event fields.
    Aggregate(Vec<(EventField, RustType)>),
}

/// Names a UDF may not take: the fields every record already has.
pub const RESERVED: [&str; 14] = [
    "device_id",
    "location",
    "window_start",
    "window_end",
    "count",
    "avg_temperature",
    "avg_humidity",
    "min_battery",
    "max_battery",
    "stddev_temperature",
    "warn_count",
    "error_count",
    "final",
    "is_final",
];

/// Why a signature does not bind.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BindingError {
    /// A parameter name that is neither a column nor an event field.
    #[error("parameter `{param}` of `{udf}` names nothing known; {valid}")]
    Unknown {
        /// The UDF.
        udf: String,
        /// The parameter.
        param: String,
        /// The valid names for this kind of UDF.
        valid: String,
    },
    /// A parameter whose type does not fit what it binds.
    #[error("parameter `{param}` of `{udf}` is {found}, but `{param}` is {expected}; declare it as `{param}: {fix}`")]
    Type {
        /// The UDF.
        udf: String,
        /// The parameter.
        param: String,
        /// Its declared type.
        found: String,
        /// The accepted types.
        expected: String,
        /// The natural declaration.
        fix: String,
    },
    /// A UDF named like a contract column.
    #[error("the UDF `{0}` has the name of a column every record already has; rename the function")]
    Reserved(String),
}

fn valid_columns() -> String {
    let names: Vec<&str> = COLUMNS.iter().map(|c| c.name()).collect();
    format!("a scalar UDF takes window columns: {}", names.join(", "))
}

fn valid_fields() -> String {
    let names: Vec<&str> = EVENT_FIELDS.iter().map(|f| f.name()).collect();
    format!("an aggregate UDF takes Vec<T> of event fields: {}", names.join(", "))
}

fn spelled(p: &Param, ty: RustType) -> String {
    let t = if p.nullable {
        format!("Option<{}>", ty.spelling())
    } else {
        ty.spelling().to_string()
    };
    if p.list { format!("Vec<{t}>") } else { t }
}

fn check_type(udf: &str, p: &Param, accepted: &[RustType]) -> Result<RustType, BindingError> {
    if accepted.contains(&p.ty) {
        return Ok(p.ty);
    }
    let names: Vec<String> = accepted.iter().map(|t| format!("`{}`", t.spelling())).collect();
    Err(BindingError::Type {
        udf: udf.to_string(),
        param: p.name.clone(),
        found: format!("`{}`", spelled(p, p.ty)),
        expected: names.join(" or "),
        fix: spelled(p, accepted[0]),
    })
}

/// Binds every parameter of `sig` by name.
pub fn bind(sig: &Signature) -> Result<Binding, BindingError> {
    if RESERVED.contains(&sig.name.as_str()) {
        return Err(BindingError::Reserved(sig.name.clone()));
    }
    if sig.is_aggregate() {
        bind_each(sig, &EVENT_FIELDS, EventField::name, EventField::types, valid_fields).map(Binding::Aggregate)
    } else {
        bind_each(sig, &COLUMNS, Column::name, Column::types, valid_columns).map(Binding::Scalar)
    }
}

/// Binds every parameter of `sig` to the one of `known` it names, with its type checked.
fn bind_each<T: Copy>(
    sig: &Signature,
    known: &[T],
    name: fn(T) -> &'static str,
    types: fn(T) -> &'static [RustType],
    valid: fn() -> String,
) -> Result<Vec<(T, RustType)>, BindingError> {
    sig.params
        .iter()
        .map(|p| {
            let target = known
                .iter()
                .copied()
                .find(|&k| name(k) == p.name)
                .ok_or_else(|| BindingError::Unknown {
                    udf: sig.name.clone(),
                    param: p.name.clone(),
                    valid: valid(),
                })?;
            Ok((target, check_type(&sig.name, p, types(target))?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::udf::signature::parse;

    fn bound(source: &str) -> Result<Binding, BindingError> {
        bind(&parse(source).unwrap())
    }

    #[test]
    fn scalar_parameters_bind_to_window_columns() {
        assert_eq!(
            bound("#[udf] fn f(avg_temperature: f64, count: i64, window_start: i64, location: &str) -> f64 { 0.0 }"),
            Ok(Binding::Scalar(vec![
                (Column::AvgTemperature, RustType::F64),
                (Column::Count, RustType::I64),
                (Column::WindowStart, RustType::I64),
                (Column::Location, RustType::Str),
            ]))
        );
    }

    #[test]
    fn aggregate_parameters_bind_to_event_fields() {
        assert_eq!(
            bound("#[udf] fn f(temperature: Vec<f64>, ts: Vec<u64>) -> f64 { 0.0 }"),
            Ok(Binding::Aggregate(vec![
                (EventField::Temperature, RustType::F64),
                (EventField::Ts, RustType::U64),
            ]))
        );
    }

    #[test]
    fn an_unknown_name_lists_the_valid_ones() {
        let e = bound("#[udf] fn f(temp: f64) -> f64 { 0.0 }").unwrap_err();
        assert_eq!(
            e.to_string(),
            "parameter `temp` of `f` names nothing known; a scalar UDF takes window columns: count, \
             avg_temperature, avg_humidity, min_battery, max_battery, stddev_temperature, warn_count, \
             error_count, window_start, window_end, device_id, location"
        );
        let e = bound("#[udf] fn f(avg_temperature: Vec<f64>) -> f64 { 0.0 }").unwrap_err();
        assert!(
            e.to_string()
                .ends_with("an aggregate UDF takes Vec<T> of event fields: temperature, humidity, battery, ts"),
            "{e}"
        );
    }

    #[test]
    fn a_type_that_does_not_fit_names_the_declaration_to_use() {
        let e = bound("#[udf] fn f(avg_humidity: Option<i64>) -> f64 { 0.0 }").unwrap_err();
        assert_eq!(
            e.to_string(),
            "parameter `avg_humidity` of `f` is `Option<i64>`, but `avg_humidity` is `f64`; declare it as \
             `avg_humidity: Option<f64>`"
        );
        let e = bound("#[udf] fn f(temperature: Vec<f32>) -> f64 { 0.0 }").unwrap_err();
        assert!(e.to_string().ends_with("declare it as `temperature: Vec<f64>`"), "{e}");
        assert!(bound("#[udf] fn f(device_id: i64) -> f64 { 0.0 }").is_err());
    }

    #[test]
    fn a_udf_may_not_shadow_a_contract_column() {
        assert_eq!(
            bound("#[udf] fn count(count: u64) -> u64 { count }"),
            Err(BindingError::Reserved("count".into()))
        );
    }
}
