#!/usr/bin/env python3
"""Generates `src/schema/<module>.rs`: the schema engine's static tables (see
`src/schema/mod.rs`) for Graph entity types, from the official Python SDKs' generated models.

    .venv/bin/python scripts/schemagen.py managed_device managedDevice detectedApp > src/schema/managed_device.rs
    .venv/bin/python scripts/schemagen.py directory user group > src/schema/directory.rs

The first argument is the Rust module's name (it only appears in the header's regeneration
command); the rest are root entity types, by their Graph (wire) names. For each root and every
complex and enum type reachable through non-navigation properties (and the derived types of the
abstract complex types in DERIVED_COMPLEX_TYPES), one static is printed.

Sources: msgraph-sdk 1.61.0 (package `msgraph`, v1.0) and msgraph-beta-sdk 1.66.0 (package
`msgraph_beta`, beta). To generate, the models are parsed with `ast`, not imported: each model's
`get_field_deserializers()` names every property's wire name and the ParseNode getter that reads
it (which gives the type), the dataclass fields carry the descriptions as comments, and enums are
`Enum` classes whose values are the wire member names in declaration order.

Other modes:
    schemagen.py --dump-wire-names ROOT    the v1.0 and beta wire names of ROOT's non-navigation
                                           properties, as JSON, from the imported SDKs (a check)
    schemagen.py --no-rustfmt MODULE ROOT...   skip piping the output through rustfmt
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from typing import Optional

V1_SDK = ("msgraph-sdk", "msgraph", "1.61.0")
BETA_SDK = ("msgraph-beta-sdk", "msgraph_beta", "1.66.0")

# ---------------------------------------------------------------------------------------------
# Policies and override tables
# ---------------------------------------------------------------------------------------------

# How properties of a type are made nullable when no override says otherwise. Complex types take
# the policy of the root they were first reached from.
#
# "intune": Intune's CSDL marks value types Nullable="false": booleans, integers, enums and
#   DateTimeOffset (all three DateTimeOffset properties of managedDevice that graph-reference.md
#   §3.2 lists are Nullable=false, and the service shows unset ones as 0001-01-01T00:00:00Z);
#   strings, guids and complex values are nullable; collections are not.
# "directory": outside Intune, Graph shows unset scalars as null, booleans included (the SDKs'
#   descriptions: `onPremisesSyncEnabled` is "null if this object has never synced ... (default)",
#   `isManagementRestricted` "If not set, the default value is null"); so every scalar and complex
#   value is nullable with a null default, and collections are not nullable. (From memory of the
#   CSDL, which declares these without Nullable="false"; the CSDL itself was not checked here.)
NULLABLE_POLICY = {
    "managedDevice": "intune",
    "detectedApp": "intune",
    "user": "directory",
    "group": "directory",
}
DEFAULT_NULLABLE_POLICY = "intune"

# (type, property) -> nullable. managedDevice: graph-reference.md §3.2, "Nullable (v1.0 CSDL)"
# column (authoritative where given); detectedApp: §3.6.
NULLABLE_OVERRIDES = {
    ("managedDevice", "androidSecurityPatchLevel"): True,
    ("managedDevice", "azureADDeviceId"): True,
    ("managedDevice", "azureADRegistered"): True,
    ("managedDevice", "complianceGracePeriodExpirationDateTime"): False,
    ("managedDevice", "complianceState"): False,
    ("managedDevice", "deviceActionResults"): True,
    ("managedDevice", "deviceCategoryDisplayName"): True,
    ("managedDevice", "deviceEnrollmentType"): False,
    ("managedDevice", "deviceName"): True,
    ("managedDevice", "deviceRegistrationState"): False,
    ("managedDevice", "easActivated"): False,
    ("managedDevice", "emailAddress"): True,
    ("managedDevice", "enrolledDateTime"): False,
    ("managedDevice", "exchangeAccessState"): False,
    ("managedDevice", "imei"): True,
    ("managedDevice", "isEncrypted"): False,
    ("managedDevice", "isSupervised"): False,
    ("managedDevice", "jailBroken"): True,
    ("managedDevice", "lastSyncDateTime"): False,
    ("managedDevice", "managedDeviceName"): True,
    ("managedDevice", "managedDeviceOwnerType"): False,
    ("managedDevice", "managementAgent"): False,
    ("managedDevice", "managementState"): False,
    ("managedDevice", "manufacturer"): True,
    ("managedDevice", "model"): True,
    ("managedDevice", "notes"): True,
    ("managedDevice", "operatingSystem"): True,
    ("managedDevice", "osVersion"): True,
    ("managedDevice", "partnerReportedThreatState"): False,
    ("managedDevice", "phoneNumber"): True,
    ("managedDevice", "serialNumber"): True,
    ("managedDevice", "udid"): True,
    ("managedDevice", "userDisplayName"): True,
    ("managedDevice", "userId"): True,
    ("managedDevice", "userPrincipalName"): True,
    ("managedDevice", "wiFiMacAddress"): True,
    ("detectedApp", "deviceCount"): False,
    ("detectedApp", "displayName"): True,
    ("detectedApp", "platform"): False,
    ("detectedApp", "publisher"): True,
    ("detectedApp", "sizeInByte"): False,
    ("detectedApp", "version"): True,
    # v1.0 CSDL: Nullable="false".
    ("iosMobileAppIdentifier", "bundleId"): False,
    ("androidMobileAppIdentifier", "packageId"): False,
}

# The deviceCompliancePolicy subtypes in `compliance.rs`. Overrides are keyed by concrete type: a
# derived type's table holds its base type's properties under its own name.
COMPLIANCE_POLICY_TYPES = (
    "androidCompliancePolicy",
    "androidWorkProfileCompliancePolicy",
    "androidDeviceOwnerCompliancePolicy",
    "iosCompliancePolicy",
    "macOSCompliancePolicy",
    "windows10CompliancePolicy",
)

# (type, property) -> Rust `Default` expression, where the service's default differs from the
# rule (graph-reference.md §3.2: "Default is managed", "Default is unknown").
DEFAULT_OVERRIDES = {
    ("managedDevice", "managementState"): 'Default::Str("managed")',
    ("managedDevice", "complianceState"): 'Default::Str("unknown")',
    ("managedDevice", "partnerReportedThreatState"): 'Default::Str("unknown")',
    # The admin center's default for "Number of days until partner is unresponsive".
    ("mobileThreatDefenseConnector", "partnerUnresponsivenessThresholdInDays"): "Default::Int(7)",
    ("mobileThreatDefenseConnector", "partnerState"): 'Default::Str("notSetUp")',
    # Unset shows as deviceThreatProtectionLevel's first member in both SDKs; pinned, not left to the rule.
    **{
        (t, "deviceThreatProtectionRequiredSecurityLevel"): 'Default::Str("unavailable")'
        for t in COMPLIANCE_POLICY_TYPES
    },
    # Same enum and default (windows10CompliancePolicy has no such property).
    **{
        (t, "advancedThreatProtectionRequiredSecurityLevel"): 'Default::Str("unavailable")'
        for t in COMPLIANCE_POLICY_TYPES
        if t != "windows10CompliancePolicy"
    },
}

# (type, property) -> Int64 or not, where the name rule below does not decide it. Storage sizes
# and counters the service reports are Int64 (as recalled from the CSDL, not confirmed by a
# source here; Int64 is the lenient choice: it accepts every Int32).
INT64_OVERRIDES: dict[tuple[str, str], bool] = {
    ("hardwareInformation", "freeStorageSpace"): True,
    ("hardwareInformation", "totalStorageSpace"): True,
    ("sharedAppleDeviceUser", "dataQuota"): True,
    ("sharedAppleDeviceUser", "dataUsed"): True,
    ("deviceHealthAttestationState", "resetCount"): True,
    ("deviceHealthAttestationState", "restartCount"): True,
}


def is_int64(type_name: str, prop: str, doc: str) -> bool:
    """The SDKs read Int32 and Int64 alike (`get_int_value`): sizes in bytes and error codes are
    Int64 in the CSDL (`sizeInByte`, `*InBytes`, `errorCode`)."""
    if (type_name, prop) in INT64_OVERRIDES:
        return INT64_OVERRIDES[(type_name, prop)]
    if "Valid values 0 to 2147483647" in doc or "Valid values -2147483648 to 2147483647" in doc:
        return False
    return (
        prop.endswith("Bytes")
        or prop.endswith("InByte")
        or prop == "errorCode"
        or re.search(r"\bInt64\b", doc) is not None
    )


# Which properties clients may write. Policy per root type; complex types use "docstring".
# "docstring": writable unless the description (v1.0 or beta) says it is read-only.
# "directory": as "docstring", and never id, createdDateTime, deletedDateTime.
WRITABLE_POLICY = {
    "managedDevice": "docstring",
    "detectedApp": "docstring",
    "user": "directory",
    "group": "directory",
}
# (type, property) -> writable, to override the policy.
WRITABLE_OVERRIDES: dict[tuple[str, str], bool] = {
    # The SDKs describe enum-typed properties with the enum type's description; the CSDL
    # property descriptions (graph-reference.md §3.2) say these are read-only.
    ("managedDevice", "complianceState"): False,
    ("managedDevice", "deviceEnrollmentType"): False,
    ("managedDevice", "deviceRegistrationState"): False,
    ("managedDevice", "exchangeAccessState"): False,
    ("managedDevice", "managementAgent"): False,
    ("managedDevice", "managementState"): False,
    ("managedDevice", "partnerReportedThreatState"): False,
    # Not in §3.2; server-reported like exchangeAccessState.
    ("managedDevice", "exchangeAccessStateReason"): False,
    # "For an onPremisesSyncEnabled user, the source of authority for this set of properties is
    # the on-premises and is read-only. For a cloud-only user [...] these properties can be set
    # during the creation or update of a user object."
    ("user", "onPremisesExtensionAttributes"): True,
    # Server-owned on an MTD connector (product brief, section 4): Intune computes the state
    # from heartbeats and toggles, and the partner reports its own metadata.
    ("mobileThreatDefenseConnector", "partnerState"): False,
    ("mobileThreatDefenseConnector", "lastHeartbeatDateTime"): False,
    ("mobileThreatDefenseConnector", "partnerDisplayName"): False,
    ("mobileThreatDefenseConnector", "partnerMinimumSupportedAndroidVersion"): False,
    ("mobileThreatDefenseConnector", "partnerMinimumSupportedIosVersion"): False,
    ("mobileThreatDefenseConnector", "partnerMinimumSupportedMacVersion"): False,
    ("mobileThreatDefenseConnector", "partnerMinimumSupportedWindowsVersion"): False,
    ("mobileThreatDefenseConnector", "partnerSupportsAndroidMam"): False,
    ("mobileThreatDefenseConnector", "partnerSupportsIosCertificateSync"): False,
    ("mobileThreatDefenseConnector", "partnerSupportsIosMam"): False,
    ("mobileThreatDefenseConnector", "partnerSupportsWindowsMam"): False,
    # Server-owned on every compliance policy (deviceCompliancePolicy's): Intune stamps them on each write.
    **{
        (t, prop): False
        for t in COMPLIANCE_POLICY_TYPES
        for prop in ("createdDateTime", "lastModifiedDateTime", "version")
    },
    # Server-owned on the app protection policies: Intune stamps the times and version on each
    # write, and derives isAssigned and deployedAppCount from the assignments and apps.
    **{
        (t, prop): False
        for t in ("iosManagedAppProtection", "androidManagedAppProtection")
        for prop in ("createdDateTime", "lastModifiedDateTime", "version", "isAssigned", "deployedAppCount")
    },
    # Entity keys the service assigns (the entity-`id` rule already says so; pinned explicitly).
    ("deviceCompliancePolicyAssignment", "id"): False,
    ("deviceComplianceScheduledActionForRule", "id"): False,
    ("deviceComplianceActionItem", "id"): False,
}

# Abstract complex types whose derived types get tables too, after the base's. The SDKs name the
# derived types in the base's `create_from_discriminator_value`. The engine types a property by
# the base (a table with none of the derived types' properties); a value names its derived type
# with `@odata.type`, so whatever takes or shows one picks the derived table by that name, as
# served.rs's families describe them. (Other polymorphic complex types, such as the assignment
# targets, are written by hand in served.rs.)
DERIVED_COMPLEX_TYPES = ("mobileAppIdentifier",)

# A description saying the service shows null when it has no value.
NULL_DEFAULT_RE = re.compile(r"null \(default\)|default value is null", re.IGNORECASE)

# "Read-only for users synced from the on-premises directory" and "read-only mode" do not make a
# property read-only.
READ_ONLY_RE = re.compile(r"read[- ]only(?! for | mode)", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------
# SDK model parsing
# ---------------------------------------------------------------------------------------------


def models_root(dist: str, package: str, want: str) -> tuple[str, str]:
    """The `generated/models` folder of an installed SDK, and its version."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"schemagen: package {package} ({dist}) is not installed; use the project's .venv")
    version = importlib.metadata.version(dist)
    if version != want:
        print(f"schemagen: warning: {dist} is {version}, the tables were made from {want}", file=sys.stderr)
    root = os.path.join(list(spec.submodule_search_locations)[0], "generated", "models")
    return root, version


