// Package migrations embeds the SQL migrations of tenantql: the control
// database set (tenants, domains) and the tenant database set (the issue
// tracker). Both are applied with sql-migrate through MigrationSet values.
package migrations

import (
	"embed"
	"fmt"
	"sort"

	migrate "github.com/rubenv/sql-migrate"
)

//go:embed control/*.sql tenant/*.sql
var files embed.FS

// Control returns the migrations of the control database.
func Control() migrate.MigrationSource {
	return migrate.EmbedFileSystemMigrationSource{FileSystem: files, Root: "control"}
}

// Tenant returns the migrations of every tenant database.
func Tenant() migrate.MigrationSource {
	return migrate.EmbedFileSystemMigrationSource{FileSystem: files, Root: "tenant"}
}

// ControlSet returns the sql-migrate set that applies Control, with its
// bookkeeping table control_migrations. Each call returns a new value, so
// no caller can change the set another one uses.
func ControlSet() migrate.MigrationSet {
	return migrate.MigrationSet{TableName: "control_migrations"}
}

// TenantSet returns the sql-migrate set that applies Tenant, with its
// bookkeeping table tenant_migrations; a new value each call.
func TenantSet() migrate.MigrationSet {
	return migrate.MigrationSet{TableName: "tenant_migrations"}
}

// LatestID returns the id of the newest migration in src.
// Returns an error if src holds none or cannot be read.
func LatestID(src migrate.MigrationSource) (string, error) {
	ms, err := src.FindMigrations()
	if err != nil {
		return "", fmt.Errorf("migrations: read: %w", err)
	}
	if len(ms) == 0 {
		return "", fmt.Errorf("migrations: none found")
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Less(ms[j]) })
	return ms[len(ms)-1].Id, nil
}
