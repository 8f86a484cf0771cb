//! The static attribute definitions of RFC 7643: common attributes (§3.1),
//! core User (§4.1), Enterprise User extension (§4.3) and Group (§4.2).
//!
//! Pure data. This module must never hold runtime state or org-specific
//! mappings; those live in the server's admin module.

use super::schema::{AttrType, AttributeDef, Mutability, Returned, Uniqueness};

const fn base(name: &'static str, ty: AttrType, description: &'static str) -> AttributeDef {
    AttributeDef {
        name,
        ty,
        multi_valued: false,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        uniqueness: Uniqueness::None,
        sub_attributes: &[],
        canonical_values: &[],
        reference_types: &[],
        description,
    }
}

const fn s(name: &'static str, d: &'static str) -> AttributeDef {
    base(name, AttrType::String, d)
}
const fn b(name: &'static str, d: &'static str) -> AttributeDef {
    base(name, AttrType::Boolean, d)
}
const fn r(name: &'static str, refs: &'static [&'static str], d: &'static str) -> AttributeDef {
    base(name, AttrType::Reference, d).refs(refs)
}
const fn dt(name: &'static str, d: &'static str) -> AttributeDef {
    base(name, AttrType::DateTime, d)
}
const fn c(name: &'static str, subs: &'static [AttributeDef], d: &'static str) -> AttributeDef {
    base(name, AttrType::Complex, d).subs(subs)
}

impl AttributeDef {
    const fn multi(mut self) -> Self {
        self.multi_valued = true;
        self
    }
    const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    const fn exact(mut self) -> Self {
        self.case_exact = true;
        self
    }
    const fn read_only(mut self) -> Self {
        self.mutability = Mutability::ReadOnly;
        self
    }
    const fn immutable(mut self) -> Self {
        self.mutability = Mutability::Immutable;
        self
    }
    const fn write_only(mut self) -> Self {
        self.mutability = Mutability::WriteOnly;
        self
    }
    const fn returned(mut self, r: Returned) -> Self {
        self.returned = r;
        self
    }
    const fn unique(mut self) -> Self {
        self.uniqueness = Uniqueness::Server;
        self
    }
    const fn canon(mut self, v: &'static [&'static str]) -> Self {
        self.canonical_values = v;
        self
    }
    const fn refs(mut self, v: &'static [&'static str]) -> Self {
        self.reference_types = v;
        self
    }
    const fn subs(mut self, v: &'static [AttributeDef]) -> Self {
        self.sub_attributes = v;
        self
    }
}

/// Common attributes of every resource: `id`, `externalId`, `meta` (RFC 7643 §3.1).
pub static COMMON: &[AttributeDef] = &[
    s(
        "id",
        "Unique identifier for the resource, assigned by the service provider.",
    )
    .exact()
    .read_only()
    .returned(Returned::Always)
    .unique(),
    s(
        "externalId",
        "Identifier for the resource as defined by the provisioning client.",
    )
    .exact(),
    c("meta", META_SUBS, "Resource metadata.").read_only(),
];

static META_SUBS: &[AttributeDef] = &[
    s("resourceType", "The name of the resource type.")
        .exact()
        .read_only(),
    dt("created", "When the resource was added.").read_only(),
    dt("lastModified", "When the resource was last updated.").read_only(),
    r("location", &["uri"], "The URI of the resource.")
        .exact()
        .read_only(),
    s("version", "The version (ETag) of the resource.")
        .exact()
        .read_only(),
];

const EMAIL_TYPES: &[&str] = &["work", "home", "other"];
const PHONE_TYPES: &[&str] = &["work", "home", "mobile", "fax", "pager", "other"];
const IM_TYPES: &[&str] = &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"];

/// Sub-attributes shared by the simple multi-valued attributes (RFC 7643 §2.4).
macro_rules! mv_subs {
    ($value:expr, $types:expr) => {
        &[
            $value,
            s(
                "display",
                "A human-readable name, primarily used for display purposes.",
            ),
            s("type", "A label indicating the attribute's function.").canon($types),
            b(
                "primary",
                "Indicates the preferred value for this attribute.",
            ),
        ]
    };
}

static NAME_SUBS: &[AttributeDef] = &[
    s("formatted", "The full name, formatted for display."),
    s("familyName", "The family name of the User."),
    s("givenName", "The given name of the User."),
    s("middleName", "The middle name(s) of the User."),
    s("honorificPrefix", "The honorific prefix(es) of the User."),
    s("honorificSuffix", "The honorific suffix(es) of the User."),
];

static ADDRESS_SUBS: &[AttributeDef] = &[
    s(
        "formatted",
        "The full mailing address, formatted for display.",
    ),
    s("streetAddress", "The full street address component."),
    s("locality", "The city or locality component."),
    s("region", "The state or region component."),
    s("postalCode", "The zip code or postal code component."),
    s(
        "country",
        "The country name component (ISO 3166-1 alpha-2).",
    ),
    s("type", "A label indicating the address's function.").canon(&["work", "home", "other"]),
    b("primary", "Indicates the primary address."),
];

