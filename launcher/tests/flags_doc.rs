//! `docs/flags.md` is rendered from the binaries' clap definitions, so the flag reference cannot drift from the
//! code: this test renders every flag of every binary and fails, with a diff and the command that regenerates
//! the page, when the file says anything else. `UPDATE_FLAGS_DOC=1` writes the rendering instead of comparing.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::{Arg, ArgAction, Command, CommandFactory};

/// The command that rewrites the page.
const REGENERATE: &str = "UPDATE_FLAGS_DOC=1 cargo test --release -p launcher --test flags_doc";

const PREAMBLE: &str = "\
# Flags

Every flag of every binary, rendered from the clap definitions in the code
(`launcher::Args`, `producer::config::Args`, `dataflow::config::Args`, `dataflow::config::cluster::RestartFlags`,
`dataflow::config::compact::CompactArgs`, `dashboard::Flags`). The text of each flag is its doc comment, as `--help` prints it.

Do not edit this page by hand. Change the flag's doc comment, then regenerate it:

```sh
UPDATE_FLAGS_DOC=1 cargo test --release -p launcher --test flags_doc
```

The same test, without the variable, fails when this page and the code disagree.

Durations take humantime's spelling: `500ms`, `10s`, `1m 30s`, `1h`.
Where a flag needs more than a line, the other pages say more:
windows, watermark and lateness in [semantics.md](semantics.md);
checkpoints, rolls, compaction, the Kafka output and data loss in [operations.md](operations.md);
UDFs in [udf.md](udf.md); the dashboard in [dashboard.md](dashboard.md).
";

/// Every binary's command, with the heading and the first line of its section.
fn binaries() -> Vec<(&'static str, &'static str, Command)> {
    vec![
        (
            "`iot-pipeline` (what `./run.sh` runs)",
            "The whole pipeline in one command: an embedded broker (or `--brokers`), the simulator, the dataflow\n\
             and the dashboard. A flag left out keeps the default of the binary it is handed to.",
            launcher::Args::command(),
        ),
        (
            "`producer`",
            "The device simulator: seeded sensor readings to a Kafka topic, or to a JSON-lines file.",
            producer::config::Args::command(),
        ),
        (
            "`dataflow`",
            "The job: Kafka (or a JSON-lines file) to event-time windows per device, then `latest.json`,\n\
             the Parquet history, dead letters and, optionally, a Kafka topic.\n\
             `-h` is the host file; help is `--help`.",
            dataflow::config::Args::command(),
        ),
        (
            "`dataflow cluster`",
            "Runs `--processes` processes of the job on this machine and restarts all of them from the last\n\
             checkpoint when one is lost (docs/operations.md, \"A cluster\"). It takes every flag of `dataflow`\n\
             (but `--process` and `--hostfile`, which it sets itself) and these:",
            dataflow::config::cluster::RestartFlags::command(),
        ),
        (
            "`dataflow compact`",
            "Offline compaction of a history folder. It is refused while a job holds the folder.",
            dataflow::config::compact::CompactArgs::command(),
        ),
        (
            "`dashboard`",
            "The web server of the page, `latest.json`, live updates, the history, health and Prometheus metrics.",
            dashboard::Flags::command(),
        ),
    ]
}

/// The whole page.
fn render() -> String {
    let mut page = PREAMBLE.to_string();
    for (heading, about, command) in binaries() {
        write!(page, "\n## {heading}\n\n{about}\n\n").unwrap();
        page.push_str("| flag | default | meaning |\n| --- | --- | --- |\n");
        for arg in command.get_arguments().filter(|a| shown(a)) {
            writeln!(page, "| {} | {} | {} |", flags(arg), default(arg), meaning(arg)).unwrap();
        }
    }
    page
}

/// Every flag a user passes: not clap's own `--help`/`--version`, nothing hidden.
fn shown(arg: &Arg) -> bool {
    !arg.is_hide_set() && !matches!(arg.get_action(), ArgAction::Help | ArgAction::Version)
}

