//! Labels as the index sees them: parsed and flattened once ([`prepare`]), checked against
//! every bound a label has, before the party layer changes anything.
//!
//! What a label costs the index grows with what it indexes, not with its bytes: a 2 KiB label
//! of 255 one-letter keys used to cost over 100 KiB (issue 14). So besides its size
//! ([`SearchLimits::label_bytes_max`]), a label is bounded by:
//!
//! - the values it indexes ([`SearchLimits::label_values_max`]): every string, number and
//!   boolean, array elements each on their own (`null` is not indexed);
//! - the distinct fields those values fall under ([`SearchLimits::label_fields_max`]): a field
//!   costs more than a value in an existing field;
//! - the bytes of those fields' paths: nested keys repeat their parents' path in every field
//!   below them (`{"<1 KiB key>":{"a":1,"b":1}}` names two 1 KiB fields), so the paths of a
//!   label's distinct fields (without the `label.` prefix) may total at most
//!   `label_bytes_max` too. Keyword values cannot outgrow the label (each is a string of it).
//!
//! Flattening stops at the first value or field past its bound, so a refused label costs no
//! more work than an accepted one.

use std::fmt;

use super::index::ordered_bits;
use super::query::LABEL_PREFIX;
use super::SearchLimits;

/// A label value after flattening.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum FlatValue {
    Keyword(String),
    /// The number as order-preserving bits (see `index::ordered_bits`).
    Number(u64),
}

/// A label parsed and flattened once ([`super::SearchIndex::prepare_label`]), within every
/// label bound, ready to be indexed by [`super::SearchIndex::upsert_prepared`], which cannot
/// refuse it. Validating and indexing are thus one parser: whatever the party layer accepted,
/// the index takes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PreparedLabel {
    /// (field name with its `label` prefix, value), in label order.
    pub(super) flat: Vec<(String, FlatValue)>,
    /// Distinct field names, sorted.
    pub(super) fields: Vec<String>,
}

impl PreparedLabel {
    /// No label (SPEC P-1: the empty label).
    pub fn none() -> PreparedLabel {
        PreparedLabel::default()
    }

    /// Values the label indexes (array elements each on their own).
    pub fn values(&self) -> usize {
        self.flat.len()
    }

    /// Distinct fields those values fall under.
    pub fn fields(&self) -> usize {
        self.fields.len()
    }
}

/// A label the index refused; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelError {
    TooLarge {
        bytes: usize,
        bytes_max: usize,
    },
    /// Not JSON; the text is the parser's reason (line and column).
    NotJson(String),
    NotObject,
    /// More indexed values than `label_values_max` (counting stopped one past it).
    TooManyValues {
        values_max: usize,
    },
    /// Values under more distinct fields than `label_fields_max` (counting stopped one past it).
    TooManyFields {
        fields_max: usize,
    },
    /// The distinct fields' paths total more bytes than `label_bytes_max`.
    PathsTooLong {
        bytes: usize,
        bytes_max: usize,
    },
    /// Indexing the label could take the index past `index_bytes_max`.
    IndexFull {
        bytes_max: usize,
    },
}

impl fmt::Display for LabelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelError::TooLarge { bytes, bytes_max } => {
                write!(f, "label of {bytes} bytes exceeds {bytes_max}")
            }
            LabelError::NotJson(why) => write!(f, "label is not valid JSON: {why}"),
            LabelError::NotObject => write!(f, "label is not a JSON object"),
            LabelError::TooManyValues { values_max } => {
                write!(f, "label indexes more than {values_max} values (party_label_values_max)")
            }
            LabelError::TooManyFields { fields_max } => {
                write!(f, "label has values under more than {fields_max} fields (party_label_fields_max)")
            }
            LabelError::PathsTooLong { bytes, bytes_max } => {
                write!(f, "the label's field paths total {bytes} bytes, more than {bytes_max} (party_label_bytes_max)")
            }
            LabelError::IndexFull { bytes_max } => {
                write!(f, "the search index is full (search_index_bytes_max {bytes_max}); try again later")
            }
        }
    }
}

impl std::error::Error for LabelError {}

/// Parses, flattens and bounds a label (a JSON object; empty = none). Touches nothing.
pub(super) fn prepare(label: &str, limits: &SearchLimits) -> Result<PreparedLabel, LabelError> {
    if label.is_empty() {
        return Ok(PreparedLabel::none());
    }
    if label.len() > limits.label_bytes_max {
        return Err(LabelError::TooLarge { bytes: label.len(), bytes_max: limits.label_bytes_max });
    }
    // serde_json bounds nesting (128 levels), so the recursion below is bounded too.
    let value: serde_json::Value =
        serde_json::from_str(label).map_err(|error| LabelError::NotJson(error.to_string()))?;
    if !value.is_object() {
        return Err(LabelError::NotObject);
    }
    let mut flattener = Flattener { limits, prepared: PreparedLabel::default(), path_bytes: 0 };
    let mut path = String::from(LABEL_PREFIX.trim_end_matches('.'));
    flattener.value(&mut path, &value)?;
    Ok(flattener.prepared)
}

struct Flattener<'a> {
    limits: &'a SearchLimits,
    prepared: PreparedLabel,
    /// Bytes of the distinct fields' paths so far, without the `label.` prefix.
    path_bytes: usize,
}

