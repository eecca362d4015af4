//! The label query parser (SPEC Q-2).
//!
//! The grammar follows Bleve's query-string syntax as Nakama exposes it, restricted to what a
//! keyword index can answer exactly:
//!
//! ```text
//! query  := ws* (term (ws+ term)*)? ws*
//! term   := ('+' | '-')? (field ':')? value ('^' number)?
//! value  := '"' phrase '"'                       exact string, spaces allowed
//!         | ('>' | '>=' | '<' | '<=') number     numeric range
//!         | word                                 exact keyword, or a pattern with `*` / `?`
//! ```
//!
//! A backslash makes the next character literal everywhere (`\:`, `\ `, `\"`, `\*`, `\\`, …).
//! Everything the parser does not support (Bleve's fuzzy `~`, `/regex/`) is an error rather than
//! a silent literal, so a query copied from Nakama never quietly means something else here.
//! Errors carry the byte offset of the offending character.

use std::fmt;

use super::SearchLimits;

/// The built-in field holding the party's open flag (keyword `true` / `false`).
pub const FIELD_OPEN: &str = "open";
/// The built-in numeric field holding the party's maximum size.
pub const FIELD_MAX_SIZE: &str = "max_size";
/// The built-in numeric field holding the party's current member count.
pub const FIELD_MEMBER_COUNT: &str = "member_count";
/// The built-in keyword field holding the party's name (SPEC L-7); absent for a party without one.
pub const FIELD_NAME: &str = "name";
/// Label fields are the flattened label paths under this prefix (`label.mode`, `label.a.b`).
pub const LABEL_PREFIX: &str = "label.";

/// The largest boost accepted. Scores are sums of boosts over at most `query_terms_max` terms;
/// keeping each boost ≤ 10⁶ keeps every sum finite and far from the precision cliff of `f64`.
pub const BOOST_MAX: f64 = 1_000_000.0;

/// A parsed query. Build it with [`parse_query`]; run it with
/// [`SearchIndex::search`](super::SearchIndex::search).
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The text the query was parsed from: the cursor fingerprint is computed over it.
    text: Box<str>,
    clauses: Vec<Clause>,
}

impl Query {
    /// The query that matches every party (what the empty string parses to).
    pub fn match_all() -> Query {
        Query { text: "".into(), clauses: Vec::new() }
    }

    /// The text this query was parsed from.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The terms in the order they were written.
    pub fn clauses(&self) -> &[Clause] {
        &self.clauses
    }
}

/// One term of a query.
#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub occur: Occur,
    pub field: FieldRef,
    pub value: ValueMatch,
    /// Added to a party's score when this term matches (must and should terms only).
    pub boost: f64,
    /// Byte offset of the term in the query text, for errors found at search time.
    pub byte_pos: usize,
}

/// How a term combines with the others (Bleve's `+`, `-` and no prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occur {
    /// No prefix: optional, adds to the score; when a query has no must-term, at least one
    /// should-term has to match.
    Should,
    /// `+`: has to match.
    Must,
    /// `-`: must not match.
    MustNot,
}

/// Which field a term looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldRef {
    /// A bare term: any label field (built-in fields excluded, so a bare `true` does not match
    /// every open party and a bare `4` does not match every party of four).
    AnyLabel,
    /// Built-in keyword field `open` (`true` / `false`).
    Open,
    /// Built-in numeric field `max_size`.
    MaxSize,
    /// Built-in numeric field `member_count`.
    MemberCount,
    /// Built-in keyword field `name` (SPEC L-7): exact and case-sensitive, like label keywords.
    Name,
    /// A flattened label path, stored with its `label.` prefix (`label.a.b`).
    Label(Box<str>),
}

/// What a term's value matches.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueMatch {
    /// Exact, case-sensitive keyword. When the text is a number, the term also matches a numeric
    /// value equal to it (so `label.skill:5` finds `{"skill":5}` and `{"skill":5.0}`).
    Exact { text: Box<str>, number: Option<f64> },
    /// A `*` / `?` pattern over keywords (numbers are not matched by patterns).
    Wildcard(Pattern),
    /// A one-sided numeric range over numeric values.
    Range { op: RangeOp, number: f64 },
}

