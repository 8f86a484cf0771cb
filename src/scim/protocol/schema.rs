//! Attribute characteristics (RFC 7643 §2.2), resource types (RFC 7643 §6)
//! and the case-insensitive attribute resolver (RFC 7643 §2.1, §3.10).
//!
//! Pure lookups over static data. This module must never mutate resources,
//! never know about storage columns, and never treat an unknown attribute of a
//! known schema as valid.

use super::error::ScimError;
use super::filter::AttrPath;
use super::schema_defs::{COMMON, ENTERPRISE_ATTRS, GROUP_ATTRS, USER_ATTRS};
use super::{ENTERPRISE_USER_URN, GROUP_URN, USER_URN};

/// Attribute data types (RFC 7643 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    /// `string` (RFC 7643 §2.3.1).
    String,
    /// `boolean` (RFC 7643 §2.3.2).
    Boolean,
    /// `decimal` (RFC 7643 §2.3.3).
    Decimal,
    /// `integer` (RFC 7643 §2.3.4).
    Integer,
    /// `dateTime` (RFC 7643 §2.3.5).
    DateTime,
    /// `reference` (RFC 7643 §2.3.7).
    Reference,
    /// `complex` (RFC 7643 §2.3.8).
    Complex,
    /// `binary` (RFC 7643 §2.3.6).
    Binary,
}

impl AttrType {
    /// The `type` keyword of the schema representation (RFC 7643 §7).
    pub fn as_str(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Boolean => "boolean",
            AttrType::Decimal => "decimal",
            AttrType::Integer => "integer",
            AttrType::DateTime => "dateTime",
            AttrType::Reference => "reference",
            AttrType::Complex => "complex",
            AttrType::Binary => "binary",
        }
    }
}

/// The `mutability` characteristic (RFC 7643 §2.2, §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    /// `readOnly`: the client must not set it (RFC 7643 §7).
    ReadOnly,
    /// `readWrite` (RFC 7643 §7).
    ReadWrite,
    /// `immutable`: set once, then never changed (RFC 7643 §7).
    Immutable,
    /// `writeOnly`: set by the client, never returned (RFC 7643 §7).
    WriteOnly,
}

impl Mutability {
    /// The keyword of the schema representation (RFC 7643 §7).
    pub fn as_str(self) -> &'static str {
        match self {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        }
    }
}

/// The `returned` characteristic (RFC 7643 §2.2, §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    /// Always returned, whatever `attributes`/`excludedAttributes` say (RFC 7643 §7).
    Always,
    /// Never returned (RFC 7643 §7).
    Never,
    /// Returned unless excluded (RFC 7643 §7).
    Default,
    /// Returned only when named in `attributes` (RFC 7643 §7).
    Request,
}

impl Returned {
    /// The keyword of the schema representation (RFC 7643 §7).
    pub fn as_str(self) -> &'static str {
        match self {
            Returned::Always => "always",
            Returned::Never => "never",
            Returned::Default => "default",
            Returned::Request => "request",
        }
    }
}

/// The `uniqueness` characteristic (RFC 7643 §2.2, §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    /// `none` (RFC 7643 §7).
    None,
    /// `server`: unique within the service provider (tenant) (RFC 7643 §7).
    Server,
    /// `global` (RFC 7643 §7).
    Global,
}

impl Uniqueness {
    /// The keyword of the schema representation (RFC 7643 §7).
    pub fn as_str(self) -> &'static str {
        match self {
            Uniqueness::None => "none",
            Uniqueness::Server => "server",
            Uniqueness::Global => "global",
        }
    }
}

/// One attribute definition with its characteristics (RFC 7643 §2.2, §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttributeDef {
    /// Canonical spelling of the attribute name (RFC 7643 §2.1).
    pub name: &'static str,
    /// Data type (RFC 7643 §2.3).
    pub ty: AttrType,
    /// Whether the attribute is multi-valued (RFC 7643 §2.4).
    pub multi_valued: bool,
    /// Whether the attribute is required (RFC 7643 §7).
    pub required: bool,
    /// Whether string comparison is case-sensitive (RFC 7643 §2.3.1, §7).
    pub case_exact: bool,
    /// Mutability (RFC 7643 §7).
    pub mutability: Mutability,
    /// When the attribute is returned (RFC 7643 §7).
    pub returned: Returned,
    /// Uniqueness (RFC 7643 §7).
    pub uniqueness: Uniqueness,
    /// Sub-attributes of a complex attribute (RFC 7643 §2.3.8).
    pub sub_attributes: &'static [AttributeDef],
    /// Suggested canonical values, e.g. `work`/`home` (RFC 7643 §7).
    pub canonical_values: &'static [&'static str],
    /// Allowed reference types of a reference attribute (RFC 7643 §7).
    pub reference_types: &'static [&'static str],
    /// Human-readable description (RFC 7643 §7).
    pub description: &'static str,
}

