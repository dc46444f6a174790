//! The `$filter` syntax tree and its recursive-descent parser.

use chrono::{DateTime, Utc};

use super::lexer::{is_guid_chars, parse_datetime, Lexer, SyntaxError, Tok, Token};
use super::options::is_property_path;
use super::{ODataError, MAX_FILTER_DEPTH, MAX_FILTER_LENGTH};

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
    pub(super) fn from_keyword(word: &str) -> Option<CmpOp> {
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
    pub(crate) fn kind_name(self) -> &'static str {
        match self {
            CmpOp::Eq => "Equal",
            CmpOp::Ne => "NotEqual",
            CmpOp::Gt => "GreaterThan",
            CmpOp::Ge => "GreaterThanOrEqual",
            CmpOp::Lt => "LessThan",
            CmpOp::Le => "LessThanOrEqual",
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
    pub(crate) fn name(self) -> &'static str {
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
    pub(crate) fn edm_type(&self) -> &'static str {
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

/// Operators that are valid OData but that this emulator does not implement; naming them
/// beats a generic syntax error.
const UNSUPPORTED_OPERATORS: &[&str] = &["has", "add", "sub", "mul", "div", "divby", "mod"];
const LOGICAL_KEYWORDS: &[&str] = &["and", "or", "not", "in"];

fn is_literal_keyword(word: &str) -> bool {
    ["true", "false", "null"].iter().any(|k| k.eq_ignore_ascii_case(word))
}

pub(super) fn is_operator_keyword(word: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::odata::parse_query;
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
}
