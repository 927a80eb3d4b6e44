//! Series selectors in API parameters (`match[]`), parsed with the PromQL
//! parser and turned into store matchers.

use promql_parser::label::MatchOp as PromOp;
use promql_parser::parser::{Expr, parse};
use wasmon_storage::{METRIC_NAME, Matcher};

/// One selector as lists of matchers: one list, or one per `or` branch.
pub fn parse_selector(text: &str) -> Result<Vec<Vec<Matcher>>, String> {
    let expr = parse(text).map_err(|e| format!("invalid parameter \"match[]\": {e}"))?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(format!("invalid parameter \"match[]\": {text:?} is not a series selector"));
    };
    let convert = |list: &[promql_parser::label::Matcher]| -> Result<Vec<Matcher>, String> {
        let mut out = Vec::with_capacity(list.len() + 1);
        if let Some(name) = &vs.name {
            out.push(Matcher::equal(METRIC_NAME, name));
        }
        for m in list {
            out.push(match &m.op {
                PromOp::Equal => Matcher::equal(&m.name, &m.value),
                PromOp::NotEqual => Matcher::not_equal(&m.name, &m.value),
                PromOp::Re(_) => Matcher::regex(&m.name, &m.value).map_err(|e| e.to_string())?,
                PromOp::NotRe(_) => Matcher::not_regex(&m.name, &m.value).map_err(|e| e.to_string())?,
            });
        }
        // Prometheus refuses selectors that would match every series.
        if out.iter().all(|m| m.matches_empty()) {
            return Err(format!("invalid parameter \"match[]\": {text:?} must contain at least one non-empty matcher"));
        }
        Ok(out)
    };
    if vs.matchers.or_matchers.is_empty() {
        Ok(vec![convert(&vs.matchers.matchers)?])
    } else {
        vs.matchers.or_matchers.iter().map(|list| convert(list)).collect::<Result<Vec<_>, _>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmon_storage::Labels;

    #[test]
    fn names_and_matchers() {
        let sets = parse_selector(r#"up{job=~"no.*",env!="dev"}"#).unwrap();
        assert_eq!(sets.len(), 1);
        let l = Labels::from_pairs([("__name__", "up"), ("job", "node")]);
        assert!(sets[0].iter().all(|m| m.matches(&l)));
        assert!(parse_selector("rate(up[5m])").is_err());
        assert!(parse_selector(r#"{job=~".*"}"#).unwrap_err().contains("non-empty"));
        assert!(parse_selector("up{").is_err());
    }
}
