//! The `$filter` lexer: tokens with their character positions, for error messages that point
//! at the offending text.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use super::filter::is_operator_keyword;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
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
pub(super) struct Token {
    pub(super) tok: Tok,
    /// Character offsets into the clause.
    pub(super) pos: usize,
    pub(super) end: usize,
}

pub(super) struct SyntaxError {
    pub(super) pos: usize,
    pub(super) detail: String,
}

impl SyntaxError {
    pub(super) fn new(pos: usize, detail: impl Into<String>) -> Self {
        SyntaxError {
            pos,
            detail: detail.into(),
        }
    }
}

pub(super) fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '/'
}

pub(super) struct Lexer<'a> {
    pub(super) src: &'a [char],
    pub(super) pos: usize,
}

impl Lexer<'_> {
    fn at(&self, i: usize) -> Option<char> {
        self.src.get(i).copied()
    }

    pub(super) fn next_token(&mut self) -> Result<Token, SyntaxError> {
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

pub(super) fn is_guid_chars(chars: &[char]) -> bool {
    chars.len() == 36
        && chars.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// RFC 3339 with an offset (seconds optional, as OData allows), or a bare date (midnight
/// UTC). `offset_optional` is for the legacy `datetime'…'` form, which had no offset.
pub(crate) fn parse_datetime(text: &str, offset_optional: bool) -> Option<DateTime<Utc>> {
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
