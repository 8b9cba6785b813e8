package tenancy

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// CloseControlDatabase revokes what PUBLIC may do on the control database
// (CONNECT, TEMPORARY): tenant roles, which hold passwords tenants'
// code paths use, cannot connect to it, read its catalog or make
// temporary tables there. The control role owns the control database
// (CheckControlRole), so it may; its own access is the owner's.
func CloseControlDatabase(ctx context.Context, db *sqlx.DB) error {
	var name string
	if err := db.GetContext(ctx, &name, `SELECT current_database()`); err != nil {
		return dbError("close control database", err)
	}
	if _, err := db.ExecContext(ctx, "REVOKE ALL ON DATABASE "+pq.QuoteIdentifier(name)+" FROM PUBLIC"); err != nil {
		return dbError("close control database", err)
	}
	return nil
}

// strayAccess is a tenant role's privilege on a database not its own.
type strayAccess struct {
	Role     string `db:"role"`
	Database string `db:"database"`
	Connect  bool   `db:"connect"`
	Temp     bool   `db:"temp"`
}

// checkStrayAccess asks has_database_privilege on the server of db, for
// every tenant role of this deployment there, about every other tenant's
// database and, with control (db is the control database's handle), the
// control database (the databases holding data, all of which the control
// role may close; spares and the template hold none), and reports each
// CONNECT or TEMPORARY found. With repair it revokes them, from PUBLIC
// and from the role. slugOf names the tenant of a role.
func (r *Registry) checkStrayAccess(ctx context.Context, db *sqlx.DB, control, repair bool, slugOf map[string]string) ([]Problem, error) {
	const q = `SELECT ro.rolname AS role, d.datname AS database,
			has_database_privilege(ro.oid, d.oid, 'CONNECT') AS connect,
			has_database_privilege(ro.oid, d.oid, 'TEMPORARY') AS temp
		FROM pg_roles ro CROSS JOIN pg_database d
		WHERE ro.rolname ~ $1 AND d.datname <> ro.rolname AND d.datallowconn
		  AND ((d.datname = current_database() AND $2) OR d.datname ~ $1)
		  AND (has_database_privilege(ro.oid, d.oid, 'CONNECT') OR has_database_privilege(ro.oid, d.oid, 'TEMPORARY'))
		ORDER BY 1, 2`
	var found []strayAccess
	if err := db.SelectContext(ctx, &found, q, r.names.catalogPattern(), control); err != nil {
		return nil, dbError("doctor: database privileges of tenant roles", err)
	}
	var problems []Problem
	for _, s := range found {
		what := "CONNECT"
		if !s.Connect {
			what = "TEMPORARY"
		} else if s.Temp {
			what = "CONNECT and TEMPORARY"
		}
		object := slugOf[s.Role]
		if object == "" {
			object = s.Role
		}
		p := Problem{Kind: "stray-access", Object: object, Detail: fmt.Sprintf("%s has %s on database %s, not its own", s.Role, what, s.Database)}
		if repair {
			p.Repaired = r.revokeStray(ctx, db, s)
		}
		problems = append(problems, p)
	}
	return problems, nil
}

// revokeStray takes s's privileges away: from PUBLIC (where they usually
// come from) and from the role itself.
func (r *Registry) revokeStray(ctx context.Context, db *sqlx.DB, s strayAccess) bool {
	role, err := r.names.quote(s.Role)
	if err != nil {
		r.log.Error("doctor: refusing to repair", "role", s.Role, "err", err)
		return false
	}
	database := pq.QuoteIdentifier(s.Database) // a name read from pg_database
	for _, stmt := range []string{"REVOKE ALL ON DATABASE " + database + " FROM PUBLIC", "REVOKE ALL ON DATABASE " + database + " FROM " + role} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			r.log.Error("doctor: repair failed", "err", err)
			return false
		}
	}
	return true
}
