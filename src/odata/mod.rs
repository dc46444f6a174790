//! OData system query options as Microsoft Graph clients send them: the query string
//! ([`options`]), the `$filter` lexer ([`lexer`]) and syntax tree ([`filter`]), and the
//! evaluation of a filter over JSON documents held in memory ([`memory`]). The translation of
//! a filter into SQL belongs to the store (`store::filter_sql`), which gives it the same
//! semantics; a black-box test runs one table of filters through both.

mod filter;
mod lexer;
pub mod memory;
mod options;

pub use filter::{parse_filter, CmpOp, Expr, Literal, StrFunc};
pub(crate) use lexer::parse_datetime;
pub use options::{parse_query, validate_select, Expand, OrderBy, QueryOptions};

/// Longest `$filter` accepted, in characters; a hostile client must not make us parse megabytes.
pub const MAX_FILTER_LENGTH: usize = 4000;
/// Deepest nesting of parentheses and `not` in `$filter`; parsing is recursive, so this
/// bounds stack use.
pub const MAX_FILTER_DEPTH: usize = 50;
/// Deepest nesting of `$expand` inside `$expand` (also recursive).
pub const MAX_EXPAND_DEPTH: usize = 10;

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
