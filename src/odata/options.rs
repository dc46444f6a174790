//! The query string: which system query options a request carries, decoded and checked for
//! syntax. Parsing does not know the entity yet.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

use super::{parse_filter, Expr, ODataError, MAX_EXPAND_DEPTH};

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

pub(super) fn is_property_path(path: &str) -> bool {
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

/// Validates a `$select` list against the properties of `type_name` (`*` is allowed) and
/// returns the declared spelling of each, without duplicates.
pub fn validate_select(
    select: &[String],
    type_name: &str,
    properties: &[&'static str],
) -> Result<Vec<&'static str>, ODataError> {
    let mut out: Vec<&'static str> = Vec::with_capacity(select.len());
    for item in select {
        let canonical = if item == "*" {
            "*"
        } else if let Some(known) = properties.iter().find(|k| k.eq_ignore_ascii_case(item)) {
            known
        } else {
            return Err(ODataError::UnknownProperty {
                property: item.to_owned(),
                type_name: type_name.to_owned(),
            });
        };
        if !out.contains(&canonical) {
            out.push(canonical);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::odata::{CmpOp, Literal};

    fn cmp(property: &str, op: CmpOp, value: Literal) -> Expr {
        Expr::Compare {
            property: property.to_owned(),
            op,
            value,
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

    #[test]
    fn select_validation() {
        let select: Vec<String> = ["DEVICENAME", "*", "hardwareinformation", "deviceName", "notes"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let properties = &["deviceName", "hardwareInformation", "notes"];
        assert_eq!(
            validate_select(&select, "microsoft.graph.managedDevice", properties).unwrap(),
            vec!["deviceName", "*", "hardwareInformation", "notes"]
        );
        assert_eq!(
            validate_select(&["nope".to_owned()], "microsoft.graph.managedDevice", properties).unwrap_err(),
            ODataError::UnknownProperty {
                property: "nope".into(),
                type_name: "microsoft.graph.managedDevice".into()
            }
        );
    }
}
