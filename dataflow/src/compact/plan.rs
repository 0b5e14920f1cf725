//! Which of a device's history files compaction takes, and what it writes, as a pure rule: every rolled file
//! whose windows all started before the cutoff is merged, with the day files of the days its windows fall on,
//! into one file per UTC day of `window_start` (`day-YYYY-MM-DD.parquet`). Files with a window at or after the
//! cutoff are left as they are, so the recent history keeps its small files until it is old enough.

use std::collections::{BTreeMap, BTreeSet};

use model::history::{parse_day_file_name, utc_day};

/// One committed file of a device folder, as compaction sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// Its name in the folder.
    pub name: String,
    /// Earliest and latest `window_start` (ms) of its rows; `None` for a file without rows.
    pub starts: Option<(u64, u64)>,
    /// Whether compaction may take it at all: a rolled file of a checkpoint some kept manifest could still undo
    /// may not be taken (see `compact::Guard`).
    pub settled: bool,
}

/// What one device folder's compaction does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// The files whose rows move into day files (they leave the folder).
    pub inputs: Vec<String>,
    /// The UTC days (days since 1970-01-01) whose day file is written anew.
    pub days: BTreeSet<i64>,
}

impl Plan {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }
}

/// The plan for a folder of `files`, with `cutoff` the instant (epoch ms) before which a window is old enough.
pub fn plan(files: &[Listed], cutoff: u64) -> Plan {
    let mut inputs = Vec::new();
    let mut days = BTreeSet::new();
    let mut day_files: BTreeMap<i64, &str> = BTreeMap::new();
    for f in files {
        if let Some(day) = parse_day_file_name(&f.name) {
            day_files.insert(day, &f.name);
            continue;
        }
        let old = match f.starts {
            Some((_, latest)) => latest < cutoff,
            None => true,
        };
        if f.settled && old {
            inputs.push(f.name.clone());
            if let Some((earliest, latest)) = f.starts {
                days.extend(utc_day(earliest)..=utc_day(latest));
            }
        }
    }
    if inputs.is_empty() {
        return Plan::default();
    }
    // The day files of the days written anew are merged too (and replaced).
    inputs.extend(days.iter().filter_map(|d| day_files.get(d)).map(|n| n.to_string()));
    inputs.sort();
    Plan { inputs, days }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::history::day_file_name;

    const DAY: u64 = 86_400_000;

    fn part(name: &str, earliest: u64, latest: u64) -> Listed {
        Listed {
            name: name.into(),
            starts: Some((earliest, latest)),
            settled: true,
        }
    }

    fn day(d: i64) -> Listed {
        Listed {
            name: day_file_name(d),
            starts: None,
            settled: true,
        }
    }

    #[test]
    fn old_files_merge_into_the_day_files_of_their_windows() {
        let files = [
            part("a", 10, 20),
            part("b", DAY - 5, DAY + 5),
            part("c", 3 * DAY, 3 * DAY + 9),
        ];
        let p = plan(&files, 2 * DAY);
        assert_eq!(p.inputs, vec!["a", "b"]);
        assert_eq!(p.days, [0, 1].into());
    }

    #[test]
    fn an_existing_day_file_is_merged_only_when_its_day_gets_new_rows() {
        let files = [day(0), day(1), part("a", DAY + 1, DAY + 2)];
        let p = plan(&files, 2 * DAY);
        assert_eq!(p.inputs, vec!["a".to_string(), day_file_name(1)]);
        assert_eq!(p.days, [1].into());
        assert!(
            plan(&[day(0), day(1)], 9 * DAY).is_empty(),
            "day files alone: nothing to do"
        );
    }

    #[test]
    fn a_file_with_a_window_at_or_after_the_cutoff_stays() {
        let files = [part("a", 10, 2 * DAY), part("b", 10, 2 * DAY - 1)];
        assert_eq!(plan(&files, 2 * DAY).inputs, vec!["b"]);
        assert!(plan(&files, 10).is_empty());
    }

    #[test]
    fn unsettled_files_are_never_taken_and_empty_ones_go() {
        let mut young = part("a", 10, 20);
        young.settled = false;
        let empty = Listed {
            name: "e".into(),
            starts: None,
            settled: true,
        };
        let p = plan(&[young, empty], DAY);
        assert_eq!(p.inputs, vec!["e"]);
        assert!(p.days.is_empty());
    }
}
