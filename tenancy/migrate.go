package tenancy

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/lib/pq"
	migrate "github.com/rubenv/sql-migrate"

	"github.com/tenantql/tenantql/migrations"
)

// migrationLockKey is the advisory lock (scoped to one database) that
// serialises migrations: sql-migrate does no locking of its own.
const migrationLockKey = 7_305_019_001

// MigrateControl brings the control database up to date.
func MigrateControl(ctx context.Context, db *sql.DB) (int, error) {
	return migrateLocked(ctx, db, migrations.ControlSet(), migrations.Control())
}

// MigrateTenantDB brings one tenant database up to date, connected as the
// tenant's own role, and returns how many migrations ran.
func MigrateTenantDB(ctx context.Context, db *sql.DB) (int, error) {
	return migrateLocked(ctx, db, migrations.TenantSet(), migrations.Tenant())
}

// migrateLocked runs set's pending migrations while holding an advisory lock
// on a connection of its own, so concurrent migrators (other processes
// too) run one at a time and later ones find nothing left to do. db must
// allow at least two connections: the lock's and the migrations'.
func migrateLocked(ctx context.Context, db *sql.DB, set migrate.MigrationSet, src migrate.MigrationSource) (int, error) {
	if db.Stats().MaxOpenConnections == 1 {
		return 0, fmt.Errorf("migrate: the pool allows one connection; the advisory lock needs a second")
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, dbError("migrate: connect", err)
	}
	defer conn.Close()
	// Up to date already (a database cloned from the template or a
	// spare): no lock, no second connection.
	if latest, err := migrations.LatestID(src); err == nil {
		var applied string
		q := `SELECT COALESCE(max(id), '') FROM ` + pq.QuoteIdentifier(set.TableName)
		if conn.QueryRowContext(ctx, q).Scan(&applied) == nil && applied == latest {
			return 0, nil
		}
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLockKey); err != nil {
		return 0, dbError("migrate: lock", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLockKey)
	n, err := set.ExecContext(ctx, db, "postgres", src, migrate.Up)
	if err != nil {
		return n, fmt.Errorf("migrate: %w", err)
	}
	return n, nil
}
