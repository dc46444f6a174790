//! Graph types as data: each entity and complex type is a static table of properties with
//! their Edm type, the API versions that have them, nullability and whether clients may write
//! them. One table drives the JSON a version shows (every property present, defaults for unset
//! ones, evolvable enums), the validation of write bodies (400s that name the property) and
//! `$select`.

pub mod app_protection;
pub mod compliance;
pub mod compliance_status;
pub mod device_management;
pub mod directory;
pub mod managed_device;
pub mod mtd_connector;
pub mod openapi;
pub mod rbac;
pub mod served;

use serde_json::{Map, Value};

/// `v1.0` or `beta`: which of a type's property sets and enum members a view shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    V1,
    Beta,
}

impl ApiVersion {
    pub fn segment(self) -> &'static str {
        match self {
            ApiVersion::V1 => "v1.0",
            ApiVersion::Beta => "beta",
        }
    }
}

/// Which API versions have a property or enum member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Avail {
    Both,
    BetaOnly,
}

impl Avail {
    pub fn in_version(self, v: ApiVersion) -> bool {
        matches!((self, v), (Avail::Both, _) | (Avail::BetaOnly, ApiVersion::Beta))
    }
}

#[derive(Debug)]
pub struct EnumType {
    pub name: &'static str,
    pub members: &'static [(&'static str, Avail)],
}

#[derive(Debug)]
pub struct StructType {
    /// Unqualified name, e.g. `deviceManagementSettings`.
    pub name: &'static str,
    /// Entities carry `@odata.type` in responses; complex values do not.
    pub is_entity: bool,
    pub props: &'static [Prop],
}

