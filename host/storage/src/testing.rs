//! A plain in-memory [`Querier`] over a list of series, for tests of code
//! above the store (the query engine, the HTTP API).

use crate::matcher::matches_all;
use crate::{Labels, Matcher, Querier, Sample, SeriesSamples};

#[derive(Debug, Default, Clone)]
pub struct VecStore {
    pub series: Vec<SeriesSamples>,
}

impl VecStore {
    /// Append a sample to the series with `labels`, creating it if needed.
    /// Samples must arrive in time order per series.
    pub fn push(&mut self, labels: &Labels, t: i64, v: f64) {
        match self.series.iter_mut().find(|s| &s.labels == labels) {
            Some(s) => s.samples.push(Sample { t, v }),
            None => self.series.push(SeriesSamples { labels: labels.clone(), samples: vec![Sample { t, v }] }),
        }
    }
}

impl Querier for VecStore {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<SeriesSamples> {
        self.series
            .iter()
            .filter(|s| matches_all(matchers, &s.labels))
            .filter_map(|s| {
                let samples: Vec<Sample> = s.samples.iter().filter(|x| x.t >= mint && x.t <= maxt).copied().collect();
                (!samples.is_empty()).then(|| SeriesSamples { labels: s.labels.clone(), samples })
            })
            .collect()
    }
}
