//! The pure half of the Prometheus provider: filling query templates and reading the answers
//! of `/api/v1/query`. The HTTP call itself is made by the daemon.
//!
//! Templates name the revision under test and the stable one with placeholders, e.g.
//! `sum(rate(http_requests_total{app="{{app}}",revision="{{revision}}",code=~"5.."}[{{interval}}]))`.
//! Values are escaped for a PromQL string literal (double- or single-quoted), so a revision
//! name can never break out of the label matcher and change the query.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::AnalysisError;

/// The values a query template may refer to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryVars<'a> {
    /// `{{app}}`: the app's name.
    pub app: &'a str,
    /// `{{revision}}`: the revision being judged (the canary).
    pub revision: &'a str,
    /// `{{stable}}`: the stable revision.
    pub stable: &'a str,
    /// `{{env}}`: the environment's name.
    pub env: &'a str,
    /// `{{interval}}`: the analysis interval as a PromQL duration (e.g. `30s`, `1500ms`).
    pub interval: &'a str,
}

/// The query of one metric, rendered for each arm.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmQueries {
    /// `{{revision}}` is the canary.
    pub canary: String,
    /// `{{revision}}` is the stable revision.
    pub stable: String,
}

/// Renders a metric's query once per arm: `{{revision}}` is the arm's own revision (so one
/// query measures both: `vars.revision` is the canary), `{{stable}}` is always the stable
/// revision (for queries that compute a ratio to stable themselves); `{{app}}`, `{{env}}`
/// and `{{interval}}` are the same in both.
pub fn render_for_arms(template: &str, vars: &QueryVars<'_>) -> Result<ArmQueries, AnalysisError> {
    Ok(ArmQueries {
        canary: render_query(template, vars)?,
        stable: render_query(
            template,
            &QueryVars {
                revision: vars.stable,
                ..*vars
            },
        )?,
    })
}

