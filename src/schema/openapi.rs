//! The tables as JSON Schema, for `openapi.yaml`: one component per type and version, named
//! `v1.0.microsoft.graph.<type>` or `beta.microsoft.graph.<type>`, with the properties, types,
//! enum members and nullability the version has, server-owned properties `readOnly`, and the
//! polymorphic families as `oneOf` with an `@odata.type` discriminator. The same tables drive
//! what the server shows and accepts, so the document cannot describe another shape.

use serde_json::{json, Map, Value};

use super::{ApiVersion, Avail, Default, EnumType, StructType, Ty, Writable};

/// A polymorphic Graph type: values name their derived type with `@odata.type`.
#[derive(Debug)]
pub struct Family {
    /// The base type's name, e.g. `deviceCompliancePolicy`.
    pub name: &'static str,
    pub members: &'static [(&'static StructType, Avail)],
}

/// A navigation property: not in the tables (the server shows it only with `$expand`, and takes
/// it inline only where a route says so), but in the document, so that clients can type it.
#[derive(Debug)]
pub struct Navigation {
    /// The type (or family) that has it.
    pub owner: &'static str,
    pub name: &'static str,
    pub ty: Ty,
    pub description: &'static str,
}

/// A type `openapi.yaml` names.
#[derive(Debug, Clone, Copy)]
pub enum Described {
    Struct(&'static StructType),
    Family(&'static Family),
}

/// The component name prefix of a version: `v1.0.microsoft.graph.` or `beta.microsoft.graph.`.
pub fn prefix(v: ApiVersion) -> String {
    format!("{}.microsoft.graph.", v.segment())
}

fn reference(v: ApiVersion, name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{}{name}", prefix(v)) })
}

/// The component schemas of `version` for `roots` and every type they reach, in a stable
/// order: each root, then what it reaches, depth first.
pub fn components(
    version: ApiVersion,
    roots: &[Described],
    families: &[&'static Family],
    navigation: &'static [Navigation],
) -> Map<String, Value> {
    let mut gen = Gen {
        version,
        families,
        navigation,
        out: Map::new(),
    };
    for root in roots {
        gen.described(*root);
    }
    gen.out
}

/// `<type>CollectionResponse`: a page of `name` values, as list routes answer.
pub fn collection_response(version: ApiVersion, name: &str) -> Value {
    json!({
        "type": "object",
        "description": format!("A page of `microsoft.graph.{name}` values."),
        "properties": {
            "@odata.context": { "type": "string" },
            "@odata.count": { "type": "integer" },
            "@odata.nextLink": { "type": "string", "format": "uri" },
            "value": { "type": "array", "items": reference(version, name) },
        },
        "required": ["value"],
    })
}

struct Gen<'a> {
    version: ApiVersion,
    families: &'a [&'static Family],
    navigation: &'static [Navigation],
    out: Map<String, Value>,
}

impl Gen<'_> {
    fn key(&self, name: &str) -> String {
        format!("{}{name}", prefix(self.version))
    }

    fn described(&mut self, d: Described) {
        match d {
            Described::Struct(st) => self.structure(st, false),
            Described::Family(f) => self.family(f),
        }
    }

    fn family(&mut self, f: &'static Family) {
        let key = self.key(f.name);
        if self.out.contains_key(&key) {
            return;
        }
        let members: Vec<&StructType> = f
            .members
            .iter()
            .filter(|(_, a)| a.in_version(self.version))
            .map(|(m, _)| *m)
            .collect();
        let mut mapping = Map::new();
        for m in &members {
            mapping.insert(
                format!("#{}", m.qualified_name()),
                json!(format!("#/components/schemas/{}", self.key(m.name))),
            );
        }
        let schema = json!({
            "description": format!(
                "`microsoft.graph.{}`: abstract; a value is one of its derived types, named by `@odata.type`.",
                f.name
            ),
            "oneOf": members.iter().map(|m| reference(self.version, m.name)).collect::<Vec<_>>(),
            "discriminator": { "propertyName": "@odata.type", "mapping": mapping },
        });
        self.out.insert(key, schema);
        for m in members {
            self.structure(m, true);
        }
    }