@dataclass
class Field:
    wire: str
    attr: str
    getter: str
    arg: Optional[str]  # class name argument of the getter, if any
    arg_file: Optional[str]  # file the argument class is defined in
    is_list: bool  # the dataclass annotation is list[...]
    doc: str


@dataclass
class ModelClass:
    name: str  # Python class name
    file: str
    kind: str  # "enum" or "model"
    base_file: Optional[str] = None
    fields: list[Field] = field(default_factory=list)  # own fields only
    members: list[str] = field(default_factory=list)  # enum members
    odata_type: Optional[str] = None
    derived: list[str] = field(default_factory=list)  # wire names `create_from_discriminator_value` maps to


class Sdk:
    """One SDK's models, parsed on demand."""

    def __init__(self, root: str, label: str):
        self.root = root
        self.label = label
        self.cache: dict[str, ModelClass] = {}
        self.entity_file = os.path.join(root, "entity.py")

    def file_for_type(self, wire_name: str) -> Optional[str]:
        # Namespaced types (`cloudLicensing.userCloudLicensing`) live in their namespace's folder.
        *namespace, name = [snake_case(part) for part in wire_name.split(".")]
        folder = os.path.join(self.root, *namespace)
        for candidate in (os.path.join(folder, name + ".py"), os.path.join(folder, name, name + ".py")):
            if os.path.exists(candidate):
                return candidate
        return None

    def load(self, path: str) -> ModelClass:
        if path in self.cache:
            return self.cache[path]
        with open(path, encoding="utf-8") as f:
            source = f.read()
        tree = ast.parse(source, filename=path)
        imports: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                base = os.path.dirname(path)
                for _ in range(node.level - 1):
                    base = os.path.dirname(base)
                module_path = os.path.join(base, *(node.module or "").split(".")) + ".py"
                for alias in node.names:
                    imports[alias.asname or alias.name] = module_path
        classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
        if len(classes) != 1:
            raise SystemExit(f"schemagen: expected one class in {path}")
        cls = classes[0]
        base_names = [b.id for b in cls.bases if isinstance(b, ast.Name)]
        if "Enum" in base_names:
            mc = ModelClass(cls.name, path, "enum")
            for stmt in cls.body:
                if isinstance(stmt, ast.Assign):
                    value = stmt.value
                    if isinstance(value, ast.Tuple):
                        value = value.elts[0]
                    if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
                        raise SystemExit(f"schemagen: unexpected enum member in {path}")
                    mc.members.append(value.value)
            self.cache[path] = mc
            return mc
        mc = ModelClass(cls.name, path, "model")
        for b in base_names:
            if b in imports:
                mc.base_file = os.path.normpath(imports[b])
        # Field descriptions: the comment lines just above each dataclass field.
        lines = source.splitlines()
        annotations: dict[str, tuple[str, str]] = {}
        for stmt in cls.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                comment = []
                i = stmt.lineno - 2
                while i >= 0 and lines[i].strip().startswith("#"):
                    comment.insert(0, lines[i].strip()[1:].strip())
                    i -= 1
                annotations[stmt.target.id] = (ast.unparse(stmt.annotation), " ".join(comment))
                if stmt.target.id == "odata_type" and isinstance(stmt.value, ast.Constant):
                    mc.odata_type = stmt.value.value
        # Derived types: `mapping_value.casefold() == "#microsoft.graph.x".casefold()`.
        factory = next(
            (n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "create_from_discriminator_value"),
            None,
        )
        for node in ast.walk(factory) if factory is not None else ():
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "casefold"
                and isinstance(node.func.value, ast.Constant)
                and isinstance(node.func.value.value, str)
                and node.func.value.value.startswith("#microsoft.graph.")
            ):
                mc.derived.append(node.func.value.value[len("#microsoft.graph.") :])
        deser = next(
            (n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "get_field_deserializers"),
            None,
        )
        if deser is None:
            raise SystemExit(f"schemagen: no get_field_deserializers in {path}")
        fields_dict = None
        for node in ast.walk(deser):
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == "fields":
                fields_dict = node.value
        if not isinstance(fields_dict, ast.Dict):
            raise SystemExit(f"schemagen: no fields dict in {path}")
        for key, value in zip(fields_dict.keys, fields_dict.values):
            wire = key.value  # type: ignore[union-attr]
            # lambda n : setattr(self, 'attr', n.get_xxx(Arg))
            call = value.body  # type: ignore[attr-defined]
            attr = call.args[1].value
            getter_call = call.args[2]
            getter = getter_call.func.attr
            arg = None
            if getter_call.args:
                a = getter_call.args[0]
                arg = a.id if isinstance(a, ast.Name) else ast.unparse(a)
            arg_file = os.path.normpath(imports[arg]) if arg in imports else None
            annotation, doc = annotations.get(attr, ("", ""))
            is_list = "list[" in annotation
            mc.fields.append(Field(wire, attr, getter, arg, arg_file, is_list, doc))
        self.cache[path] = mc
        return mc

    def is_entity(self, path: str) -> bool:
        seen = set()
        while path and path not in seen:
            if os.path.normpath(path) == os.path.normpath(self.entity_file):
                return True
            seen.add(path)
            mc = self.load(path)
            path = mc.base_file
        return False

    def all_fields(self, path: str) -> list[Field]:
        """Own fields, then the base classes' (the order `get_field_deserializers` returns)."""
        out: list[Field] = []
        seen: set[str] = set()
        while path:
            mc = self.load(path)
            for f in mc.fields:
                if f.wire not in seen:
                    seen.add(f.wire)
                    out.append(f)
            path = mc.base_file
        return out

    def wire_type_name(self, path: str) -> str:
        mc = self.load(path)
        if mc.odata_type and mc.odata_type.startswith("#microsoft.graph."):
            return mc.odata_type[len("#microsoft.graph.") :]
        rel = os.path.relpath(path, self.root)
        parts = rel[:-3].split(os.sep)
        name = mc.name[0].lower() + mc.name[1:]
        # A type whose name is also a namespace lives in that namespace's folder.
        namespace = [p for p in parts[:-1]]
        if namespace and namespace[-1] == parts[-1]:
            namespace = namespace[:-1]
        return ".".join([camel_case(p) for p in namespace] + [name])