impl Flattener<'_> {
    fn value(&mut self, path: &mut String, value: &serde_json::Value) -> Result<(), LabelError> {
        use serde_json::Value;
        match value {
            Value::Null => Ok(()),
            Value::Bool(b) => self.push(path, FlatValue::Keyword(b.to_string())),
            Value::Number(n) => match n.as_f64().filter(|n| n.is_finite()) {
                Some(number) => self.push(path, FlatValue::Number(ordered_bits(number))),
                // Without serde_json's arbitrary precision every number converts; skip defensively.
                None => Ok(()),
            },
            Value::String(s) => self.push(path, FlatValue::Keyword(s.clone())),
            Value::Array(items) => items.iter().try_for_each(|item| self.value(path, item)),
            Value::Object(map) => {
                for (key, item) in map {
                    let len = path.len();
                    path.push('.');
                    path.push_str(key);
                    self.value(path, item)?;
                    path.truncate(len);
                }
                Ok(())
            }
        }
    }

    fn push(&mut self, path: &str, value: FlatValue) -> Result<(), LabelError> {
        let limits = self.limits;
        if self.prepared.flat.len() == limits.label_values_max {
            return Err(LabelError::TooManyValues { values_max: limits.label_values_max });
        }
        if let Err(at) = self.prepared.fields.binary_search_by(|field| field.as_str().cmp(path)) {
            if self.prepared.fields.len() == limits.label_fields_max {
                return Err(LabelError::TooManyFields { fields_max: limits.label_fields_max });
            }
            self.path_bytes += path.len() - LABEL_PREFIX.len();
            if self.path_bytes > limits.label_bytes_max {
                return Err(LabelError::PathsTooLong { bytes: self.path_bytes, bytes_max: limits.label_bytes_max });
            }
            self.prepared.fields.insert(at, path.to_owned());
        }
        self.prepared.flat.push((path.to_owned(), value));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(values_max: usize, fields_max: usize, bytes_max: usize) -> SearchLimits {
        SearchLimits {
            label_values_max: values_max,
            label_fields_max: fields_max,
            label_bytes_max: bytes_max,
            ..SearchLimits::default()
        }
    }

    #[test]
    fn values_are_counted_with_array_elements_and_refused_one_past_the_limit() {
        let limits = limits(4, 4, 2048);
        let at = prepare(r#"{"a":[1,2,"x"],"b":null,"c":true}"#, &limits).expect("4 values");
        assert_eq!((at.values(), at.fields()), (4, 2));
        let past = prepare(r#"{"a":[1,2,"x"],"b":null,"c":true,"d":[null,0]}"#, &limits);
        assert_eq!(past, Err(LabelError::TooManyValues { values_max: 4 }));
    }

    #[test]
    fn fields_are_distinct_paths_and_refused_one_past_the_limit() {
        let limits = limits(16, 3, 2048);
        let at = prepare(r#"{"a":[1,2],"b":{"c":1,"d":2},"a.c":0}"#, &limits);
        assert!(at.is_err(), "a, b.c, b.d, a.c are four fields");
        assert_eq!(at, Err(LabelError::TooManyFields { fields_max: 3 }));
        let at = prepare(r#"{"a":[1,2],"b":{"c":1,"d":2},"a.c":null}"#, &limits).expect("null is not indexed");
        assert_eq!(at.fields, ["label.a", "label.b.c", "label.b.d"]);
        // `{"a.b":1}` and `{"a":{"b":1}}` name the same field.
        let same = prepare(r#"{"a.b":1,"a":{"b":2},"x":1,"y":1}"#, &limits);
        assert_eq!(same.map(|l| (l.values(), l.fields())), Ok((4, 3)));
        let past = prepare(r#"{"a.b":1,"a":{"b":2},"x":1,"y":1,"z":1}"#, &limits);
        assert_eq!(past, Err(LabelError::TooManyFields { fields_max: 3 }));
    }

    #[test]
    fn repeated_long_paths_count_once_per_field_against_the_label_bytes() {
        let limits = limits(64, 64, 64);
        let key = "k".repeat(30);
        // Paths without "label.": 31 + 1 + 1 = 32 bytes each (`<key>.a`, `<key>.b`).
        let two = format!(r#"{{"{key}":{{"a":1,"b":[1,2]}}}}"#);
        assert_eq!(prepare(&two, &limits).map(|l| (l.values(), l.fields())), Ok((3, 2)), "64 bytes of paths");
        let three = format!(r#"{{"{key}":{{"a":1,"b":1,"c":1}}}}"#);
        assert_eq!(prepare(&three, &limits), Err(LabelError::PathsTooLong { bytes: 96, bytes_max: 64 }));
    }

    #[test]
    fn size_and_syntax_are_checked_first() {
        let limits = limits(1, 1, 16);
        assert_eq!(prepare("", &limits), Ok(PreparedLabel::none()));
        assert_eq!(
            prepare(&format!(r#"{{"a":"{}"}}"#, "x".repeat(20)), &limits).map(|_| ()).unwrap_err(),
            LabelError::TooLarge { bytes: 28, bytes_max: 16 }
        );
        assert!(matches!(prepare("{x", &limits), Err(LabelError::NotJson(_))));
        assert_eq!(prepare("[1]", &limits), Err(LabelError::NotObject));
    }
}