static GROUPS_SUBS: &[AttributeDef] = &[
    s("value", "The identifier of the User's group.").read_only(),
    r("$ref", &["User", "Group"], "The URI of the Group resource.").read_only(),
    s("display", "A human-readable name of the group.").read_only(),
    s("type", "Direct or indirect membership.")
        .canon(&["direct", "indirect"])
        .read_only(),
];

/// Core User attributes (RFC 7643 §4.1, schema representation §8.7.1).
pub static USER_ATTRS: &[AttributeDef] = &[
    s(
        "userName",
        "Unique identifier for the User, used to authenticate.",
    )
    .required()
    .unique(),
    c("name", NAME_SUBS, "The components of the user's real name."),
    s(
        "displayName",
        "The name of the User, suitable for display to end-users.",
    ),
    s("nickName", "The casual way to address the user."),
    r(
        "profileUrl",
        &["external"],
        "A fully qualified URL to the User's online profile.",
    ),
    s("title", "The user's title, such as \"Vice President\"."),
    s(
        "userType",
        "Identifies the relationship between the organization and the user.",
    ),
    s(
        "preferredLanguage",
        "The User's preferred written or spoken language.",
    ),
    s("locale", "The User's default location for localization."),
    s(
        "timezone",
        "The User's time zone in the IANA Time Zone database format.",
    ),
    b("active", "The User's administrative status."),
    s("password", "The User's cleartext password; never returned.")
        .write_only()
        .returned(Returned::Never),
    c(
        "emails",
        mv_subs!(s("value", "Email address for the user."), EMAIL_TYPES),
        "Email addresses for the user.",
    )
    .multi(),
    c(
        "phoneNumbers",
        mv_subs!(s("value", "Phone number of the User."), PHONE_TYPES),
        "Phone numbers for the User.",
    )
    .multi(),
    c(
        "ims",
        mv_subs!(
            s("value", "Instant messaging address for the User."),
            IM_TYPES
        ),
        "Instant messaging addresses for the User.",
    )
    .multi(),
    c(
        "photos",
        mv_subs!(
            r("value", &["external"], "URL of a photo of the User."),
            &["photo", "thumbnail"]
        ),
        "URLs of photos of the User.",
    )
    .multi(),
    c(
        "addresses",
        ADDRESS_SUBS,
        "A physical mailing address for this User.",
    )
    .multi(),
    c(
        "groups",
        GROUPS_SUBS,
        "A list of groups to which the user belongs.",
    )
    .multi()
    .read_only(),
    c(
        "entitlements",
        mv_subs!(s("value", "The value of an entitlement."), &[]),
        "A list of entitlements for the User.",
    )
    .multi(),
    c(
        "roles",
        mv_subs!(s("value", "The value of a role."), &[]),
        "A list of roles for the User.",
    )
    .multi(),
    c(
        "x509Certificates",
        mv_subs!(
            base(
                "value",
                AttrType::Binary,
                "The value of an X.509 certificate."
            ),
            &[]
        ),
        "A list of certificates issued to the User.",
    )
    .multi(),
];

static MANAGER_SUBS: &[AttributeDef] = &[
    s(
        "value",
        "The id of the SCIM resource representing the User's manager.",
    ),
    r(
        "$ref",
        &["User"],
        "The URI of the SCIM resource representing the User's manager.",
    ),
    s("displayName", "The displayName of the User's manager.").read_only(),
];

/// Enterprise User extension attributes (RFC 7643 §4.3).
pub static ENTERPRISE_ATTRS: &[AttributeDef] = &[
    s(
        "employeeNumber",
        "Numeric or alphanumeric identifier assigned to a person.",
    ),
    s("costCenter", "Identifies the name of a cost center."),
    s("organization", "Identifies the name of an organization."),
    s("division", "Identifies the name of a division."),
    s("department", "Identifies the name of a department."),
    c("manager", MANAGER_SUBS, "The User's manager."),
];

static MEMBER_SUBS: &[AttributeDef] = &[
    s("value", "Identifier of the member of this Group.").immutable(),
    r(
        "$ref",
        &["User", "Group"],
        "The URI of the member resource.",
    )
    .immutable(),
    s("display", "A human-readable name of the member.").read_only(),
    s("type", "The type of member.")
        .canon(&["User", "Group"])
        .immutable(),
];

/// Core Group attributes (RFC 7643 §4.2, schema representation §8.7.1).
pub static GROUP_ATTRS: &[AttributeDef] = &[
    s("displayName", "A human-readable name for the Group.").required(),
    c("members", MEMBER_SUBS, "A list of members of the Group.").multi(),
];