/// The comparison of a range term (`field:>N` …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOp {
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
}

/// A wildcard pattern: `*` matches any run of characters (also none), `?` exactly one character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    tokens: Vec<PatternToken>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PatternToken {
    Char(char),
    AnyOne,
    AnyRun,
}

impl Pattern {
    /// The literal text before the first wildcard: the dictionary is scanned from there only.
    pub fn literal_prefix(&self) -> String {
        self.tokens
            .iter()
            .map_while(|token| match token {
                PatternToken::Char(c) => Some(*c),
                _ => None,
            })
            .collect()
    }

    /// Whether `text` matches the whole pattern. Greedy matching with one backtrack point (the
    /// last `*`), so the cost is O(pattern × text) even for hostile patterns like `*a*a*a*b`.
    pub fn matches(&self, text: &str) -> bool {
        let pattern = &self.tokens;
        let (mut pattern_index, mut text_pos) = (0usize, 0usize);
        // (pattern index after the last `*`, text position that `*` currently extends to)
        let mut backtrack: Option<(usize, usize)> = None;
        loop {
            let next_char = text[text_pos..].chars().next();
            if let Some(token) = pattern.get(pattern_index) {
                match (token, next_char) {
                    (PatternToken::AnyRun, _) => {
                        pattern_index += 1;
                        backtrack = Some((pattern_index, text_pos));
                        continue;
                    }
                    (PatternToken::AnyOne, Some(c)) => {
                        pattern_index += 1;
                        text_pos += c.len_utf8();
                        continue;
                    }
                    (PatternToken::Char(want), Some(c)) if *want == c => {
                        pattern_index += 1;
                        text_pos += c.len_utf8();
                        continue;
                    }
                    _ => {}
                }
            } else if next_char.is_none() {
                return true;
            }
            // Mismatch: let the last `*` swallow one more character, or fail.
            let Some((after_star, star_text_pos)) = backtrack else {
                return false;
            };
            let Some(c) = text[star_text_pos..].chars().next() else {
                return false;
            };
            let resumed_pos = star_text_pos + c.len_utf8();
            backtrack = Some((after_star, resumed_pos));
            pattern_index = after_star;
            text_pos = resumed_pos;
        }
    }
}

/// A query the parser refused: what is wrong and the byte offset where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub kind: QueryErrorKind,
    pub byte_pos: usize,
}

/// What is wrong with a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryErrorKind {
    TooLong {
        bytes_max: usize,
    },
    TooManyTerms {
        terms_max: usize,
    },
    /// A `+` or `-` with no term after it.
    DanglingOperator,
    /// A `\` at the very end of the query.
    DanglingEscape,
    /// `:value` with nothing before the colon.
    EmptyFieldName,
    /// `field:` with nothing after the colon.
    MissingValue,
    /// A field that is neither built in nor a `label.` path.
    UnknownField {
        name: String,
    },
    UnterminatedPhrase,
    /// A character that has a meaning here but not in this place (escape it to use it literally).
    UnexpectedChar {
        found: char,
    },
    /// A range operator not followed by a valid number.
    BadNumber,
    /// A `^` not followed by a number in 0..=`BOOST_MAX`.
    BadBoost,
    /// Bleve syntax this index does not implement (fuzzy `~`, `/regex/`).
    Unsupported {
        what: &'static str,
    },
    /// A value the built-in field can never hold (`open:yes`, `max_size:big`, `open:>1`).
    InvalidFieldValue {
        field: &'static str,
        expected: &'static str,
    },
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            QueryErrorKind::TooLong { bytes_max } => write!(f, "query longer than {bytes_max} bytes")?,
            QueryErrorKind::TooManyTerms { terms_max } => write!(f, "more than {terms_max} terms")?,
            QueryErrorKind::DanglingOperator => write!(f, "'+' or '-' without a term")?,
            QueryErrorKind::DanglingEscape => write!(f, "'\\' at the end of the query")?,
            QueryErrorKind::EmptyFieldName => write!(f, "empty field name before ':'")?,
            QueryErrorKind::MissingValue => write!(f, "missing value after ':'")?,
            QueryErrorKind::UnknownField { name } => {
                write!(f, "unknown field '{name}' (use open, max_size, member_count, name or label.<path>)")?
            }
            QueryErrorKind::UnterminatedPhrase => write!(f, "unterminated quoted phrase")?,
            QueryErrorKind::UnexpectedChar { found } => {
                write!(f, "unexpected '{found}' (escape it with '\\' to match it literally)")?
            }
            QueryErrorKind::BadNumber => write!(f, "expected a number")?,
            QueryErrorKind::BadBoost => write!(f, "expected a boost between 0 and {BOOST_MAX} after '^'")?,
            QueryErrorKind::Unsupported { what } => write!(f, "{what} is not supported")?,
            QueryErrorKind::InvalidFieldValue { field, expected } => write!(f, "field '{field}' expects {expected}")?,
        }
        write!(f, " at byte {}", self.byte_pos)
    }
}

