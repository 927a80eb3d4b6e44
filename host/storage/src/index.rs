//! Inverted index: label name → value → sorted series ids. Used by the head
//! (ids are global series ids) and by loaded blocks (ids are positions in the
//! block's series table).

use crate::Labels;
use crate::matcher::{MatchOp, Matcher};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Label postings plus the list of all ids, both kept sorted.
#[derive(Debug, Default, Clone)]
pub struct Postings {
    by_name: HashMap<String, BTreeMap<String, Vec<u64>>>,
    all: Vec<u64>,
}

impl Postings {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a series. Ids are expected to grow, so this is a push; an
    /// out-of-order id falls back to a sorted insert.
    pub fn add(&mut self, id: u64, labels: &Labels) {
        insert_sorted(&mut self.all, id);
        for l in labels {
            let list = self.by_name.entry(l.name.clone()).or_default().entry(l.value.clone()).or_default();
            insert_sorted(list, id);
        }
    }

    /// Inserts a whole postings list, as read from a block index.
    pub(crate) fn insert_list(&mut self, name: &str, value: &str, mut ids: Vec<u64>) {
        ids.sort_unstable();
        ids.dedup();
        self.by_name.entry(name.to_owned()).or_default().insert(value.to_owned(), ids);
    }

    /// Sets the list of all ids, as read from a block index.
    pub(crate) fn set_all(&mut self, mut ids: Vec<u64>) {
        ids.sort_unstable();
        ids.dedup();
        self.all = ids;
    }

    /// Removes many series at once; one pass per touched list keeps garbage
    /// collection of a large head linear.
    pub fn remove<'a>(&mut self, series: impl IntoIterator<Item = (u64, &'a Labels)>) {
        let mut gone = HashSet::new();
        let mut touched: HashMap<&str, HashSet<&str>> = HashMap::new();
        for (id, labels) in series {
            gone.insert(id);
            for l in labels {
                touched.entry(l.name.as_str()).or_default().insert(l.value.as_str());
            }
        }
        if gone.is_empty() {
            return;
        }
        self.all.retain(|id| !gone.contains(id));
        for (name, values) in touched {
            let Some(map) = self.by_name.get_mut(name) else { continue };
            for value in values {
                if let Some(list) = map.get_mut(value) {
                    list.retain(|id| !gone.contains(id));
                    if list.is_empty() {
                        map.remove(value);
                    } else if list.capacity() > 2 * list.len() {
                        list.shrink_to_fit();
                    }
                }
            }
            if map.is_empty() {
                self.by_name.remove(name);
            }
        }
    }

    /// Releases spare capacity after large removals.
    pub fn shrink_to_fit(&mut self) {
        self.all.shrink_to_fit();
        self.by_name.shrink_to_fit();
    }

    /// Every id, sorted.
    pub fn all(&self) -> &[u64] {
        &self.all
    }

    /// Every (name, value, ids) entry, names and values sorted.
    pub fn entries(&self) -> Vec<(&str, &str, &[u64])> {
        let mut names: Vec<&String> = self.by_name.keys().collect();
        names.sort();
        names
            .into_iter()
            .flat_map(|n| self.by_name[n].iter().map(move |(v, ids)| (n.as_str(), v.as_str(), ids.as_slice())))
            .collect()
    }

    /// Sorted ids of series matching all `matchers`. Equality matchers are
    /// direct lookups; regex and negative matchers scan the label's values.
    pub fn select(&self, matchers: &[Matcher]) -> Vec<u64> {
        // Intersect positive sets first (they are usually small), then
        // subtract the sets of matchers that also accept a missing label.
        let mut result: Option<Vec<u64>> = None;
        let mut subtract: Vec<Vec<u64>> = Vec::new();
        for m in matchers {
            if m.matches_empty() {
                // Matching series = all − (series with a value the matcher rejects).
                subtract.push(self.union_where(&m.name, |v| !m.matches_value(v)));
            } else {
                let set = match &m.op {
                    MatchOp::Equal => self.get(&m.name, &m.value).to_vec(),
                    _ => self.union_where(&m.name, |v| m.matches_value(v)),
                };
                result = Some(match result {
                    None => set,
                    Some(r) => intersect(&r, &set),
                });
            }
            if result.as_ref().is_some_and(Vec::is_empty) {
                return Vec::new();
            }
        }
        let mut result = result.unwrap_or_else(|| self.all.clone());
        for s in subtract {
            result = difference(&result, &s);
        }
        result
    }

    fn get(&self, name: &str, value: &str) -> &[u64] {
        self.by_name.get(name).and_then(|m| m.get(value)).map(Vec::as_slice).unwrap_or(&[])
    }

    fn union_where(&self, name: &str, pred: impl Fn(&str) -> bool) -> Vec<u64> {
        let Some(values) = self.by_name.get(name) else { return Vec::new() };
        let mut out: Vec<u64> =
            values.iter().filter(|(v, _)| pred(v)).flat_map(|(_, ids)| ids.iter().copied()).collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Rough heap bytes used, for memory accounting.
    pub fn memory_estimate(&self) -> usize {
        let lists: usize = self
            .by_name
            .iter()
            .map(|(n, m)| n.capacity() + m.iter().map(|(v, ids)| v.capacity() + ids.capacity() * 8 + 48).sum::<usize>())
            .sum();
        lists + self.all.capacity() * 8
    }
}