/// A duration as PromQL writes it: whole seconds as `30s`, anything finer as `1500ms`.
pub fn promql_duration(d: std::time::Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Fills `{{app}}`, `{{env}}`, `{{revision}}`, `{{stable}}` and `{{interval}}` (spaces
/// inside the braces allowed).
///
/// Inside a quoted PromQL string the value is escaped for that quote; inside a raw
/// (backtick) string it must not contain a backtick; outside any string (e.g. part of a
/// metric name) it must be a valid PromQL identifier. Unknown or unclosed placeholders are
/// errors, so a typo never silently queries the wrong series.
pub fn render_query(template: &str, vars: &QueryVars<'_>) -> Result<String, AnalysisError> {
    let mut out = String::with_capacity(template.len() + 32);
    // The quote character of the string literal we are in, if any.
    let mut quote: Option<char> = None;
    let mut i = 0;
    while i < template.len() {
        let rest = &template[i..];
        if let Some(after) = rest.strip_prefix("{{") {
            let Some(close) = after.find("}}") else {
                return Err(AnalysisError::UnclosedPlaceholder { offset: i });
            };
            let name = after[..close].trim();
            let value = match name {
                "app" => vars.app,
                "revision" => vars.revision,
                "stable" => vars.stable,
                "env" => vars.env,
                "interval" => vars.interval,
                other => {
                    return Err(AnalysisError::UnknownPlaceholder {
                        name: other.to_owned(),
                    });
                }
            };
            out.push_str(&placeholder_value(name, value, quote)?);
            i += 2 + close + 2;
            continue;
        }
        let Some(ch) = rest.chars().next() else {
            break;
        };
        out.push(ch);
        i += ch.len_utf8();
        match quote {
            None if matches!(ch, '"' | '\'' | '`') => quote = Some(ch),
            Some(q) if ch == q => quote = None,
            Some(q) if ch == '\\' && q != '`' => {
                // Copy the escaped character as is: it cannot close the string.
                if let Some(next) = template[i..].chars().next() {
                    out.push(next);
                    i += next.len_utf8();
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

fn placeholder_value(
    name: &str,
    value: &str,
    quote: Option<char>,
) -> Result<String, AnalysisError> {
    let unsafe_value = |reason: &str| AnalysisError::UnsafePlaceholderValue {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    match quote {
        Some('`') if value.contains('`') => {
            Err(unsafe_value("a raw string cannot hold a backtick"))
        }
        Some('`') => Ok(value.to_owned()),
        Some(q) => Ok(escape_string_value(value, q)),
        // A duration literal, e.g. inside a range selector `[{{interval}}]`.
        None if name == "interval" => {
            let digits = value.trim_end_matches(|c: char| c.is_ascii_alphabetic());
            let unit = &value[digits.len()..];
            let valid = !digits.is_empty()
                && digits.chars().all(|c| c.is_ascii_digit())
                && matches!(unit, "ms" | "s" | "m" | "h" | "d" | "w" | "y");
            if valid {
                Ok(value.to_owned())
            } else {
                Err(unsafe_value(
                    "outside quotes it must be a PromQL duration such as 30s",
                ))
            }
        }
        None => {
            let mut chars = value.chars();
            let valid = chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
            if valid {
                Ok(value.to_owned())
            } else {
                Err(unsafe_value(
                    "outside quotes it must be a PromQL identifier (letters, digits, _ and :); \
                     put the placeholder inside a quoted label value",
                ))
            }
        }
    }
}

/// Escapes a value for the inside of a PromQL string literal opened with `quote` (`"` or
/// `'`): backslash, that quote, and control characters.
pub fn escape_string_value(value: &str, quote: char) -> String {
    let mut out = String::with_capacity(value.len());
    for ch in value.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// One series of an instant vector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// The series' labels.
    pub labels: BTreeMap<String, String>,
    /// Its value (may be NaN or infinite: Prometheus allows them).
    pub value: f64,
}

/// The result of an instant query.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum QueryResult {
    /// A scalar result.
    Scalar(f64),
    /// An instant vector: zero or more series.
    Vector(Vec<Series>),
}

/// Samples read from a query result.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QuerySamples {
    /// Finite values, one per series (or the scalar).
    pub values: Vec<f64>,
    /// How many NaN or infinite values were left out.
    pub ignored: usize,
}

impl QueryResult {
    /// The finite values, with a count of the ignored others (an empty vector gives no
    /// values: "no data", which the judge treats as inconclusive, not as zero).
    pub fn samples(&self) -> QuerySamples {
        let raw: Vec<f64> = match self {
            Self::Scalar(v) => vec![*v],
            Self::Vector(series) => series.iter().map(|s| s.value).collect(),
        };
        let values: Vec<f64> = raw.iter().copied().filter(|v| v.is_finite()).collect();
        QuerySamples {
            ignored: raw.len() - values.len(),
            values,
        }
    }
}

/// Parses the JSON body of a Prometheus `/api/v1/query` answer.
pub fn parse_query_response(body: &str) -> Result<QueryResult, AnalysisError> {
    let root: Value = serde_json::from_str(body).map_err(AnalysisError::PrometheusJson)?;
    let shape = |reason: &str| AnalysisError::PrometheusShape {
        reason: reason.to_owned(),
    };
    match root.get("status").and_then(Value::as_str) {
        Some("success") => {}
        Some("error") => {
            let text = |key: &str| {
                root.get(key)
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_owned()
            };
            return Err(AnalysisError::PrometheusQuery {
                error_type: text("errorType"),
                message: text("error"),
            });
        }
        _ => return Err(shape("no \"status\" of \"success\" or \"error\"")),
    }
    let data = root.get("data").ok_or_else(|| shape("no \"data\""))?;
    let result = data
        .get("result")
        .ok_or_else(|| shape("no \"data.result\""))?;
    match data.get("resultType").and_then(Value::as_str) {
        Some("scalar") => Ok(QueryResult::Scalar(sample_value(result).ok_or_else(
            || shape("scalar result is not a [timestamp, \"value\"] pair"),
        )?)),
        Some("vector") => {
            let items = result
                .as_array()
                .ok_or_else(|| shape("vector result is not an array"))?;
            let mut series = Vec::with_capacity(items.len());
            for item in items {
                let value = item
                    .get("value")
                    .and_then(sample_value)
                    .ok_or_else(|| shape("vector sample has no [timestamp, \"value\"] pair"))?;
                let labels = item
                    .get("metric")
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                            .collect()
                    })
                    .unwrap_or_default();
                series.push(Series { labels, value });
            }
            Ok(QueryResult::Vector(series))
        }
        Some(other) => Err(AnalysisError::PrometheusShape {
            reason: format!(
                "result type \"{other}\" is not supported; write an instant query that \
                 returns a vector or a scalar"
            ),
        }),
        None => Err(shape("no \"data.resultType\"")),
    }
}

/// Reads `[<unix time>, "<value>"]`; Prometheus writes values as strings, including
/// "NaN", "+Inf" and "-Inf".
fn sample_value(pair: &Value) -> Option<f64> {
    let [_, value] = pair.as_array()?.as_slice() else {
        return None;
    };
    value.as_str()?.trim().parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VARS: QueryVars<'static> = QueryVars {
        app: "shop",
        revision: "r42",
        stable: "r41",
        env: "production",
        interval: "30s",
    };

    #[test]
    fn renders_placeholders() {
        let q = render_query(
            r#"sum(rate(x{app="{{app}}",rev="{{ revision }}"}[1m])) / on() y{rev="{{stable}}"}"#,
            &VARS,
        )
        .expect("valid template");
        assert_eq!(
            q,
            r#"sum(rate(x{app="shop",rev="r42"}[1m])) / on() y{rev="r41"}"#
        );
    }

    #[test]
    fn escapes_values_that_would_break_out() {
        let vars = QueryVars {
            revision: "r1\"} or vector(1) or x{a=\"\\",
            ..VARS
        };
        let q = render_query(r#"x{rev="{{revision}}"}"#, &vars).expect("valid template");
        assert_eq!(q, r#"x{rev="r1\"} or vector(1) or x{a=\"\\"}"#);
    }

    #[test]
    fn escapes_for_the_enclosing_quote() {
        let vars = QueryVars {
            revision: "a'b\"c",
            ..VARS
        };
        assert_eq!(
            render_query("x{r='{{revision}}'}", &vars).expect("valid"),
            "x{r='a\\'b\"c'}"
        );
        assert_eq!(
            render_query(r#"x{r="\"{{revision}}"}"#, &vars).expect("valid"),
            r#"x{r="\"a'b\"c"}"#
        );
        let tick = QueryVars {
            revision: "a`b",
            ..VARS
        };
        assert!(render_query("x{r=`{{revision}}`}", &tick).is_err());
    }

    #[test]
    fn renders_one_query_per_arm() {
        let q = render_for_arms(
            r#"rate(up{app="{{app}}",env="{{env}}",rev="{{revision}}"}[{{interval}}])"#,
            &VARS,
        )
        .expect("valid template");
        assert_eq!(
            q.canary,
            r#"rate(up{app="shop",env="production",rev="r42"}[30s])"#
        );
        assert_eq!(
            q.stable,
            r#"rate(up{app="shop",env="production",rev="r41"}[30s])"#
        );
        let odd = QueryVars {
            interval: "30s] or vector(1",
            ..VARS
        };
        assert!(matches!(
            render_query("x[{{interval}}]", &odd),
            Err(AnalysisError::UnsafePlaceholderValue { .. })
        ));
        assert_eq!(
            promql_duration(std::time::Duration::from_millis(1500)),
            "1500ms"
        );
        assert_eq!(promql_duration(std::time::Duration::from_secs(30)), "30s");
    }

    #[test]
    fn rejects_unknown_and_unclosed() {
        assert!(matches!(
            render_query("x{{rev}}", &VARS),
            Err(AnalysisError::UnknownPlaceholder { name }) if name == "rev"
        ));
        assert!(matches!(
            render_query("ab{{app", &VARS),
            Err(AnalysisError::UnclosedPlaceholder { offset: 2 })
        ));
        let odd = QueryVars {
            app: "my app",
            ..VARS
        };
        assert!(matches!(
            render_query("{{app}}_requests_total", &odd),
            Err(AnalysisError::UnsafePlaceholderValue { .. })
        ));
        assert_eq!(
            render_query("{{app}}_requests_total", &VARS).expect("identifier"),
            "shop_requests_total"
        );
    }

    #[test]
    fn parses_vector_scalar_and_errors() {
        let v = parse_query_response(
            r#"{"status":"success","data":{"resultType":"vector","result":[
                {"metric":{"revision":"r42"},"value":[1700000000.5,"0.25"]},
                {"metric":{},"value":[1700000000.5,"NaN"]},
                {"metric":{},"value":[1700000000.5,"+Inf"]}]}}"#,
        )
        .expect("valid response");
        let s = v.samples();
        assert_eq!(s.values, vec![0.25]);
        assert_eq!(s.ignored, 2);
        let QueryResult::Vector(series) = v else {
            panic!("expected a vector")
        };
        assert_eq!(series[0].labels["revision"], "r42");

        let sc = parse_query_response(
            r#"{"status":"success","data":{"resultType":"scalar","result":[1.0,"3"]}}"#,
        )
        .expect("valid response");
        assert_eq!(sc, QueryResult::Scalar(3.0));

        let err = parse_query_response(
            r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#,
        );
        assert!(
            matches!(err, Err(AnalysisError::PrometheusQuery { error_type, .. }) if error_type == "bad_data")
        );
        assert!(matches!(
            parse_query_response("not json"),
            Err(AnalysisError::PrometheusJson(_))
        ));
        assert!(matches!(
            parse_query_response(
                r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#
            ),
            Err(AnalysisError::PrometheusShape { .. })
        ));
    }
}