    fn structure(&mut self, st: &'static StructType, derived: bool) {
        let key = self.key(st.name);
        if self.out.contains_key(&key) {
            return;
        }
        // Reserve the name first: types may reach themselves.
        self.out.insert(key.clone(), Value::Null);
        let mut props = Map::new();
        let mut required = Vec::new();
        let odata_type = format!("#{}", st.qualified_name());
        if derived {
            // A family member: the discriminator, always present.
            props.insert("@odata.type".into(), json!({ "type": "string", "const": odata_type }));
            required.push(json!("@odata.type"));
        } else if st.is_entity {
            props.insert("@odata.type".into(), json!({ "type": "string", "enum": [odata_type] }));
        }
        let mut reached = Vec::new();
        let version = self.version;
        for p in st.props.iter().filter(|p| p.avail.in_version(version)) {
            let mut schema = self.ty(&p.ty, &mut reached);
            if p.nullable {
                schema = nullable(schema);
            }
            let Value::Object(ref mut m) = schema else {
                unreachable!()
            };
            if p.writable == Writable::No {
                m.insert("readOnly".into(), Value::Bool(true));
            }
            match p.default {
                Default::Bool(b) => {
                    m.insert("default".into(), Value::Bool(b));
                }
                Default::Int(i) => {
                    m.insert("default".into(), Value::from(i));
                }
                Default::Str(s) if !s.is_empty() => {
                    m.insert("default".into(), Value::from(s));
                }
                _ => {}
            }
            props.insert(p.name.into(), schema);
        }
        let owners: Vec<&str> = std::iter::once(st.name)
            .chain(
                self.families
                    .iter()
                    .filter(|f| f.members.iter().any(|(m, _)| m.name == st.name))
                    .map(|f| f.name),
            )
            .collect();
        let navigation = self.navigation;
        for n in navigation.iter().filter(|n| owners.contains(&n.owner)) {
            let mut schema = self.ty(&n.ty, &mut reached);
            if let Value::Object(ref mut m) = schema {
                m.insert("description".into(), json!(n.description));
            }
            props.insert(n.name.into(), schema);
        }
        let kind = if st.is_entity { "entity" } else { "complex type" };
        let mut schema = Map::new();
        schema.insert("type".into(), json!("object"));
        schema.insert(
            "description".into(),
            json!(format!(
                "`{}` ({kind}), as `{}` has it. Read-only properties are the server's: shown, and ignored in write bodies.",
                st.qualified_name(),
                self.version.segment()
            )),
        );
        schema.insert("properties".into(), Value::Object(props));
        if !required.is_empty() {
            schema.insert("required".into(), Value::Array(required));
        }
        self.out.insert(key, Value::Object(schema));
        for d in reached {
            self.described(d);
        }
    }

    fn ty(&mut self, ty: &Ty, reached: &mut Vec<Described>) -> Value {
        match ty {
            Ty::Bool => json!({ "type": "boolean" }),
            Ty::Int32 => json!({ "type": "integer", "format": "int32", "minimum": i32::MIN, "maximum": i32::MAX }),
            Ty::Int64 => json!({ "type": "integer", "format": "int64" }),
            Ty::Double => json!({ "type": "number", "format": "double" }),
            Ty::String => json!({ "type": "string" }),
            Ty::Guid => json!({ "type": "string", "format": "uuid" }),
            Ty::DateTimeOffset => json!({ "type": "string", "format": "date-time" }),
            Ty::Enum(e) => {
                self.enumeration(e);
                reference(self.version, e.name)
            }
            Ty::Struct(st) => {
                let d = match self.families.iter().find(|f| f.name == st.name) {
                    Some(f) => Described::Family(f),
                    None => Described::Struct(st),
                };
                reached.push(d);
                reference(self.version, st.name)
            }
            Ty::Collection(inner) => json!({ "type": "array", "items": self.ty(inner, reached) }),
        }
    }

