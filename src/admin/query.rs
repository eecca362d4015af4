//! Query strings (`?offset=10&limit=20`): parsed once into name/value pairs, percent-decoded
//! (`+` is a space, as forms encode it), then taken out by typed getters like body fields, so
//! every refusal names its parameter. A route names the parameters it takes; any other, or one
//! given twice, is refused rather than silently ignored (a misspelt `user_id` would otherwise
//! widen a history query to everyone). The query is part of the head, so
//! `admin_head_bytes_max` bounds it.

use super::AdminError;
use crate::net::http::{percent_decode, PlusSign};

pub(crate) struct QueryParams {
    /// (name, value), in the order given, each name once.
    pairs: Vec<(&'static str, String)>,
}

impl QueryParams {
    /// Parses `query` (without the `?`), accepting only the parameters in `allowed`.
    pub fn parse(query: &str, allowed: &[&'static str]) -> Result<QueryParams, AdminError> {
        let mut pairs: Vec<(&'static str, String)> = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = percent_decode(raw_name, PlusSign::Space)
                .ok_or_else(|| AdminError::BadRequest("query: not valid percent-encoded UTF-8".into()))?;
            let Some(&known) = allowed.iter().find(|a| **a == name) else {
                let shown: String = name.chars().take(64).collect();
                return Err(AdminError::BadRequest(format!("{shown}: unknown parameter")));
            };
            if pairs.iter().any(|(n, _)| *n == known) {
                return Err(AdminError::BadRequest(format!("{known}: given more than once")));
            }
            let value = percent_decode(raw_value, PlusSign::Space)
                .ok_or_else(|| AdminError::BadRequest(format!("{known}: not valid percent-encoded UTF-8")))?;
            pairs.push((known, value));
        }
        Ok(QueryParams { pairs })
    }

    /// The value of `name`, if given.
    pub fn opt_string(&mut self, name: &str) -> Option<String> {
        let index = self.pairs.iter().position(|(n, _)| *n == name)?;
        Some(self.pairs.swap_remove(index).1)
    }

    /// A non-negative integer within `range`, if given.
    pub fn opt_integer(&mut self, name: &str, range: std::ops::RangeInclusive<u64>) -> Result<Option<u64>, AdminError> {
        let Some(text) = self.opt_string(name) else { return Ok(None) };
        let parsed = (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.parse::<u64>().ok());
        match parsed.flatten().filter(|value| range.contains(value)) {
            Some(value) => Ok(Some(value)),
            None => {
                let shown: String = text.chars().take(32).collect();
                Err(AdminError::BadRequest(format!(
                    "{name}: expected an integer in {}..={}, got {shown:?}",
                    range.start(),
                    range.end()
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::bad_request_message as message;

    #[test]
    fn parameters_are_decoded_typed_and_refused_by_name() {
        let mut query = QueryParams::parse("a=1&&b=x+y%21&c", &["a", "b", "c", "d"]).unwrap();
        assert_eq!(query.opt_integer("a", 0..=9).unwrap(), Some(1));
        assert_eq!(query.opt_string("b").as_deref(), Some("x y!"));
        assert_eq!(query.opt_string("c").as_deref(), Some(""));
        assert_eq!(query.opt_string("d"), None);
        assert_eq!(message(QueryParams::parse("e=1", &["a"]).err().unwrap()), "e: unknown parameter");
        assert_eq!(message(QueryParams::parse("a=1&a=2", &["a"]).err().unwrap()), "a: given more than once");
        assert!(message(QueryParams::parse("a=%zz", &["a"]).err().unwrap()).starts_with("a: not valid"));
        for bad in ["a=", "a=-1", "a=10", "a=1e3", "a=99999999999999999999999"] {
            let mut query = QueryParams::parse(bad, &["a"]).unwrap();
            assert!(message(query.opt_integer("a", 0..=9).unwrap_err()).starts_with("a: expected an integer in 0..=9"));
        }
    }
}
