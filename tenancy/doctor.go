package tenancy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/tenantql/tenantql/migrations"
	"github.com/tenantql/tenantql/pgerr"
)

// Problem is one inconsistency between the control database and the
// catalogs of a database server.
type Problem struct {
	Server   string // the database server concerned; "" means DefaultServer
	Kind     string // control-role, unreachable, orphan-database, orphan-role, wrong-server, missing-database, missing-role, owner, role-attributes, membership, public-connect, own-connect, foreign-connect, stray-access, schema-version
	Object   string // database, role, tenant slug or server concerned
	Detail   string
	Repaired bool
}

func (p Problem) String() string {
	server := p.Server
	if server == "" {
		server = DefaultServer
	}
	s := fmt.Sprintf("%s %s: %s [server %s]", p.Kind, p.Object, p.Detail, server)
	if p.Repaired {
		s += " (repaired)"
	}
	return s
}

// Doctor compares the tenants table with pg_database and pg_roles of
// every database server of the fleet: every tenant database and role must
// belong to exactly one tenant, on the server its row names, and every
// READY or SUSPENDED tenant must have its database (owned by its role,
// which may connect, while PUBLIC and other tenants' roles may not), a
// safe LOGIN role and the latest migrations. Only names of this
// deployment's prefix are considered (the template and spares have names
// of their own). With repair it drops orphans, re-applies privileges and
// migrates, each on the server concerned; it never touches a tenant's
// data otherwise, and never drops a tenant's database found on another
// server than its own. Tenants still PROVISIONING, DELETING or MOVING
// belong to the provisioner and are only checked for orphans (the new
// copy of a MOVING tenant is expected on its target). A server that does
// not answer is one problem ("unreachable") and the others are still
// checked. It is safe to run while servers create, move and delete
// tenants.
func (r *Registry) Doctor(ctx context.Context, pools *Pools, repair bool) ([]Problem, error) {
	var problems []Problem
	if err := r.Load(ctx); err != nil {
		return nil, err
	}
	if err := CheckControlRole(ctx, r.db); errors.Is(err, ErrControlRole) {
		problems = append(problems, Problem{Server: DefaultServer, Kind: "control-role", Object: "current_user", Detail: err.Error()})
	} else if err != nil {
		return nil, err
	}
	names, err := r.fleetNames(ctx)
	if err != nil {
		return nil, err
	}
	// Every server's catalogs first, then the rows: a tenant row is
	// inserted before its database and role are created (on any server)
	// and deleted after they are dropped, so an object seen first and
	// still there afterwards, with no row, is a real orphan, even while
	// tenants are created, moved and deleted.
	var checks []*serverCheck
	for _, name := range names {
		c, err := r.readCatalogs(ctx, pools, name, repair)
		if errors.Is(err, ErrServerNotFound) {
			continue // removed meanwhile: nothing of ours is left on it
		}
		if err != nil {
			problems = append(problems, r.unreachable(name, err))
			continue
		}
		checks = append(checks, c)
	}
	rows, err := r.doctorRows(ctx)
	if err != nil {
		return nil, err
	}
	latest, err := migrations.LatestID(migrations.Tenant())
	if err != nil {
		return nil, err
	}
	for _, c := range checks {
		err := c.run(ctx, rows, latest)
		problems = append(problems, c.problems...)
		if pgerr.IsUnavailable(err) && ctx.Err() == nil { // it went away meanwhile
			problems = append(problems, r.unreachable(c.name, err))
		} else if err != nil {
			return nil, fmt.Errorf("doctor: server %s: %w", c.name, err)
		}
	}
	return problems, nil
}

// fleetNames returns the names of the database servers, "default" first.
func (r *Registry) fleetNames(ctx context.Context) ([]string, error) {
	if r.servers == nil {
		return []string{DefaultServer}, nil
	}
	list, err := r.servers.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("doctor: %w", err)
	}
	names := make([]string, 0, len(list))
	for _, s := range list {
		names = append(names, s.Name)
	}
	return names, nil
}

// unreachable is the problem of a server doctor could not ask. It says
// why without the error's text (a driver's message may name the host
// and user); the log has the error.
func (r *Registry) unreachable(name string, err error) Problem {
	r.log.Warn("doctor: database server not checked", "server", name, "err", err)
	detail := "doctor could not ask it (see the log)"
	var pqErr *pq.Error
	switch {
	case errors.As(err, &pqErr) && !pgerr.IsUnavailable(err):
		detail = "the server refused doctor's connection or query: " + pqErr.Code.Name()
	case pgerr.IsUnavailable(err):
		detail = "the server does not answer; its tenants were not checked"
	}
	return Problem{Server: name, Kind: "unreachable", Object: name, Detail: detail}
}