impl AttributeDef {
    /// Finds a sub-attribute case-insensitively (RFC 7643 §2.1).
    pub fn sub(&self, name: &str) -> Option<&'static AttributeDef> {
        find(self.sub_attributes, name)
    }

    /// Whether this is a multi-valued complex attribute with a `primary` sub-attribute (RFC 7643 §2.4).
    pub fn has_primary(&self) -> bool {
        self.multi_valued && self.sub("primary").is_some()
    }
}

/// A schema: its URN and top-level attributes (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaDef {
    /// The schema URN (RFC 7643 §7 `id`).
    pub id: &'static str,
    /// Human-readable schema name (RFC 7643 §7).
    pub name: &'static str,
    /// Description (RFC 7643 §7).
    pub description: &'static str,
    /// Top-level attributes, without the common attributes of §3.1 (RFC 7643 §7).
    pub attributes: &'static [AttributeDef],
}

/// The core User schema (RFC 7643 §4.1).
pub static USER_SCHEMA: SchemaDef = SchemaDef {
    id: USER_URN,
    name: "User",
    description: "User Account",
    attributes: USER_ATTRS,
};

/// The Enterprise User extension schema (RFC 7643 §4.3).
pub static ENTERPRISE_USER_SCHEMA: SchemaDef = SchemaDef {
    id: ENTERPRISE_USER_URN,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: ENTERPRISE_ATTRS,
};

/// The core Group schema (RFC 7643 §4.2).
pub static GROUP_SCHEMA: SchemaDef = SchemaDef {
    id: GROUP_URN,
    name: "Group",
    description: "Group",
    attributes: GROUP_ATTRS,
};

/// Every schema this server publishes at `/Schemas` (RFC 7644 §4, RFC 7643 §7).
pub static ALL_SCHEMAS: [&SchemaDef; 3] = [&USER_SCHEMA, &ENTERPRISE_USER_SCHEMA, &GROUP_SCHEMA];

/// The resource types served (RFC 7643 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceType {
    /// `User` at `/Users` (RFC 7643 §4.1).
    User,
    /// `Group` at `/Groups` (RFC 7643 §4.2).
    Group,
}

impl ResourceType {
    /// The resource type name (RFC 7643 §6 `name`).
    pub fn name(self) -> &'static str {
        match self {
            ResourceType::User => "User",
            ResourceType::Group => "Group",
        }
    }
    /// The endpoint relative to the base URL (RFC 7643 §6 `endpoint`).
    pub fn endpoint(self) -> &'static str {
        match self {
            ResourceType::User => "/Users",
            ResourceType::Group => "/Groups",
        }
    }
    /// The core schema URN (RFC 7643 §6 `schema`).
    pub fn core_schema_urn(self) -> &'static str {
        self.core_schema().id
    }
    /// The core schema definition (RFC 7643 §6).
    pub fn core_schema(self) -> &'static SchemaDef {
        match self {
            ResourceType::User => &USER_SCHEMA,
            ResourceType::Group => &GROUP_SCHEMA,
        }
    }
    /// Extension schema URNs (RFC 7643 §6 `schemaExtensions`).
    pub fn extension_urns(self) -> &'static [&'static str] {
        match self {
            ResourceType::User => &[ENTERPRISE_USER_URN],
            ResourceType::Group => &[],
        }
    }
    /// Extension schema definitions (RFC 7643 §6 `schemaExtensions`).
    pub fn extensions(self) -> &'static [&'static SchemaDef] {
        static USER_EXT: [&SchemaDef; 1] = [&ENTERPRISE_USER_SCHEMA];
        match self {
            ResourceType::User => &USER_EXT,
            ResourceType::Group => &[],
        }
    }
    /// The known extension whose URN equals `urn` case-insensitively (RFC 7643 §3.3).
    pub fn extension(self, urn: &str) -> Option<&'static SchemaDef> {
        self.extensions()
            .iter()
            .copied()
            .find(|s| s.id.eq_ignore_ascii_case(urn))
    }
    /// Whether `urn` names the core schema or a known extension of this type (RFC 7643 §3).
    pub fn knows_schema(self, urn: &str) -> bool {
        self.core_schema_urn().eq_ignore_ascii_case(urn) || self.extension(urn).is_some()
    }
}