fn insert_sorted(list: &mut Vec<u64>, id: u64) {
    match list.last() {
        Some(&last) if last >= id => {
            if let Err(pos) = list.binary_search(&id) {
                list.insert(pos, id);
            }
        }
        _ => list.push(id),
    }
}

fn intersect(a: &[u64], b: &[u64]) -> Vec<u64> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

fn difference(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut j = 0;
    a.iter()
        .copied()
        .filter(|&x| {
            while j < b.len() && b[j] < x {
                j += 1;
            }
            !(j < b.len() && b[j] == x)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Postings {
        let mut p = Postings::new();
        p.add(1, &Labels::from_pairs([("__name__", "up"), ("job", "node"), ("env", "prod")]));
        p.add(2, &Labels::from_pairs([("__name__", "up"), ("job", "mysql")]));
        p.add(3, &Labels::from_pairs([("__name__", "cpu"), ("job", "node"), ("env", "dev")]));
        p
    }

    #[test]
    fn equality_regex_and_negative_matchers() {
        let p = index();
        assert_eq!(p.select(&[Matcher::equal("__name__", "up")]), vec![1, 2]);
        assert_eq!(p.select(&[Matcher::equal("__name__", "up"), Matcher::equal("job", "node")]), vec![1]);
        assert_eq!(p.select(&[Matcher::regex("job", "n.*").unwrap()]), vec![1, 3]);
        assert_eq!(p.select(&[Matcher::not_equal("job", "node")]), vec![2]);
        assert_eq!(p.select(&[Matcher::equal("env", "")]), vec![2]);
        assert_eq!(p.select(&[Matcher::not_regex("env", "p.*").unwrap()]), vec![2, 3]);
        assert_eq!(p.select(&[Matcher::regex("env", ".+").unwrap(), Matcher::not_equal("env", "dev")]), vec![1]);
        assert_eq!(p.select(&[]), vec![1, 2, 3]);
        assert!(p.select(&[Matcher::equal("job", "nope")]).is_empty());
    }

    #[test]
    fn removal_drops_empty_lists() {
        let mut p = index();
        let l2 = Labels::from_pairs([("__name__", "up"), ("job", "mysql")]);
        p.remove([(2, &l2)]);
        assert_eq!(p.all(), &[1, 3]);
        assert!(p.select(&[Matcher::equal("job", "mysql")]).is_empty());
        assert!(!p.entries().iter().any(|(_, v, _)| *v == "mysql"));
    }
}