// doctorRow is where a tenant's database and role should be: a tenant
// has one, a MOVING tenant two (its copy on move_server too).
type doctorRow struct {
	Slug          string `db:"slug"`
	Status        string `db:"status"`
	Server        string `db:"server"`
	DBName        string `db:"db_name"`
	RoleName      string `db:"role_name"`
	SchemaVersion string `db:"schema_version"`
}

func (r *Registry) doctorRows(ctx context.Context) ([]doctorRow, error) {
	const q = `SELECT slug, status, database_server AS server, db_name, role_name, schema_version FROM tenants
		UNION ALL -- the other copy of a MOVING tenant (move.go)
		SELECT slug, status, move_server, move_db_name, move_db_name, schema_version FROM tenants WHERE move_server IS NOT NULL`
	var rows []doctorRow
	if err := r.db.SelectContext(ctx, &rows, q); err != nil {
		return nil, dbError("doctor: tenants", err)
	}
	return rows, nil
}

// serverCheck is doctor's look at one database server: its tenant-named
// databases and roles as first read, then the problems found there.
type serverCheck struct {
	r        *Registry
	pools    *Pools
	name     string
	db       *sqlx.DB // the server's administrative handle
	repair   bool
	dbs      []string
	roles    []string
	problems []Problem
}

// readCatalogs reads the tenant-named databases and roles of the server
// name. An error means the server cannot be asked.
func (r *Registry) readCatalogs(ctx context.Context, pools *Pools, name string, repair bool) (*serverCheck, error) {
	c := &serverCheck{r: r, pools: pools, name: name, db: r.db, repair: repair}
	if name != DefaultServer {
		db, err := r.servers.Admin(ctx, name)
		if err != nil {
			return nil, err
		}
		c.db = db
	}
	// bounded: a silent server must not hold up the others' checks
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := c.db.SelectContext(rctx, &c.dbs, `SELECT datname FROM pg_database WHERE datname ~ $1`, r.names.catalogPattern()); err != nil {
		return nil, dbError("doctor: databases", err)
	}
	if err := c.db.SelectContext(rctx, &c.roles, `SELECT rolname FROM pg_roles WHERE rolname ~ $1`, r.names.catalogPattern()); err != nil {
		return nil, dbError("doctor: roles", err)
	}
	return c, nil
}

func (c *serverCheck) add(p Problem) {
	p.Server = c.name
	c.problems = append(c.problems, p)
}

// run checks the server against rows (every tenant's copies, on every
// server): orphans and copies on the wrong server, then each of its
// complete tenants, then tenant roles' access to databases not theirs.
func (c *serverCheck) run(ctx context.Context, rows []doctorRow, latest string) error {
	here := map[string]string{}         // database and role names of this server's tenants -> slug
	elsewhere := map[string]doctorRow{} // names of tenants' copies on other servers
	for _, t := range rows {
		if t.Server == c.name {
			here[t.DBName], here[t.RoleName] = t.Slug, t.Slug
		} else {
			elsewhere[t.DBName], elsewhere[t.RoleName] = t, t
		}
	}
	if err := c.strangers(ctx, "database", c.dbs, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`,
		"DROP DATABASE IF EXISTS %s WITH (FORCE)", here, elsewhere); err != nil {
		return err
	}
	if err := c.strangers(ctx, "role", c.roles, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`,
		"DROP ROLE IF EXISTS %s", here, elsewhere); err != nil {
		return err
	}
	for _, t := range rows {
		if t.Server != c.name || (t.Status != string(StatusReady) && t.Status != string(StatusSuspended)) {
			continue // elsewhere, or in progress: the provisioner owns it
		}
		if err := c.tenant(ctx, t, latest); err != nil {
			return err
		}
	}
	stray, err := c.r.checkStrayAccess(ctx, c.db, c.name == DefaultServer, c.repair, here)
	if err != nil {
		return err
	}
	for _, p := range stray {
		c.add(p)
	}
	return nil
}

// strangers reports each of names (databases or roles, as kind says) that
// no tenant of this server accounts for and that is still there on a
// second look (else the tenant's deletion dropped it meanwhile): an
// orphan, dropped with repair, or a tenant's object on the wrong server,
// only reported (which copy holds the data is for a person to say).
func (c *serverCheck) strangers(ctx context.Context, kind string, names []string, exists, drop string,
	here map[string]string, elsewhere map[string]doctorRow) error {
	for _, name := range names {
		if _, ok := here[name]; ok {
			continue
		}
		var still bool
		if err := c.db.GetContext(ctx, &still, exists, name); err != nil {
			return dbError("doctor: recheck", err)
		}
		if !still {
			continue
		}
		if t, ok := elsewhere[name]; ok {
			c.add(Problem{Kind: "wrong-server", Object: t.Slug,
				Detail: fmt.Sprintf("%s %s is on %s; the tenant's is on %s", kind, name, c.name, t.Server)})
			continue
		}
		p := Problem{Kind: "orphan-" + kind, Object: name, Detail: "no tenant row owns it"}
		if c.repair {
			p.Repaired = c.exec(ctx, drop, name)
		}
		c.add(p)
	}
	return nil
}

