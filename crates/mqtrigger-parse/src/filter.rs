//! FilterCriteria: Lambda's event-filtering pattern language, applied to the
//! decoded `data` of a message.
//!
//! A pattern is a JSON object. Its leaves are lists of matchers that are
//! OR-ed; keys are AND-ed; `$or` takes a list of alternative objects. A
//! field that holds an array in the event matches when any element does.
//! Patterns are checked when a mapping is created or updated, with Lambda's
//! kind of error, so a bad filter never reaches a running mapping.

use serde_json::{Map, Value};

/// Lambda's default limit of filters per mapping.
pub const MAX_FILTERS: usize = 5;

/// A checked set of patterns; a message passes when any of them matches.
#[derive(Debug, Clone, PartialEq)]
pub struct Filters {
    patterns: Vec<Map<String, Value>>,
}

fn invalid(detail: impl std::fmt::Display) -> String {
    format!("InvalidParameterValueException: Invalid filter pattern definition: {detail}")
}

impl Filters {
    /// Parses the `Pattern` strings of `FilterCriteria.Filters`.
    pub fn parse<S: AsRef<str>>(patterns: &[S]) -> Result<Filters, String> {
        if patterns.len() > MAX_FILTERS {
            return Err(invalid(format!(
                "{} filters; a mapping takes at most {MAX_FILTERS}",
                patterns.len()
            )));
        }
        let mut parsed = Vec::new();
        for text in patterns {
            let value: Value = serde_json::from_str(text.as_ref())
                .map_err(|e| invalid(format!("not JSON: {e}")))?;
            let Value::Object(object) = value else {
                return Err(invalid("a pattern must be a JSON object"));
            };
            check_top(&object)?;
            parsed.push(object);
        }
        Ok(Filters { patterns: parsed })
    }

    /// Whether a message body passes. A body that is not UTF-8 matches nothing.
    pub fn matches(&self, body: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(body) else {
            return false;
        };
        let data =
            serde_json::from_str::<Value>(text).unwrap_or_else(|_| Value::String(text.to_owned()));
        let event = Value::Object(Map::from_iter([("data".to_owned(), data)]));
        self.patterns.iter().any(|p| match_object(p, &event))
    }

    /// The index of the first pattern the body matches, for the inspector.
    pub fn matching(&self, body: &[u8]) -> Option<usize> {
        (0..self.patterns.len()).find(|&i| {
            Filters {
                patterns: vec![self.patterns[i].clone()],
            }
            .matches(body)
        })
    }
}

fn check_top(object: &Map<String, Value>) -> Result<(), String> {
    if object.is_empty() {
        return Err(invalid("an empty pattern"));
    }
    for (key, value) in object {
        match key.as_str() {
            "data" => check_value(value)?,
            "$or" => check_or(value, check_top)?,
            other => {
                return Err(invalid(format!(
                    "`{other}`: only the `data` key can be filtered for Amazon MQ"
                )));
            }
        }
    }
    Ok(())
}

fn check_or(
    value: &Value,
    check: fn(&Map<String, Value>) -> Result<(), String>,
) -> Result<(), String> {
    let Some(alternatives) = value.as_array().filter(|a| a.len() >= 2) else {
        return Err(invalid("`$or` takes a list of at least two patterns"));
    };
    for alternative in alternatives {
        let Value::Object(o) = alternative else {
            return Err(invalid("each `$or` alternative must be an object"));
        };
        check(o)?;
    }
    Ok(())
}

fn check_object(object: &Map<String, Value>) -> Result<(), String> {
    if object.is_empty() {
        return Err(invalid("an empty object"));
    }
    for (key, value) in object {
        if key == "$or" {
            check_or(value, check_object)?;
        } else {
            check_value(value)?;
        }
    }
    Ok(())
}

fn check_value(value: &Value) -> Result<(), String> {
    match value {
        Value::Object(o) => check_object(o),
        Value::Array(matchers) if matchers.is_empty() => Err(invalid("an empty list of values")),
        Value::Array(matchers) => matchers.iter().try_for_each(check_matcher),
        other => Err(invalid(format!(
            "`{other}` must be inside a list, as in [{other}]"
        ))),
    }
}

fn check_matcher(matcher: &Value) -> Result<(), String> {
    let Value::Object(o) = matcher else {
        return match matcher {
            Value::Array(_) => Err(invalid("a list inside a list")),
            _ => Ok(()),
        };
    };
    let [(op, arg)] = o.iter().collect::<Vec<_>>()[..] else {
        return Err(invalid(format!(
            "`{matcher}`: a matcher has exactly one operator"
        )));
    };
    let string = |v: &Value| v.is_string();
    let ok = match op.as_str() {
        "prefix" | "suffix" => {
            string(arg)
                || arg.get("equals-ignore-case").is_some_and(string)
                    && arg.as_object().is_some_and(|a| a.len() == 1)
        }
        "equals-ignore-case" | "wildcard" => string(arg),
        "exists" => arg.is_boolean(),
        "numeric" => return check_numeric(arg),
        "anything-but" => match arg {
            Value::String(_) | Value::Number(_) | Value::Bool(_) => true,
            Value::Array(list) => {
                !list.is_empty() && list.iter().all(|v| v.is_string() || v.is_number())
            }
            Value::Object(inner) => {
                inner.len() == 1
                    && inner.iter().all(|(k, v)| {
                        matches!(k.as_str(), "prefix" | "suffix" | "wildcard") && string(v)
                            || k == "equals-ignore-case"
                                && (string(v) || v.as_array().is_some_and(|a| a.iter().all(string)))
                    })
            }
            Value::Null => false,
        },
        other => return Err(invalid(format!("unknown operator `{other}`"))),
    };
    if ok {
        Ok(())
    } else {
        Err(invalid(format!("`{matcher}`: wrong value for `{op}`")))
    }
}