/// Finds an attribute by name, case-insensitively (RFC 7643 §2.1).
pub fn find(attrs: &'static [AttributeDef], name: &str) -> Option<&'static AttributeDef> {
    attrs.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

/// Where an attribute reference came from, which decides the `scimType` of a miss (RFC 7644 §3.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// A `filter` parameter: unknown attributes are `invalidFilter` (RFC 7644 §3.4.2.2).
    Filter,
    /// A PATCH `path` or value key: unknown attributes are `invalidPath` (RFC 7644 §3.5.2).
    Path,
    /// `attributes`, `excludedAttributes` or `sortBy`: unknown attributes are `invalidValue` (RFC 7644 §3.4.2.5).
    Parameter,
}

impl Usage {
    fn error(self, detail: String) -> ScimError {
        match self {
            Usage::Filter => ScimError::invalid_filter(detail),
            Usage::Path => ScimError::invalid_path(detail),
            Usage::Parameter => ScimError::invalid_value(detail),
        }
    }
}

/// The result of resolving an attribute path against a resource type's schemas (RFC 7643 §2.1, §3.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    /// URN of the schema the attribute belongs to (core URN for common attributes).
    pub schema: &'static str,
    /// Whether the schema is an extension, i.e. values live under the URN key (RFC 7643 §3.3).
    pub in_extension: bool,
    /// The top-level attribute definition (canonical name in `attr.name`).
    pub attr: &'static AttributeDef,
    /// The sub-attribute definition when the path names one.
    pub sub: Option<&'static AttributeDef>,
}

impl Resolved {
    /// The definition the path finally designates: the sub-attribute if any, else the attribute (RFC 7643 §2.3.8).
    pub fn target(&self) -> &'static AttributeDef {
        self.sub.unwrap_or(self.attr)
    }
    /// The canonical, fully spelled path: URN only for extension attributes (RFC 7644 §3.10).
    pub fn canonical_path(&self) -> AttrPath {
        AttrPath {
            urn: self.in_extension.then(|| self.schema.to_string()),
            name: self.attr.name.to_string(),
            sub: self.sub.map(|s| s.name.to_string()),
        }
    }
}

/// Resolves `path` for `resource` case-insensitively, with or without a URN prefix
/// (RFC 7643 §2.1, RFC 7644 §3.10). Unqualified names are looked up in the common
/// attributes, the core schema, then the resource's extensions.
pub fn resolve(
    resource: ResourceType,
    path: &AttrPath,
    usage: Usage,
) -> Result<Resolved, ScimError> {
    let core = resource.core_schema();
    let (schema, in_extension, attr) = match &path.urn {
        Some(urn) if core.id.eq_ignore_ascii_case(urn) => {
            let a = find(COMMON, &path.name).or_else(|| find(core.attributes, &path.name));
            (core.id, false, a)
        }
        Some(urn) => match resource.extension(urn) {
            Some(ext) => (ext.id, true, find(ext.attributes, &path.name)),
            None => {
                return Err(usage.error(format!(
                    "unknown schema '{urn}' for resource type {}",
                    resource.name()
                )));
            }
        },
        None => {
            if let Some(a) = find(COMMON, &path.name).or_else(|| find(core.attributes, &path.name))
            {
                (core.id, false, Some(a))
            } else {
                match resource
                    .extensions()
                    .iter()
                    .find_map(|e| find(e.attributes, &path.name).map(|a| (e.id, a)))
                {
                    Some((id, a)) => (id, true, Some(a)),
                    None => (core.id, false, None),
                }
            }
        }
    };
    let attr = attr.ok_or_else(|| {
        usage.error(format!(
            "unknown attribute '{path}' for resource type {}",
            resource.name()
        ))
    })?;
    let sub = match &path.sub {
        None => None,
        Some(s) => Some(attr.sub(s).ok_or_else(|| {
            usage.error(format!("unknown sub-attribute '{s}' of '{}'", attr.name))
        })?),
    };
    Ok(Resolved {
        schema,
        in_extension,
        attr,
        sub,
    })
}

#[cfg(test)]
mod tests {
    use super::super::error::ScimType;
    use super::*;
    use rstest::rstest;

