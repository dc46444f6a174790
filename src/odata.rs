//! OData system query options as Microsoft Graph clients send them, and their translation
//! into parameterized SQL for SQLite and PostgreSQL.
//!
//! Client-supplied values never reach the SQL text: every literal becomes a bind parameter.
//! The only things written into SQL are the static column expressions declared in an
//! [`Entity`] and fixed keywords.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use percent_encoding::percent_decode_str;

/// Longest `$filter` accepted, in characters; a hostile client must not make us parse megabytes.
pub const MAX_FILTER_LENGTH: usize = 4000;
/// Deepest nesting of parentheses and `not` in `$filter`; parsing is recursive, so this
/// bounds stack use.
pub const MAX_FILTER_DEPTH: usize = 50;
/// Deepest nesting of `$expand` inside `$expand` (also recursive).
pub const MAX_EXPAND_DEPTH: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A value to bind to a `$N` placeholder, in placeholder order.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Text(String),
    Int(i64),
    Float(f64),
    /// SQLite has no boolean type; sqlx binds this as 0/1, matching how it stores bools.
    Bool(bool),
    /// On SQLite timestamps are TEXT and compare as text, so this must be bound in the same
    /// representation the rows were written with (binding the `DateTime<Utc>` through sqlx,
    /// as for writes, gives that; the tests check ordering with fractional seconds).
    Timestamp(DateTime<Utc>),
    Null,
}

/// Errors in a request's query options. `Display` is meant to be sent to the client as the
/// message of a 400 Bad Request, so it mimics Microsoft Graph's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ODataError {
    /// `position` is a 0-based character offset into `clause`.
    #[error("Invalid filter clause: {detail} at position {position} in '{clause}'.")]
    InvalidFilter {
        detail: String,
        position: usize,
        clause: String,
    },
    #[error("Invalid filter clause: the clause is {length} characters long, but at most {max} are allowed.")]
    FilterTooLong { length: usize, max: usize },
    /// Syntax errors in `$select`, `$orderby` and `$expand`.
    #[error("Invalid {option} clause: {detail}.")]
    InvalidOption { option: &'static str, detail: String },
    #[error("Invalid $top value '{0}'. The value must be a non-negative integer.")]
    InvalidTop(String),
    #[error("Invalid $skip value '{0}'. The value must be a non-negative integer.")]
    InvalidSkip(String),
    #[error("Invalid $count value '{0}'. '$count' must be 'true' or 'false'.")]
    InvalidCount(String),
    #[error("The query parameter '{0}' is not supported.")]
    UnsupportedOption(String),
    #[error("Query option '{0}' was specified more than once, but it must be specified at most once.")]
    DuplicateOption(String),
    #[error("The query string is not valid: {0}.")]
    MalformedQuery(String),
    #[error("Could not find a property named '{property}' on type '{type_name}'.")]
    UnknownProperty { property: String, type_name: String },
    /// `option` is `$filter` or `$orderby`.
    #[error("The query specified in the URI is not valid. The property '{property}' cannot be used in the {option} query option.")]
    PropertyNotAllowed { property: String, option: &'static str },
    #[error("A binary operator with incompatible types was detected. Found operand types '{left}' and '{right}' for operator kind '{operator}'.")]
    IncompatibleTypes {
        left: String,
        right: String,
        operator: String,
    },
    #[error("No function signature for the function with name '{function}' matches the specified arguments. The function signatures considered are: {function}(Edm.String Nullable=true, Edm.String Nullable=true).")]
    FunctionArguments { function: String },
    #[error("The value '{value}' is not a valid member of enum '{enum_name}'.")]
    InvalidEnumMember { value: String, enum_name: String },
}

/// Everything a request's query string asked for. Parsing does not know the entity yet.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryOptions {
    pub select: Option<Vec<String>>,
    pub filter: Option<Expr>,
    pub orderby: Vec<OrderBy>,
    pub top: Option<u64>,
    pub skip: Option<u64>,
    pub count: bool,
    pub expand: Vec<Expand>,
    pub skiptoken: Option<String>,
    pub search: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    pub property: String,
    pub descending: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expand {
    pub property: String,
    pub options: QueryOptions,
}

/// `$filter` syntax tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare {
        property: String,
        op: CmpOp,
        value: Literal,
    },
    In {
        property: String,
        values: Vec<Literal>,
    },
    Func {
        func: StrFunc,
        property: String,
        value: Literal,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    fn from_keyword(word: &str) -> Option<CmpOp> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => CmpOp::Eq,
            "ne" => CmpOp::Ne,
            "gt" => CmpOp::Gt,
            "ge" => CmpOp::Ge,
            "lt" => CmpOp::Lt,
            "le" => CmpOp::Le,
            _ => return None,
        })
    }

    /// The operator that gives the same result with the operands swapped.
    fn flipped(self) -> CmpOp {
        match self {
            CmpOp::Eq => CmpOp::Eq,
            CmpOp::Ne => CmpOp::Ne,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
        }
    }

    /// Microsoft.OData's `BinaryOperatorKind` names, which Graph quotes in its errors.
    fn kind_name(self) -> &'static str {
        match self {
            CmpOp::Eq => "Equal",
            CmpOp::Ne => "NotEqual",
            CmpOp::Gt => "GreaterThan",
            CmpOp::Ge => "GreaterThanOrEqual",
            CmpOp::Lt => "LessThan",
            CmpOp::Le => "LessThanOrEqual",
        }
    }

    fn sql(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrFunc {
    StartsWith,
    EndsWith,
    Contains,
}

impl StrFunc {
    fn name(self) -> &'static str {
        match self {
            StrFunc::StartsWith => "startswith",
            StrFunc::EndsWith => "endswith",
            StrFunc::Contains => "contains",
        }
    }
}

/// A literal in `$filter`. GUIDs are lower-cased (Graph ids are lower-case); enum literals
/// (`microsoft.graph.complianceState'compliant'`) become `String("compliant")`.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    String(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    Guid(String),
    DateTime(DateTime<Utc>),
}

impl Literal {
    fn edm_type(&self) -> &'static str {
        match self {
            Literal::String(_) => "Edm.String",
            Literal::Int(i) if i32::try_from(*i).is_ok() => "Edm.Int32",
            Literal::Int(_) => "Edm.Int64",
            Literal::Float(_) => "Edm.Double",
            Literal::Bool(_) => "Edm.Boolean",
            Literal::Null => "null",
            Literal::Guid(_) => "Edm.Guid",
            Literal::DateTime(_) => "Edm.DateTimeOffset",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Query string
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OptionName {
    Select,
    Filter,
    OrderBy,
    Top,
    Skip,
    Count,
    Expand,
    Search,
    SkipToken,
}

impl OptionName {
    fn from_bare(name: &str) -> Option<OptionName> {
        Some(match name.to_ascii_lowercase().as_str() {
            "select" => OptionName::Select,
            "filter" => OptionName::Filter,
            "orderby" => OptionName::OrderBy,
            "top" => OptionName::Top,
            "skip" => OptionName::Skip,
            "count" => OptionName::Count,
            "expand" => OptionName::Expand,
            "search" => OptionName::Search,
            "skiptoken" => OptionName::SkipToken,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            OptionName::Select => "$select",
            OptionName::Filter => "$filter",
            OptionName::OrderBy => "$orderby",
            OptionName::Top => "$top",
            OptionName::Skip => "$skip",
            OptionName::Count => "$count",
            OptionName::Expand => "$expand",
            OptionName::Search => "$search",
            OptionName::SkipToken => "$skiptoken",
        }
    }

    /// `Ok(None)` for a name without `$` that is not an option: at the top level that is a
    /// parameter of the client's own, to be ignored.
    fn classify(name: &str) -> Result<Option<OptionName>, ODataError> {
        match name.strip_prefix('$') {
            Some(bare) => OptionName::from_bare(bare)
                .map(Some)
                .ok_or_else(|| ODataError::UnsupportedOption(name.to_owned())),
            None => Ok(OptionName::from_bare(name)),
        }
    }
}

/// Parses a raw, still percent-encoded URL query string (what comes after `?`, possibly empty).
///
/// Option names are case-insensitive and may omit the `$` (the beta endpoint accepts `top`).
/// Parameters that are neither `$`-prefixed nor a known option name are ignored; an unknown
/// `$option` or a repeated option is an error. `+` decodes to a space, so a client must send a
/// literal plus (e.g. in `+02:00`) as `%2B`.
pub fn parse_query(raw: &str) -> Result<QueryOptions, ODataError> {
    let raw = raw.strip_prefix('?').unwrap_or(raw);
    let mut options = QueryOptions::default();
    let mut seen = Vec::new();
    for pair in raw.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode_component(name)?;
        let Some(option) = OptionName::classify(&name)? else {
            continue;
        };
        let value = decode_component(value)?;
        apply_option(&mut options, &mut seen, option, &value, 0)?;
    }
    Ok(options)
}

fn decode_component(raw: &str) -> Result<String, ODataError> {
    // Form encoding: '+' is a space, and must be replaced before percent-decoding so that an
    // encoded plus (%2B) survives as '+'.
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|_| ODataError::MalformedQuery(format!("'{raw}' does not percent-decode to valid UTF-8")))
}

/// `value` is already decoded.
fn apply_option(
    options: &mut QueryOptions,
    seen: &mut Vec<OptionName>,
    option: OptionName,
    value: &str,
    expand_depth: usize,
) -> Result<(), ODataError> {
    if seen.contains(&option) {
        return Err(ODataError::DuplicateOption(option.as_str().to_owned()));
    }
    seen.push(option);
    match option {
        OptionName::Select => options.select = Some(parse_select(value)?),
        OptionName::Filter => options.filter = Some(parse_filter(value)?),
        OptionName::OrderBy => options.orderby = parse_orderby(value)?,
        OptionName::Top => {
            options.top = Some(parse_non_negative(value).ok_or_else(|| ODataError::InvalidTop(value.into()))?)
        }
        OptionName::Skip => {
            options.skip = Some(parse_non_negative(value).ok_or_else(|| ODataError::InvalidSkip(value.into()))?)
        }
        OptionName::Count => {
            options.count = match value.trim().to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => return Err(ODataError::InvalidCount(value.into())),
            }
        }
        OptionName::Expand => options.expand = parse_expand(value, expand_depth)?,
        OptionName::Search => options.search = Some(value.to_owned()),
        OptionName::SkipToken => options.skiptoken = Some(value.to_owned()),
    }
    Ok(())
}

fn parse_non_negative(value: &str) -> Option<u64> {
    let value = value.trim();
    // u64::from_str would also take a leading '+'.
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

fn is_property_path(path: &str) -> bool {
    !path.is_empty()
        && path.split('/').all(|segment| {
            segment
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        })
}

fn parse_select(value: &str) -> Result<Vec<String>, ODataError> {
    let mut out: Vec<String> = Vec::new();
    for item in value.split(',').map(str::trim) {
        if item != "*" && !is_property_path(item) {
            return Err(ODataError::InvalidOption {
                option: "$select",
                detail: if item.is_empty() {
                    "empty property name".to_owned()
                } else {
                    format!("'{item}' is not a valid property name")
                },
            });
        }
        if !out.iter().any(|seen| seen.eq_ignore_ascii_case(item)) {
            out.push(item.to_owned());
        }
    }
    Ok(out)
}

fn parse_orderby(value: &str) -> Result<Vec<OrderBy>, ODataError> {
    let invalid = |detail: String| ODataError::InvalidOption {
        option: "$orderby",
        detail,
    };
    let mut out = Vec::new();
    for item in value.split(',') {
        let mut words = item.split_whitespace();
        let Some(property) = words.next() else {
            return Err(invalid("empty property name".to_owned()));
        };
        if !is_property_path(property) {
            return Err(invalid(format!("'{property}' is not a valid property name")));
        }
        let descending = match words.next() {
            None => false,
            Some(dir) if dir.eq_ignore_ascii_case("asc") => false,
            Some(dir) if dir.eq_ignore_ascii_case("desc") => true,
            Some(other) => {
                return Err(invalid(format!(
                    "expected 'asc' or 'desc' after '{property}' but found '{other}'"
                )))
            }
        };
        if let Some(extra) = words.next() {
            return Err(invalid(format!("unexpected '{extra}' after '{}'", item.trim())));
        }
        out.push(OrderBy {
            property: property.to_owned(),
            descending,
        });
    }
    Ok(out)
}

/// Splits on `sep` where it is outside parentheses and quoted strings, so that nested
/// `$expand` options and `$filter` literals containing `,` or `;` stay whole.
fn split_top_level(text: &str, sep: char) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match quote {
            // A doubled quote ('') closes and immediately reopens, which is what we want.
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' => quote = Some(c),
                '(' => depth += 1,
                ')' => {
                    depth = depth
                        .checked_sub(1)
                        .ok_or_else(|| format!("unbalanced ')' at position {i}"))?
                }
                _ if c == sep && depth == 0 => {
                    parts.push(&text[start..i]);
                    start = i + c.len_utf8();
                }
                _ => {}
            },
        }
    }
    if quote.is_some() {
        return Err("unterminated quoted string".to_owned());
    }
    if depth != 0 {
        return Err("missing ')'".to_owned());
    }
    parts.push(&text[start..]);
    Ok(parts)
}

