-- Intune RBAC: a tenant's custom role definitions (the built-in ones are static data, the same
-- in every tenant), its role assignments, and the Entra directory roles of its users.

CREATE TABLE role_definitions (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    display_name TEXT,
    description TEXT,
    permissions JSONB NOT NULL,
    role_scope_tag_ids JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    revision BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, id)
);

-- role_definition_id names a custom role above or a built-in one, hence no foreign key.
CREATE TABLE role_assignments (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    role_definition_id TEXT NOT NULL,
    properties JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    revision BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX role_assignments_definition ON role_assignments (tenant_id, role_definition_id);

CREATE TABLE user_directory_roles (
    tenant_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    role_template_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, role_template_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
