//! The harness of the in-process HTTP tests: the library's routes filter over a data folder of its own, driven
//! through `warp::test`. The request target reaches the filter exactly as written (`http::Uri` keeps `..` and
//! percent escapes as they are, like the server does).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use dashboard::http::assets::Assets;
use dashboard::{App, routes};
use serde_json::Value;
use warp::test::RequestBuilder;

use super::TempDir;

/// The routes over one data folder (the dataflow's `--out`), with Chart.js from a stand-in `--assets`.
pub struct Site {
    pub app: Arc<App>,
    pub data: PathBuf,
    _root: TempDir,
}

impl Site {
    /// Routes on a fresh data folder, filled by `prepare` first.
    pub fn new(name: &str, prepare: impl FnOnce(&Path)) -> Site {
        let root = TempDir::new(name);
        let data = root.0.join("data");
        fs::create_dir_all(&data).unwrap();
        prepare(&data);
        let assets = Assets::load(Some(&super::stub_assets(&root.0))).unwrap();
        // No watcher: these routes read the file on each request; only `/events` listens to the channel.
        let (app, _updates) = App::new(&data, Duration::from_secs(30), assets);
        Site {
            app: Arc::new(app),
            data,
            _root: root,
        }
    }

    pub async fn get(&self, target: &str) -> Reply {
        self.send(warp::test::request().path(target)).await
    }

    pub async fn send(&self, request: RequestBuilder) -> Reply {
        let r = request.reply(&routes(Arc::clone(&self.app))).await;
        Reply {
            status: r.status().as_u16(),
            headers: r
                .headers()
                .iter()
                .map(|(k, v)| {
                    let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                    (k.as_str().to_string(), v)
                })
                .collect(),
            body: r.body().to_vec(),
        }
    }

    pub fn latest(&self) -> PathBuf {
        self.data.join(model::latest::FILE_NAME)
    }
}

/// One HTTP response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// The body of a gzip-compressed reply, decompressed.
pub fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("a gzip body");
    out
}
