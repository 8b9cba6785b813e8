package tenancy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// ErrControlRole is the failure of a control role that lacks something
// tenantql needs; the message names what and the statements that grant it.
var ErrControlRole = errors.New("the control database role cannot run tenantql")

// CheckControlRole checks that the role the control database is reached
// as can do everything tenantql does, which is what a managed PostgreSQL
// service (RDS, Cloud SQL, Azure) grants at most: CREATEDB and CREATEROLE
// (to make tenant databases and roles), and ownership of the control
// database (to migrate it). A superuser passes. Ending a deleted tenant's
// sessions needs no more: the control role is made a member of every
// tenant role it creates, which lets it signal that role's backends.
// Returns an error wrapping ErrControlRole that lists every missing
// privilege and the statements a superuser or the service's admin role
// would run.
func CheckControlRole(ctx context.Context, db *sqlx.DB) error {
	var r struct {
		Name       string `db:"name"`
		Database   string `db:"database"`
		Super      bool   `db:"super"`
		CreateDB   bool   `db:"createdb"`
		CreateRole bool   `db:"createrole"`
		OwnsDB     bool   `db:"owns_db"`
	}
	const q = `SELECT current_user AS name, current_database() AS database,
			r.rolsuper AS super, r.rolcreatedb AS createdb, r.rolcreaterole AS createrole,
			pg_has_role(current_user, d.datdba, 'USAGE') AS owns_db
		FROM pg_roles r, pg_database d
		WHERE r.rolname = current_user AND d.datname = current_database()`
	if err := db.GetContext(ctx, &r, q); err != nil {
		return dbError("check control role", err)
	}
	if r.Super {
		return nil
	}
	role, dbName := pq.QuoteIdentifier(r.Name), pq.QuoteIdentifier(r.Database)
	var missing, fixes []string
	if !r.CreateDB || !r.CreateRole {
		var attrs []string
		if !r.CreateDB {
			missing = append(missing, "CREATEDB (to create tenant databases)")
			attrs = append(attrs, "CREATEDB")
		}
		if !r.CreateRole {
			missing = append(missing, "CREATEROLE (to create tenant roles)")
			attrs = append(attrs, "CREATEROLE")
		}
		fixes = append(fixes, "ALTER ROLE "+role+" "+strings.Join(attrs, " ")+";")
	}
	if !r.OwnsDB {
		missing = append(missing, "ownership of the control database "+dbName+" (to migrate it)")
		fixes = append(fixes, "ALTER DATABASE "+dbName+" OWNER TO "+role+";")
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%w: role %s lacks %s; as a superuser or the service's admin role run: %s",
		ErrControlRole, role, strings.Join(missing, ", "), strings.Join(fixes, " "))
}