impl std::error::Error for QueryError {}

/// Parses a label query (SPEC Q-2). The empty (or all-whitespace) query matches every party.
pub fn parse_query(input: &str, limits: &SearchLimits) -> Result<Query, QueryError> {
    if input.len() > limits.query_bytes_max {
        return Err(QueryError {
            kind: QueryErrorKind::TooLong { bytes_max: limits.query_bytes_max },
            byte_pos: limits.query_bytes_max,
        });
    }
    let mut parser = Parser { input, chars: input.char_indices().collect(), index: 0 };
    let mut clauses = Vec::new();
    loop {
        parser.skip_whitespace();
        if parser.at_end() {
            break;
        }
        if clauses.len() == limits.query_terms_max {
            return Err(parser.error_here(QueryErrorKind::TooManyTerms { terms_max: limits.query_terms_max }));
        }
        clauses.push(parser.term()?);
    }
    Ok(Query { text: input.into(), clauses })
}

struct Parser<'a> {
    input: &'a str,
    /// The query as (byte offset, char); queries are at most `query_bytes_max` long, so this
    /// small copy buys simple one-character lookahead with exact byte positions.
    chars: Vec<(usize, char)>,
    index: usize,
}

impl Parser<'_> {
    fn at_end(&self) -> bool {
        self.index >= self.chars.len()
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.index).map(|&(_, c)| c)
    }

    fn peek_at(&self, index: usize) -> Option<char> {
        self.chars.get(index).map(|&(_, c)| c)
    }

    /// Byte offset of the character at `index` (the input length at the end).
    fn pos_of(&self, index: usize) -> usize {
        self.chars.get(index).map_or(self.input.len(), |&(pos, _)| pos)
    }

    fn error_at(&self, index: usize, kind: QueryErrorKind) -> QueryError {
        QueryError { kind, byte_pos: self.pos_of(index) }
    }

    fn error_here(&self, kind: QueryErrorKind) -> QueryError {
        self.error_at(self.index, kind)
    }

    fn at_term_end(&self) -> bool {
        self.peek().is_none_or(char::is_whitespace)
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.index += 1;
        }
    }

    fn term(&mut self) -> Result<Clause, QueryError> {
        let term_start = self.index;
        let occur = match self.peek() {
            Some('+') => Occur::Must,
            Some('-') => Occur::MustNot,
            _ => Occur::Should,
        };
        if occur != Occur::Should {
            self.index += 1;
            if self.at_term_end() {
                return Err(self.error_at(term_start, QueryErrorKind::DanglingOperator));
            }
        }
        let field = match self.field_name()? {
            Some((name, name_index)) => {
                resolve_field(&name).ok_or_else(|| self.error_at(name_index, QueryErrorKind::UnknownField { name }))?
            }
            None => FieldRef::AnyLabel,
        };
        let value_index = self.index;
        let value = self.value()?;
        let boost = self.boost()?;
        if !self.at_term_end() {
            let found = self.peek().unwrap_or(' ');
            return Err(self.error_here(QueryErrorKind::UnexpectedChar { found }));
        }
        check_field_value(&field, &value).map_err(|kind| self.error_at(value_index, kind))?;
        Ok(Clause { occur, field, value, boost, byte_pos: self.pos_of(term_start) })
    }

    /// Reads `name:` if the term has a field; otherwise leaves the position unchanged. Returns
    /// the unescaped name and the index where it starts.
    fn field_name(&mut self) -> Result<Option<(String, usize)>, QueryError> {
        let start = self.index;
        let mut name = String::new();
        let mut index = start;
        while let Some(c) = self.peek_at(index) {
            match c {
                '\\' => {
                    let Some(escaped) = self.peek_at(index + 1) else {
                        return Err(self.error_at(index, QueryErrorKind::DanglingEscape));
                    };
                    name.push(escaped);
                    index += 2;
                }
                ':' => {
                    if index == start {
                        return Err(self.error_at(index, QueryErrorKind::EmptyFieldName));
                    }
                    self.index = index + 1;
                    if self.at_term_end() {
                        return Err(self.error_here(QueryErrorKind::MissingValue));
                    }
                    return Ok(Some((name, start)));
                }
                // These end a field name candidate: the term is a bare value (its own parser
                // reports misplaced characters).
                c if c.is_whitespace() || matches!(c, '"' | '^') => return Ok(None),
                c => {
                    name.push(c);
                    index += 1;
                }
            }
        }
        Ok(None)
    }

    fn value(&mut self) -> Result<ValueMatch, QueryError> {
        match self.peek() {
            None => Err(self.error_here(QueryErrorKind::MissingValue)),
            Some('"') => self.phrase(),
            Some('>') | Some('<') => self.range(),
            Some('/') => Err(self.error_here(QueryErrorKind::Unsupported { what: "a regular expression" })),
            Some(_) => self.word(),
        }
    }

    fn phrase(&mut self) -> Result<ValueMatch, QueryError> {
        let open_index = self.index;
        self.index += 1;
        let mut text = String::new();
        loop {
            match self.peek() {
                None => return Err(self.error_at(open_index, QueryErrorKind::UnterminatedPhrase)),
                Some('\\') => {
                    let Some(escaped) = self.peek_at(self.index + 1) else {
                        return Err(self.error_here(QueryErrorKind::DanglingEscape));
                    };
                    text.push(escaped);
                    self.index += 2;
                }
                Some('"') => {
                    self.index += 1;
                    break;
                }
                Some(c) => {
                    text.push(c);
                    self.index += 1;
                }
            }
        }
        let number = parse_number(&text);
        Ok(ValueMatch::Exact { text: text.into(), number })
    }

    fn range(&mut self) -> Result<ValueMatch, QueryError> {
        let greater = self.peek() == Some('>');
        self.index += 1;
        let inclusive = self.peek() == Some('=');
        if inclusive {
            self.index += 1;
        }
        let op = match (greater, inclusive) {
            (true, false) => RangeOp::Greater,
            (true, true) => RangeOp::GreaterOrEqual,
            (false, false) => RangeOp::Less,
            (false, true) => RangeOp::LessOrEqual,
        };
        let number_index = self.index;
        let number =
            parse_number(&self.number_text()).ok_or_else(|| self.error_at(number_index, QueryErrorKind::BadNumber))?;
        Ok(ValueMatch::Range { op, number })
    }

    /// The raw text up to the end of the term or a boost.
    fn number_text(&mut self) -> String {
        let mut text = String::new();
        while let Some(c) = self.peek() {
            if c.is_whitespace() || c == '^' {
                break;
            }
            text.push(c);
            self.index += 1;
        }
        text
    }

    fn word(&mut self) -> Result<ValueMatch, QueryError> {
        let mut tokens = Vec::new();
        let mut wildcard = false;
        while let Some(c) = self.peek() {
            match c {
                c if c.is_whitespace() => break,
                '^' => break,
                '\\' => {
                    let Some(escaped) = self.peek_at(self.index + 1) else {
                        return Err(self.error_here(QueryErrorKind::DanglingEscape));
                    };
                    tokens.push(PatternToken::Char(escaped));
                    self.index += 2;
                    continue;
                }
                '*' => {
                    wildcard = true;
                    // `**` means the same as `*`; collapsing keeps the matcher's work minimal.
                    if tokens.last() != Some(&PatternToken::AnyRun) {
                        tokens.push(PatternToken::AnyRun);
                    }
                }
                '?' => {
                    wildcard = true;
                    tokens.push(PatternToken::AnyOne);
                }
                '~' => return Err(self.error_here(QueryErrorKind::Unsupported { what: "fuzzy matching ('~')" })),
                ':' | '"' => return Err(self.error_here(QueryErrorKind::UnexpectedChar { found: c })),
                c => tokens.push(PatternToken::Char(c)),
            }
            self.index += 1;
        }
        if tokens.is_empty() {
            return Err(self.error_here(QueryErrorKind::MissingValue));
        }
        if wildcard {
            return Ok(ValueMatch::Wildcard(Pattern { tokens }));
        }
        let text: String = tokens
            .iter()
            .filter_map(|token| match token {
                PatternToken::Char(c) => Some(*c),
                _ => None,
            })
            .collect();
        let number = parse_number(&text);
        Ok(ValueMatch::Exact { text: text.into(), number })
    }

    fn boost(&mut self) -> Result<f64, QueryError> {
        if self.peek() != Some('^') {
            return Ok(1.0);
        }
        self.index += 1;
        let number_index = self.index;
        match parse_number(&self.number_text()) {
            Some(boost) if (0.0..=BOOST_MAX).contains(&boost) => Ok(boost),
            _ => Err(self.error_at(number_index, QueryErrorKind::BadBoost)),
        }
    }
}

