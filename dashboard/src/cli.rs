//! Command-line flags of the dashboard and their checks. Every rejected value comes with a message that names
//! the flag and the fix.

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use model::cli::flag;

/// Web dashboard of the IoT pipeline: serves the page, `latest.json`, live updates, the Parquet history,
/// a health view and Prometheus metrics.
#[derive(Debug, PartialEq, Parser)]
#[command(name = "dashboard", version, about)]
pub struct Flags {
    /// IP address to listen on (`0.0.0.0` for every interface).
    #[arg(long, default_value = "127.0.0.1", value_parser = parse_bind)]
    pub bind: IpAddr,

    /// TCP port to listen on (`0` picks a free port and prints it).
    #[arg(long, default_value_t = 5000)]
    pub port: u16,

    /// Folder the dataflow writes to (`--out` of the dataflow): holds `latest.json` and `parquet/`.
    #[arg(long, default_value = "data/aggregates")]
    pub data: PathBuf,

    /// Folder holding the page's front-end libraries (`node_modules/chart.js` after `npm ci`). Default: `web/`
    /// next to the executable if it exists, else `dashboard/web` of the source tree the binary was built from.
    #[arg(long)]
    pub assets: Option<PathBuf>,

    /// How often `latest.json` is checked for changes (size, modification time, inode).
    #[arg(long, default_value = "300ms", value_parser = parse_poll_interval)]
    pub poll_interval: Duration,

    /// Age of `latest.json` (by its `updated_at`) after which the health view reports `stale`.
    #[arg(long, default_value = "30s", value_parser = parse_stale_after)]
    pub stale_after: Duration,
}

fn parse_bind(text: &str) -> Result<IpAddr, String> {
    text.parse().map_err(|_| {
        format!("`{text}` is not an IP address; use e.g. 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)")
    })
}

fn parse_duration_in(text: &str, min: Duration, max: Duration, example: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration ({e}); write it like {example}"))?;
    if d < min || d > max {
        return Err(format!(
            "{} is outside {}..={}; pick a value in that range, e.g. {example}",
            humantime::format_duration(d),
            humantime::format_duration(min),
            humantime::format_duration(max)
        ));
    }
    Ok(d)
}

fn parse_poll_interval(text: &str) -> Result<Duration, String> {
    parse_duration_in(text, Duration::from_millis(50), Duration::from_secs(10), "300ms")
}

fn parse_stale_after(text: &str) -> Result<Duration, String> {
    parse_duration_in(text, Duration::from_secs(1), Duration::from_secs(7 * 24 * 3600), "30s")
}

impl Flags {
    /// These flags written back as a command line (`--name=value` each), so that a launcher can start the
    /// dashboard from its own defaults (`Flags::try_parse_from(["dashboard"])`) with a few values changed.
    pub fn to_args(&self) -> Vec<OsString> {
        let Flags {
            bind,
            port,
            data,
            assets,
            poll_interval,
            stale_after,
        } = self;
        let mut args = vec![
            flag("--bind", bind.to_string()),
            flag("--port", port.to_string()),
            flag("--data", data),
            flag(
                "--poll-interval",
                humantime::format_duration(*poll_interval).to_string(),
            ),
            flag("--stale-after", humantime::format_duration(*stale_after).to_string()),
        ];
        args.extend(assets.iter().map(|a| flag("--assets", a)));
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_design() {
        let f = Flags::try_parse_from(["dashboard"]).unwrap();
        assert_eq!(f.bind.to_string(), "127.0.0.1");
        assert_eq!(f.port, 5000);
        assert_eq!(f.data, PathBuf::from("data/aggregates"));
        assert_eq!(f.poll_interval, Duration::from_millis(300));
        assert_eq!(f.stale_after, Duration::from_secs(30));
    }

    #[test]
    fn written_flags_parse_back_to_the_same_flags() {
        let argv = [
            "dashboard",
            "--bind",
            "0.0.0.0",
            "--port",
            "0",
            "--data=-odd dir",
            "--assets",
            "w",
        ];
        let f = Flags::try_parse_from(argv).unwrap();
        let again = Flags::try_parse_from(std::iter::once(OsString::from("dashboard")).chain(f.to_args())).unwrap();
        assert_eq!(again, f);
    }

    /// The message clap gives for `dashboard ARGS…`, which must be refused.
    fn refusal(args: &[&str]) -> String {
        let argv = std::iter::once("dashboard").chain(args.iter().copied());
        Flags::try_parse_from(argv).unwrap_err().to_string()
    }

    #[test]
    fn a_host_name_is_refused_with_the_fix() {
        let err = refusal(&["--bind", "localhost"]);
        assert!(err.contains("--bind"), "{err}");
        assert!(err.contains("127.0.0.1"), "{err}");
    }

    #[test]
    fn durations_out_of_range_are_refused() {
        let err = refusal(&["--poll-interval", "1ms"]);
        assert!(err.contains("--poll-interval") && err.contains("300ms"), "{err}");
        let err = refusal(&["--stale-after", "soon"]);
        assert!(err.contains("--stale-after") && err.contains("30s"), "{err}");
    }

    #[test]
    fn a_port_out_of_range_is_refused() {
        let err = refusal(&["--port", "70000"]);
        assert!(err.contains("--port"), "{err}");
    }
}
