package tenancy

import (
	"context"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/tenantql/tenantql/migrations"
)

// Problem is one inconsistency between the control database and
// PostgreSQL's catalogs.
type Problem struct {
	Kind     string // control-role, orphan-database, orphan-role, missing-database, missing-role, owner, role-attributes, membership, public-connect, own-connect, foreign-connect, schema-version
	Object   string // database, role or tenant slug concerned
	Detail   string
	Repaired bool
}

func (p Problem) String() string {
	s := fmt.Sprintf("%s %s: %s", p.Kind, p.Object, p.Detail)
	if p.Repaired {
		s += " (repaired)"
	}
	return s
}

// Doctor compares the tenants table with pg_database and pg_roles: every
// tenant database and role must belong to exactly one tenant, and every
// READY or SUSPENDED tenant must have its database (owned by its role,
// which may connect, while PUBLIC and other tenants' roles may not), a
// safe LOGIN role and the latest migrations. Only names of this
// deployment's prefix are considered. With repair it drops orphans,
// re-applies privileges and migrates; it never touches a tenant's data
// otherwise. Tenants still PROVISIONING or DELETING belong to the
// provisioner and are only checked for orphans. It is safe to run while
// servers create and delete tenants. It checks the default database
// server only: tenants on the fleet's other servers are not yet checked.
func (r *Registry) Doctor(ctx context.Context, pools *Pools, repair bool) ([]Problem, error) {
	var problems []Problem
	add := func(p Problem) { problems = append(problems, p) }

	if err := r.Load(ctx); err != nil {
		return nil, err
	}
	if err := CheckControlRole(ctx, r.db); errors.Is(err, ErrControlRole) {
		add(Problem{Kind: "control-role", Object: "current_user", Detail: err.Error()})
	} else if err != nil {
		return nil, err
	}
	// The catalogs first, then the rows: a tenant row is inserted before
	// its database and role are created and deleted after they are
	// dropped, so an object seen first and still there afterwards, with no
	// row, is a real orphan, even while tenants are created and deleted.
	var dbs, roles []string
	if err := r.db.SelectContext(ctx, &dbs, `SELECT datname FROM pg_database WHERE datname ~ $1`, r.names.catalogPattern()); err != nil {
		return nil, dbError("doctor: databases", err)
	}
	if err := r.db.SelectContext(ctx, &roles, `SELECT rolname FROM pg_roles WHERE rolname ~ $1`, r.names.catalogPattern()); err != nil {
		return nil, dbError("doctor: roles", err)
	}
	var rows []struct {
		Slug          string `db:"slug"`
		Status        string `db:"status"`
		DBName        string `db:"db_name"`
		RoleName      string `db:"role_name"`
		SchemaVersion string `db:"schema_version"`
	}
	if err := r.db.SelectContext(ctx, &rows, `SELECT slug, status, db_name, role_name, schema_version FROM tenants WHERE database_server = 'default'
		UNION ALL -- the other copy of a MOVING tenant (move.go)
		SELECT slug, status, move_db_name, move_db_name, schema_version FROM tenants WHERE move_server = 'default'`); err != nil {
		return nil, dbError("doctor: tenants", err)
	}
	dbOwner := map[string]string{}
	roleOwner := map[string]string{}
	for _, t := range rows {
		dbOwner[t.DBName] = t.Slug
		roleOwner[t.RoleName] = t.Slug
	}
	stillThere := func(q, name string) (bool, error) {
		var ok bool
		if err := r.db.GetContext(ctx, &ok, q, name); err != nil {
			return false, dbError("doctor: recheck", err)
		}
		return ok, nil
	}

	// Orphans: tenant-named databases and roles no row accounts for.
	for _, d := range dbs {
		if _, ok := dbOwner[d]; ok {
			continue
		}
		if ok, err := stillThere(`SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, d); err != nil || !ok {
			if err != nil {
				return nil, err
			}
			continue // dropped meanwhile by the tenant's deletion
		}
		p := Problem{Kind: "orphan-database", Object: d, Detail: "no tenant row owns it"}
		if repair {
			p.Repaired = r.repair(ctx, "DROP DATABASE IF EXISTS %s WITH (FORCE)", d)
		}
		add(p)
	}
	for _, role := range roles {
		if _, ok := roleOwner[role]; ok {
			continue
		}
		if ok, err := stillThere(`SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, role); err != nil || !ok {
			if err != nil {
				return nil, err
			}
			continue
		}
		p := Problem{Kind: "orphan-role", Object: role, Detail: "no tenant row owns it"}
		if repair {
			p.Repaired = r.repair(ctx, "DROP ROLE IF EXISTS %s", role)
		}
		add(p)
	}

	latest, err := migrations.LatestID(migrations.Tenant())
	if err != nil {
		return nil, err
	}
	for _, t := range rows {
		if t.Status != string(StatusReady) && t.Status != string(StatusSuspended) {
			continue // in progress: the provisioner owns it
		}
		var c struct {
			DBExists     bool           `db:"db_exists"`
			RoleExists   bool           `db:"role_exists"`
			Owner        string         `db:"owner"`
			SafeRole     bool           `db:"safe_role"`
			Member       bool           `db:"member"`
			PublicAccess bool           `db:"public_connect"`
			OwnConnect   bool           `db:"own_connect"`
			Foreign      pq.StringArray `db:"foreign_connect"`
		}
		const q = `SELECT
			EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS db_exists,
			EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $2) AS role_exists,
			COALESCE((SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1), '') AS owner,
			COALESCE((SELECT rolcanlogin AND NOT rolsuper AND NOT rolcreatedb AND NOT rolcreaterole
				AND NOT rolreplication AND NOT rolbypassrls FROM pg_roles WHERE rolname = $2), false) AS safe_role,
			COALESCE((SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
				OR (SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles WHERE rolname = $2), false) AS member,
			COALESCE((SELECT datacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(datacl) a
				WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT') FROM pg_database WHERE datname = $1), false) AS public_connect,
			COALESCE((SELECT has_database_privilege($2, $1, 'CONNECT')
				WHERE EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $2)), false) AS own_connect,
			COALESCE((SELECT array_agg(DISTINCT g.rolname ORDER BY g.rolname) FROM pg_database d, aclexplode(d.datacl) a
				JOIN pg_roles g ON g.oid = a.grantee
				WHERE d.datname = $1 AND a.privilege_type = 'CONNECT' AND g.rolname <> $2 AND g.rolname ~ $3), '{}') AS foreign_connect`
		if err := r.db.GetContext(ctx, &c, q, t.DBName, t.RoleName, r.names.catalogPattern()); err != nil {
			return nil, dbError("doctor: check tenant", err)
		}
		switch {
		case !c.DBExists:
			add(Problem{Kind: "missing-database", Object: t.Slug, Detail: t.DBName + " does not exist"})
			continue
		case !c.RoleExists:
			add(Problem{Kind: "missing-role", Object: t.Slug, Detail: t.RoleName + " does not exist"})
			continue
		}
		if c.Owner != t.RoleName {
			p := Problem{Kind: "owner", Object: t.Slug, Detail: fmt.Sprintf("%s is owned by %s, not %s", t.DBName, c.Owner, t.RoleName)}
			if repair {
				p.Repaired = r.repair(ctx, "ALTER DATABASE %s OWNER TO %s", t.DBName, t.RoleName)
			}
			add(p)
		}
		if !c.SafeRole {
			add(Problem{Kind: "role-attributes", Object: t.Slug, Detail: t.RoleName + " is not a plain LOGIN role"})
		}
		if !c.Member {
			// without it the control role can neither drop the database
			// nor end its sessions when the tenant is deleted
			p := Problem{Kind: "membership", Object: t.Slug, Detail: "the control role is not a member of " + t.RoleName}
			if repair {
				p.Repaired = r.repair(ctx, "GRANT %s TO CURRENT_USER", t.RoleName)
			}
			add(p)
		}
		if c.PublicAccess {
			p := Problem{Kind: "public-connect", Object: t.Slug, Detail: "PUBLIC may connect to " + t.DBName}
			if repair {
				p.Repaired = r.repair(ctx, "REVOKE ALL ON DATABASE %s FROM PUBLIC", t.DBName)
			}
			add(p)
		}
		if !c.OwnConnect {
			p := Problem{Kind: "own-connect", Object: t.Slug, Detail: t.RoleName + " may not connect to its own database"}
			if repair {
				p.Repaired = r.repair(ctx, "GRANT CONNECT, TEMPORARY ON DATABASE %s TO %s", t.DBName, t.RoleName)
			}
			add(p)
		}
		for _, other := range c.Foreign {
			p := Problem{Kind: "foreign-connect", Object: t.Slug, Detail: other + " may connect to " + t.DBName}
			if repair {
				p.Repaired = r.repair(ctx, "REVOKE ALL ON DATABASE %s FROM %s", t.DBName, other)
			}
			add(p)
		}
		applied, err := r.appliedVersion(ctx, pools, t.Slug)
		if err != nil || applied != latest || t.SchemaVersion != latest {
			detail := fmt.Sprintf("at %q, latest is %q", applied, latest)
			if err != nil {
				detail = "cannot read migrations: " + err.Error()
			}
			p := Problem{Kind: "schema-version", Object: t.Slug, Detail: detail}
			if repair {
				if tt, gerr := r.Get(ctx, t.Slug); gerr == nil {
					_, merr := r.migrateOne(ctx, pools, tt, latest)
					p.Repaired = merr == nil
				}
			}
			add(p)
		}
	}
	stray, err := r.checkStrayAccess(ctx, repair, roleOwner)
	if err != nil {
		return nil, err
	}
	return append(problems, stray...), nil
}

// appliedVersion reads the newest migration applied in a tenant database,
// connected as the tenant's role.
func (r *Registry) appliedVersion(ctx context.Context, pools *Pools, slug string) (string, error) {
	t, err := r.Get(ctx, slug)
	if err != nil {
		return "", err
	}
	dsn, err := pools.TenantURL(t)
	if err != nil {
		return "", err
	}
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		return "", err
	}
	defer db.Close()
	var id string
	err = db.GetContext(ctx, &id, `SELECT COALESCE(max(id), '') FROM `+migrations.TenantSet().TableName)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", migrations.TenantSet().TableName, err)
	}
	return id, nil
}

// repair runs one DDL statement on validated, quoted identifiers.
func (r *Registry) repair(ctx context.Context, format string, idents ...string) bool {
	quoted := make([]any, len(idents))
	for i, id := range idents {
		q, err := r.names.quote(id)
		if err != nil {
			r.log.Error("doctor: refusing to repair", "ident", id, "err", err)
			return false
		}
		quoted[i] = q
	}
	if _, err := r.db.ExecContext(ctx, fmt.Sprintf(format, quoted...)); err != nil {
		r.log.Error("doctor: repair failed", "err", err)
		return false
	}
	return true
}