fn resolve_field(name: &str) -> Option<FieldRef> {
    match name {
        FIELD_OPEN => Some(FieldRef::Open),
        FIELD_MAX_SIZE => Some(FieldRef::MaxSize),
        FIELD_MEMBER_COUNT => Some(FieldRef::MemberCount),
        FIELD_NAME => Some(FieldRef::Name),
        _ if name.len() > LABEL_PREFIX.len() && name.starts_with(LABEL_PREFIX) => Some(FieldRef::Label(name.into())),
        _ => None,
    }
}

/// Built-in fields have fixed types; a value they can never hold is a mistake worth reporting.
fn check_field_value(field: &FieldRef, value: &ValueMatch) -> Result<(), QueryErrorKind> {
    match (field, value) {
        (FieldRef::Open, ValueMatch::Exact { text, .. }) if &**text == "true" || &**text == "false" => Ok(()),
        (FieldRef::Open, ValueMatch::Wildcard(_)) => Ok(()),
        (FieldRef::Open, _) => Err(QueryErrorKind::InvalidFieldValue { field: FIELD_OPEN, expected: "true or false" }),
        (FieldRef::MaxSize | FieldRef::MemberCount, ValueMatch::Range { .. })
        | (FieldRef::MaxSize | FieldRef::MemberCount, ValueMatch::Exact { number: Some(_), .. }) => Ok(()),
        (FieldRef::MaxSize, _) => {
            Err(QueryErrorKind::InvalidFieldValue { field: FIELD_MAX_SIZE, expected: "a number or a numeric range" })
        }
        (FieldRef::MemberCount, _) => Err(QueryErrorKind::InvalidFieldValue {
            field: FIELD_MEMBER_COUNT,
            expected: "a number or a numeric range",
        }),
        (FieldRef::Name, ValueMatch::Range { .. }) => {
            Err(QueryErrorKind::InvalidFieldValue { field: FIELD_NAME, expected: "a keyword, not a numeric range" })
        }
        (FieldRef::AnyLabel | FieldRef::Label(_) | FieldRef::Name, _) => Ok(()),
    }
}