    fn enumeration(&mut self, e: &'static EnumType) {
        let key = self.key(e.name);
        if self.out.contains_key(&key) {
            return;
        }
        let members: Vec<&str> = e
            .members
            .iter()
            .filter(|(_, a)| a.in_version(self.version))
            .map(|(m, _)| *m)
            .collect();
        let description = match self.version {
            ApiVersion::V1 if e.members.iter().any(|(_, a)| *a == Avail::BetaOnly) => format!(
                "`microsoft.graph.{}`. v1.0 shows beta's later members as `unknownFutureValue` unless the request has `Prefer: include-unknown-enum-members`.",
                e.name
            ),
            _ => format!("`microsoft.graph.{}`.", e.name),
        };
        self.out.insert(
            key,
            json!({ "type": "string", "description": description, "enum": members }),
        );
    }
}

fn nullable(schema: Value) -> Value {
    match schema {
        Value::Object(mut m) if m.get("type").is_some_and(Value::is_string) => {
            let t = m.remove("type").unwrap();
            m.insert("type".into(), json!([t, "null"]));
            Value::Object(m)
        }
        other => json!({ "anyOf": [other, { "type": "null" }] }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::prop;

    static SHADE: EnumType = EnumType {
        name: "shade",
        members: &[
            ("dark", Avail::Both),
            ("unknownFutureValue", Avail::Both),
            ("neon", Avail::BetaOnly),
        ],
    };
    static ROUND: StructType = StructType {
        name: "round",
        is_entity: true,
        props: &[
            prop("id", Ty::String, Avail::Both, false, Writable::No, Default::Str("")),
            prop(
                "shade",
                Ty::Enum(&SHADE),
                Avail::Both,
                false,
                Writable::Yes,
                Default::Str("dark"),
            ),
            prop("radius", Ty::Int32, Avail::BetaOnly, true, Writable::Yes, Default::Null),
        ],
    };
    static SQUARE: StructType = StructType {
        name: "square",
        is_entity: true,
        props: &[prop(
            "id",
            Ty::String,
            Avail::Both,
            false,
            Writable::No,
            Default::Str(""),
        )],
    };
    static SHAPE: Family = Family {
        name: "shape",
        members: &[(&ROUND, Avail::Both), (&SQUARE, Avail::BetaOnly)],
    };

    static NAV: &[Navigation] = &[Navigation {
        owner: "shape",
        name: "corners",
        ty: Ty::Collection(&Ty::Struct(&SQUARE)),
        description: "Only with $expand.",
    }];

    #[test]
    fn versions_differ_in_properties_members_and_family_members() {
        let v1 = components(ApiVersion::V1, &[Described::Family(&SHAPE)], &[&SHAPE], NAV);
        let beta = components(ApiVersion::Beta, &[Described::Family(&SHAPE)], &[&SHAPE], NAV);
        assert_eq!(
            v1["v1.0.microsoft.graph.shade"]["enum"],
            json!(["dark", "unknownFutureValue"])
        );
        assert_eq!(
            beta["beta.microsoft.graph.shade"]["enum"],
            json!(["dark", "unknownFutureValue", "neon"])
        );
        let round = &v1["v1.0.microsoft.graph.round"];
        assert!(round["properties"].get("radius").is_none());
        assert_eq!(round["properties"]["id"]["readOnly"], true);
        assert_eq!(round["required"], json!(["@odata.type"]));
        assert_eq!(
            beta["beta.microsoft.graph.round"]["properties"]["radius"]["type"],
            json!(["integer", "null"])
        );
        assert_eq!(v1["v1.0.microsoft.graph.shape"]["oneOf"].as_array().unwrap().len(), 1);
        assert_eq!(
            beta["beta.microsoft.graph.shape"]["discriminator"]["mapping"]["#microsoft.graph.square"],
            "#/components/schemas/beta.microsoft.graph.square"
        );
        // A family's navigation property is on each member; what it reaches is described too.
        assert_eq!(
            round["properties"]["corners"],
            json!({"type": "array", "items": {"$ref": "#/components/schemas/v1.0.microsoft.graph.square"}, "description": "Only with $expand."})
        );
        assert!(v1.contains_key("v1.0.microsoft.graph.square"));
    }
}