fn parse_expand(value: &str, depth: usize) -> Result<Vec<Expand>, ODataError> {
    let invalid = |detail: String| ODataError::InvalidOption {
        option: "$expand",
        detail,
    };
    if depth >= MAX_EXPAND_DEPTH {
        return Err(invalid(format!(
            "$expand is nested more than {MAX_EXPAND_DEPTH} levels deep"
        )));
    }
    let mut out = Vec::new();
    for item in split_top_level(value, ',').map_err(invalid)? {
        let item = item.trim();
        let (property, inner) = match item.find('(') {
            Some(open) => {
                let Some(inner) = item[open + 1..].strip_suffix(')') else {
                    return Err(invalid(format!("unexpected text after ')' in '{item}'")));
                };
                (item[..open].trim(), Some(inner))
            }
            None => (item, None),
        };
        if property != "*" && !is_property_path(property) {
            return Err(invalid(if property.is_empty() {
                "empty property name".to_owned()
            } else {
                format!("'{property}' is not a valid property name")
            }));
        }
        let mut options = QueryOptions::default();
        if let Some(inner) = inner {
            let mut seen = Vec::new();
            for part in split_top_level(inner, ';').map_err(invalid)? {
                let part = part.trim();
                if part.is_empty() {
                    continue;
                }
                let (name, value) = part.split_once('=').unwrap_or((part, ""));
                let name = name.trim();
                // Inside $expand there are no client parameters to tolerate.
                let Some(option) = OptionName::classify(name)? else {
                    return Err(ODataError::UnsupportedOption(name.to_owned()));
                };
                apply_option(&mut options, &mut seen, option, value.trim(), depth + 1)?;
            }
        }
        out.push(Expand {
            property: property.to_owned(),
            options,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// $filter lexer
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Comma,
    /// Identifier, keyword or property path (`settings/secureByDefault`).
    Word(String),
    Str(String),
    Int(i64),
    Float(f64),
    Guid(String),
    DateTime(DateTime<Utc>),
    /// `prefix'value'`, e.g. `guid'…'` or `microsoft.graph.complianceState'compliant'`.
    Typed(String, String),
    End,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// Character offsets into the clause.
    pos: usize,
    end: usize,
}

struct SyntaxError {
    pos: usize,
    detail: String,
}

impl SyntaxError {
    fn new(pos: usize, detail: impl Into<String>) -> Self {
        SyntaxError {
            pos,
            detail: detail.into(),
        }
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '/'
}

struct Lexer<'a> {
    src: &'a [char],
    pos: usize,
}

impl Lexer<'_> {
    fn at(&self, i: usize) -> Option<char> {
        self.src.get(i).copied()
    }

    fn next_token(&mut self) -> Result<Token, SyntaxError> {
        while self.at(self.pos).is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
        let start = self.pos;
        let Some(c) = self.at(start) else {
            return Ok(Token {
                tok: Tok::End,
                pos: start,
                end: start,
            });
        };
        let tok = match c {
            '(' | ')' | ',' => {
                self.pos += 1;
                match c {
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    _ => Tok::Comma,
                }
            }
            '\'' => Tok::Str(self.string()?),
            _ if c.is_ascii_digit() || (c == '-' && self.at(start + 1).is_some_and(|d| d.is_ascii_digit())) => {
                if let Some(guid) = self.guid() {
                    Tok::Guid(guid)
                } else if let Some(datetime) = self.datetime()? {
                    Tok::DateTime(datetime)
                } else {
                    self.number()?
                }
            }
            _ if c.is_ascii_alphabetic() || c == '_' => {
                // A GUID may start with a hex letter, so it must be tried before identifiers.
                if let Some(guid) = self.guid() {
                    Tok::Guid(guid)
                } else {
                    while self.at(self.pos).is_some_and(is_word_char) {
                        self.pos += 1;
                    }
                    let word: String = self.src[start..self.pos].iter().collect();
                    // `x eq'a'` is an operator before a string, not a typed literal.
                    if self.at(self.pos) == Some('\'') && !is_operator_keyword(&word) {
                        Tok::Typed(word, self.string()?)
                    } else {
                        Tok::Word(word)
                    }
                }
            }
            _ => return Err(SyntaxError::new(start, format!("unexpected character '{c}'"))),
        };
        Ok(Token {
            tok,
            pos: start,
            end: self.pos,
        })
    }

    /// At an opening quote; `''` inside is an escaped quote.
    fn string(&mut self) -> Result<String, SyntaxError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.at(self.pos) {
                None => return Err(SyntaxError::new(start, "unterminated string literal")),
                Some('\'') if self.at(self.pos + 1) == Some('\'') => {
                    out.push('\'');
                    self.pos += 2;
                }
                Some('\'') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn guid(&mut self) -> Option<String> {
        let candidate = self.src.get(self.pos..self.pos + 36)?;
        if !is_guid_chars(candidate) || self.at(self.pos + 36).is_some_and(|c| is_word_char(c) || c == '-') {
            return None;
        }
        self.pos += 36;
        Some(candidate.iter().collect::<String>().to_ascii_lowercase())
    }

    /// `Ok(None)` when the text does not start like a date; an error when it does but is not
    /// a valid DateTimeOffset.
    fn datetime(&mut self) -> Result<Option<DateTime<Utc>>, SyntaxError> {
        let p = self.pos;
        let looks_like_date = (0..10).all(|i| match i {
            4 | 7 => self.at(p + i) == Some('-'),
            _ => self.at(p + i).is_some_and(|c| c.is_ascii_digit()),
        });
        if !looks_like_date {
            return Ok(None);
        }
        let mut end = p;
        while self
            .at(end)
            .is_some_and(|c| c.is_ascii_digit() || "TtZz:.+-".contains(c))
        {
            end += 1;
        }
        let text: String = self.src[p..end].iter().collect();
        match parse_datetime(&text, false) {
            Some(datetime) => {
                self.pos = end;
                Ok(Some(datetime))
            }
            None => {
                // The classic mistake: an unencoded '+' in the URL arrives as a space.
                let lost_plus = self.at(end) == Some(' ') && self.at(end + 1).is_some_and(|c| c.is_ascii_digit());
                let hint = if lost_plus {
                    " (a '+' in a URL must be percent-encoded as %2B)"
                } else {
                    ""
                };
                Err(SyntaxError::new(
                    p,
                    format!("invalid DateTimeOffset literal '{text}'{hint}"),
                ))
            }
        }
    }

    fn number(&mut self) -> Result<Tok, SyntaxError> {
        let start = self.pos;
        let digits_from = |lexer: &Self, mut i: usize| {
            while lexer.at(i).is_some_and(|c| c.is_ascii_digit()) {
                i += 1;
            }
            i
        };
        let mut i = start;
        if self.at(i) == Some('-') {
            i += 1;
        }
        i = digits_from(self, i);
        let mut is_float = false;
        if self.at(i) == Some('.') && self.at(i + 1).is_some_and(|c| c.is_ascii_digit()) {
            is_float = true;
            i = digits_from(self, i + 1);
        }
        if matches!(self.at(i), Some('e' | 'E')) {
            let mut j = i + 1;
            if matches!(self.at(j), Some('+' | '-')) {
                j += 1;
            }
            if self.at(j).is_some_and(|c| c.is_ascii_digit()) {
                is_float = true;
                i = digits_from(self, j);
            }
        }
        let text: String = self.src[start..i].iter().collect();
        if self.at(i).is_some_and(is_word_char) {
            let mut end = i;
            while self.at(end).is_some_and(|c| is_word_char(c) || c == '-') {
                end += 1;
            }
            let whole: String = self.src[start..end].iter().collect();
            return Err(SyntaxError::new(start, format!("invalid literal '{whole}'")));
        }
        self.pos = i;
        if is_float {
            match text.parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(Tok::Float(f)),
                _ => Err(SyntaxError::new(start, format!("number '{text}' is out of range"))),
            }
        } else {
            text.parse::<i64>()
                .map(Tok::Int)
                .map_err(|_| SyntaxError::new(start, format!("integer '{text}' is out of range")))
        }
    }
}

fn is_guid_chars(chars: &[char]) -> bool {
    chars.len() == 36
        && chars.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// RFC 3339 with an offset (seconds optional, as OData allows), or a bare date (midnight
/// UTC). `offset_optional` is for the legacy `datetime'…'` form, which had no offset.
fn parse_datetime(text: &str, offset_optional: bool) -> Option<DateTime<Utc>> {
    if let Ok(datetime) = DateTime::parse_from_rfc3339(text) {
        return Some(datetime.with_timezone(&Utc));
    }
    let with_offset = match text.strip_suffix(['Z', 'z']) {
        Some(rest) => format!("{rest}+00:00"),
        None => text.to_owned(),
    };
    if let Ok(datetime) = DateTime::parse_from_str(&with_offset, "%Y-%m-%dT%H:%M%:z") {
        return Some(datetime.with_timezone(&Utc));
    }
    if offset_optional {
        for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
            if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
                return Some(naive.and_utc());
            }
        }
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc())
}

// ---------------------------------------------------------------------------------------------
// $filter parser
// ---------------------------------------------------------------------------------------------

/// Operators that are valid OData but that this emulator does not implement; naming them
/// beats a generic syntax error.
const UNSUPPORTED_OPERATORS: &[&str] = &["has", "add", "sub", "mul", "div", "divby", "mod"];
const LOGICAL_KEYWORDS: &[&str] = &["and", "or", "not", "in"];

fn is_literal_keyword(word: &str) -> bool {
    ["true", "false", "null"].iter().any(|k| k.eq_ignore_ascii_case(word))
}

fn is_operator_keyword(word: &str) -> bool {
    CmpOp::from_keyword(word).is_some()
        || UNSUPPORTED_OPERATORS
            .iter()
            .chain(LOGICAL_KEYWORDS)
            .any(|k| k.eq_ignore_ascii_case(word))
}

/// Parses a decoded `$filter` clause.
pub fn parse_filter(text: &str) -> Result<Expr, ODataError> {
    let length = text.chars().count();
    if length > MAX_FILTER_LENGTH {
        return Err(ODataError::FilterTooLong {
            length,
            max: MAX_FILTER_LENGTH,
        });
    }
    let chars: Vec<char> = text.chars().collect();
    let parse = || -> Result<Expr, SyntaxError> {
        let mut parser = Parser::new(&chars)?;
        let expr = parser.or_expr(0)?;
        if parser.cur.tok != Tok::End {
            return Err(SyntaxError::new(
                parser.cur.pos,
                format!("unexpected '{}'", parser.token_text(&parser.cur)),
            ));
        }
        Ok(expr)
    };
    parse().map_err(|e| ODataError::InvalidFilter {
        detail: e.detail,
        position: e.pos,
        clause: text.to_owned(),
    })
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    cur: Token,
}

impl<'a> Parser<'a> {
    fn new(src: &'a [char]) -> Result<Self, SyntaxError> {
        let mut lexer = Lexer { src, pos: 0 };
        let cur = lexer.next_token()?;
        Ok(Parser { lexer, cur })
    }

    /// Returns the token that was current. Lexing is lazy so that errors come out in
    /// source order (e.g. `any(d: …)` is reported as a lambda, not as a bad ':').
    fn advance(&mut self) -> Result<Token, SyntaxError> {
        let next = self.lexer.next_token()?;
        Ok(std::mem::replace(&mut self.cur, next))
    }

    fn token_text(&self, token: &Token) -> String {
        self.lexer.src[token.pos..token.end].iter().collect()
    }

    fn at_keyword(&self, keyword: &str) -> bool {
        matches!(&self.cur.tok, Tok::Word(w) if w.eq_ignore_ascii_case(keyword))
    }

    fn expected<T>(&self, what: &str) -> Result<T, SyntaxError> {
        let detail = if self.cur.tok == Tok::End {
            format!("expected {what}")
        } else {
            format!("expected {what} but found '{}'", self.token_text(&self.cur))
        };
        Err(SyntaxError::new(self.cur.pos, detail))
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<(), SyntaxError> {
        if self.cur.tok == tok {
            self.advance()?;
            Ok(())
        } else {
            self.expected(what)
        }
    }

    fn check_depth(&self, depth: usize) -> Result<(), SyntaxError> {
        if depth > MAX_FILTER_DEPTH {
            return Err(SyntaxError::new(
                self.cur.pos,
                format!("expressions nested more than {MAX_FILTER_DEPTH} levels deep are not supported"),
            ));
        }
        Ok(())
    }

    fn or_expr(&mut self, depth: usize) -> Result<Expr, SyntaxError> {
        let mut left = self.and_expr(depth)?;
        while self.at_keyword("or") {
            self.advance()?;
            let right = self.and_expr(depth)?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self, depth: usize) -> Result<Expr, SyntaxError> {
        let mut left = self.unary(depth)?;
        while self.at_keyword("and") {
            self.advance()?;
            let right = self.unary(depth)?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self, depth: usize) -> Result<Expr, SyntaxError> {
        if self.at_keyword("not") {
            self.check_depth(depth + 1)?;
            self.advance()?;
            return Ok(Expr::Not(Box::new(self.unary(depth + 1)?)));
        }
        self.primary(depth)
    }

    fn primary(&mut self, depth: usize) -> Result<Expr, SyntaxError> {
        match &self.cur.tok {
            Tok::LParen => {
                self.check_depth(depth + 1)?;
                self.advance()?;
                let expr = self.or_expr(depth + 1)?;
                self.expect(Tok::RParen, "')'")?;
                Ok(expr)
            }
            Tok::Word(word) if is_literal_keyword(word) => self.literal_first(),
            Tok::Word(word) if is_operator_keyword(word) => self.expected("an expression"),
            Tok::Word(_) => {
                let token = self.advance()?;
                let Tok::Word(word) = &token.tok else {
                    unreachable!("matched a word above");
                };
                if self.cur.tok == Tok::LParen {
                    self.function(word, &token)
                } else {
                    self.property_comparison(word, &token)
                }
            }
            Tok::Str(_) | Tok::Int(_) | Tok::Float(_) | Tok::Guid(_) | Tok::DateTime(_) | Tok::Typed(..) => {
                self.literal_first()
            }
            Tok::RParen | Tok::Comma | Tok::End => self.expected("an expression"),
        }
    }

    fn property_path(&self, word: &str, token: &Token) -> Result<String, SyntaxError> {
        if is_property_path(word) {
            Ok(word.to_owned())
        } else {
            Err(SyntaxError::new(
                token.pos,
                format!("'{word}' is not a valid property path"),
            ))
        }
    }

    /// The current token must be a property name; it is consumed.
    fn expect_property(&mut self) -> Result<String, SyntaxError> {
        match &self.cur.tok {
            Tok::Word(word) if !is_literal_keyword(word) && !is_operator_keyword(word) => {
                let token = self.advance()?;
                let Tok::Word(word) = &token.tok else {
                    unreachable!("matched a word above");
                };
                if self.cur.tok == Tok::LParen {
                    return Err(SyntaxError::new(
                        token.pos,
                        format!("expected a property name but found function '{word}'"),
                    ));
                }
                self.property_path(word, &token)
            }
            _ => self.expected("a property name"),
        }
    }

    fn property_comparison(&mut self, word: &str, token: &Token) -> Result<Expr, SyntaxError> {
        let property = self.property_path(word, token)?;
        let Tok::Word(op_word) = &self.cur.tok else {
            return self.expected(&format!("a comparison operator after '{property}'"));
        };
        if let Some(op) = CmpOp::from_keyword(op_word) {
            self.advance()?;
            let value = self.literal()?;
            return Ok(Expr::Compare { property, op, value });
        }
        if op_word.eq_ignore_ascii_case("in") {
            self.advance()?;
            return self.in_list(property);
        }
        if let Some(unsupported) = UNSUPPORTED_OPERATORS.iter().find(|k| k.eq_ignore_ascii_case(op_word)) {
            return Err(SyntaxError::new(
                self.cur.pos,
                format!("the '{unsupported}' operator is not supported"),
            ));
        }
        self.expected(&format!("a comparison operator after '{property}'"))
    }

    fn in_list(&mut self, property: String) -> Result<Expr, SyntaxError> {
        self.expect(Tok::LParen, "'(' after 'in'")?;
        if self.cur.tok == Tok::RParen {
            return Err(SyntaxError::new(
                self.cur.pos,
                "the list of values after 'in' must not be empty",
            ));
        }
        let mut values = vec![self.literal()?];
        loop {
            match self.cur.tok {
                Tok::Comma => {
                    self.advance()?;
                    values.push(self.literal()?);
                }
                Tok::RParen => {
                    self.advance()?;
                    return Ok(Expr::In { property, values });
                }
                _ => return self.expected("',' or ')'"),
            }
        }
    }

    /// `literal op property`, turned around so the property is on the left.
    fn literal_first(&mut self) -> Result<Expr, SyntaxError> {
        let value = self.literal()?;
        let op = match &self.cur.tok {
            Tok::Word(word) => CmpOp::from_keyword(word),
            _ => None,
        };
        let Some(op) = op else {
            return self.expected("a comparison operator");
        };
        self.advance()?;
        let property = self.expect_property()?;
        Ok(Expr::Compare {
            property,
            op: op.flipped(),
            value,
        })
    }

    /// The current token is the '(' after `name`.
    fn function(&mut self, name: &str, token: &Token) -> Result<Expr, SyntaxError> {
        let func = match name.to_ascii_lowercase().as_str() {
            "startswith" => StrFunc::StartsWith,
            "endswith" => StrFunc::EndsWith,
            "contains" => StrFunc::Contains,
            lower => {
                let last = lower.rsplit('/').next().unwrap_or(lower);
                let detail = if last == "any" || last == "all" {
                    format!("the lambda operator '{last}' is not supported")
                } else {
                    format!("the function '{name}' is not supported")
                };
                return Err(SyntaxError::new(token.pos, detail));
            }
        };
        self.advance()?;
        let property = self.expect_property()?;
        self.expect(Tok::Comma, "','")?;
        let value = self.literal()?;
        self.expect(Tok::RParen, "')'")?;
        let expr = Expr::Func { func, property, value };
        let op = match &self.cur.tok {
            Tok::Word(word) => CmpOp::from_keyword(word),
            _ => None,
        };
        let Some(op) = op else {
            return Ok(expr);
        };
        let op_token = self.advance()?;
        let positive = match (op, self.literal()?) {
            (CmpOp::Eq, Literal::Bool(b)) => b,
            (CmpOp::Ne, Literal::Bool(b)) => !b,
            _ => {
                let name = func.name();
                let detail = format!("the result of '{name}' can only be compared with 'eq' or 'ne' to true or false");
                return Err(SyntaxError::new(op_token.pos, detail));
            }
        };
        Ok(if positive { expr } else { Expr::Not(Box::new(expr)) })
    }

    /// The current token must be a literal; it is consumed.
    fn literal(&mut self) -> Result<Literal, SyntaxError> {
        let value = match &self.cur.tok {
            Tok::Str(s) => Literal::String(s.clone()),
            Tok::Int(i) => Literal::Int(*i),
            Tok::Float(f) => Literal::Float(*f),
            Tok::Guid(g) => Literal::Guid(g.clone()),
            Tok::DateTime(d) => Literal::DateTime(*d),
            Tok::Typed(prefix, value) => typed_literal(prefix, value, self.cur.pos)?,
            Tok::Word(w) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Tok::Word(w) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
            Tok::Word(w) if w.eq_ignore_ascii_case("null") => Literal::Null,
            _ => return self.expected("a literal value"),
        };
        self.advance()?;
        Ok(value)
    }
}

fn typed_literal(prefix: &str, value: &str, pos: usize) -> Result<Literal, SyntaxError> {
    let lower = prefix.to_ascii_lowercase();
    match lower.as_str() {
        "guid" => {
            let chars: Vec<char> = value.chars().collect();
            if is_guid_chars(&chars) {
                Ok(Literal::Guid(value.to_ascii_lowercase()))
            } else {
                Err(SyntaxError::new(pos, format!("invalid GUID literal '{value}'")))
            }
        }
        "datetime" | "datetimeoffset" => parse_datetime(value, lower == "datetime")
            .map(Literal::DateTime)
            .ok_or_else(|| SyntaxError::new(pos, format!("invalid DateTimeOffset literal '{value}'"))),
        // A qualified enum type name, e.g. microsoft.graph.complianceState'compliant'; the
        // member is checked against the property's enum when translating.
        _ if prefix.contains('.') => Ok(Literal::String(value.to_owned())),
        _ => Err(SyntaxError::new(
            pos,
            format!("literals of type '{prefix}' are not supported"),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// SQL translation
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    Text,
    Int,
    Bool,
    Timestamp,
    Float,
    /// Members in camelCase, in the order of their underlying values (used for `gt`/`lt`).
    Enum(&'static [&'static str]),
}

#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// OData property name or path (`settings/secureByDefault`), matched case-insensitively.
    pub property: &'static str,
    /// SQL expression, e.g. `device_name` or `d.os_version`.
    pub sql: &'static str,
    pub ty: ColType,
    pub filterable: bool,
    pub sortable: bool,
    /// For Text/Enum: compare ASCII case-insensitively.
    pub case_insensitive: bool,
}

impl Column {
    fn is_textual(&self) -> bool {
        matches!(self.ty, ColType::Text | ColType::Enum(_))
    }

    fn folds_case(&self) -> bool {
        self.case_insensitive && self.is_textual()
    }

    fn edm_type(&self) -> String {
        match self.ty {
            ColType::Text => "Edm.String".to_owned(),
            ColType::Int => "Edm.Int32".to_owned(),
            ColType::Bool => "Edm.Boolean".to_owned(),
            ColType::Timestamp => "Edm.DateTimeOffset".to_owned(),
            ColType::Float => "Edm.Double".to_owned(),
            ColType::Enum(_) => format!("microsoft.graph.{}", self.enum_name()),
        }
    }

    /// Graph names most enum types after the property that holds them.
    fn enum_name(&self) -> &'static str {
        self.property.rsplit('/').next().unwrap_or(self.property)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Entity {
    /// e.g. `microsoft.graph.managedDevice`.
    pub type_name: &'static str,
    pub columns: &'static [Column],
    /// Properties that exist on the type but have no column (selectable only). They get the
    /// "cannot be used in the $filter query option" error rather than "could not find".
    pub known_properties: &'static [&'static str],
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SqlFragment {
    pub sql: String,
    /// `binds[i]` belongs to placeholder `$(first_placeholder + i)`.
    pub binds: Vec<SqlValue>,
}

/// Builds a WHERE-clause fragment (without the word WHERE) for `expr`. Placeholders are `$N`,
/// numbered from `first_placeholder` (which must be at least 1), so callers can put their own
/// `$1 = tenant_id` first. sqlx accepts `$N` for SQLite as well as PostgreSQL.
///
/// The result means the same on both dialects, NULLs and letter case included: text is
/// folded ASCII-only, case-sensitive matching stays case-sensitive on SQLite, and
/// comparisons follow OData's null rules (`x ne 'a'` matches a null x).
pub fn filter_sql(
    expr: &Expr,
    entity: &Entity,
    dialect: Dialect,
    first_placeholder: usize,
) -> Result<SqlFragment, ODataError> {
    debug_assert!(first_placeholder >= 1, "SQL placeholders start at $1");
    let mut builder = SqlBuilder {
        dialect,
        entity,
        next: first_placeholder.max(1),
        binds: Vec::new(),
    };
    let sql = builder.expr(expr, false)?;
    Ok(SqlFragment {
        sql: sql.text,
        binds: builder.binds,
    })
}

/// Builds an ORDER BY list (without the words ORDER BY), e.g.
/// `device_name DESC NULLS LAST, id ASC NULLS FIRST`. Callers append a unique tie-breaker.
///
/// NULL placement is spelled out because the backends' defaults differ (SQLite puts NULLs
/// first when ascending, PostgreSQL last); OData sorts null before any value. Case-insensitive
/// text columns sort by `lower(col)`; enum columns sort by declaration order, as OData orders
/// enums by their underlying value.
///
/// Without a dialect, text on PostgreSQL sorts by the database's collation and `lower()`
/// follows its locale, so the order matches SQLite's only for a database created with the
/// C collation; [`orderby_sql_for`] does not have that caveat.
pub fn orderby_sql(orderby: &[OrderBy], entity: &Entity) -> Result<String, ODataError> {
    orderby_list(orderby, entity, None)
}

/// Like [`orderby_sql`], but text sorts identically on both dialects: by code point, with
/// ASCII-only case folding for case-insensitive columns (`COLLATE "C"` on PostgreSQL).
pub fn orderby_sql_for(orderby: &[OrderBy], entity: &Entity, dialect: Dialect) -> Result<String, ODataError> {
    orderby_list(orderby, entity, Some(dialect))
}

fn orderby_list(orderby: &[OrderBy], entity: &Entity, dialect: Option<Dialect>) -> Result<String, ODataError> {
    let mut parts = Vec::with_capacity(orderby.len());
    for item in orderby {
        let column = find_column(entity, &item.property, "$orderby")?;
        if !column.sortable {
            return Err(ODataError::PropertyNotAllowed {
                property: item.property.clone(),
                option: "$orderby",
            });
        }
        let direction = if item.descending {
            "DESC NULLS LAST"
        } else {
            "ASC NULLS FIRST"
        };
        parts.push(format!("{} {direction}", sort_key(column, dialect)));
    }
    Ok(parts.join(", "))
}

fn sort_key(column: &Column, dialect: Option<Dialect>) -> String {
    let target = atom(column.sql);
    let collated = match dialect {
        Some(Dialect::Postgres) if column.is_textual() => format!("{target} COLLATE \"C\""),
        _ => target.into_owned(),
    };
    let folded = if column.folds_case() {
        format!("lower({collated})")
    } else {
        collated
    };
    let ColType::Enum(members) = column.ty else {
        return folded;
    };
    // Members are declared in code, not sent by the client, so writing them into the SQL
    // does not open an injection path; quotes are doubled all the same. Unknown stored
    // values map to NULL and sort with the nulls.
    let mut key = format!("CASE {folded}");
    for (index, member) in members.iter().enumerate() {
        let member = if column.case_insensitive {
            member.to_ascii_lowercase()
        } else {
            (*member).to_owned()
        };
        key.push_str(&format!(" WHEN '{}' THEN {index}", member.replace('\'', "''")));
    }
    key.push_str(" END");
    key
}

/// Validates a `$select` list against the entity (column properties and known properties;
/// `*` is allowed) and returns the declared spelling of each, without duplicates.
pub fn validate_select(select: &[String], entity: &Entity) -> Result<Vec<&'static str>, ODataError> {
    let mut out: Vec<&'static str> = Vec::with_capacity(select.len());
    for item in select {
        let canonical = if item == "*" {
            "*"
        } else if let Some(column) = entity.columns.iter().find(|c| c.property.eq_ignore_ascii_case(item)) {
            column.property
        } else if let Some(known) = entity.known_properties.iter().find(|k| k.eq_ignore_ascii_case(item)) {
            known
        } else {
            return Err(unknown_property(entity, item));
        };
        if !out.contains(&canonical) {
            out.push(canonical);
        }
    }
    Ok(out)
}

fn unknown_property(entity: &Entity, property: &str) -> ODataError {
    ODataError::UnknownProperty {
        property: property.to_owned(),
        type_name: entity.type_name.to_owned(),
    }
}

fn find_column(entity: &Entity, property: &str, option: &'static str) -> Result<&'static Column, ODataError> {
    if let Some(column) = entity
        .columns
        .iter()
        .find(|c| c.property.eq_ignore_ascii_case(property))
    {
        return Ok(column);
    }
    if entity.known_properties.iter().any(|k| k.eq_ignore_ascii_case(property)) {
        return Err(ODataError::PropertyNotAllowed {
            property: property.to_owned(),
            option,
        });
    }
    Err(unknown_property(entity, property))
}

/// Parenthesizes a column expression unless it is a plain (qualified) identifier, so that
/// appending `COLLATE`, `IS NULL` or an operator cannot change how it parses.
fn atom(sql: &str) -> Cow<'_, str> {
    if sql
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '"')
    {
        Cow::Borrowed(sql)
    } else {
        Cow::Owned(format!("({sql})"))
    }
}

fn escape_like(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// GLOB has no escape character; a one-character class matches a metacharacter literally.
fn escape_glob(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' => out.push_str("[*]"),
            '?' => out.push_str("[?]"),
            '[' => out.push_str("[[]"),
            _ => out.push(c),
        }
    }
    out
}

const SQL_FALSE: &str = "1 = 0";

/// A translated predicate, and whether it is already enclosed in parentheses (so NOT can
/// avoid doubling them).
struct Sql {
    text: String,
    enclosed: bool,
}

impl Sql {
    fn bare(text: String) -> Sql {
        Sql { text, enclosed: false }
    }

    fn enclose(text: String) -> Sql {
        Sql {
            text: format!("({text})"),
            enclosed: true,
        }
    }

    fn always_false() -> Sql {
        Sql::bare(SQL_FALSE.to_owned())
    }
}

struct SqlBuilder<'e> {
    dialect: Dialect,
    entity: &'e Entity,
    next: usize,
    binds: Vec<SqlValue>,
}

impl SqlBuilder<'_> {
    fn bind(&mut self, value: SqlValue) -> String {
        let placeholder = format!("${}", self.next);
        self.next += 1;
        self.binds.push(value);
        placeholder
    }

    /// Binds every value and returns the comma-separated placeholders.
    fn bind_list(&mut self, values: Vec<SqlValue>) -> String {
        values.into_iter().map(|v| self.bind(v)).collect::<Vec<_>>().join(", ")
    }

    fn filter_column(&self, property: &str) -> Result<&'static Column, ODataError> {
        let column = find_column(self.entity, property, "$filter")?;
        if !column.filterable {
            return Err(ODataError::PropertyNotAllowed {
                property: property.to_owned(),
                option: "$filter",
            });
        }
        Ok(column)
    }

    /// The left-hand side for comparing a column.
    ///
    /// Case folding is ASCII-only on both backends: SQLite's built-in lower() folds only
    /// ASCII, and PostgreSQL's lower() does the same under the "C" collation, whereas under
    /// the database's default collation it would also fold other letters. The bound values
    /// are lower-cased with `to_ascii_lowercase` to match. Ordering comparisons on text use
    /// "C" on PostgreSQL for the same reason: it orders by code point, as SQLite's BINARY
    /// collation does, instead of by the locale.
    fn lhs(&self, column: &Column, ordering: bool) -> String {
        let target = atom(column.sql);
        match (self.dialect, column.folds_case()) {
            (Dialect::Sqlite, true) => format!("lower({target})"),
            (Dialect::Postgres, true) => format!("lower({target} COLLATE \"C\")"),
            (Dialect::Postgres, false) if ordering && column.is_textual() => {
                format!("{target} COLLATE \"C\"")
            }
            _ => target.into_owned(),
        }
    }

    fn fold(column: &Column, value: SqlValue) -> SqlValue {
        match value {
            SqlValue::Text(s) if column.folds_case() => SqlValue::Text(s.to_ascii_lowercase()),
            other => other,
        }
    }

    /// `in_not` is true below any NOT. SQL comparisons are three-valued (NULL when the column
    /// is NULL) while OData's are two-valued (`null eq 'a'` is false), so under NOT a
    /// comparison must be guarded with IS NOT NULL or `not (x eq 'a')` would drop rows where
    /// x is null. Outside NOT the guard is unnecessary: WHERE treats NULL as false and AND/OR
    /// are monotone. String functions are left three-valued, as OData defines them to return
    /// null for a null argument.
    fn expr(&mut self, expr: &Expr, in_not: bool) -> Result<Sql, ODataError> {
        match expr {
            Expr::And(left, right) => {
                let left = self.expr(left, in_not)?.text;
                let right = self.expr(right, in_not)?.text;
                Ok(Sql::enclose(format!("{left} AND {right}")))
            }
            Expr::Or(left, right) => {
                let left = self.expr(left, in_not)?.text;
                let right = self.expr(right, in_not)?.text;
                Ok(Sql::enclose(format!("{left} OR {right}")))
            }
            Expr::Not(inner) => {
                let inner = self.expr(inner, true)?;
                Ok(Sql::enclose(if inner.enclosed {
                    format!("NOT {}", inner.text)
                } else {
                    format!("NOT ({})", inner.text)
                }))
            }
            Expr::Compare { property, op, value } => self.compare(property, *op, value, in_not),
            Expr::In { property, values } => self.in_list(property, values, in_not),
            Expr::Func { func, property, value } => self.function(*func, property, value),
        }
    }

    fn compare(&mut self, property: &str, op: CmpOp, value: &Literal, in_not: bool) -> Result<Sql, ODataError> {
        let column = self.filter_column(property)?;
        let target = atom(column.sql);
        if *value == Literal::Null {
            return Ok(match op {
                CmpOp::Eq => Sql::bare(format!("{target} IS NULL")),
                CmpOp::Ne => Sql::bare(format!("{target} IS NOT NULL")),
                // OData: an ordering comparison with null is false.
                _ => Sql::always_false(),
            });
        }
        let bound = coerce(column, value, op.kind_name())?;
        let ordering = !matches!(op, CmpOp::Eq | CmpOp::Ne);
        if let (ColType::Enum(members), true, SqlValue::Text(member)) = (column.ty, ordering, &bound) {
            // Enums order by underlying value, i.e. declaration order, not by name.
            let index = members
                .iter()
                .position(|m| m == member)
                .expect("coerce returns a declared member");
            let range = match op {
                CmpOp::Gt => &members[index + 1..],
                CmpOp::Ge => &members[index..],
                CmpOp::Lt => &members[..index],
                _ => &members[..=index],
            };
            if range.is_empty() {
                return Ok(Sql::always_false());
            }
            let values = range
                .iter()
                .map(|m| Self::fold(column, SqlValue::Text((*m).to_owned())))
                .collect();
            let lhs = self.lhs(column, false);
            let list = self.bind_list(values);
            return Ok(guard(&target, format!("{lhs} IN ({list})"), in_not));
        }
        let lhs = self.lhs(column, ordering);
        let placeholder = self.bind(Self::fold(column, bound));
        let comparison = format!("{lhs} {} {placeholder}", op.sql());
        Ok(if op == CmpOp::Ne {
            // OData: `x ne 'a'` is true when x is null.
            Sql::enclose(format!("{target} IS NULL OR {comparison}"))
        } else {
            guard(&target, comparison, in_not)
        })
    }

    fn in_list(&mut self, property: &str, values: &[Literal], in_not: bool) -> Result<Sql, ODataError> {
        let column = self.filter_column(property)?;
        let target = atom(column.sql);
        let mut has_null = false;
        let mut bound = Vec::with_capacity(values.len());
        for value in values {
            if *value == Literal::Null {
                has_null = true;
            } else {
                bound.push(Self::fold(column, coerce(column, value, "In")?));
            }
        }
        if bound.is_empty() {
            return Ok(Sql::bare(format!("{target} IS NULL")));
        }
        let lhs = self.lhs(column, false);
        let list = self.bind_list(bound);
        let membership = format!("{lhs} IN ({list})");
        // SQL's `x IN (…, NULL)` never matches a NULL x, so null is tested separately.
        Ok(if has_null {
            Sql::enclose(format!("{target} IS NULL OR {membership}"))
        } else {
            guard(&target, membership, in_not)
        })
    }

    /// startswith/endswith/contains. The pattern is built here with its metacharacters
    /// escaped, never by SQL concatenation.
    ///
    /// Case-insensitive columns use `lower(col) LIKE pattern ESCAPE '\'` with an ASCII
    /// lower-cased pattern on both backends. Case-sensitive columns use LIKE on PostgreSQL,
    /// where it is case-sensitive, and GLOB on SQLite, because SQLite's LIKE ignores ASCII
    /// case (unless a connection turned on `case_sensitive_like`) while GLOB never does.
    fn function(&mut self, func: StrFunc, property: &str, value: &Literal) -> Result<Sql, ODataError> {
        let column = self.filter_column(property)?;
        let text = match (column.ty, value) {
            (ColType::Text, Literal::String(s) | Literal::Guid(s)) => s,
            _ => {
                return Err(ODataError::FunctionArguments {
                    function: func.name().to_owned(),
                })
            }
        };
        let target = atom(column.sql);
        let (before, after) = match func {
            StrFunc::StartsWith => (false, true),
            StrFunc::EndsWith => (true, false),
            StrFunc::Contains => (true, true),
        };
        if self.dialect == Dialect::Sqlite && !column.case_insensitive {
            let pattern = format!(
                "{}{}{}",
                if before { "*" } else { "" },
                escape_glob(text),
                if after { "*" } else { "" }
            );
            let placeholder = self.bind(SqlValue::Text(pattern));
            return Ok(Sql::bare(format!("{target} GLOB {placeholder}")));
        }
        let text = if column.case_insensitive {
            text.to_ascii_lowercase()
        } else {
            text.clone()
        };
        let pattern = format!(
            "{}{}{}",
            if before { "%" } else { "" },
            escape_like(&text),
            if after { "%" } else { "" }
        );
        let lhs = self.lhs(column, false);
        let placeholder = self.bind(SqlValue::Text(pattern));
        Ok(Sql::bare(format!("{lhs} LIKE {placeholder} ESCAPE '\\'")))
    }
}