#[derive(Debug, Clone, Copy)]
pub enum Ty {
    Bool,
    Int32,
    Int64,
    Double,
    String,
    Guid,
    DateTimeOffset,
    Enum(&'static EnumType),
    Struct(&'static StructType),
    Collection(&'static Ty),
}

impl Ty {
    fn edm_name(&self) -> String {
        match self {
            Ty::Bool => "Edm.Boolean".into(),
            Ty::Int32 => "Edm.Int32".into(),
            Ty::Int64 => "Edm.Int64".into(),
            Ty::Double => "Edm.Double".into(),
            Ty::String => "Edm.String".into(),
            Ty::Guid => "Edm.Guid".into(),
            Ty::DateTimeOffset => "Edm.DateTimeOffset".into(),
            Ty::Enum(e) => format!("microsoft.graph.{}", e.name),
            Ty::Struct(s) => format!("microsoft.graph.{}", s.name),
            Ty::Collection(t) => format!("Collection({})", t.edm_name()),
        }
    }
}

/// What a property is when nothing was stored for it.
#[derive(Debug, Clone, Copy)]
pub enum Default {
    Null,
    Bool(bool),
    Int(i64),
    Str(&'static str),
    EmptyCollection,
    /// The struct with every property at its own default.
    Struct,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writable {
    Yes,
    /// Server-owned: shown, and ignored in write bodies, as Graph ignores them.
    No,
}

#[derive(Debug)]
pub struct Prop {
    pub name: &'static str,
    pub ty: Ty,
    pub avail: Avail,
    pub nullable: bool,
    pub writable: Writable,
    pub default: Default,
}

/// A property, in the order the tables write them.
pub const fn prop(
    name: &'static str,
    ty: Ty,
    avail: Avail,
    nullable: bool,
    writable: Writable,
    default: Default,
) -> Prop {
    Prop {
        name,
        ty,
        avail,
        nullable,
        writable,
        default,
    }
}

impl StructType {
    pub fn qualified_name(&self) -> String {
        format!("microsoft.graph.{}", self.name)
    }

    pub fn prop(&self, name: &str, v: ApiVersion) -> Option<&'static Prop> {
        self.props.iter().find(|p| p.name == name && p.avail.in_version(v))
    }
}

/// How a response shows values.
#[derive(Debug, Clone, Copy)]
pub struct View {
    pub version: ApiVersion,
    /// `Prefer: include-unknown-enum-members`: beta-only members are shown as they are on v1.0.
    pub include_unknown_enum_members: bool,
}

/// The JSON of a stored value of type `st` as version `view.version` shows it: every property
/// the version has, in declared order.
pub fn render(st: &StructType, stored: &Map<String, Value>, view: View) -> Map<String, Value> {
    render_owned(st, stored.clone(), view)
}

/// `render` of a value the caller gives up: its values are moved into the result, not copied
/// (the path of every Graph GET of a managed device).
pub fn render_owned(st: &StructType, mut stored: Map<String, Value>, view: View) -> Map<String, Value> {
    // Room for the type and the context annotations (`with_context` puts the latter first).
    let mut out = Map::with_capacity(st.props.len() + 2);
    if st.is_entity {
        out.insert("@odata.type".into(), Value::String(format!("#{}", st.qualified_name())));
    }
    for p in st.props.iter().filter(|p| p.avail.in_version(view.version)) {
        let value = match stored.remove(p.name) {
            Some(v) => render_value(&p.ty, v, view),
            None => default_value(p, view),
        };
        out.insert(p.name.into(), value);
    }
    out
}

fn default_value(p: &Prop, view: View) -> Value {
    match p.default {
        Default::Null => Value::Null,
        Default::Bool(b) => Value::Bool(b),
        Default::Int(i) => Value::from(i),
        Default::Str(s) => Value::String(s.into()),
        Default::EmptyCollection => Value::Array(Vec::new()),
        Default::Struct => match p.ty {
            Ty::Struct(st) => Value::Object(render_owned(st, Map::new(), view)),
            _ => Value::Null,
        },
    }
}

fn render_value(ty: &Ty, v: Value, view: View) -> Value {
    match (ty, v) {
        (_, Value::Null) => Value::Null,
        (Ty::Enum(e), Value::String(s)) => {
            let beta_only = e.members.iter().any(|(m, a)| *m == s && *a == Avail::BetaOnly);
            if beta_only && view.version == ApiVersion::V1 && !view.include_unknown_enum_members {
                Value::String("unknownFutureValue".into())
            } else {
                Value::String(s)
            }
        }
        (Ty::Struct(st), Value::Object(m)) => Value::Object(render_owned(st, m, view)),
        (Ty::Collection(inner), Value::Array(items)) => {
            Value::Array(items.into_iter().map(|i| render_value(inner, i, view)).collect())
        }
        (_, v) => v,
    }
}

/// A write body refused: the message names the property, as Graph's do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// Validates a PATCH body for `st` in `version`: every property must exist in that version and
/// have a value of its type. Returns the writable properties with canonical values (enum
/// members in their declared casing); server-owned properties are dropped.
pub fn validate_patch(st: &StructType, body: &Value, version: ApiVersion) -> Result<Map<String, Value>, Invalid> {
    let Value::Object(fields) = body else {
        return Err(Invalid(format!(
            "The request body must be a JSON object of type '{}'.",
            st.qualified_name()
        )));
    };
    let mut out = Map::new();
    for (name, value) in fields {
        if let Some(annotation) = name.strip_prefix("@odata.") {
            if annotation == "type" {
                check_odata_type(st, value)?;
            }
            continue;
        }
        let prop = st.prop(name, version).ok_or_else(|| {
            Invalid(format!(
                "The property '{name}' does not exist on type '{}'. Make sure to only use property names that are defined by the type or mark the type as open type.",
                st.qualified_name()
            ))
        })?;
        let canonical = validate_value(prop.name, &prop.ty, prop.nullable, value, version)?;
        if prop.writable == Writable::Yes {
            out.insert(prop.name.into(), canonical);
        }
    }
    Ok(out)
}

fn check_odata_type(st: &StructType, value: &Value) -> Result<(), Invalid> {
    let given = value.as_str().unwrap_or("");
    let bare = given.trim_start_matches('#');
    if bare == st.qualified_name() || bare == st.name {
        Ok(())
    } else {
        Err(Invalid(format!(
            "A type named '{given}' could not be resolved by the model. The expected type is '{}'.",
            st.qualified_name()
        )))
    }
}

fn validate_value(name: &str, ty: &Ty, nullable: bool, value: &Value, version: ApiVersion) -> Result<Value, Invalid> {
    let literal = || match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let cannot_convert = || {
        Invalid(format!(
            "Cannot convert the literal '{}' to the expected type '{}' of property '{name}'.",
            literal(),
            ty.edm_name()
        ))
    };
    if value.is_null() {
        return if nullable {
            Ok(Value::Null)
        } else {
            Err(Invalid(format!("The property '{name}' cannot be null.")))
        };
    }
    match ty {
        Ty::Bool => value.as_bool().map(Value::Bool).ok_or_else(cannot_convert),
        Ty::Int32 => value
            .as_i64()
            .filter(|i| i32::try_from(*i).is_ok())
            .map(Value::from)
            .ok_or_else(cannot_convert),
        Ty::Int64 => value.as_i64().map(Value::from).ok_or_else(cannot_convert),
        Ty::Double => value.as_f64().map(Value::from).ok_or_else(cannot_convert),
        Ty::String => value
            .as_str()
            .map(|s| Value::String(s.into()))
            .ok_or_else(cannot_convert),
        Ty::Guid => value
            .as_str()
            .and_then(|s| uuid::Uuid::try_parse(s).ok())
            .map(|u| Value::String(u.hyphenated().to_string()))
            .ok_or_else(cannot_convert),
        Ty::DateTimeOffset => value
            .as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| {
                Value::String(
                    t.with_timezone(&chrono::Utc)
                        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                )
            })
            .ok_or_else(cannot_convert),
        Ty::Enum(e) => {
            let s = value.as_str().ok_or_else(cannot_convert)?;
            e.members
                .iter()
                .find(|(m, a)| m.eq_ignore_ascii_case(s) && a.in_version(version))
                .map(|(m, _)| Value::String((*m).into()))
                .ok_or_else(|| {
                    Invalid(format!(
                        "The value '{s}' is not a valid member of enum type 'microsoft.graph.{}' for property '{name}'.",
                        e.name
                    ))
                })
        }
        Ty::Struct(st) => {
            if !value.is_object() {
                return Err(Invalid(format!(
                    "An unexpected '{}' node was found for property named '{name}' when reading from the JSON reader. A 'StartObject' node was expected.",
                    json_node(value)
                )));
            }
            validate_patch(st, value, version).map(Value::Object)
        }
        Ty::Collection(inner) => {
            let Value::Array(items) = value else {
                return Err(Invalid(format!(
                    "An unexpected '{}' node was found for property named '{name}' when reading from the JSON reader. A 'StartArray' node was expected.",
                    json_node(value)
                )));
            };
            items
                .iter()
                .map(|i| validate_value(name, inner, false, i, version))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
    }
}

fn json_node(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "StartObject",
        Value::Array(_) => "StartArray",
        _ => "PrimitiveValue",
    }
}

/// Applies a validated patch: complex values merge property by property (so a client setting
/// one setting does not reset the others); everything else is replaced.
pub fn merge_patch(stored: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (k, v) in patch {
        match (stored.get_mut(&k), v) {
            (Some(Value::Object(existing)), Value::Object(incoming)) => merge_patch(existing, incoming),
            (_, v) => {
                stored.insert(k, v);
            }
        }
    }
}

/// `$select` on a rendered entity: the named properties (and annotations) only.
pub fn select(
    rendered: Map<String, Value>,
    st: &StructType,
    names: &[String],
    version: ApiVersion,
) -> Result<Map<String, Value>, Invalid> {
    if names.iter().any(|n| n == "*") {
        return Ok(rendered);
    }
    let mut wanted = Vec::with_capacity(names.len());
    for n in names {
        let p = st
            .props
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(n) && p.avail.in_version(version))
            .ok_or_else(|| {
                Invalid(format!(
                    "Could not find a property named '{n}' on type '{}'.",
                    st.qualified_name()
                ))
            })?;
        wanted.push(p.name);
    }
    Ok(rendered
        .into_iter()
        .filter(|(k, _)| k.starts_with('@') || wanted.contains(&k.as_str()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    static COLOR: EnumType = EnumType {
        name: "color",
        members: &[
            ("red", Avail::Both),
            ("unknownFutureValue", Avail::Both),
            ("ultraviolet", Avail::BetaOnly),
        ],
    };
    static INNER: StructType = StructType {
        name: "inner",
        is_entity: false,
        props: &[
            Prop {
                name: "days",
                ty: Ty::Int32,
                avail: Avail::Both,
                nullable: false,
                writable: Writable::Yes,
                default: Default::Int(30),
            },
            Prop {
                name: "flag",
                ty: Ty::Bool,
                avail: Avail::Both,
                nullable: false,
                writable: Writable::Yes,
                default: Default::Bool(false),
            },
            Prop {
                name: "betaFlag",
                ty: Ty::Bool,
                avail: Avail::BetaOnly,
                nullable: false,
                writable: Writable::Yes,
                default: Default::Bool(true),
            },
        ],
    };
    static THING: StructType = StructType {
        name: "thing",
        is_entity: true,
        props: &[
            Prop {
                name: "id",
                ty: Ty::String,
                avail: Avail::Both,
                nullable: false,
                writable: Writable::No,
                default: Default::Str(""),
            },
            Prop {
                name: "color",
                ty: Ty::Enum(&COLOR),
                avail: Avail::Both,
                nullable: false,
                writable: Writable::Yes,
                default: Default::Str("red"),
            },
            Prop {
                name: "inner",
                ty: Ty::Struct(&INNER),
                avail: Avail::Both,
                nullable: true,
                writable: Writable::Yes,
                default: Default::Struct,
            },
            Prop {
                name: "when",
                ty: Ty::DateTimeOffset,
                avail: Avail::Both,
                nullable: true,
                writable: Writable::Yes,
                default: Default::Null,
            },
        ],
    };

    fn view(version: ApiVersion, include: bool) -> View {
        View {
            version,
            include_unknown_enum_members: include,
        }
    }

    #[test]
    fn renders_every_property_of_the_version_with_defaults() {
        let v1 = render(&THING, &Map::new(), view(ApiVersion::V1, false));
        assert_eq!(
            Value::Object(v1),
            json!({"@odata.type": "#microsoft.graph.thing", "id": "", "color": "red", "inner": {"days": 30, "flag": false}, "when": null})
        );
        let beta = render(&THING, &Map::new(), view(ApiVersion::Beta, false));
        assert_eq!(beta["inner"], json!({"days": 30, "flag": false, "betaFlag": true}));
    }

    #[test]
    fn beta_only_enum_members_are_unknown_future_value_on_v1_unless_preferred() {
        let stored = json!({"color": "ultraviolet"}).as_object().unwrap().clone();
        assert_eq!(
            render(&THING, &stored, view(ApiVersion::V1, false))["color"],
            "unknownFutureValue"
        );
        assert_eq!(
            render(&THING, &stored, view(ApiVersion::V1, true))["color"],
            "ultraviolet"
        );
        assert_eq!(
            render(&THING, &stored, view(ApiVersion::Beta, false))["color"],
            "ultraviolet"
        );
    }

    #[test]
    fn patch_validation_names_the_property() {
        let cases: &[(Value, ApiVersion, &str)] = &[
            (
                json!({"nope": 1}),
                ApiVersion::V1,
                "The property 'nope' does not exist on type 'microsoft.graph.thing'",
            ),
            (
                json!({"inner": {"betaFlag": true}}),
                ApiVersion::V1,
                "The property 'betaFlag' does not exist on type 'microsoft.graph.inner'",
            ),
            (
                json!({"inner": {"days": "ten"}}),
                ApiVersion::V1,
                "Cannot convert the literal 'ten' to the expected type 'Edm.Int32' of property 'days'",
            ),
            (
                json!({"inner": {"days": 3_000_000_000i64}}),
                ApiVersion::V1,
                "expected type 'Edm.Int32' of property 'days'",
            ),
            (
                json!({"inner": {"flag": null}}),
                ApiVersion::V1,
                "The property 'flag' cannot be null",
            ),
            (json!({"inner": 5}), ApiVersion::V1, "for property named 'inner'"),
            (
                json!({"color": "blue"}),
                ApiVersion::V1,
                "The value 'blue' is not a valid member of enum type 'microsoft.graph.color' for property 'color'",
            ),
            (
                json!({"color": "ultraviolet"}),
                ApiVersion::V1,
                "The value 'ultraviolet' is not a valid member",
            ),
            (
                json!({"when": "yesterday"}),
                ApiVersion::V1,
                "expected type 'Edm.DateTimeOffset' of property 'when'",
            ),
            (
                json!({"@odata.type": "#microsoft.graph.other"}),
                ApiVersion::V1,
                "A type named '#microsoft.graph.other' could not be resolved",
            ),
            (json!([1]), ApiVersion::V1, "must be a JSON object"),
        ];
        for (body, version, expected) in cases {
            let err = validate_patch(&THING, body, *version).unwrap_err();
            assert!(err.0.contains(expected), "{body}: {}", err.0);
        }
    }

    #[test]
    fn patch_canonicalises_and_drops_server_owned_properties() {
        let body = json!({"@odata.type": "microsoft.graph.thing", "id": "mine", "color": "ULTRAVIOLET", "inner": {"flag": true}});
        let patch = validate_patch(&THING, &body, ApiVersion::Beta).unwrap();
        assert_eq!(
            Value::Object(patch),
            json!({"color": "ultraviolet", "inner": {"flag": true}})
        );
    }

    #[test]
    fn merge_keeps_sibling_settings() {
        let mut stored = json!({"inner": {"days": 5, "flag": false}, "color": "red"})
            .as_object()
            .unwrap()
            .clone();
        merge_patch(
            &mut stored,
            json!({"inner": {"flag": true}, "color": "ultraviolet"})
                .as_object()
                .unwrap()
                .clone(),
        );
        assert_eq!(
            Value::Object(stored),
            json!({"inner": {"days": 5, "flag": true}, "color": "ultraviolet"})
        );
    }

    #[test]
    fn select_keeps_named_properties_and_refuses_unknown_ones() {
        let rendered = render(&THING, &Map::new(), view(ApiVersion::V1, false));
        let picked = select(rendered.clone(), &THING, &["Color".into()], ApiVersion::V1).unwrap();
        assert_eq!(
            Value::Object(picked),
            json!({"@odata.type": "#microsoft.graph.thing", "color": "red"})
        );
        assert!(select(rendered, &THING, &["nope".into()], ApiVersion::V1).is_err());
    }
}
