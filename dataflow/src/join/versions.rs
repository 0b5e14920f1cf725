//! The as-of rule over a versioned table, apart from timely: every key's versions sorted by version time, the
//! version a record meets (the newest at or before its event time; none before the first version or after a
//! tombstone), and compaction below the lowest event time a record still to come can have.

use std::collections::HashMap;

use model::value::Value;

/// One version: valid from `time` until the next version of its key; `None` is a deletion (a tombstone).
type Entry = (u64, Option<Vec<Value>>);

/// The versions of every key of the table that one join operator holds.
#[derive(Clone, Debug, Default)]
pub struct VersionStore {
    keys: HashMap<Value, Vec<Entry>>,
    versions: usize,
}

impl VersionStore {
    /// An empty store.
    pub fn new() -> VersionStore {
        VersionStore::default()
    }

    /// Adds `key`'s version from `time` on (`row: None`: deleted from `time` on). Versions may arrive in any
    /// order; a second version at the same time replaces the first (the later record of the log wins), so
    /// applying the same version twice changes nothing.
    pub fn insert(&mut self, key: Value, time: u64, row: Option<Vec<Value>>) {
        let list = self.keys.entry(key).or_default();
        match list.binary_search_by_key(&time, |(t, _)| *t) {
            Ok(i) => list[i].1 = row,
            Err(i) => {
                list.insert(i, (time, row));
                self.versions += 1;
            }
        }
    }

    /// The row of `key` valid at `ts`: the newest version at or before `ts`, unless that is a deletion.
    pub fn at(&self, key: &Value, ts: u64) -> Option<&[Value]> {
        let list = self.keys.get(key)?;
        let after = list.partition_point(|(t, _)| *t <= ts);
        let (_, row) = list.get(after.checked_sub(1)?)?;
        row.as_deref()
    }

    /// Drops what no record at or after `floor` can meet: for each key, every version older than the newest
    /// one at or before `floor`; a key whose only version left is a deletion at or before `floor` goes.
    pub fn compact(&mut self, floor: u64) {
        let mut dropped = 0;
        self.keys.retain(|_, list| {
            let valid = list.partition_point(|(t, _)| *t <= floor);
            if valid > 1 {
                list.drain(..valid - 1);
                dropped += valid - 1;
            }
            let gone = list.len() == 1 && list[0].0 <= floor && list[0].1.is_none();
            if gone {
                dropped += 1;
            }
            !gone
        });
        self.versions -= dropped;
    }

    /// Keys held.
    pub fn keys(&self) -> usize {
        self.keys.len()
    }

    /// Versions held, over every key.
    pub fn versions(&self) -> usize {
        self.versions
    }

    /// Every version held, by key (for a checkpoint).
    pub fn iter(&self) -> impl Iterator<Item = (&Value, u64, Option<&[Value]>)> {
        self.keys
            .iter()
            .flat_map(|(k, list)| list.iter().map(move |(t, row)| (k, *t, row.as_deref())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Value {
        Value::Text(k.into())
    }

    fn site(s: &str) -> Option<Vec<Value>> {
        Some(vec![key(s)])
    }

    fn site_at(store: &VersionStore, k: &str, ts: u64) -> Option<String> {
        store.at(&key(k), ts).map(|r| r[0].to_string())
    }

    #[test]
    fn a_version_is_valid_from_exactly_its_time() {
        let mut s = VersionStore::new();
        s.insert(key("d1"), 100, site("a"));
        s.insert(key("d1"), 200, site("b"));
        assert_eq!(site_at(&s, "d1", 99), None, "before the first version");
        assert_eq!(site_at(&s, "d1", 100).as_deref(), Some("a"));
        assert_eq!(site_at(&s, "d1", 199).as_deref(), Some("a"));
        assert_eq!(
            site_at(&s, "d1", 200).as_deref(),
            Some("b"),
            "a version exactly at the event time"
        );
        assert_eq!(site_at(&s, "d1", u64::MAX).as_deref(), Some("b"));
        assert_eq!(site_at(&s, "d2", 150), None, "a key the table does not know");
    }

    #[test]
    fn a_tombstone_hides_the_row_until_the_next_version() {
        let mut s = VersionStore::new();
        s.insert(key("d1"), 100, site("a"));
        s.insert(key("d1"), 150, None);
        s.insert(key("d1"), 300, site("c"));
        assert_eq!(site_at(&s, "d1", 149).as_deref(), Some("a"));
        assert_eq!(site_at(&s, "d1", 150), None, "deleted at its time");
        assert_eq!(site_at(&s, "d1", 299), None);
        assert_eq!(site_at(&s, "d1", 300).as_deref(), Some("c"), "a key comes back");
    }

    #[test]
    fn out_of_order_versions_land_in_time_order_and_repeats_change_nothing() {
        let mut s = VersionStore::new();
        s.insert(key("d1"), 300, site("c"));
        s.insert(key("d1"), 100, site("a"));
        s.insert(key("d1"), 200, site("b"));
        s.insert(key("d1"), 200, site("b"));
        assert_eq!(s.versions(), 3);
        let seen: Vec<Option<String>> = [150, 250, 350].iter().map(|&t| site_at(&s, "d1", t)).collect();
        assert_eq!(seen, vec![Some("a".into()), Some("b".into()), Some("c".into())]);
        s.insert(key("d1"), 200, site("b2"));
        assert_eq!(
            site_at(&s, "d1", 250).as_deref(),
            Some("b2"),
            "the later record at a time wins"
        );
    }

    #[test]
    fn compaction_keeps_what_a_record_at_or_after_the_floor_can_meet() {
        let mut s = VersionStore::new();
        for (t, v) in [(100, "a"), (200, "b"), (300, "c")] {
            s.insert(key("d1"), t, site(v));
        }
        s.insert(key("d2"), 50, site("x"));
        s.insert(key("d2"), 120, None);
        let before: Vec<Option<String>> = [250, 300, 1000].iter().map(|&t| site_at(&s, "d1", t)).collect();
        s.compact(250);
        let after: Vec<Option<String>> = [250, 300, 1000].iter().map(|&t| site_at(&s, "d1", t)).collect();
        assert_eq!(before, after);
        assert_eq!(
            s.versions(),
            2,
            "d1 keeps b (valid at 250) and c; d2's deletion leaves nothing"
        );
        assert_eq!(s.keys(), 1);
        assert_eq!(site_at(&s, "d2", 250), None);
    }
}
