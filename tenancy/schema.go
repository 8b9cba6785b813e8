package tenancy

import (
	"fmt"

	"github.com/tenantql/tenantql/migrations"
)

// ErrSchemaBehind is the refusal of a READY tenant whose database is at an
// older tenant migration than this server's code expects (a failed or not
// yet run `tenantql migrate`): it is not served until it is migrated.
// It wraps ErrTenantNotReady.
var ErrSchemaBehind = fmt.Errorf("%w: its database is behind this server's tenant migrations", ErrTenantNotReady)

// latestTenantSchema is the id of the newest embedded tenant migration.
func latestTenantSchema() (string, error) {
	v, err := migrations.LatestID(migrations.Tenant())
	if err != nil {
		return "", fmt.Errorf("tenancy: latest tenant migration: %w", err)
	}
	return v, nil
}

// SchemaBehind reports whether t's database is behind the tenant
// migrations this server embeds (ids sort in order), and if so why, in
// words for the platform API.
func (r *Registry) SchemaBehind(t *Tenant) (string, bool) {
	if t.SchemaVersion >= r.schema {
		return "", false
	}
	return fmt.Sprintf("database at tenant migration %q, this server needs %q: run tenantql migrate "+
		"(the tenant answers 503 TENANT_NOT_READY until then)", t.SchemaVersion, r.schema), true
}