def snake_case(name: str) -> str:
    # As the SDKs name their files: every capital starts a new word (chromeOSDeviceProperty ->
    # chrome_o_s_device_property).
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name).lstrip("_")


def camel_case(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def screaming_snake(name: str) -> str:
    name = name.replace(".", "_")
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    return s.upper()


# ---------------------------------------------------------------------------------------------
# The merged (v1.0 + beta) type graph
# ---------------------------------------------------------------------------------------------

PRIMITIVE_GETTERS = {
    "get_bool_value": "Bool",
    "get_int_value": "Int",
    "get_float_value": "Double",
    "get_str_value": "String",
    "get_datetime_value": "DateTimeOffset",
    "get_uuid_value": "Guid",
    "get_date_value": "String",
    "get_time_value": "String",
    "get_timedelta_value": "String",
    "get_bytes_value": "String",
}
PRIMITIVE_ARGS = {
    "str": "String",
    "int": "Int",
    "float": "Double",
    "bool": "Bool",
    "UUID": "Guid",
    "datetime.datetime": "DateTimeOffset",
    "datetime.date": "String",
    "datetime.time": "String",
    "datetime.timedelta": "String",
    "bytes": "String",
}


@dataclass
class TypeRef:
    """A property's type: kind is a primitive name, "Enum", "Struct", "Nav" or "Collection"."""

    kind: str
    name: Optional[str] = None  # wire type name for Enum/Struct
    inner: Optional["TypeRef"] = None
    files: dict = field(default_factory=dict)  # sdk label -> defining file, for Enum/Struct

    def key(self) -> str:
        if self.kind == "Collection":
            return f"Collection({self.inner.key()})"  # type: ignore[union-attr]
        if self.kind in ("Enum", "Struct", "Nav"):
            return f"{self.kind}({self.name})"
        return self.kind


def field_type(sdk: Sdk, f: Field) -> TypeRef:
    g = f.getter
    if g in PRIMITIVE_GETTERS:
        return TypeRef(PRIMITIVE_GETTERS[g])
    if g == "get_collection_of_primitive_values":
        if f.arg not in PRIMITIVE_ARGS:
            raise SystemExit(f"schemagen: unknown primitive collection {f.arg} ({f.wire})")
        return TypeRef("Collection", inner=TypeRef(PRIMITIVE_ARGS[f.arg]))
    if f.arg_file is None:
        raise SystemExit(f"schemagen: cannot resolve {f.arg} for {f.wire} in {sdk.label}")
    name = sdk.wire_type_name(f.arg_file)
    if g == "get_enum_value":
        return TypeRef("Enum", name, files={sdk.label: f.arg_file})
    if g == "get_collection_of_enum_values":
        if f.is_list:
            return TypeRef("Collection", inner=TypeRef("Enum", name, files={sdk.label: f.arg_file}))
        # A flags enum: the SDKs read it as a list of members, the wire has one
        # comma-separated string.
        return TypeRef("String", name=f"flags:{name}")
    if g in ("get_object_value", "get_collection_of_object_values"):
        kind = "Nav" if sdk.is_entity(f.arg_file) else "Struct"
        t = TypeRef(kind, name, files={sdk.label: f.arg_file})
        return TypeRef("Collection", inner=t) if g == "get_collection_of_object_values" else t
    raise SystemExit(f"schemagen: unknown getter {g} ({f.wire})")


def merge_files(into: TypeRef, other: TypeRef) -> None:
    """Adds `other`'s defining files (same type, another SDK) to `into`."""
    for label, path in other.files.items():
        into.files.setdefault(label, path)
    if into.inner is not None and other.inner is not None:
        merge_files(into.inner, other.inner)


def is_nav(t: TypeRef) -> bool:
    return t.kind == "Nav" or (t.kind == "Collection" and t.inner is not None and t.inner.kind == "Nav")


@dataclass
class MergedProp:
    name: str
    ty: TypeRef
    in_v1: bool
    in_beta: bool
    docs: list[str]
    warnings: list[str]


class Generator:
    def __init__(self, v1: Sdk, beta: Sdk):
        self.sdks = {"v1": v1, "beta": beta}
        self.structs: dict[str, dict] = {}  # wire name -> {"files": {...}, "entity": bool, "policy": str}
        self.struct_order: list[str] = []
        self.enums: dict[str, dict] = {}
        self.enum_order: list[str] = []
        self.warnings: list[str] = []

    def type_files(self, wire_name: str) -> dict[str, str]:
        files = {}
        for label, sdk in self.sdks.items():
            p = sdk.file_for_type(wire_name)
            if p is not None:
                files[label] = p
        return files

    def files_of(self, t: TypeRef) -> dict[str, str]:
        """The files defining a referenced type: as imported, else found by name (a type that a
        beta-only property uses may also be in v1.0)."""
        files = dict(t.files)
        for label, path in self.type_files(t.name).items():  # type: ignore[arg-type]
            files.setdefault(label, path)
        return dict(sorted(files.items(), key=lambda kv: ["v1", "beta"].index(kv[0])))

    def merged_props(self, type_name: str, files: dict[str, str]) -> list[MergedProp]:
        per_sdk: dict[str, list[tuple[Field, TypeRef]]] = {}
        for label, path in files.items():
            sdk = self.sdks[label]
            per_sdk[label] = [(f, field_type(sdk, f)) for f in sdk.all_fields(path) if f.wire != "@odata.type"]
        v1 = {f.wire: (f, t) for f, t in per_sdk.get("v1", [])}
        beta = {f.wire: (f, t) for f, t in per_sdk.get("beta", [])}
        # Beta's order; a v1.0-only property goes after its predecessor in v1.0's order.
        order = [f.wire for f, _ in per_sdk.get("beta", [])]
        previous = None
        for f, _ in per_sdk.get("v1", []):
            if f.wire not in beta:
                order.insert(order.index(previous) + 1 if previous in order else len(order), f.wire)
            previous = f.wire
        if "id" in order and self.structs.get(type_name, {}).get("entity", True):
            order.remove("id")
            order.insert(0, "id")
        out = []
        for wire in order:
            warnings = []
            fv, tv = v1.get(wire, (None, None))
            fb, tb = beta.get(wire, (None, None))
            if fv is not None and fb is None:
                warnings.append(f"`{wire}` is in the v1.0 model of {type_name} but not in beta")
            ty = tb if tb is not None else tv
            if tv is not None and tb is not None:
                if tv.key() != tb.key():
                    warnings.append(f"`{wire}` is {tv.key()} in v1.0 and {tb.key()} in beta; beta's type is used")
                else:
                    # Same type in both: remember v1.0's file too.
                    merge_files(ty, tv)
            docs = [f.doc for f in (fv, fb) if f is not None]
            out.append(MergedProp(wire, ty, fv is not None, fb is not None, docs, warnings))  # type: ignore[arg-type]
        return out

    def add_struct(self, name: str, files: dict[str, str], entity: bool, policy: str, root: bool) -> None:
        if name in self.structs:
            return
        self.structs[name] = {"files": files, "entity": entity, "policy": policy, "root": root}
        self.struct_order.append(name)
        for p in self.merged_props(name, files):
            if is_nav(p.ty):
                continue
            self.visit(p.ty, policy)
        if name in DERIVED_COMPLEX_TYPES and not entity:
            for d in self.derived_types(name, files):
                self.add_struct(d, self.type_files(d), False, policy, False)

    def derived_types(self, name: str, files: dict[str, str]) -> list[str]:
        """The derived types of `name` in beta's order; a v1.0-only one goes last."""
        v1 = self.sdks["v1"].load(files["v1"]).derived if "v1" in files else []
        beta = self.sdks["beta"].load(files["beta"]).derived if "beta" in files else []
        return list(dict.fromkeys(beta + v1))

    def visit(self, t: TypeRef, policy: str) -> None:
        if t.kind == "Collection":
            self.visit(t.inner, policy)  # type: ignore[arg-type]
        elif t.kind == "Struct":
            self.add_struct(t.name, self.files_of(t), False, policy, False)  # type: ignore[arg-type]
        elif t.kind == "Enum":
            if t.name not in self.enums:
                self.enums[t.name] = {"files": self.files_of(t)}  # type: ignore[index]
                self.enum_order.append(t.name)  # type: ignore[arg-type]

    def add_root(self, name: str) -> None:
        files = self.type_files(name)
        if not files:
            raise SystemExit(f"schemagen: no model named {name} in either SDK")
        for label, path in files.items():
            if not self.sdks[label].is_entity(path):
                raise SystemExit(f"schemagen: {name} is not an entity type in {label}")
        self.add_struct(name, files, True, NULLABLE_POLICY.get(name, DEFAULT_NULLABLE_POLICY), True)

    def enum_members(self, name: str) -> list[tuple[str, bool]]:
        files = self.enums[name]["files"]
        v1 = self.sdks["v1"].load(files["v1"]).members if "v1" in files else []
        beta = self.sdks["beta"].load(files["beta"]).members if "beta" in files else []
        order = list(beta)
        previous = None
        for m in v1:
            if m not in beta:
                self.warnings.append(f"enum {name}: member `{m}` is in v1.0 but not in beta")
                order.insert(order.index(previous) + 1 if previous in order else len(order), m)
            previous = m
        return [(m, m in v1) for m in order]

    # -- Rust ---------------------------------------------------------------------------------

    def rust_ty(self, t: TypeRef, type_name: str, prop: str, doc: str) -> str:
        if t.kind == "Collection":
            return f"Ty::Collection(&{self.rust_ty(t.inner, type_name, prop, doc)})"  # type: ignore[arg-type]
        if t.kind == "Int":
            return "Ty::Int64" if is_int64(type_name, prop, doc) else "Ty::Int32"
        if t.kind == "Enum":
            return f"Ty::Enum(&{screaming_snake(t.name)})"  # type: ignore[arg-type]
        if t.kind == "Struct":
            return f"Ty::Struct(&{screaming_snake(t.name)})"  # type: ignore[arg-type]
        return f"Ty::{t.kind}"

    def nullable(self, type_name: str, p: MergedProp, policy: str, entity: bool) -> bool:
        if (type_name, p.name) in NULLABLE_OVERRIDES:
            return NULLABLE_OVERRIDES[(type_name, p.name)]
        if entity and p.name == "id":
            return False
        k = p.ty.kind
        if k == "Collection":
            return False
        if policy == "directory":
            return True
        if any(NULL_DEFAULT_RE.search(d) for d in p.docs):
            return True
        return k not in ("Bool", "Int", "Double", "Enum", "DateTimeOffset")

    def default(self, type_name: str, p: MergedProp, nullable: bool, both: bool, entity: bool) -> str:
        if (type_name, p.name) in DEFAULT_OVERRIDES:
            return DEFAULT_OVERRIDES[(type_name, p.name)]
        k = p.ty.kind
        if entity and p.name == "id":
            return 'Default::Str("")'
        if k == "Collection":
            return "Default::EmptyCollection"
        if nullable:
            return "Default::Null"
        if k == "Bool":
            return "Default::Bool(false)"
        if k in ("Int", "Double"):
            return "Default::Int(0)"
        if k == "DateTimeOffset":
            return 'Default::Str("0001-01-01T00:00:00Z")'
        if k == "Enum":
            members = self.enum_members(p.ty.name)  # type: ignore[arg-type]
            usable = [m for m, in_v1 in members if in_v1 or not both] or [m for m, _ in members]
            return f'Default::Str("{"unknown" if "unknown" in usable else usable[0]}")'
        return "Default::Null"

    def writable(self, type_name: str, p: MergedProp, policy: str, entity: bool) -> bool:
        if (type_name, p.name) in WRITABLE_OVERRIDES:
            return WRITABLE_OVERRIDES[(type_name, p.name)]
        if entity and p.name == "id":
            return False
        if policy == "directory" and p.name in ("createdDateTime", "deletedDateTime"):
            return False
        return not any(READ_ONLY_RE.search(d) for d in p.docs)

    def render(self, module: str, roots: list[str], command: str) -> str:
        used = {"Avail": set(), "Writable": set()}
        statics: list[str] = []
        root_names = set(roots)
        counts = {}
        for name in self.struct_order:
            info = self.structs[name]
            files = info["files"]
            in_v1_type = "v1" in files
            root = info["root"]
            wpolicy = WRITABLE_POLICY.get(name, "docstring") if root else "docstring"
            lines = []
            if not in_v1_type:
                lines.append(f"// `{name}` is only in the beta model.")
            merged = self.merged_props(name, files)
            if name in DERIVED_COMPLEX_TYPES and not info["entity"]:
                derived = ", ".join(f"`{d}`" for d in self.derived_types(name, files))
                text = (
                    f"`{name}` is abstract: a value is one of {derived} (the tables after this one), "
                    "named by `@odata.type`. This table has none of their properties."
                )
                lines.extend("// " + line for line in textwrap.wrap(text, 100))
            elif not merged:
                lines.append(
                    f"// `{name}` declares no properties (an open type): the engine can neither validate nor show"
                )
                lines.append("// the dynamic properties Graph stores in it, so it is always empty here.")
            elif all(is_nav(p.ty) for p in merged):
                lines.append(f"// `{name}` has only navigation properties.")
            lines.append(f"pub static {screaming_snake(name)}: StructType = StructType {{")
            lines.append(f'    name: "{name}",')
            lines.append(f"    is_entity: {'true' if info['entity'] else 'false'},")
            lines.append("    props: &[")
            n_v1 = n_beta = 0
            writable_names = []
            for p in merged:
                if is_nav(p.ty):
                    continue
                for w in p.warnings:
                    lines.append(f"        // warning: {w}")
                    self.warnings.append(w)
                both = p.in_v1 and in_v1_type
                avail = "Both" if both else "BetaOnly"
                used["Avail"].add(avail)
                doc = " ".join(p.docs)
                nullable = self.nullable(name, p, info["policy"], info["entity"])
                writable = self.writable(name, p, wpolicy, info["entity"])
                used["Writable"].add("Yes" if writable else "No")
                if p.ty.kind == "String" and p.ty.name and p.ty.name.startswith("flags:"):
                    lines.append(f"        // A flags enum ({p.ty.name[6:]}): comma-separated member names.")
                lines.append(
                    f'        prop("{p.name}", {self.rust_ty(p.ty, name, p.name, doc)}, {avail}, '
                    f"{'true' if nullable else 'false'}, {'Yes' if writable else 'No'}, "
                    f"{self.default(name, p, nullable, both, info['entity'])}),"
                )
                n_beta += 1
                n_v1 += 1 if both else 0
                if writable:
                    writable_names.append(p.name)
            lines.append("    ],")
            lines.append("};")
            counts[name] = (n_v1, n_beta, writable_names)
            statics.append("\n".join(lines))
        for name in self.enum_order:
            files = self.enums[name]["files"]
            lines = [f"pub static {screaming_snake(name)}: EnumType = EnumType {{", f'    name: "{name}",', "    members: &["]
            for m, in_v1 in self.enum_members(name):
                avail = "Both" if in_v1 and "v1" in files else "BetaOnly"
                used["Avail"].add(avail)
                lines.append(f'        ("{m}", {avail}),')
            lines.append("    ],")
            lines.append("};")
            statics.append("\n".join(lines))

        names = [screaming_snake(n) for n in self.struct_order + self.enum_order]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise SystemExit(f"schemagen: static names collide: {sorted(dupes)}")

        super_items = ["prop", "Avail", "Default", "StructType", "Ty", "Writable"]
        if self.enum_order:
            super_items.insert(2, "EnumType")
        header = [
            "// Generated by scripts/schemagen.py from msgraph-sdk 1.61.0 and msgraph-beta-sdk 1.66.0; do not edit by hand.",
            f"// Regenerate: {command}",
            "",
            f"//! Graph types {', '.join('`' + r + '`' for r in roots)} as schema tables, with the complex and enum types",
            "//! their properties use. Navigation properties are not here: they are served as their own paths.",
            "",
            f"use super::{{{', '.join(super_items)}}};",
            "",
            f"use Avail::{{{', '.join(sorted(used['Avail'], key=['BetaOnly', 'Both'].index))}}};",
            f"use Writable::{{{', '.join(sorted(used['Writable'], key=['No', 'Yes'].index))}}};",
            "",
        ]
        for w in dict.fromkeys(self.warnings):
            header.insert(2, f"// warning: {w}")
        self.counts = counts
        return "\n".join(header) + "\n" + "\n\n".join(statics) + "\n"


def wire_names(root: str) -> dict:
    """The wire names of ROOT's non-navigation properties per version, `id` first, found by
    importing the SDKs and running their `get_field_deserializers()` against a recording parse
    node (independent of the parsing above: a check of the generated tables)."""
    import importlib

    class Recorder:
        def __init__(self):
            self.calls = []

        def __getattr__(self, name):
            def record(*args):
                self.calls.append((name, args))

            return record

    out = {}
    for label, package in (("v1", V1_SDK[1]), ("beta", BETA_SDK[1])):
        snake = snake_case(root)
        module = None
        for candidate in (f"{package}.generated.models.{snake}", f"{package}.generated.models.{snake}.{snake}"):
            try:
                module = importlib.import_module(candidate)
                if hasattr(module, root[0].upper() + root[1:]):
                    break
            except ImportError:
                continue
        if module is None:
            continue
        entity = importlib.import_module(f"{package}.generated.models.entity").Entity
        instance = getattr(module, root[0].upper() + root[1:])()
        names = []
        for wire, deserialize in instance.get_field_deserializers().items():
            node = Recorder()
            deserialize(node)
            getter, args = node.calls[0]
            nav = (
                getter in ("get_object_value", "get_collection_of_object_values")
                and isinstance(args[0], type)
                and issubclass(args[0], entity)
            )
            if wire not in ("@odata.type", "id") and not nav:
                names.append(wire)
        out[label] = ["id"] + names
    return out


def rustfmt(text: str) -> str:
    exe = shutil.which("rustfmt")
    if exe is None:
        print("schemagen: warning: rustfmt not found; output is not formatted", file=sys.stderr)
        return text
    done = subprocess.run(
        [exe, "--edition", "2021", "--config", "max_width=120"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit("schemagen: rustfmt failed")
    return done.stdout


def main(argv: list[str]) -> None:
    args = list(argv)
    fmt = True
    if "--no-rustfmt" in args:
        args.remove("--no-rustfmt")
        fmt = False
    v1_root, _ = models_root(V1_SDK[0], V1_SDK[1], V1_SDK[2])
    beta_root, _ = models_root(BETA_SDK[0], BETA_SDK[1], BETA_SDK[2])
    gen = Generator(Sdk(v1_root, "v1"), Sdk(beta_root, "beta"))
    if args[:1] == ["--dump-wire-names"] and len(args) == 2:
        print(json.dumps(wire_names(args[1]), indent=1))
        return
    if len(args) < 2 or args[0].startswith("-"):
        sys.exit(__doc__)
    module, roots = args[0], args[1:]
    for r in roots:
        gen.add_root(r)
    command = f".venv/bin/python scripts/schemagen.py {module} {' '.join(roots)} > src/schema/{module}.rs"
    text = gen.render(module, roots, command)
    if fmt:
        text = rustfmt(text)
    sys.stdout.write(text)
    summary = []
    for r in roots:
        n_v1, n_beta, writable = gen.counts[r]
        summary.append(f"{r}: {n_v1} properties in v1.0, {n_beta} in beta; writable: {', '.join(writable) or '-'}")
    summary.append(f"{len(gen.struct_order) - len(roots)} complex types, {len(gen.enum_order)} enums")
    print("schemagen: " + "\nschemagen: ".join(summary), file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
