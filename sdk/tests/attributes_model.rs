//! Property test: `Attributes` behaves like a `BTreeMap<String, String>` under
//! any sequence of writes, removals and trips through the packed form, however
//! its text is laid out underneath (appends, garbage, compaction).

use proptest::prelude::*;
use std::collections::BTreeMap;
use wasmon_sdk::attributes::Attributes;

#[derive(Debug, Clone)]
enum Op {
    Insert(String, String),
    Remove(String),
    /// Several pairs at once; later ones win, keys may repeat.
    Extend(Vec<(String, String)>),
    /// Keep keys whose first byte is even.
    RetainEven,
    /// Out to the packed form and back.
    Repack,
}

/// Few distinct keys, so operations collide; some non-ASCII and empty ones.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-e]{1,2}",
        "k8s\\.pod\\.(name|uid|label\\.[a-c])",
        Just("é".to_string()),
        Just("日本".to_string()),
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9 ]{0,12}", "\\PC{0,6}", Just(String::new())]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (key(), value()).prop_map(|(k, v)| Op::Insert(k, v)),
        2 => key().prop_map(Op::Remove),
        2 => proptest::collection::vec((key(), value()), 0..8).prop_map(Op::Extend),
        1 => Just(Op::RetainEven),
        1 => Just(Op::Repack),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn behaves_like_a_sorted_map(ops in proptest::collection::vec(op(), 0..60)) {
        let mut attributes = Attributes::new();
        let mut model: BTreeMap<String, String> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Insert(k, v) => {
                    let old = attributes.insert(&k, &v);
                    prop_assert_eq!(old, model.insert(k, v));
                }
                Op::Remove(k) => prop_assert_eq!(attributes.remove(&k), model.remove(&k)),
                Op::Extend(pairs) => {
                    attributes.extend(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                    model.extend(pairs);
                }
                Op::RetainEven => {
                    let even = |k: &str| k.as_bytes().first().is_none_or(|b| b % 2 == 0);
                    attributes.retain(|k, _| even(k));
                    model.retain(|k, _| even(k));
                }
                Op::Repack => {
                    let (text, spans) = attributes.clone().into_packed();
                    prop_assert_eq!(attributes.to_packed(), (text.clone(), spans.clone()));
                    attributes = Attributes::from_packed(text, &spans).expect("our own packed form reads back");
                }
            }
            let got: Vec<(&str, &str)> = attributes.iter().collect();
            let want: Vec<(&str, &str)> = model.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            prop_assert_eq!(got, want);
            prop_assert_eq!(attributes.len(), model.len());
            for k in model.keys() {
                prop_assert_eq!(attributes.get(k), model.get(k).map(String::as_str));
            }
        }
    }

    /// Packed attributes from the other side in any order, with repeats: the
    /// last span of each key wins, as a map built in that order would.
    #[test]
    fn any_order_of_spans_reads_as_the_map_built_in_that_order(pairs in proptest::collection::vec((key(), value()), 0..12)) {
        let mut text = String::new();
        let mut spans = Vec::new();
        let mut model = BTreeMap::new();
        for (k, v) in &pairs {
            spans.extend([text.len() as u32, k.len() as u32, v.len() as u32]);
            text.push_str(k);
            text.push_str(v);
            model.insert(k.clone(), v.clone());
        }
        let attributes = Attributes::from_packed(text, &spans).expect("valid spans");
        let got: Vec<(String, String)> = attributes.to_vec();
        let want: Vec<(String, String)> = model.into_iter().collect();
        prop_assert_eq!(got, want);
    }
}