/// Makes a comparison two-valued when it sits below a NOT (see [`SqlBuilder::expr`]).
fn guard(target: &str, comparison: String, in_not: bool) -> Sql {
    if in_not {
        Sql::enclose(format!("{target} IS NOT NULL AND {comparison}"))
    } else {
        Sql::bare(comparison)
    }
}

/// Checks that a literal fits the column's type and converts it to what gets bound.
fn coerce(column: &Column, value: &Literal, operator: &str) -> Result<SqlValue, ODataError> {
    let mismatch = || ODataError::IncompatibleTypes {
        left: column.edm_type(),
        right: value.edm_type().to_owned(),
        operator: operator.to_owned(),
    };
    Ok(match (column.ty, value) {
        (ColType::Text, Literal::String(s) | Literal::Guid(s)) => SqlValue::Text(s.clone()),
        (ColType::Int, Literal::Int(i)) => SqlValue::Int(*i),
        // 2^63 is exactly representable, so the upper bound is exclusive and exact.
        (ColType::Int, Literal::Float(f)) if f.fract() == 0.0 && *f >= -(2f64.powi(63)) && *f < 2f64.powi(63) => {
            SqlValue::Int(*f as i64)
        }
        (ColType::Float, Literal::Int(i)) => SqlValue::Float(*i as f64),
        (ColType::Float, Literal::Float(f)) => SqlValue::Float(*f),
        (ColType::Bool, Literal::Bool(b)) => SqlValue::Bool(*b),
        (ColType::Timestamp, Literal::DateTime(d)) => SqlValue::Timestamp(*d),
        (ColType::Timestamp, Literal::String(s)) => SqlValue::Timestamp(parse_datetime(s, false).ok_or_else(mismatch)?),
        (ColType::Enum(members), Literal::String(s)) => {
            let member =
                members
                    .iter()
                    .find(|m| m.eq_ignore_ascii_case(s))
                    .ok_or_else(|| ODataError::InvalidEnumMember {
                        value: s.clone(),
                        enum_name: column.enum_name().to_owned(),
                    })?;
            SqlValue::Text((*member).to_owned())
        }
        _ => return Err(mismatch()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn cmp(property: &str, op: CmpOp, value: Literal) -> Expr {
        Expr::Compare {
            property: property.to_owned(),
            op,
            value,
        }
    }

    fn int(property: &str, value: i64) -> Expr {
        cmp(property, CmpOp::Eq, Literal::Int(value))
    }

    fn and(left: Expr, right: Expr) -> Expr {
        Expr::And(Box::new(left), Box::new(right))
    }

    fn or(left: Expr, right: Expr) -> Expr {
        Expr::Or(Box::new(left), Box::new(right))
    }

    fn not(inner: Expr) -> Expr {
        Expr::Not(Box::new(inner))
    }

    fn func(func: StrFunc, property: &str, value: &str) -> Expr {
        Expr::Func {
            func,
            property: property.to_owned(),
            value: Literal::String(value.to_owned()),
        }
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    fn filter_error(text: &str) -> (String, usize) {
        match parse_filter(text) {
            Err(ODataError::InvalidFilter {
                detail,
                position,
                clause,
            }) => {
                assert_eq!(clause, text);
                (detail, position)
            }
            other => panic!("expected InvalidFilter for {text:?}, got {other:?}"),
        }
    }

    // ---- parse_query -----------------------------------------------------------------------

    #[test]
    fn empty_query_gives_defaults() {
        assert_eq!(parse_query("").unwrap(), QueryOptions::default());
        assert_eq!(parse_query("?").unwrap(), QueryOptions::default());
    }

    #[test]
    fn plus_and_percent_decoding() {
        let q = parse_query("$filter=displayName+eq+'a%20b+c'&$search=x%2By").unwrap();
        assert_eq!(
            q.filter,
            Some(cmp("displayName", CmpOp::Eq, Literal::String("a b c".into())))
        );
        // %2B is a literal plus, decoded after '+' became a space.
        assert_eq!(q.search.as_deref(), Some("x+y"));
        let q = parse_query("%24top=3&$filter=name%20eq%20'%C3%A9t%C3%A9'").unwrap();
        assert_eq!(q.top, Some(3));
        assert_eq!(q.filter, Some(cmp("name", CmpOp::Eq, Literal::String("été".into()))));
    }

    #[test]
    fn invalid_utf8_is_rejected() {
        assert!(matches!(parse_query("$search=%FF"), Err(ODataError::MalformedQuery(_))));
    }

    #[test]
    fn select_is_split_trimmed_and_deduplicated() {
        let q = parse_query("$select=id,+deviceName+,ID,settings/secureByDefault,*").unwrap();
        assert_eq!(
            q.select,
            Some(vec![
                "id".to_owned(),
                "deviceName".to_owned(),
                "settings/secureByDefault".to_owned(),
                "*".to_owned()
            ])
        );
        for bad in ["$select=", "$select=a,,b", "$select=a b", "$select=a('x')"] {
            assert!(
                matches!(
                    parse_query(bad),
                    Err(ODataError::InvalidOption { option: "$select", .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn option_names_are_case_insensitive_and_dollar_is_optional() {
        let q = parse_query("TOP=5&$Skip=2&count=TRUE&$OrderBy=a+DESC,b&skipToken=abc").unwrap();
        assert_eq!(q.top, Some(5));
        assert_eq!(q.skip, Some(2));
        assert!(q.count);
        assert_eq!(
            q.orderby,
            vec![
                OrderBy {
                    property: "a".into(),
                    descending: true
                },
                OrderBy {
                    property: "b".into(),
                    descending: false
                }
            ]
        );
        assert_eq!(q.skiptoken.as_deref(), Some("abc"));
        assert!(!parse_query("$count=false").unwrap().count);
    }

    #[test]
    fn client_parameters_are_ignored() {
        let q = parse_query("api-version=2&foo=bar&@odata.x=1&flag&&$top=1").unwrap();
        assert_eq!(
            q,
            QueryOptions {
                top: Some(1),
                ..Default::default()
            }
        );
    }

    #[test]
    fn unknown_dollar_option_is_an_error() {
        let err = parse_query("$top=1&$Foo=2").unwrap_err();
        assert_eq!(err, ODataError::UnsupportedOption("$Foo".into()));
        assert_eq!(err.to_string(), "The query parameter '$Foo' is not supported.");
    }

    #[test]
    fn repeated_option_is_an_error() {
        for query in ["$top=1&$top=2", "$top=1&top=2", "$filter=a eq 1&$FILTER=a eq 1"] {
            let err = parse_query(query).unwrap_err();
            assert!(matches!(err, ODataError::DuplicateOption(_)), "{query}");
        }
        assert_eq!(
            parse_query("top=1&$TOP=1").unwrap_err().to_string(),
            "Query option '$top' was specified more than once, but it must be specified at most once."
        );
    }

    #[test]
    fn top_skip_count_values_are_validated() {
        let cases: &[(&str, ODataError)] = &[
            ("$top=abc", ODataError::InvalidTop("abc".into())),
            ("$top=-1", ODataError::InvalidTop("-1".into())),
            ("$top=%2B1", ODataError::InvalidTop("+1".into())),
            ("$top=", ODataError::InvalidTop("".into())),
            (
                "$top=99999999999999999999",
                ODataError::InvalidTop("99999999999999999999".into()),
            ),
            ("$skip=-1", ODataError::InvalidSkip("-1".into())),
            ("$skip=1.5", ODataError::InvalidSkip("1.5".into())),
            ("$count=yes", ODataError::InvalidCount("yes".into())),
        ];
        for (query, expected) in cases {
            assert_eq!(&parse_query(query).unwrap_err(), expected, "{query}");
        }
        assert_eq!(
            ODataError::InvalidSkip("-1".into()).to_string(),
            "Invalid $skip value '-1'. The value must be a non-negative integer."
        );
        assert_eq!(parse_query("$top=0&$skip=10").unwrap().skip, Some(10));
    }

    #[test]
    fn orderby_syntax_errors() {
        for bad in [
            "$orderby=",
            "$orderby=a,",
            "$orderby=a sideways",
            "$orderby=a desc b",
            "$orderby='a'",
        ] {
            assert!(
                matches!(
                    parse_query(bad),
                    Err(ODataError::InvalidOption { option: "$orderby", .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn expand_with_nested_options() {
        let q = parse_query("$expand=scheduledActionsForRule($expand=scheduledActionConfigurations)").unwrap();
        assert_eq!(
            q.expand,
            vec![Expand {
                property: "scheduledActionsForRule".into(),
                options: QueryOptions {
                    expand: vec![Expand {
                        property: "scheduledActionConfigurations".into(),
                        options: QueryOptions::default(),
                    }],
                    ..Default::default()
                },
            }]
        );

        let q = parse_query("$expand=a($select=x,y;$top=2),b,c($filter=n eq 'x;y,z)')").unwrap();
        assert_eq!(q.expand.len(), 3);
        assert_eq!(q.expand[0].property, "a");
        assert_eq!(q.expand[0].options.select, Some(vec!["x".to_owned(), "y".to_owned()]));
        assert_eq!(q.expand[0].options.top, Some(2));
        assert_eq!(q.expand[1].property, "b");
        assert_eq!(q.expand[1].options, QueryOptions::default());
        assert_eq!(
            q.expand[2].options.filter,
            Some(cmp("n", CmpOp::Eq, Literal::String("x;y,z)".into())))
        );

        // Without '$' and with spaces around ';'.
        let q = parse_query("$expand=a(select=x; top=1)").unwrap();
        assert_eq!(q.expand[0].options.top, Some(1));
    }

    #[test]
    fn expand_errors() {
        type Check = fn(&ODataError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("$expand=a(", |e| {
                matches!(e, ODataError::InvalidOption { option: "$expand", .. })
            }),
            ("$expand=a)", |e| {
                matches!(e, ODataError::InvalidOption { option: "$expand", .. })
            }),
            ("$expand=a($top=1)x", |e| {
                matches!(e, ODataError::InvalidOption { option: "$expand", .. })
            }),
            ("$expand=a,,b", |e| {
                matches!(e, ODataError::InvalidOption { option: "$expand", .. })
            }),
            ("$expand=a($foo=1)", |e| {
                *e == ODataError::UnsupportedOption("$foo".into())
            }),
            ("$expand=a(foo=1)", |e| {
                *e == ODataError::UnsupportedOption("foo".into())
            }),
            ("$expand=a($top=1;$top=2)", |e| {
                *e == ODataError::DuplicateOption("$top".into())
            }),
            ("$expand=a($top=x)", |e| *e == ODataError::InvalidTop("x".into())),
            ("$expand=a($filter=x eq)", |e| {
                matches!(e, ODataError::InvalidFilter { .. })
            }),
        ];
        for (query, check) in cases {
            let err = parse_query(query).unwrap_err();
            assert!(check(&err), "{query}: {err:?}");
        }
        let deep = format!(
            "$expand={}x{}",
            "a($expand=".repeat(MAX_EXPAND_DEPTH + 1),
            ")".repeat(MAX_EXPAND_DEPTH + 1)
        );
        assert!(parse_query(&deep).is_err());
        let ok = format!(
            "$expand={}x{}",
            "a($expand=".repeat(MAX_EXPAND_DEPTH - 1),
            ")".repeat(MAX_EXPAND_DEPTH - 1)
        );
        assert!(parse_query(&ok).is_ok());
    }

    // ---- parse_filter ----------------------------------------------------------------------

    #[test]
    fn each_comparison_operator() {
        let cases = [
            ("eq", CmpOp::Eq),
            ("ne", CmpOp::Ne),
            ("gt", CmpOp::Gt),
            ("ge", CmpOp::Ge),
            ("lt", CmpOp::Lt),
            ("le", CmpOp::Le),
            ("EQ", CmpOp::Eq),
            ("Ge", CmpOp::Ge),
        ];
        for (word, op) in cases {
            assert_eq!(
                parse_filter(&format!("x {word} 1")).unwrap(),
                cmp("x", op, Literal::Int(1)),
                "{word}"
            );
        }
    }

    #[test]
    fn literals_flipped_onto_the_right() {
        let cases = [
            ("5 lt x", cmp("x", CmpOp::Gt, Literal::Int(5))),
            ("5 le x", cmp("x", CmpOp::Ge, Literal::Int(5))),
            ("5 gt x", cmp("x", CmpOp::Lt, Literal::Int(5))),
            ("5 ge x", cmp("x", CmpOp::Le, Literal::Int(5))),
            ("'a' eq x", cmp("x", CmpOp::Eq, Literal::String("a".into()))),
            ("null ne x", cmp("x", CmpOp::Ne, Literal::Null)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_filter(text).unwrap(), expected, "{text}");
        }
    }

    #[test]
    fn precedence_not_over_and_over_or() {
        assert_eq!(
            parse_filter("a eq 1 or b eq 2 and c eq 3").unwrap(),
            or(int("a", 1), and(int("b", 2), int("c", 3)))
        );
        assert_eq!(
            parse_filter("a eq 1 and b eq 2 or c eq 3").unwrap(),
            or(and(int("a", 1), int("b", 2)), int("c", 3))
        );
        assert_eq!(
            parse_filter("not a eq 1 and b eq 2").unwrap(),
            and(not(int("a", 1)), int("b", 2))
        );
        // and/or associate to the left.
        assert_eq!(
            parse_filter("a eq 1 and b eq 2 and c eq 3").unwrap(),
            and(and(int("a", 1), int("b", 2)), int("c", 3))
        );
    }

    #[test]
    fn parentheses_and_not() {
        assert_eq!(
            parse_filter("(a eq 1 or b eq 2) and c eq 3").unwrap(),
            and(or(int("a", 1), int("b", 2)), int("c", 3))
        );
        assert_eq!(
            parse_filter("not(a eq 1 or b eq 2)").unwrap(),
            not(or(int("a", 1), int("b", 2)))
        );
        assert_eq!(parse_filter("not not a eq 1").unwrap(), not(not(int("a", 1))));
        assert_eq!(parse_filter("  ( ( a  eq\t1 ) )  ").unwrap(), int("a", 1));
    }

    #[test]
    fn keywords_are_case_insensitive() {
        assert_eq!(
            parse_filter("x EQ'a'").unwrap(),
            cmp("x", CmpOp::Eq, Literal::String("a".into()))
        );
        assert_eq!(
            parse_filter("a EQ 1 OR NOT b Eq 2 AnD c eQ TRUE").unwrap(),
            or(
                int("a", 1),
                and(not(int("b", 2)), cmp("c", CmpOp::Eq, Literal::Bool(true)))
            )
        );
        assert_eq!(
            parse_filter("a IN (1) and STARTSWITH(b,'x') EQ False").unwrap(),
            and(
                Expr::In {
                    property: "a".into(),
                    values: vec![Literal::Int(1)]
                },
                not(func(StrFunc::StartsWith, "b", "x"))
            )
        );
    }

    #[test]
    fn in_lists() {
        let expected = Expr::In {
            property: "x".into(),
            values: vec![Literal::String("a".into()), Literal::String("b".into())],
        };
        assert_eq!(parse_filter("x in ('a','b')").unwrap(), expected);
        assert_eq!(parse_filter("x in ( 'a' , 'b' )").unwrap(), expected);
        assert_eq!(
            parse_filter("x in (1, null)").unwrap(),
            Expr::In {
                property: "x".into(),
                values: vec![Literal::Int(1), Literal::Null]
            }
        );
        assert_eq!(
            filter_error("x in ()"),
            ("the list of values after 'in' must not be empty".into(), 6)
        );
        assert_eq!(
            filter_error("x in ('a' 'b')"),
            ("expected ',' or ')' but found ''b''".into(), 10)
        );
        assert_eq!(
            filter_error("x in 'a'"),
            ("expected '(' after 'in' but found ''a''".into(), 5)
        );
    }

    #[test]
    fn string_functions() {
        let cases = [
            (
                "startswith(deviceName,'ab')",
                func(StrFunc::StartsWith, "deviceName", "ab"),
            ),
            (
                "endswith( deviceName , 'ab' )",
                func(StrFunc::EndsWith, "deviceName", "ab"),
            ),
            ("contains(deviceName,'ab')", func(StrFunc::Contains, "deviceName", "ab")),
            (
                "contains(deviceName,'ab') eq true",
                func(StrFunc::Contains, "deviceName", "ab"),
            ),
            (
                "contains(deviceName,'ab') ne false",
                func(StrFunc::Contains, "deviceName", "ab"),
            ),
            (
                "startswith(deviceName,'ab') eq false",
                not(func(StrFunc::StartsWith, "deviceName", "ab")),
            ),
            (
                "startswith(deviceName,'ab') ne true",
                not(func(StrFunc::StartsWith, "deviceName", "ab")),
            ),
            (
                "not contains(deviceName,'ab') and x eq 1",
                and(not(func(StrFunc::Contains, "deviceName", "ab")), int("x", 1)),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_filter(text).unwrap(), expected, "{text}");
        }
        assert_eq!(
            filter_error("contains(a,'b') gt 1").0,
            "the result of 'contains' can only be compared with 'eq' or 'ne' to true or false"
        );
        assert_eq!(
            filter_error("contains('b', a)"),
            ("expected a property name but found ''b''".into(), 9)
        );
        assert_eq!(
            filter_error("contains(a 'b')"),
            ("expected ',' but found ''b''".into(), 11)
        );
    }

    #[test]
    fn literal_forms() {
        let guid = "01234567-89ab-cdef-0123-456789abcdef";
        let cases: Vec<(&str, Literal)> = vec![
            ("'O''Brien'", Literal::String("O'Brien".into())),
            ("''''", Literal::String("'".into())),
            ("''", Literal::String(String::new())),
            ("'a'", Literal::String("a".into())),
            ("'a,b (c)'", Literal::String("a,b (c)".into())),
            ("42", Literal::Int(42)),
            ("-7", Literal::Int(-7)),
            ("9223372036854775807", Literal::Int(i64::MAX)),
            ("1.5", Literal::Float(1.5)),
            ("-0.25", Literal::Float(-0.25)),
            ("1e3", Literal::Float(1000.0)),
            ("2.5E-1", Literal::Float(0.25)),
            ("true", Literal::Bool(true)),
            ("False", Literal::Bool(false)),
            ("null", Literal::Null),
            ("NULL", Literal::Null),
            (guid, Literal::Guid(guid.into())),
            (
                "ABCDEF01-89AB-CDEF-0123-456789ABCDEF",
                Literal::Guid("abcdef01-89ab-cdef-0123-456789abcdef".into()),
            ),
            ("guid'01234567-89AB-cdef-0123-456789abcdef'", Literal::Guid(guid.into())),
            ("2024-01-01T00:00:00Z", Literal::DateTime(utc(2024, 1, 1, 0, 0, 0))),
            (
                "2024-01-01T10:00:00.123+02:00",
                Literal::DateTime(utc(2024, 1, 1, 8, 0, 0) + chrono::Duration::milliseconds(123)),
            ),
            ("2024-01-01T10:00-01:30", Literal::DateTime(utc(2024, 1, 1, 11, 30, 0))),
            ("2024-03-05", Literal::DateTime(utc(2024, 3, 5, 0, 0, 0))),
            (
                "datetimeoffset'2024-01-01T00:00:00Z'",
                Literal::DateTime(utc(2024, 1, 1, 0, 0, 0)),
            ),
            (
                "datetime'2024-01-01T12:00:00'",
                Literal::DateTime(utc(2024, 1, 1, 12, 0, 0)),
            ),
            (
                "microsoft.graph.complianceState'compliant'",
                Literal::String("compliant".into()),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                parse_filter(&format!("x eq {text}")).unwrap(),
                cmp("x", CmpOp::Eq, expected),
                "{text}"
            );
        }
    }

    #[test]
    fn bad_literals() {
        let cases = [
            ("x eq 'abc", "unterminated string literal", 5),
            (
                "x eq 99999999999999999999",
                "integer '99999999999999999999' is out of range",
                5,
            ),
            ("x eq 1e999", "number '1e999' is out of range", 5),
            ("x eq 12abc", "invalid literal '12abc'", 5),
            ("x eq 1.", "invalid literal '1.'", 5),
            ("x eq guid'nope'", "invalid GUID literal 'nope'", 5),
            (
                "x eq 2024-13-01T00:00:00Z",
                "invalid DateTimeOffset literal '2024-13-01T00:00:00Z'",
                5,
            ),
            (
                "x eq 2024-01-01T00:00:00",
                "invalid DateTimeOffset literal '2024-01-01T00:00:00'",
                5,
            ),
            ("x eq binary'AAA='", "literals of type 'binary' are not supported", 5),
            ("x eq y", "expected a literal value but found 'y'", 5),
        ];
        for (text, detail, position) in cases {
            assert_eq!(filter_error(text), (detail.to_owned(), position), "{text}");
        }
        // An unencoded '+' arrives as a space; say so.
        let q = parse_query("$filter=t gt 2024-01-01T10:00:00+02:00").unwrap_err();
        assert!(q.to_string().contains("%2B"), "{q}");
    }

    #[test]
    fn property_paths() {
        assert_eq!(
            parse_filter("settings/secureByDefault eq true").unwrap(),
            cmp("settings/secureByDefault", CmpOp::Eq, Literal::Bool(true))
        );
        assert_eq!(
            filter_error("settings/ eq true"),
            ("'settings/' is not a valid property path".into(), 0)
        );
    }

    #[test]
    fn syntax_errors_carry_positions() {
        let cases = [
            ("displayName eq", "expected a literal value", 14),
            ("", "expected an expression", 0),
            ("x eq 1 and", "expected an expression", 10),
            ("x eq 1 y", "unexpected 'y'", 7),
            ("x eq 1)", "unexpected ')'", 6),
            ("(x eq 1", "expected ')'", 7),
            ("x > 5", "unexpected character '>'", 2),
            ("x", "expected a comparison operator after 'x'", 1),
            ("x foo 1", "expected a comparison operator after 'x' but found 'foo'", 2),
            ("and eq 1", "expected an expression but found 'and'", 0),
            ("1 eq 2", "expected a property name but found '2'", 5),
            ("1 in x", "expected a comparison operator but found 'in'", 2),
            ("x eq 1 and éa eq 2", "unexpected character 'é'", 11),
            ("tags has 'a'", "the 'has' operator is not supported", 5),
            ("x add 1 eq 2", "the 'add' operator is not supported", 2),
            (
                "devices/any(d:d/os eq 'x')",
                "the lambda operator 'any' is not supported",
                0,
            ),
            (
                "x eq 1 and members/ALL(m:m eq 1)",
                "the lambda operator 'all' is not supported",
                11,
            ),
            ("tolower(x) eq 'a'", "the function 'tolower' is not supported", 0),
        ];
        for (text, detail, position) in cases {
            assert_eq!(filter_error(text), (detail.to_owned(), position), "{text}");
        }
        assert_eq!(
            parse_filter("displayName eq").unwrap_err().to_string(),
            "Invalid filter clause: expected a literal value at position 14 in 'displayName eq'."
        );
    }

    #[test]
    fn nesting_depth_is_limited() {
        let nested = |n: usize| format!("{}x eq 1{}", "(".repeat(n), ")".repeat(n));
        assert_eq!(parse_filter(&nested(MAX_FILTER_DEPTH)).unwrap(), int("x", 1));
        let (detail, position) = filter_error(&nested(MAX_FILTER_DEPTH + 1));
        assert!(detail.contains("nested more than 50"), "{detail}");
        assert_eq!(position, MAX_FILTER_DEPTH);

        let nots = |n: usize| format!("{}x eq 1", "not ".repeat(n));
        assert!(parse_filter(&nots(MAX_FILTER_DEPTH)).is_ok());
        assert!(parse_filter(&nots(MAX_FILTER_DEPTH + 1)).is_err());
        // Far beyond the limit must fail cleanly rather than overflow the stack.
        assert!(parse_filter(&"(".repeat(3000)).is_err());
    }

    #[test]
    fn clause_length_is_limited() {
        let long = format!("x eq '{}'", "a".repeat(MAX_FILTER_LENGTH));
        assert_eq!(
            parse_filter(&long).unwrap_err(),
            ODataError::FilterTooLong {
                length: MAX_FILTER_LENGTH + 7,
                max: MAX_FILTER_LENGTH
            }
        );
        let fits = format!("x eq '{}'", "a".repeat(MAX_FILTER_LENGTH - 7));
        assert!(parse_filter(&fits).is_ok());
        // A long but flat chain of terms is fine: only nesting is recursive.
        let chain = vec!["a eq 1"; 300].join(" and ");
        assert!(parse_filter(&chain).is_ok());
    }

    // ---- SQL ---------------------------------------------------------------------------------

    const COMPLIANCE: &[&str] = &[
        "unknown",
        "compliant",
        "noncompliant",
        "conflict",
        "error",
        "inGracePeriod",
        "configManager",
    ];

    const fn col(property: &'static str, sql: &'static str, ty: ColType, case_insensitive: bool) -> Column {
        Column {
            property,
            sql,
            ty,
            filterable: true,
            sortable: true,
            case_insensitive,
        }
    }

    static DEVICE: Entity = Entity {
        type_name: "microsoft.graph.managedDevice",
        columns: &[
            col("id", "d.id", ColType::Text, false),
            col("deviceName", "d.device_name", ColType::Text, true),
            col("serialNumber", "serial_number", ColType::Text, false),
            col("complianceState", "compliance_state", ColType::Enum(COMPLIANCE), false),
            col(
                "ownerType",
                "owner_type",
                ColType::Enum(&["unknown", "company", "personal"]),
                true,
            ),
            col("lastSyncDateTime", "last_sync", ColType::Timestamp, false),
            col("storageFreeInBytes", "storage_free", ColType::Int, false),
            col("batteryLevelPercentage", "battery", ColType::Float, false),
            col("settings/secureByDefault", "secure_by_default", ColType::Bool, false),
            col("userPrincipalName", "coalesce(upn, '')", ColType::Text, true),
            Column {
                property: "isEncrypted",
                sql: "is_encrypted",
                ty: ColType::Bool,
                filterable: true,
                sortable: false,
                case_insensitive: false,
            },
            Column {
                property: "notes",
                sql: "notes",
                ty: ColType::Text,
                filterable: false,
                sortable: false,
                case_insensitive: false,
            },
        ],
        known_properties: &["hardwareInformation", "deviceActionResults"],
    };

    fn sql(filter: &str, dialect: Dialect) -> SqlFragment {
        let expr = parse_filter(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
        filter_sql(&expr, &DEVICE, dialect, 1).unwrap_or_else(|e| panic!("{filter}: {e}"))
    }

    fn sql_error(filter: &str) -> ODataError {
        let expr = parse_filter(filter).unwrap();
        let sqlite = filter_sql(&expr, &DEVICE, Dialect::Sqlite, 1).unwrap_err();
        let postgres = filter_sql(&expr, &DEVICE, Dialect::Postgres, 1).unwrap_err();
        assert_eq!(sqlite, postgres, "{filter}");
        sqlite
    }

    fn text(s: &str) -> SqlValue {
        SqlValue::Text(s.to_owned())
    }

    /// (filter, SQLite SQL, PostgreSQL SQL, binds): binds are the same for both dialects.
    #[test]
    fn sql_text_and_binds() {
        let ts = utc(2024, 1, 1, 0, 0, 0);
        let cases: Vec<(&str, &str, &str, Vec<SqlValue>)> = vec![
            ("id eq 'A1'", "d.id = $1", "d.id = $1", vec![text("A1")]),
            (
                "deviceName eq 'PC-One'",
                "lower(d.device_name) = $1",
                r#"lower(d.device_name COLLATE "C") = $1"#,
                vec![text("pc-one")],
            ),
            (
                "serialNumber ne 'X'",
                "(serial_number IS NULL OR serial_number <> $1)",
                "(serial_number IS NULL OR serial_number <> $1)",
                vec![text("X")],
            ),
            (
                "deviceName ne 'X'",
                "(d.device_name IS NULL OR lower(d.device_name) <> $1)",
                r#"(d.device_name IS NULL OR lower(d.device_name COLLATE "C") <> $1)"#,
                vec![text("x")],
            ),
            (
                "serialNumber gt 'M'",
                "serial_number > $1",
                r#"serial_number COLLATE "C" > $1"#,
                vec![text("M")],
            ),
            (
                "storageFreeInBytes ge 1024 and storageFreeInBytes lt 2e3",
                "(storage_free >= $1 AND storage_free < $2)",
                "(storage_free >= $1 AND storage_free < $2)",
                vec![SqlValue::Int(1024), SqlValue::Int(2000)],
            ),
            (
                "batteryLevelPercentage le 50",
                "battery <= $1",
                "battery <= $1",
                vec![SqlValue::Float(50.0)],
            ),
            (
                "settings/secureByDefault eq true or isEncrypted eq false",
                "(secure_by_default = $1 OR is_encrypted = $2)",
                "(secure_by_default = $1 OR is_encrypted = $2)",
                vec![SqlValue::Bool(true), SqlValue::Bool(false)],
            ),
            (
                "lastSyncDateTime gt 2024-01-01T02:00:00+02:00",
                "last_sync > $1",
                "last_sync > $1",
                vec![SqlValue::Timestamp(ts)],
            ),
            (
                "lastSyncDateTime le '2024-01-01T00:00:00Z'",
                "last_sync <= $1",
                "last_sync <= $1",
                vec![SqlValue::Timestamp(ts)],
            ),
            (
                "id eq 01234567-89AB-cdef-0123-456789abcdef",
                "d.id = $1",
                "d.id = $1",
                vec![text("01234567-89ab-cdef-0123-456789abcdef")],
            ),
            (
                "complianceState eq 'NONCOMPLIANT'",
                "compliance_state = $1",
                "compliance_state = $1",
                vec![text("noncompliant")],
            ),
            (
                "complianceState eq microsoft.graph.complianceState'ingraceperiod'",
                "compliance_state = $1",
                "compliance_state = $1",
                vec![text("inGracePeriod")],
            ),
            (
                "ownerType eq 'Company'",
                "lower(owner_type) = $1",
                r#"lower(owner_type COLLATE "C") = $1"#,
                vec![text("company")],
            ),
            (
                "complianceState ge 'error'",
                "compliance_state IN ($1, $2, $3)",
                "compliance_state IN ($1, $2, $3)",
                vec![text("error"), text("inGracePeriod"), text("configManager")],
            ),
            (
                "complianceState lt 'compliant'",
                "compliance_state IN ($1)",
                "compliance_state IN ($1)",
                vec![text("unknown")],
            ),
            ("complianceState gt 'configManager'", "1 = 0", "1 = 0", vec![]),
            (
                "id in ('a', 'B')",
                "d.id IN ($1, $2)",
                "d.id IN ($1, $2)",
                vec![text("a"), text("B")],
            ),
            (
                "deviceName in ('a', 'B')",
                "lower(d.device_name) IN ($1, $2)",
                r#"lower(d.device_name COLLATE "C") IN ($1, $2)"#,
                vec![text("a"), text("b")],
            ),
            (
                "complianceState in ('Compliant', null)",
                "(compliance_state IS NULL OR compliance_state IN ($1))",
                "(compliance_state IS NULL OR compliance_state IN ($1))",
                vec![text("compliant")],
            ),
            ("id in (null)", "d.id IS NULL", "d.id IS NULL", vec![]),
            ("id eq null", "d.id IS NULL", "d.id IS NULL", vec![]),
            ("null ne id", "d.id IS NOT NULL", "d.id IS NOT NULL", vec![]),
            ("storageFreeInBytes gt null", "1 = 0", "1 = 0", vec![]),
            (
                "startswith(serialNumber,'AB')",
                "serial_number GLOB $1",
                r"serial_number LIKE $1 ESCAPE '\'",
                vec![],
            ),
            (
                "contains(deviceName,'Ab')",
                r"lower(d.device_name) LIKE $1 ESCAPE '\'",
                r#"lower(d.device_name COLLATE "C") LIKE $1 ESCAPE '\'"#,
                vec![text("%ab%")],
            ),
            (
                "endswith(userPrincipalName,'@X.com')",
                r"lower((coalesce(upn, ''))) LIKE $1 ESCAPE '\'",
                r#"lower((coalesce(upn, '')) COLLATE "C") LIKE $1 ESCAPE '\'"#,
                vec![text("%@x.com")],
            ),
            (
                "userPrincipalName eq null",
                "(coalesce(upn, '')) IS NULL",
                "(coalesce(upn, '')) IS NULL",
                vec![],
            ),
            (
                "id eq 'a' or id eq 'b' and not (id eq 'c')",
                "(d.id = $1 OR (d.id = $2 AND (NOT (d.id IS NOT NULL AND d.id = $3))))",
                "(d.id = $1 OR (d.id = $2 AND (NOT (d.id IS NOT NULL AND d.id = $3))))",
                vec![text("a"), text("b"), text("c")],
            ),
            (
                "not (id eq 'a' or startswith(deviceName,'x'))",
                r"(NOT ((d.id IS NOT NULL AND d.id = $1) OR lower(d.device_name) LIKE $2 ESCAPE '\'))",
                r#"(NOT ((d.id IS NOT NULL AND d.id = $1) OR lower(d.device_name COLLATE "C") LIKE $2 ESCAPE '\'))"#,
                vec![text("a"), text("x%")],
            ),
            (
                "not (serialNumber ne 'a')",
                "(NOT (serial_number IS NULL OR serial_number <> $1))",
                "(NOT (serial_number IS NULL OR serial_number <> $1))",
                vec![text("a")],
            ),
            (
                "not (id in ('a','b'))",
                "(NOT (d.id IS NOT NULL AND d.id IN ($1, $2)))",
                "(NOT (d.id IS NOT NULL AND d.id IN ($1, $2)))",
                vec![text("a"), text("b")],
            ),
            (
                "not not id eq 'a'",
                "(NOT (NOT (d.id IS NOT NULL AND d.id = $1)))",
                "(NOT (NOT (d.id IS NOT NULL AND d.id = $1)))",
                vec![text("a")],
            ),
            (
                "ID eq 'x' and DEVICENAME eq 'y'",
                "(d.id = $1 AND lower(d.device_name) = $2)",
                r#"(d.id = $1 AND lower(d.device_name COLLATE "C") = $2)"#,
                vec![text("x"), text("y")],
            ),
        ];
        for (filter, sqlite, postgres, binds) in cases {
            let lite = sql(filter, Dialect::Sqlite);
            let pg = sql(filter, Dialect::Postgres);
            assert_eq!(lite.sql, sqlite, "sqlite: {filter}");
            assert_eq!(pg.sql, postgres, "postgres: {filter}");
            // Pattern binds differ between GLOB and LIKE; those cases list no binds.
            if !binds.is_empty() || !lite.sql.contains("GLOB") {
                assert_eq!(lite.binds, binds, "sqlite binds: {filter}");
                assert_eq!(pg.binds, binds, "postgres binds: {filter}");
            }
        }
    }

    #[test]
    fn placeholders_start_at_first_placeholder() {
        let expr = parse_filter("id eq 'a' and deviceName in ('b','c') and storageFreeInBytes gt 1").unwrap();
        let fragment = filter_sql(&expr, &DEVICE, Dialect::Postgres, 3).unwrap();
        assert_eq!(
            fragment.sql,
            r#"((d.id = $3 AND lower(d.device_name COLLATE "C") IN ($4, $5)) AND storage_free > $6)"#
        );
        assert_eq!(fragment.binds, vec![text("a"), text("b"), text("c"), SqlValue::Int(1)]);
    }

    #[test]
    fn pattern_metacharacters_are_escaped() {
        let value = r"50%_off\";
        let cases = [
            ("startswith", r"50\%\_off\\%", r"50%_off\*"),
            ("endswith", r"%50\%\_off\\", r"*50%_off\"),
            ("contains", r"%50\%\_off\\%", r"*50%_off\*"),
        ];
        for (function, like, glob) in cases {
            let filter = format!("{function}(serialNumber,'{value}')");
            assert_eq!(sql(&filter, Dialect::Postgres).binds, vec![text(like)]);
            assert_eq!(sql(&filter, Dialect::Sqlite).binds, vec![text(glob)]);
        }
        assert_eq!(
            sql("contains(serialNumber,'a*b?[c]')", Dialect::Sqlite).binds,
            vec![text("*a[*]b[?][[]c]*")]
        );
        assert_eq!(
            sql("contains(serialNumber,'a*b?[c]')", Dialect::Postgres).binds,
            vec![text("%a*b?[c]%")]
        );
        assert_eq!(
            sql("startswith(deviceName,'A_b')", Dialect::Sqlite).binds,
            vec![text(r"a\_b%")]
        );
        // The value never reaches the SQL text.
        let hostile = sql("deviceName eq 'x'' OR 1=1 --'", Dialect::Sqlite);
        assert_eq!(hostile.sql, "lower(d.device_name) = $1");
        assert_eq!(hostile.binds, vec![text("x' or 1=1 --")]);
    }

    #[test]
    fn case_folding_is_ascii_only() {
        // Non-ASCII letters are left alone so Rust agrees with SQLite's lower() and with
        // PostgreSQL's lower() under COLLATE "C".
        assert_eq!(
            sql("deviceName eq 'ÉCOLE'", Dialect::Postgres).binds,
            vec![text("École")]
        );
    }

    #[test]
    fn type_mismatches() {
        let cases = [
            (
                "storageFreeInBytes eq 'abc'",
                "A binary operator with incompatible types was detected. Found operand types 'Edm.Int32' and 'Edm.String' for operator kind 'Equal'.",
            ),
            (
                "storageFreeInBytes lt 1.5",
                "A binary operator with incompatible types was detected. Found operand types 'Edm.Int32' and 'Edm.Double' for operator kind 'LessThan'.",
            ),
            (
                "id ne 5",
                "A binary operator with incompatible types was detected. Found operand types 'Edm.String' and 'Edm.Int32' for operator kind 'NotEqual'.",
            ),
            (
                "isEncrypted eq 1",
                "A binary operator with incompatible types was detected. Found operand types 'Edm.Boolean' and 'Edm.Int32' for operator kind 'Equal'.",
            ),
            (
                "lastSyncDateTime gt 'yesterday'",
                "A binary operator with incompatible types was detected. Found operand types 'Edm.DateTimeOffset' and 'Edm.String' for operator kind 'GreaterThan'.",
            ),
            (
                "complianceState eq 3",
                "A binary operator with incompatible types was detected. Found operand types 'microsoft.graph.complianceState' and 'Edm.Int32' for operator kind 'Equal'.",
            ),
            (
                "batteryLevelPercentage eq true",
                "A binary operator with incompatible types was detected. Found operand types 'Edm.Double' and 'Edm.Boolean' for operator kind 'Equal'.",
            ),
            (
                "id in ('a', 2024-01-01T00:00:00Z)",
                "A binary operator with incompatible types was detected. Found operand types 'Edm.String' and 'Edm.DateTimeOffset' for operator kind 'In'.",
            ),
            (
                "storageFreeInBytes eq 9999999999",
                "",
            ),
        ];
        for (filter, message) in cases {
            if message.is_empty() {
                assert!(parse_filter(filter)
                    .and_then(|e| filter_sql(&e, &DEVICE, Dialect::Sqlite, 1))
                    .is_ok());
                continue;
            }
            assert_eq!(sql_error(filter).to_string(), message, "{filter}");
        }
        for filter in [
            "contains(storageFreeInBytes,'1')",
            "startswith(complianceState,'c')",
            "endswith(id,5)",
            "contains(id,null)",
        ] {
            assert!(
                matches!(sql_error(filter), ODataError::FunctionArguments { .. }),
                "{filter}"
            );
        }
        assert_eq!(
            sql_error("contains(storageFreeInBytes,'1')").to_string(),
            "No function signature for the function with name 'contains' matches the specified arguments. The function signatures considered are: contains(Edm.String Nullable=true, Edm.String Nullable=true)."
        );
    }

    #[test]
    fn bad_enum_members_are_rejected() {
        for filter in [
            "complianceState eq 'green'",
            "complianceState in ('compliant', 'green')",
            "complianceState gt 'green'",
        ] {
            assert_eq!(
                sql_error(filter).to_string(),
                "The value 'green' is not a valid member of enum 'complianceState'.",
                "{filter}"
            );
        }
    }

    #[test]
    fn unknown_and_disallowed_properties() {
        assert_eq!(
            sql_error("Foo eq 1").to_string(),
            "Could not find a property named 'Foo' on type 'microsoft.graph.managedDevice'."
        );
        assert_eq!(
            sql_error("startswith(settings/foo,'a')").to_string(),
            "Could not find a property named 'settings/foo' on type 'microsoft.graph.managedDevice'."
        );
        assert_eq!(
            sql_error("NOTES eq 'x'").to_string(),
            "The query specified in the URI is not valid. The property 'NOTES' cannot be used in the $filter query option."
        );
        assert_eq!(
            sql_error("hardwareInformation eq null"),
            ODataError::PropertyNotAllowed {
                property: "hardwareInformation".into(),
                option: "$filter"
            }
        );
        // An error anywhere in the tree wins, even after valid terms.
        assert!(matches!(
            sql_error("id eq 'a' and (deviceName eq 'b' or nope eq 1)"),
            ODataError::UnknownProperty { .. }
        ));
    }

    #[test]
    fn orderby_translation_and_validation() {
        let q = parse_query("$orderby=DeviceName desc,storageFreeInBytes,userPrincipalName asc").unwrap();
        assert_eq!(
            orderby_sql(&q.orderby, &DEVICE).unwrap(),
            "lower(d.device_name) DESC NULLS LAST, storage_free ASC NULLS FIRST, lower((coalesce(upn, ''))) ASC NULLS FIRST"
        );
        assert_eq!(orderby_sql(&[], &DEVICE).unwrap(), "");

        let q = parse_query("$orderby=serialNumber,deviceName desc,ownerType,complianceState desc").unwrap();
        let enum_key = "CASE compliance_state WHEN 'unknown' THEN 0 WHEN 'compliant' THEN 1 \
                        WHEN 'noncompliant' THEN 2 WHEN 'conflict' THEN 3 WHEN 'error' THEN 4 \
                        WHEN 'inGracePeriod' THEN 5 WHEN 'configManager' THEN 6 END";
        let cases = [
            (
                orderby_sql(&q.orderby, &DEVICE).unwrap(),
                format!(
                    "serial_number ASC NULLS FIRST, lower(d.device_name) DESC NULLS LAST, \
                     CASE lower(owner_type) WHEN 'unknown' THEN 0 WHEN 'company' THEN 1 \
                     WHEN 'personal' THEN 2 END ASC NULLS FIRST, {enum_key} DESC NULLS LAST"
                ),
            ),
            (
                orderby_sql_for(&q.orderby, &DEVICE, Dialect::Sqlite).unwrap(),
                orderby_sql(&q.orderby, &DEVICE).unwrap(),
            ),
            (
                orderby_sql_for(&q.orderby, &DEVICE, Dialect::Postgres).unwrap(),
                format!(
                    "serial_number COLLATE \"C\" ASC NULLS FIRST, \
                     lower(d.device_name COLLATE \"C\") DESC NULLS LAST, \
                     CASE lower(owner_type COLLATE \"C\") WHEN 'unknown' THEN 0 \
                     WHEN 'company' THEN 1 WHEN 'personal' THEN 2 END ASC NULLS FIRST, \
                     {} DESC NULLS LAST",
                    enum_key.replace("compliance_state", "compliance_state COLLATE \"C\"")
                ),
            ),
        ];
        for (actual, expected) in cases {
            assert_eq!(actual, expected);
        }
        let order = |p: &str| {
            vec![OrderBy {
                property: p.to_owned(),
                descending: false,
            }]
        };
        assert_eq!(
            orderby_sql(&order("bogus"), &DEVICE).unwrap_err().to_string(),
            "Could not find a property named 'bogus' on type 'microsoft.graph.managedDevice'."
        );
        for property in ["isEncrypted", "notes", "deviceActionResults"] {
            assert_eq!(
                orderby_sql(&order(property), &DEVICE).unwrap_err().to_string(),
                format!("The query specified in the URI is not valid. The property '{property}' cannot be used in the $orderby query option.")
            );
        }
    }

    #[test]
    fn select_validation() {
        let select: Vec<String> = ["DEVICENAME", "*", "hardwareinformation", "deviceName", "notes"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(
            validate_select(&select, &DEVICE).unwrap(),
            vec!["deviceName", "*", "hardwareInformation", "notes"]
        );
        assert_eq!(
            validate_select(&["nope".to_owned()], &DEVICE).unwrap_err(),
            ODataError::UnknownProperty {
                property: "nope".into(),
                type_name: "microsoft.graph.managedDevice".into()
            }
        );
    }

    /// Runs the generated SQL on a real (in-memory) SQLite through sqlx, binding
    /// [`SqlValue`]s the way a caller would, to check LIKE/GLOB, case folding, NULL handling
    /// and placeholder numbering against OData's semantics.
    #[test]
    fn generated_sql_runs_on_sqlite() {
        use sqlx::Connection;

        static ROWS_ENTITY: Entity = Entity {
            type_name: "microsoft.graph.test",
            columns: &[
                col("name", "name", ColType::Text, true),
                col("serial", "serial", ColType::Text, false),
                col(
                    "state",
                    "state",
                    ColType::Enum(&["unknown", "compliant", "noncompliant"]),
                    false,
                ),
                col("n", "n", ColType::Int, false),
                col("flag", "flag", ColType::Bool, false),
                col("seen", "seen", ColType::Timestamp, false),
            ],
            known_properties: &[],
        };
        type Row = (
            i64,
            Option<&'static str>,
            Option<&'static str>,
            Option<&'static str>,
            Option<i64>,
            Option<bool>,
            Option<DateTime<Utc>>,
        );
        let t0 = utc(2024, 1, 1, 0, 0, 0);
        let ms = chrono::Duration::milliseconds;
        let rows: [Row; 6] = [
            (
                1,
                Some("Alpha"),
                Some("AB"),
                Some("compliant"),
                Some(1),
                Some(true),
                Some(t0),
            ),
            (
                2,
                Some("ALPHA"),
                Some("ab"),
                Some("noncompliant"),
                Some(2),
                Some(false),
                Some(t0 + ms(500)),
            ),
            (3, Some("alpha"), None, None, None, None, None),
            (
                4,
                Some("Älpha"),
                Some(r"aB%_\"),
                Some("unknown"),
                Some(5),
                Some(true),
                Some(t0 + ms(1)),
            ),
            (
                5,
                Some("älpha"),
                Some("x*?[x]"),
                Some("compliant"),
                Some(7),
                Some(false),
                Some(t0 + ms(1500)),
            ),
            (
                6,
                None,
                Some("B"),
                Some("noncompliant"),
                Some(3),
                None,
                Some(t0 - ms(1)),
            ),
        ];
        let cases: &[(&str, &[i64])] = &[
            ("name eq 'alpha'", &[1, 2, 3]),
            // Folding is ASCII-only: 'Ä' and 'ä' stay distinct.
            ("name eq 'älpha'", &[5]),
            ("name eq 'ÄLPHA'", &[4]),
            ("name ne 'alpha'", &[4, 5, 6]),
            ("serial eq 'AB'", &[1]),
            ("serial ne 'AB'", &[2, 3, 4, 5, 6]),
            ("not (serial eq 'AB')", &[2, 3, 4, 5, 6]),
            ("serial gt 'B'", &[2, 4, 5]),
            ("serial lt 'b'", &[1, 2, 4, 6]),
            ("startswith(serial,'ab')", &[2]),
            ("startswith(serial,'AB')", &[1]),
            ("contains(serial,'%')", &[4]),
            ("contains(serial,'_')", &[4]),
            (r"contains(serial,'\')", &[4]),
            ("contains(serial,'*')", &[5]),
            ("contains(serial,'?')", &[5]),
            ("contains(serial,'[')", &[5]),
            ("contains(serial,'[x]')", &[5]),
            ("endswith(serial,'')", &[1, 2, 4, 5, 6]),
            ("endswith(serial,'B')", &[1, 6]),
            ("contains(name,'LP')", &[1, 2, 3, 4, 5]),
            ("contains(name,'ÄL')", &[4]),
            ("contains(name,'äl')", &[5]),
            ("startswith(name,'a') eq false", &[4, 5]),
            ("not contains(serial,'A')", &[2, 4, 5, 6]),
            ("state in ('Compliant', null)", &[1, 3, 5]),
            ("state gt 'compliant'", &[2, 6]),
            ("state le 'compliant'", &[1, 4, 5]),
            ("not (state eq 'compliant')", &[2, 3, 4, 6]),
            ("n ne 5", &[1, 2, 3, 5, 6]),
            ("not (n gt 5)", &[1, 2, 3, 4, 6]),
            ("n in (1,2)", &[1, 2]),
            ("not (n in (1,2))", &[3, 4, 5, 6]),
            ("n in (1, null)", &[1, 3]),
            ("flag eq true", &[1, 4]),
            ("flag ne true", &[2, 3, 5, 6]),
            ("not (flag eq true)", &[2, 3, 5, 6]),
            ("n gt null", &[]),
            ("not (n gt null)", &[1, 2, 3, 4, 5, 6]),
            ("name eq null", &[6]),
            ("seen gt 2024-01-01T00:00:00Z", &[2, 4, 5]),
            ("seen ge 2024-01-01T01:00:00.5+01:00", &[2, 5]),
            ("seen lt 2024-01-01T00:00:00.001Z", &[1, 6]),
            ("seen eq 2024-01-01T00:00:00.500Z or seen eq null", &[2, 3]),
        ];
        let orders: &[(&str, &[i64])] = &[
            ("name", &[6, 1, 2, 3, 4, 5]),
            ("name desc", &[5, 4, 1, 2, 3, 6]),
            ("serial", &[3, 1, 6, 4, 2, 5]),
            ("state desc,n", &[2, 6, 1, 5, 4, 3]),
            ("flag,seen desc", &[6, 3, 5, 2, 4, 1]),
        ];

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut db = sqlx::SqliteConnection::connect("sqlite::memory:").await.unwrap();
            sqlx::query(
                "CREATE TABLE dev (tenant TEXT NOT NULL, id INTEGER NOT NULL, name TEXT, \
                 serial TEXT, state TEXT, n INTEGER, flag BOOLEAN, seen TEXT)",
            )
            .execute(&mut db)
            .await
            .unwrap();
            for (id, name, serial, state, n, flag, seen) in rows {
                for tenant in ["t1", "t2"] {
                    sqlx::query("INSERT INTO dev VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                        .bind(tenant)
                        .bind(id)
                        .bind(name)
                        .bind(serial)
                        .bind(state)
                        .bind(n)
                        .bind(flag)
                        .bind(seen)
                        .execute(&mut db)
                        .await
                        .unwrap();
                }
            }
            for (filter, expected) in cases {
                let expr = parse_filter(filter).unwrap();
                let fragment = filter_sql(&expr, &ROWS_ENTITY, Dialect::Sqlite, 2).unwrap();
                let sql = format!("SELECT id FROM dev WHERE tenant = $1 AND {} ORDER BY id", fragment.sql);
                let mut query = sqlx::query_scalar::<_, i64>(&sql).bind("t1");
                for value in fragment.binds {
                    query = match value {
                        SqlValue::Text(s) => query.bind(s),
                        SqlValue::Int(i) => query.bind(i),
                        SqlValue::Float(f) => query.bind(f),
                        SqlValue::Bool(b) => query.bind(b),
                        SqlValue::Timestamp(t) => query.bind(t),
                        SqlValue::Null => query.bind(None::<String>),
                    };
                }
                let ids = query.fetch_all(&mut db).await.unwrap();
                assert_eq!(ids, *expected, "{filter}: {sql}");
            }
            for (orderby, expected) in orders {
                let options = parse_query(&format!("$orderby={orderby}")).unwrap();
                let order = orderby_sql_for(&options.orderby, &ROWS_ENTITY, Dialect::Sqlite).unwrap();
                assert_eq!(order, orderby_sql(&options.orderby, &ROWS_ENTITY).unwrap());
                let sql = format!("SELECT id FROM dev WHERE tenant = 't1' ORDER BY {order}, id");
                let ids = sqlx::query_scalar::<_, i64>(&sql).fetch_all(&mut db).await.unwrap();
                assert_eq!(ids, *expected, "{orderby}: {sql}");
            }
        });
    }
}
