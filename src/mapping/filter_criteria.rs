//! Lambda's FilterCriteria, `{"Filters": [{"Pattern": "{…}"}]}`, read once
//! into a type where it enters (the API, the config file, the store, the
//! console's editor), so that no one digs into its JSON by hand.
//!
//! A pattern stays the text the user wrote, as Lambda keeps and answers it;
//! [`FilterCriteria::compile`] turns the patterns into the matcher the engine
//! runs, and is where a bad pattern is refused.

use crate::filter::Filters;
use serde::{Deserialize, Deserializer, Serialize};

/// The shape, as the error for anything else says it.
pub const SHAPE: &str = "FilterCriteria must look like { Filters = [ { Pattern = \"{…}\" } ] }";

/// A mapping's FilterCriteria. Empty (no filters) means "no filter", as
/// Lambda reads both `{}` and `{"Filters": []}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FilterCriteria {
    pub filters: Vec<Filter>,
}

/// One filter: a pattern, as the JSON text of an event pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Filter {
    pub pattern: String,
}

impl FilterCriteria {
    /// The criteria of these patterns, in their order.
    pub fn of_patterns<I, S>(patterns: I) -> FilterCriteria
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        FilterCriteria {
            filters: patterns
                .into_iter()
                .map(|p| Filter { pattern: p.into() })
                .collect(),
        }
    }

    /// No filter at all: every message passes.
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// Itself, or None when it filters nothing: how a spec keeps it.
    pub fn non_empty(self) -> Option<FilterCriteria> {
        (!self.is_empty()).then_some(self)
    }

    /// The patterns' texts, in order.
    pub fn patterns(&self) -> Vec<&str> {
        self.filters.iter().map(|f| f.pattern.as_str()).collect()
    }

    /// The matcher of these patterns; None when there are none. The error
    /// is Lambda's sentence for the first pattern it cannot read.
    pub fn compile(&self) -> Result<Option<Filters>, String> {
        if self.is_empty() {
            return Ok(None);
        }
        Filters::parse(&self.patterns())
            .map(Some)
            .map_err(|e| format!("FilterCriteria: {e}"))
    }
}

impl<'de> Deserialize<'de> for FilterCriteria {
    /// Reads Lambda's shape from any format (JSON from the API and the
    /// store, TOML from the config file); anything else is refused with
    /// the shape spelled out, rather than serde's bare "invalid type".
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase", deny_unknown_fields)]
        struct Shape {
            #[serde(default)]
            filters: Option<Vec<Filter>>,
        }
        let value = serde_json::Value::deserialize(deserializer)?;
        // serde would read a struct from a list too; Lambda takes an object.
        if !value.is_object() {
            return Err(serde::de::Error::custom(format!("{SHAPE} (not {value})")));
        }
        let shape: Shape = serde_json::from_value(value)
            .map_err(|e| serde::de::Error::custom(format!("{SHAPE} ({e})")))?;
        Ok(FilterCriteria {
            filters: shape.filters.unwrap_or_default(),
        })
    }
}

/// For a spec's field: criteria that filter nothing are kept as none, so
/// that `{}` and an absent field read back the same.
pub fn non_empty<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<FilterCriteria>, D::Error> {
    Ok(Option::<FilterCriteria>::deserialize(deserializer)?.and_then(FilterCriteria::non_empty))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambdas_shape_reads_and_writes_back_the_same() {
        let json = r#"{"Filters":[{"Pattern":"{\"data\":{\"kind\":[\"order\"]}}"}]}"#;
        let criteria: FilterCriteria = serde_json::from_str(json).unwrap();
        assert_eq!(criteria.patterns(), [r#"{"data":{"kind":["order"]}}"#]);
        assert_eq!(serde_json::to_string(&criteria).unwrap(), json);
        assert!(criteria.compile().unwrap().is_some());
    }

    #[test]
    fn empty_criteria_filter_nothing() {
        for json in ["{}", r#"{"Filters":[]}"#] {
            let criteria: FilterCriteria = serde_json::from_str(json).unwrap();
            assert!(criteria.is_empty(), "{json}");
            assert_eq!(criteria.compile(), Ok(None));
        }
    }

    #[test]
    fn another_shape_is_refused_with_the_shape_named() {
        for json in [
            r#"{"Filters":"x"}"#,
            r#"{"Filters":[{"pattern":"{}"}]}"#,
            r#"{"Filters":[{"Pattern":{}}]}"#,
            r#"[]"#,
        ] {
            let e = serde_json::from_str::<FilterCriteria>(json).unwrap_err();
            assert!(e.to_string().starts_with(SHAPE), "{json}: {e}");
        }
    }

    #[test]
    fn a_bad_pattern_is_refused_when_compiled_with_lambdas_words() {
        let criteria = FilterCriteria::of_patterns([r#"{"data":{"kind":"order"}}"#]);
        let e = criteria.compile().unwrap_err();
        assert!(
            e.starts_with("FilterCriteria: InvalidParameterValueException"),
            "{e}"
        );
    }
}