/// `` `-w`, `--workers <N>` `` and, when it may be given more than once, "(repeatable)".
fn flags(arg: &Arg) -> String {
    let value = if arg.get_action().takes_values() {
        let names = match arg.get_value_names() {
            Some(names) => names.iter().map(|n| format!("<{n}>")).collect::<Vec<_>>().join(" "),
            None => format!("<{}>", arg.get_id().as_str().to_uppercase()),
        };
        format!(" {names}")
    } else {
        String::new()
    };
    let mut spelled = Vec::new();
    if let Some(short) = arg.get_short() {
        spelled.push(format!("`-{short}`"));
    }
    if let Some(long) = arg.get_long() {
        spelled.push(format!("`--{long}{value}`"));
    }
    let mut text = spelled.join(", ");
    if matches!(arg.get_action(), ArgAction::Append) {
        text.push_str(" (repeatable)");
    }
    text
}

/// The default value, and the environment variable that stands in for the flag, if any.
fn default(arg: &Arg) -> String {
    let mut parts: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| format!("`{}`", v.to_string_lossy()))
        .collect();
    if matches!(arg.get_action(), ArgAction::SetTrue) {
        parts = vec!["off".into()];
    }
    if let Some(env) = arg.get_env() {
        parts.push(format!("env `{}`", env.to_string_lossy()));
    }
    if parts.is_empty() {
        "–".into()
    } else {
        parts.join(", ")
    }
}

/// The doc comment as a sentence, followed by the accepted values of a flag that takes one of a few, with their
/// own doc comments.
fn meaning(arg: &Arg) -> String {
    let mut text = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
    // clap drops the full stop of a one-sentence doc comment; the page puts it back.
    if !text.trim_end().ends_with(['.', '!', '?']) {
        text = format!("{}.", text.trim_end());
    }
    let listed = if arg.get_action().takes_values() {
        arg.get_possible_values()
    } else {
        Vec::new()
    };
    let values: Vec<String> = listed
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| match v.get_help() {
            Some(help) => format!("`{}`: {}", v.get_name(), help),
            None => format!("`{}`", v.get_name()),
        })
        .collect();
    if !values.is_empty() {
        write!(text, " Values: {}.", values.join("; ").trim_end_matches('.')).unwrap();
    }
    cell(&text)
}

/// Text that stays inside one table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn page_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/flags.md")
}

/// The lines that differ, `-` for the page as it is and `+` for the rendering (a longest-common-subsequence diff).
fn diff(old: &str, new: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    let mut common = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            common[i][j] = if a[i] == b[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            (i, j) = (i + 1, j + 1);
        } else if i < a.len() && (j == b.len() || common[i + 1][j] >= common[i][j + 1]) {
            writeln!(out, "-{}", a[i]).unwrap();
            i += 1;
        } else {
            writeln!(out, "+{}", b[j]).unwrap();
            j += 1;
        }
    }
    out
}

#[test]
fn flags_page_matches_the_clap_definitions() {
    let rendered = render();
    let path = page_path();
    if std::env::var_os("UPDATE_FLAGS_DOC").is_some_and(|v| v == "1") {
        std::fs::write(&path, &rendered).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == rendered,
        "{} differs from the flags in the code (- the page, + the code):\n{}\nregenerate it with: {REGENERATE}",
        path.display(),
        diff(&current, &rendered)
    );
}

#[test]
fn every_binary_documents_every_flag() {
    for (heading, _, command) in binaries() {
        for arg in command.get_arguments().filter(|a| shown(a)) {
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            assert!(
                !help.trim().is_empty(),
                "{heading}: --{} has no doc comment, so docs/flags.md would not say what it does",
                arg.get_id()
            );
        }
    }
}

#[test]
fn the_diff_names_the_lines_that_changed() {
    assert_eq!(diff("a\nb\nc\n", "a\nB\nc\n"), "-b\n+B\n");
    assert_eq!(diff("same\n", "same\n"), "");
}