    fn p(text: &str) -> AttrPath {
        AttrPath::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[rstest]
    #[case(ResourceType::User, "username", USER_URN, "userName", None)]
    #[case(
        ResourceType::User,
        "NAME.GIVENNAME",
        USER_URN,
        "name",
        Some("givenName")
    )]
    #[case(
        ResourceType::User,
        "urn:ietf:params:scim:schemas:core:2.0:User:userName",
        USER_URN,
        "userName",
        None
    )]
    #[case(
        ResourceType::User,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
        ENTERPRISE_USER_URN,
        "employeeNumber",
        None
    )]
    #[case(
        ResourceType::User,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        ENTERPRISE_USER_URN,
        "manager",
        Some("value")
    )]
    #[case(
        ResourceType::User,
        "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:Department",
        ENTERPRISE_USER_URN,
        "department",
        None
    )]
    #[case(
        ResourceType::User,
        "department",
        ENTERPRISE_USER_URN,
        "department",
        None
    )]
    #[case(
        ResourceType::User,
        "meta.lastModified",
        USER_URN,
        "meta",
        Some("lastModified")
    )]
    #[case(ResourceType::User, "emails.value", USER_URN, "emails", Some("value"))]
    #[case(
        ResourceType::User,
        "x509certificates.value",
        USER_URN,
        "x509Certificates",
        Some("value")
    )]
    #[case(ResourceType::Group, "displayname", GROUP_URN, "displayName", None)]
    #[case(
        ResourceType::Group,
        "members.$ref",
        GROUP_URN,
        "members",
        Some("$ref")
    )]
    #[case(ResourceType::Group, "ID", GROUP_URN, "id", None)]
    #[case(ResourceType::Group, "externalid", GROUP_URN, "externalId", None)]
    fn resolver_finds_canonical_spelling(
        #[case] rt: ResourceType,
        #[case] text: &str,
        #[case] schema: &str,
        #[case] name: &str,
        #[case] sub: Option<&str>,
    ) {
        let r = resolve(rt, &p(text), Usage::Filter).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.schema, schema);
        assert_eq!(r.attr.name, name);
        assert_eq!(r.sub.map(|s| s.name), sub);
    }

    #[rstest]
    #[case(ResourceType::User, "nosuch", Usage::Filter, ScimType::InvalidFilter)]
    #[case(ResourceType::User, "name.nosuch", Usage::Path, ScimType::InvalidPath)]
    #[case(ResourceType::Group, "userName", Usage::Path, ScimType::InvalidPath)]
    #[case(
        ResourceType::Group,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        Usage::Filter,
        ScimType::InvalidFilter
    )]
    #[case(
        ResourceType::User,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:nosuch",
        Usage::Parameter,
        ScimType::InvalidValue
    )]
    fn resolver_rejects_unknown_attributes(
        #[case] rt: ResourceType,
        #[case] text: &str,
        #[case] usage: Usage,
        #[case] t: ScimType,
    ) {
        let e = resolve(rt, &p(text), usage).err().map(|e| e.scim_type);
        assert_eq!(e, Some(Some(t)));
    }

    #[test]
    fn canonical_path_of_extension_attribute_carries_the_urn() {
        let r = resolve(ResourceType::User, &p("manager.VALUE"), Usage::Path);
        let path = r
            .map(|r| r.canonical_path().to_string())
            .unwrap_or_default();
        assert_eq!(
            path,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"
        );
    }

    #[test]
    fn password_is_write_only_and_never_returned() {
        let r = resolve(ResourceType::User, &p("password"), Usage::Path);
        let a = r.map(|r| r.attr).ok();
        assert_eq!(a.map(|a| a.returned), Some(Returned::Never));
        assert_eq!(a.map(|a| a.mutability), Some(Mutability::WriteOnly));
    }

    #[test]
    fn user_schema_has_every_core_attribute() {
        let names: Vec<&str> = USER_ATTRS.iter().map(|a| a.name).collect();
        for n in [
            "userName",
            "name",
            "displayName",
            "nickName",
            "profileUrl",
            "title",
            "userType",
            "preferredLanguage",
            "locale",
            "timezone",
            "active",
            "password",
            "emails",
            "phoneNumbers",
            "ims",
            "photos",
            "addresses",
            "groups",
            "entitlements",
            "roles",
            "x509Certificates",
        ] {
            assert!(names.contains(&n), "{n} missing");
        }
    }
}