fn check_numeric(arg: &Value) -> Result<(), String> {
    let Some(items) = arg.as_array().filter(|a| a.len() == 2 || a.len() == 4) else {
        return Err(invalid(
            "`numeric` takes [\"op\", number] or a range [\">\", low, \"<\", high]",
        ));
    };
    for pair in items.chunks(2) {
        let op = pair[0].as_str().unwrap_or_default();
        if !matches!(op, "=" | "<" | "<=" | ">" | ">=") || !pair[1].is_number() {
            return Err(invalid(format!(
                "`numeric`: `{}` `{}` is not an operator and a number",
                pair[0], pair[1]
            )));
        }
    }
    if items.len() == 4 {
        let (low, high) = (
            items[0].as_str().unwrap_or_default(),
            items[2].as_str().unwrap_or_default(),
        );
        if !matches!(low, ">" | ">=") || !matches!(high, "<" | "<=") {
            return Err(invalid(
                "a `numeric` range is a lower bound (> or >=) then an upper bound (< or <=)",
            ));
        }
    }
    Ok(())
}

fn match_object(pattern: &Map<String, Value>, event: &Value) -> bool {
    pattern.iter().all(|(key, expected)| {
        if key == "$or" {
            return expected.as_array().is_some_and(|alternatives| {
                alternatives
                    .iter()
                    .any(|a| a.as_object().is_some_and(|a| match_object(a, event)))
            });
        }
        let actual = event.as_object().and_then(|o| o.get(key));
        match expected {
            Value::Object(sub) => match actual {
                Some(Value::Array(items)) => items.iter().any(|item| match_object(sub, item)),
                Some(value) => match_object(sub, value),
                None => false,
            },
            Value::Array(matchers) => matchers.iter().any(|m| match_field(m, actual)),
            _ => false,
        }
    })
}

fn match_field(matcher: &Value, actual: Option<&Value>) -> bool {
    if let Some(exists) = matcher.get("exists").and_then(Value::as_bool) {
        let present = match actual {
            Some(Value::Object(_)) | None => false,
            Some(Value::Array(a)) => !a.is_empty(),
            Some(_) => true,
        };
        return present == exists;
    }
    match actual {
        None => false,
        Some(Value::Array(items)) => items.iter().any(|item| match_leaf(matcher, item)),
        Some(value) => match_leaf(matcher, value),
    }
}

fn match_leaf(matcher: &Value, value: &Value) -> bool {
    let Value::Object(op) = matcher else {
        return equal(matcher, value);
    };
    let Some((name, arg)) = op.iter().next() else {
        return false;
    };
    let text = value.as_str();
    match name.as_str() {
        "prefix" => text.is_some_and(|t| affix(arg, t, true)),
        "suffix" => text.is_some_and(|t| affix(arg, t, false)),
        "equals-ignore-case" => text
            .zip(arg.as_str())
            .is_some_and(|(t, a)| t.to_lowercase() == a.to_lowercase()),
        "wildcard" => text.zip(arg.as_str()).is_some_and(|(t, a)| wildcard(a, t)),
        "numeric" => value.as_f64().is_some_and(|n| numeric(arg, n)),
        "anything-but" => match arg {
            Value::Array(list) => !list.iter().any(|a| equal(a, value)),
            Value::Object(inner) => {
                let Some(t) = text else { return false };
                !inner.iter().any(|(k, v)| match k.as_str() {
                    "prefix" => affix(v, t, true),
                    "suffix" => affix(v, t, false),
                    "wildcard" => v.as_str().is_some_and(|w| wildcard(w, t)),
                    "equals-ignore-case" => match v {
                        Value::Array(list) => list.iter().any(|x| {
                            x.as_str()
                                .is_some_and(|x| x.to_lowercase() == t.to_lowercase())
                        }),
                        other => other
                            .as_str()
                            .is_some_and(|x| x.to_lowercase() == t.to_lowercase()),
                    },
                    _ => false,
                })
            }
            literal => !equal(literal, value),
        },
        _ => false,
    }
}

/// Literal equality; numbers compare by value (5 equals 5.0).
fn equal(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

fn affix(arg: &Value, text: &str, prefix: bool) -> bool {
    let (needle, fold) = match arg {
        Value::String(s) => (s.clone(), false),
        Value::Object(o) => match o.get("equals-ignore-case").and_then(Value::as_str) {
            Some(s) => (s.to_lowercase(), true),
            None => return false,
        },
        _ => return false,
    };
    let text = if fold {
        text.to_lowercase()
    } else {
        text.to_owned()
    };
    if prefix {
        text.starts_with(&needle)
    } else {
        text.ends_with(&needle)
    }
}

fn numeric(arg: &Value, n: f64) -> bool {
    arg.as_array().is_some_and(|items| {
        items.chunks(2).all(|pair| {
            let bound = pair[1].as_f64().unwrap_or(f64::NAN);
            match pair[0].as_str().unwrap_or_default() {
                "=" => n == bound,
                "<" => n < bound,
                "<=" => n <= bound,
                ">" => n > bound,
                ">=" => n >= bound,
                _ => false,
            }
        })
    })
}

/// `*` matches any run of characters.
fn wildcard(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first)
        || !text[first.len()..].ends_with(last)
        || text.len() < first.len() + last.len()
    {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}
