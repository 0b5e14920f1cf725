//! The page's static files, all held in memory: the dashboard's own HTML/CSS/JS are compiled into the binary,
//! and Chart.js is read once at startup from the `npm ci` install in the assets folder. Requests are answered
//! by exact name from this fixed table, so no request path ever reaches the file system.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Where Chart.js sits inside the assets folder after `npm ci`.
pub const CHART_JS: &str = "node_modules/chart.js/dist/chart.umd.js";
const CHART_JS_PACKAGE: &str = "node_modules/chart.js/package.json";

/// One file served under `/static/`.
#[derive(Debug)]
pub struct Asset {
    /// Name after `/static/`.
    pub name: &'static str,
    /// `Content-Type` header.
    pub content_type: &'static str,
    /// The bytes.
    pub body: Vec<u8>,
    /// Strong validator for conditional requests.
    pub etag: String,
}

/// Every file the page needs.
#[derive(Debug)]
pub struct Assets {
    /// The page itself (`GET /`).
    pub index: Asset,
    /// Files under `/static/`.
    pub files: Vec<Asset>,
    /// Where Chart.js was read from, for the startup log.
    pub chart_js_path: PathBuf,
    /// Chart.js version from its package.json, if readable.
    pub chart_js_version: Option<String>,
}

const JS: &str = "text/javascript; charset=utf-8";

/// The dashboard's own files, compiled in.
const EMBEDDED: &[(&str, &str, &str)] = &[
    ("app.js", JS, include_str!("../../web/app.js")),
    ("charts.js", JS, include_str!("../../web/charts.js")),
    ("panels.js", JS, include_str!("../../web/panels.js")),
    ("feed.js", JS, include_str!("../../web/feed.js")),
    ("format.js", JS, include_str!("../../web/format.js")),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../web/style.css"),
    ),
    ("favicon.svg", "image/svg+xml", include_str!("../../web/favicon.svg")),
];
const INDEX_HTML: &str = include_str!("../../web/index.html");

impl Asset {
    fn new(name: &'static str, content_type: &'static str, body: Vec<u8>) -> Asset {
        let etag = format!("\"{:016x}-{:x}\"", fnv1a(&body), body.len());
        Asset {
            name,
            content_type,
            body,
            etag,
        }
    }
}

/// FNV-1a, 64 bit: a content fingerprint for ETags (not a security boundary).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Assets {
    /// Loads the page's files. `assets_dir` is `--assets`; without it the folder is `web/` next to the
    /// executable when Chart.js is installed there, else `dashboard/web` of the source tree.
    pub fn load(assets_dir: Option<&Path>) -> anyhow::Result<Assets> {
        let dir = match assets_dir {
            Some(dir) => {
                if !dir.join(CHART_JS).is_file() {
                    bail!(
                        "Chart.js not found at {} (--assets {}): run `npm ci` in that folder, or point --assets \
                         at the folder holding node_modules/chart.js (normally dashboard/web)",
                        dir.join(CHART_JS).display(),
                        dir.display()
                    );
                }
                dir.to_path_buf()
            }
            None => default_assets_dir()?,
        };
        let chart_js_path = dir.join(CHART_JS);
        let chart_js = fs::read(&chart_js_path).with_context(|| format!("cannot read {}", chart_js_path.display()))?;
        let chart_js_version = fs::read(dir.join(CHART_JS_PACKAGE))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["version"].as_str().map(str::to_owned));
        let mut files: Vec<Asset> = EMBEDDED
            .iter()
            .map(|(name, ct, body)| Asset::new(name, ct, body.as_bytes().to_vec()))
            .collect();
        files.push(Asset::new("vendor/chart.umd.js", JS, chart_js));
        Ok(Assets {
            index: Asset::new("index.html", "text/html; charset=utf-8", INDEX_HTML.as_bytes().to_vec()),
            files,
            chart_js_path,
            chart_js_version,
        })
    }

    /// The file served as `/static/<name>`, if there is one by exactly that name.
    pub fn get(&self, name: &str) -> Option<&Asset> {
        self.files.iter().find(|a| a.name == name)
    }
}

fn default_assets_dir() -> anyhow::Result<PathBuf> {
    let source_tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let next_to_exe = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("web")));
    let candidates: Vec<PathBuf> = next_to_exe.into_iter().chain([source_tree.clone()]).collect();
    if let Some(dir) = candidates.iter().find(|d| d.join(CHART_JS).is_file()) {
        return Ok(dir.clone());
    }
    bail!(
        "Chart.js is not installed: run `npm ci` in {} (looked for {} in: {}), or pass --assets DIR",
        source_tree.display(),
        CHART_JS,
        candidates
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_install_names_the_fix() {
        let empty = std::env::temp_dir().join(format!("dashboard-assets-{}", std::process::id()));
        fs::create_dir_all(&empty).unwrap();
        let err = Assets::load(Some(&empty)).unwrap_err().to_string();
        assert!(err.contains("npm ci") && err.contains("--assets"), "{err}");
    }

    #[test]
    fn only_known_names_are_served() {
        let dir = std::env::temp_dir().join(format!("dashboard-assets-ok-{}", std::process::id()));
        fs::create_dir_all(dir.join("node_modules/chart.js/dist")).unwrap();
        fs::write(dir.join(CHART_JS), "/* chart */").unwrap();
        let assets = Assets::load(Some(&dir)).unwrap();
        assert!(assets.get("app.js").is_some());
        assert!(assets.get("vendor/chart.umd.js").is_some());
        for name in ["", "../Cargo.toml", "vendor/../app.js", "APP.JS", "app.js/", "/app.js"] {
            assert!(assets.get(name).is_none(), "{name}");
        }
    }

    #[test]
    fn etags_follow_the_content() {
        let a = Asset::new("a", JS, b"one".to_vec());
        let b = Asset::new("b", JS, b"two".to_vec());
        assert_ne!(a.etag, b.etag);
        assert_eq!(a.etag, Asset::new("a", JS, b"one".to_vec()).etag);
    }
}