/// Parses a decimal number in JSON's shape (`-12`, `3.5`, `1e3`, leading zeros tolerated).
/// `str::parse::<f64>` alone would also take `inf`, `NaN` and `+5`, which are not numbers in a
/// JSON label, so the shape is checked first. Overflow to infinity is refused.
pub(crate) fn parse_number(text: &str) -> Option<f64> {
    let bytes = text.as_bytes();
    let mut i = 0;
    if bytes.first() == Some(&b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while bytes.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return None;
    }
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return None;
        }
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return None;
        }
    }
    if i != bytes.len() {
        return None;
    }
    text.parse::<f64>().ok().filter(|n| n.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &str) -> Query {
        match parse_query(input, &SearchLimits::default()) {
            Ok(query) => query,
            Err(error) => panic!("{input:?} failed: {error}"),
        }
    }

    fn parse_err(input: &str) -> QueryError {
        match parse_query(input, &SearchLimits::default()) {
            Ok(query) => panic!("{input:?} parsed as {query:?}"),
            Err(error) => error,
        }
    }

    fn one(input: &str) -> Clause {
        let query = parse(input);
        assert_eq!(query.clauses().len(), 1, "{input:?}");
        query.clauses()[0].clone()
    }

    fn label(name: &str) -> FieldRef {
        FieldRef::Label(name.into())
    }

    fn exact(text: &str) -> ValueMatch {
        ValueMatch::Exact { text: text.into(), number: parse_number(text) }
    }

    #[test]
    fn empty_and_blank_queries_have_no_terms() {
        assert!(parse("").clauses().is_empty());
        assert!(parse("  \t\n ").clauses().is_empty());
        assert_eq!(parse(""), Query::match_all());
    }

    #[test]
    fn occur_prefixes() {
        let query = parse("+label.a:x -label.b:y label.c:z");
        let occurs: Vec<Occur> = query.clauses().iter().map(|c| c.occur).collect();
        assert_eq!(occurs, [Occur::Must, Occur::MustNot, Occur::Should]);
        let fields: Vec<FieldRef> = query.clauses().iter().map(|c| c.field.clone()).collect();
        assert_eq!(fields, [label("label.a"), label("label.b"), label("label.c")]);
        let positions: Vec<usize> = query.clauses().iter().map(|c| c.byte_pos).collect();
        assert_eq!(positions, [0, 11, 22]);
    }

    #[test]
    fn spec_q2_and_nakama_examples() {
        let clause = one("+label.mode:capture_the_flag");
        assert_eq!(clause.occur, Occur::Must);
        assert_eq!(clause.field, label("label.mode"));
        assert_eq!(clause.value, exact("capture_the_flag"));
        assert_eq!(clause.boost, 1.0);

        let clause = one("+label.player_count:<10");
        assert_eq!(clause.value, ValueMatch::Range { op: RangeOp::Less, number: 10.0 });
        let clause = one("label.a.b:1");
        assert_eq!(clause.field, label("label.a.b"));
        assert_eq!(clause.value, ValueMatch::Exact { text: "1".into(), number: Some(1.0) });
        let query = parse("+open:true +member_count:<4 max_size:>=2");
        let fields: Vec<FieldRef> = query.clauses().iter().map(|c| c.field.clone()).collect();
        assert_eq!(fields, [FieldRef::Open, FieldRef::MemberCount, FieldRef::MaxSize]);
    }

    #[test]
    fn range_operators_and_numbers() {
        let cases = [
            ("label.n:>5", RangeOp::Greater, 5.0),
            ("label.n:>=-5", RangeOp::GreaterOrEqual, -5.0),
            ("label.n:<2.5", RangeOp::Less, 2.5),
            ("label.n:<=-0.25", RangeOp::LessOrEqual, -0.25),
            ("label.n:>1e3", RangeOp::Greater, 1000.0),
            ("label.n:>007", RangeOp::Greater, 7.0),
        ];
        for (input, op, number) in cases {
            assert_eq!(one(input).value, ValueMatch::Range { op, number }, "{input}");
        }
        // A bare range searches every label field.
        assert_eq!(one(">3").field, FieldRef::AnyLabel);
        assert_eq!(one("label.n:-3").value, ValueMatch::Exact { text: "-3".into(), number: Some(-3.0) });
    }

    #[test]
    fn quoted_phrases() {
        let clause = one("label.name:\"two words\"");
        assert_eq!(clause.value, ValueMatch::Exact { text: "two words".into(), number: None });
        assert_eq!(one("\"a b\"").field, FieldRef::AnyLabel);
        // Escapes inside, wildcard characters are literal, empty phrase is the empty string.
        assert_eq!(one(r#"label.q:"say \"hi\" \\ *""#).value, exact(r#"say "hi" \ *"#));
        assert_eq!(one(r#"label.q:"""#).value, exact(""));
        assert_eq!(one(r#"label.q:"x y"^2"#).boost, 2.0);
        assert_eq!(one(r#"label.q:"12""#).value, exact("12"));
    }

    #[test]
    fn wildcards() {
        let clause = one("label.mode:cap*");
        let ValueMatch::Wildcard(pattern) = &clause.value else {
            panic!("not a wildcard: {clause:?}");
        };
        assert_eq!(pattern.literal_prefix(), "cap");
        assert!(pattern.matches("cap"));
        assert!(pattern.matches("capture_the_flag"));
        assert!(!pattern.matches("ca"));
        assert!(!pattern.matches("xcap"));

        let ValueMatch::Wildcard(pattern) = one("label.r:e?-*st").value else {
            panic!("not a wildcard");
        };
        assert_eq!(pattern.literal_prefix(), "e");
        assert!(pattern.matches("eu-west"));
        assert!(pattern.matches("eé-st"), "? is one character, not one byte");
        assert!(!pattern.matches("eu-wes"));
        assert!(!pattern.matches("e-west"));

        let ValueMatch::Wildcard(pattern) = one("*").value else {
            panic!("not a wildcard");
        };
        assert!(pattern.matches("") && pattern.matches("anything"));

        // Escaped wildcard characters are literal, and then the term is exact.
        assert_eq!(one(r"label.a:x\*").value, exact("x*"));
        let ValueMatch::Wildcard(pattern) = one(r"label.a:\**").value else {
            panic!("not a wildcard");
        };
        assert!(pattern.matches("*abc") && !pattern.matches("abc"));
    }

    #[test]
    fn wildcard_matching_is_not_exponential() {
        let ValueMatch::Wildcard(pattern) = one("*a*a*a*a*a*a*a*a*a*a*b").value else {
            panic!("not a wildcard");
        };
        let text = "a".repeat(2048);
        assert!(!pattern.matches(&text));
        assert!(pattern.matches(&format!("{text}b")));
    }

    #[test]
    fn boosts() {
        assert_eq!(one("label.mode:ranked^5").boost, 5.0);
        assert_eq!(one("+label.mode:ranked^0.5").boost, 0.5);
        assert_eq!(one("label.n:>3^2").boost, 2.0);
        assert_eq!(one("label.m:r*^3").boost, 3.0);
        assert_eq!(one("ranked^0").boost, 0.0);
    }

    #[test]
    fn escapes() {
        let clause = one(r"label.url:http\://x");
        assert_eq!(clause.value, exact("http://x"));
        assert_eq!(one(r"label.name:two\ words").value, exact("two words"));
        assert_eq!(one(r"label.a:\+1").value, exact("+1"));
        assert_eq!(one(r"\-x").value, exact("-x"));
        assert_eq!(one(r"\-x").occur, Occur::Should);
        assert_eq!(one(r"label.a:\\").value, exact(r"\"));
        assert_eq!(one(r"label.a:x\^2").value, exact("x^2"));
        // Field names take escapes too: a label key with a space or a colon.
        assert_eq!(one(r"label.a\ b:x").field, label("label.a b"));
        assert_eq!(one(r"label.a\:b:x").field, label("label.a:b"));
        // A minus inside a word is literal.
        assert_eq!(one("label.r:eu-west").value, exact("eu-west"));
    }

    #[test]
    fn malformed_queries_report_what_and_where() {
        use QueryErrorKind as K;
        let cases: Vec<(&str, QueryErrorKind, usize)> = vec![
            ("label.a:\"open", K::UnterminatedPhrase, 8),
            ("x \"abc", K::UnterminatedPhrase, 2),
            ("+", K::DanglingOperator, 0),
            ("a - b", K::DanglingOperator, 2),
            ("label.a:x\\", K::DanglingEscape, 9),
            ("label.a:\"x\\", K::DanglingEscape, 10),
            (":x", K::EmptyFieldName, 0),
            ("a +:x", K::EmptyFieldName, 3),
            ("label.a:", K::MissingValue, 8),
            ("label.a: x", K::MissingValue, 8),
            ("label.a:^2", K::MissingValue, 8),
            ("a mode:x", K::UnknownField { name: "mode".into() }, 2),
            ("label.:x", K::UnknownField { name: "label.".into() }, 0),
            ("label.a:b:c", K::UnexpectedChar { found: ':' }, 9),
            ("label.a:b\"c\"", K::UnexpectedChar { found: '"' }, 9),
            ("label.a:\"b\"c", K::UnexpectedChar { found: 'c' }, 11),
            ("label.n:>", K::BadNumber, 9),
            ("label.n:>=x", K::BadNumber, 10),
            ("label.n:<1.", K::BadNumber, 9),
            ("label.n:<inf", K::BadNumber, 9),
            ("label.n:<NaN", K::BadNumber, 9),
            ("label.n:<1e999", K::BadNumber, 9),
            ("label.n:<+1", K::BadNumber, 9),
            ("label.a:x^", K::BadBoost, 10),
            ("label.a:x^y", K::BadBoost, 10),
            ("label.a:x^-1", K::BadBoost, 10),
            ("label.a:x^2000000", K::BadBoost, 10),
            ("label.a:x^2^3", K::UnexpectedChar { found: '^' }, 11),
            ("label.a:ab~2", K::Unsupported { what: "fuzzy matching ('~')" }, 10),
            ("label.a:/re/", K::Unsupported { what: "a regular expression" }, 8),
            ("open:yes", K::InvalidFieldValue { field: "open", expected: "true or false" }, 5),
            ("open:>1", K::InvalidFieldValue { field: "open", expected: "true or false" }, 5),
            ("+max_size:big", K::InvalidFieldValue { field: "max_size", expected: "a number or a numeric range" }, 10),
            (
                "member_count:4*",
                K::InvalidFieldValue { field: "member_count", expected: "a number or a numeric range" },
                13,
            ),
            // Positions are byte offsets, also after multi-byte characters.
            ("label.é:\"x", K::UnterminatedPhrase, 9),
        ];
        for (input, kind, byte_pos) in cases {
            let error = parse_err(input);
            assert_eq!(error, QueryError { kind, byte_pos }, "{input:?}: {error}");
        }
    }

    #[test]
    fn error_messages_name_the_problem_and_the_byte() {
        let error = parse_err("label.name:\"two");
        assert_eq!(error.to_string(), "unterminated quoted phrase at byte 11");
        let error = parse_err("mode:x");
        assert_eq!(
            error.to_string(),
            "unknown field 'mode' (use open, max_size, member_count, name or label.<path>) at byte 0"
        );
    }

    #[test]
    fn limits_bound_length_and_terms() {
        let limits = SearchLimits { query_bytes_max: 16, query_terms_max: 3, ..SearchLimits::default() };
        assert!(parse_query("label.a:12345678", &limits).is_ok());
        assert_eq!(
            parse_query("label.a:123456789", &limits),
            Err(QueryError { kind: QueryErrorKind::TooLong { bytes_max: 16 }, byte_pos: 16 })
        );
        assert!(parse_query("a b c", &limits).is_ok());
        assert_eq!(
            parse_query("a b c d", &limits),
            Err(QueryError { kind: QueryErrorKind::TooManyTerms { terms_max: 3 }, byte_pos: 6 })
        );
        let defaults = SearchLimits::default();
        assert!(parse_query(&"a ".repeat(64), &defaults).is_ok());
        assert!(parse_query(&"a ".repeat(65), &defaults).is_err());
        assert!(parse_query(&"x".repeat(1025), &defaults).is_err());
    }

    /// Input never panics: every prefix of tricky queries and a deterministic byte soup.
    #[test]
    fn no_input_panics() {
        let samples =
            [r#"+label.a\ b:"x \" y"^2.5 -label.n:>=-1e3 *?\\ open:true member_count:<4"#, "é\u{0}\"\\:^~/*?+-<>="];
        let limits = SearchLimits::default();
        for sample in samples {
            for (end, _) in sample.char_indices() {
                let _ = parse_query(&sample[..end], &limits);
            }
        }
        let alphabet: Vec<char> = "ab1.:\"\\^*?+-<>= ~/é".chars().collect();
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..(state % 12) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            if let Err(error) = parse_query(&text, &limits) {
                assert!(error.byte_pos <= text.len(), "{text:?}: {error}");
            }
        }
    }
}
