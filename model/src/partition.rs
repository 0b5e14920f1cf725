//! Escaping of device ids into Hive partition folder names (`device_id=<escaped>`). The escaped value is
//! percent-encoded UTF-8, which pyarrow and DuckDB decode back to the original id; no id can name a path outside
//! the Parquet folder, and the longest valid id (64 bytes) still fits a 255-byte file name.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Bytes kept as they are: ASCII letters, digits, `-` and `_`. Everything else (including `.`, `/`, `%`,
/// `=`, spaces and every non-ASCII byte) is percent-encoded.
const PARTITION_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_');

/// Name of the Hive partition column.
pub const PARTITION_COLUMN: &str = "device_id";

/// The escaped partition value of a device id.
pub fn escape_partition_value(device_id: &str) -> String {
    utf8_percent_encode(device_id, PARTITION_ESCAPE).to_string()
}

/// The folder name of a device's partition: `device_id=<escaped id>`.
pub fn partition_dir_name(device_id: &str) -> String {
    format!("{PARTITION_COLUMN}={}", escape_partition_value(device_id))
}

/// Decodes an escaped partition value back to the device id (`None` if it is not valid percent-encoded UTF-8).
pub fn unescape_partition_value(escaped: &str) -> Option<String> {
    percent_decode_str(escaped).decode_utf8().ok().map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ids_stay_readable() {
        assert_eq!(partition_dir_name("device-abc123"), "device_id=device-abc123");
    }

    #[test]
    fn path_like_ids_cannot_escape_the_folder() {
        for id in ["..", ".", "../../etc/passwd", "a/b", "/abs", "a\\b", "x=y", "100%"] {
            let dir = partition_dir_name(id);
            assert!(!dir.contains('/') && !dir.contains('\\'), "{dir}");
            assert!(dir.starts_with("device_id="));
            let value = dir.trim_start_matches("device_id=");
            assert!(!value.contains('.') && !value.contains('='), "{dir}");
            assert_eq!(unescape_partition_value(value).as_deref(), Some(id));
        }
    }

    #[test]
    fn longest_id_fits_a_file_name() {
        let worst = "\u{1F525}".repeat(16);
        assert_eq!(worst.len(), 64);
        assert!(partition_dir_name(&worst).len() <= 255);
        assert!(partition_dir_name(&"/".repeat(64)).len() <= 255);
    }

    #[test]
    fn unicode_ids_round_trip() {
        let id = "\u{1F525}-sensor";
        assert_eq!(
            unescape_partition_value(&escape_partition_value(id)).as_deref(),
            Some(id)
        );
    }
}