// tenant checks a READY or SUSPENDED tenant of this server: its database
// and role, their ownership and privileges, its schema version.
func (c *serverCheck) tenant(ctx context.Context, t doctorRow, latest string) error {
	var s struct {
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
	if err := c.db.GetContext(ctx, &s, q, t.DBName, t.RoleName, c.r.names.catalogPattern()); err != nil {
		return dbError("doctor: check tenant", err)
	}
	switch {
	case !s.DBExists:
		c.add(Problem{Kind: "missing-database", Object: t.Slug, Detail: t.DBName + " does not exist"})
		return nil
	case !s.RoleExists:
		c.add(Problem{Kind: "missing-role", Object: t.Slug, Detail: t.RoleName + " does not exist"})
		return nil
	}
	if s.Owner != t.RoleName {
		c.fix(ctx, Problem{Kind: "owner", Object: t.Slug, Detail: fmt.Sprintf("%s is owned by %s, not %s", t.DBName, s.Owner, t.RoleName)},
			"ALTER DATABASE %s OWNER TO %s", t.DBName, t.RoleName)
	}
	if !s.SafeRole {
		c.add(Problem{Kind: "role-attributes", Object: t.Slug, Detail: t.RoleName + " is not a plain LOGIN role"})
	}
	if !s.Member {
		// without it the control role can neither drop the database
		// nor end its sessions when the tenant is deleted
		c.fix(ctx, Problem{Kind: "membership", Object: t.Slug, Detail: "the control role is not a member of " + t.RoleName},
			"GRANT %s TO CURRENT_USER", t.RoleName)
	}
	if s.PublicAccess {
		c.fix(ctx, Problem{Kind: "public-connect", Object: t.Slug, Detail: "PUBLIC may connect to " + t.DBName},
			"REVOKE ALL ON DATABASE %s FROM PUBLIC", t.DBName)
	}
	if !s.OwnConnect {
		c.fix(ctx, Problem{Kind: "own-connect", Object: t.Slug, Detail: t.RoleName + " may not connect to its own database"},
			"GRANT CONNECT, TEMPORARY ON DATABASE %s TO %s", t.DBName, t.RoleName)
	}
	for _, other := range s.Foreign {
		c.fix(ctx, Problem{Kind: "foreign-connect", Object: t.Slug, Detail: other + " may connect to " + t.DBName},
			"REVOKE ALL ON DATABASE %s FROM %s", t.DBName, other)
	}
	c.schemaVersion(ctx, t, latest)
	return nil
}

// schemaVersion compares the tenant's database (and row) with the newest
// tenant migration; with repair it migrates.
func (c *serverCheck) schemaVersion(ctx context.Context, t doctorRow, latest string) {
	applied, err := c.r.appliedVersion(ctx, c.pools, t.Slug)
	if err == nil && applied == latest && t.SchemaVersion == latest {
		return
	}
	detail := fmt.Sprintf("at %q, latest is %q", applied, latest)
	if err != nil {
		detail = "cannot read migrations: " + err.Error()
	}
	p := Problem{Kind: "schema-version", Object: t.Slug, Detail: detail}
	if c.repair {
		if tt, gerr := c.r.Get(ctx, t.Slug); gerr == nil {
			_, merr := c.r.migrateOne(ctx, c.pools, tt, latest)
			p.Repaired = merr == nil
		}
	}
	c.add(p)
}

// fix adds p, repaired first by one DDL statement when asked to.
func (c *serverCheck) fix(ctx context.Context, p Problem, format string, idents ...string) {
	if c.repair {
		p.Repaired = c.exec(ctx, format, idents...)
	}
	c.add(p)
}

// exec runs one DDL statement on validated, quoted identifiers on the
// server.
func (c *serverCheck) exec(ctx context.Context, format string, idents ...string) bool {
	quoted := make([]any, len(idents))
	for i, id := range idents {
		q, err := c.r.names.quote(id)
		if err != nil {
			c.r.log.Error("doctor: refusing to repair", "ident", id, "err", err)
			return false
		}
		quoted[i] = q
	}
	if _, err := c.db.ExecContext(ctx, fmt.Sprintf(format, quoted...)); err != nil {
		c.r.log.Error("doctor: repair failed", "server", c.name, "err", err)
		return false
	}
	return true
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
