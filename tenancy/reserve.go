package tenancy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	migrate "github.com/rubenv/sql-migrate"

	"github.com/tenantql/tenantql/migrations"
)

// The reserve makes sign-up fast. Creating a database from template0 and
// migrating it takes hundreds of milliseconds; so the reserve keeps
//
//   - a template database, "<prefix>tpl_<hash>", at the newest tenant
//     migration (the hash is that of the tenant migrations, so a new
//     migration set gets a new template), marked IS_TEMPLATE and closed to
//     connections, owned by the control role; its objects belong to a
//     NOLOGIN role of the same name, so that a clone can hand them to its
//     tenant's role with REASSIGN OWNED without touching anything else;
//   - a few spare databases, "<prefix>spare_<hex>", cloned from it, each
//     owned (objects included) by a NOLOGIN role of the same name, with
//     CONNECT revoked from PUBLIC, listed in the control table spares.
//
// A new tenant claims a spare by renaming its database and role to the
// tenant's names; the role step then re-keys the role (LOGIN, a fresh
// SCRAM verifier). With no spare it clones the template; with no template
// it falls back to template0 and the migrations. Spares and the template
// have no tenant row, so no host can ever route to them, and their roles
// cannot log in.

// ReserveOptions configure the template database and the spares.
type ReserveOptions struct {
	// ServerURL is the control database URL; its role (CREATEDB,
	// CREATEROLE) builds the template and the spares and connects to the
	// clones to hand their objects over.
	ServerURL string
	// NamePrefix starts every name, as given to NewRegistry.
	NamePrefix string
	// Template keeps a template database at the newest tenant migration.
	// Spares need it: with Template false there are none.
	Template bool
	// Spares is how many spare tenant databases to keep ready; 0 disables them.
	Spares int
	// Interval is how often Run checks the reserve when nothing kicks it.
	// Defaults to 30s.
	Interval time.Duration
	// Metrics receives reserve events; nil records nothing.
	Metrics ReserveMetrics
}

// ReserveMetrics is told how tenant databases are made.
type ReserveMetrics interface {
	// DatabaseCreated counts a tenant database made from source: "spare",
	// "template" or "template0".
	DatabaseCreated(source string)
	// SparesReady reports the spares ready to be claimed.
	SparesReady(n int)
}

type noReserveMetrics struct{}

func (noReserveMetrics) DatabaseCreated(string) {}
func (noReserveMetrics) SparesReady(int)        {}

// Reserve keeps the tenant template database and the spare databases
// ready, and hands them to the provisioner. A nil *Reserve is valid: it
// has no template and no spares.
type Reserve struct {
	control *sqlx.DB
	server  *url.URL
	prefix  string
	opts    ReserveOptions
	log     *slog.Logger
	version string // newest tenant migration id
	tpl     string // template database (and content role) name
	tplRe   *regexp.Regexp
	spareRe *regexp.Regexp
	kick    chan struct{}
}

// NewReserve returns the reserve of the deployment whose control database
// is control. Call Run to build and refill it.
func NewReserve(control *sqlx.DB, o ReserveOptions, log *slog.Logger) (*Reserve, error) {
	u, err := url.Parse(o.ServerURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("tenancy: reserve: server URL must be a postgres:// URL with a host")
	}
	names, err := newNaming(o.NamePrefix)
	if err != nil {
		return nil, err
	}
	if o.Interval <= 0 {
		o.Interval = 30 * time.Second
	}
	if o.Spares < 0 {
		o.Spares = 0
	}
	if o.Metrics == nil {
		o.Metrics = noReserveMetrics{}
	}
	if log == nil {
		log = slog.Default()
	}
	version, hash, err := tenantMigrationsHash()
	if err != nil {
		return nil, err
	}
	p := names.prefix
	return &Reserve{
		control: control, server: u, prefix: p, opts: o, log: log,
		version: version, tpl: p + "tpl_" + hash[:12],
		tplRe:   regexp.MustCompile(`^` + p + `tpl_[0-9a-f]{12}$`),
		spareRe: regexp.MustCompile(`^` + p + `spare_[0-9a-f]{16}$`),
		kick:    make(chan struct{}, 1),
	}, nil
}

// tenantMigrationsHash returns the newest tenant migration id and a hash
// of the whole set (ids and statements).
func tenantMigrationsHash() (latest, hash string, err error) {
	ms, err := migrations.Tenant().FindMigrations()
	if err != nil || len(ms) == 0 {
		return "", "", fmt.Errorf("tenancy: read tenant migrations: %v", err)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Less(ms[j]) })
	h := sha256.New()
	for _, m := range ms {
		fmt.Fprintf(h, "%s\x00%s\x00", m.Id, strings.Join(m.Up, "\x00"))
	}
	return ms[len(ms)-1].Id, hex.EncodeToString(h.Sum(nil)), nil
}

// reserveLockKey is the advisory lock (in the control database) held while
// one process builds the template and refills the spares.
const reserveLockKey = 7_305_019_002

// Kick asks Run to refill the spares now (after a sign-up).
func (r *Reserve) Kick() {
	if r == nil {
		return
	}
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run builds the template and keeps Spares spare databases ready until ctx
// ends. Several processes may run it: one at a time does the work.
func (r *Reserve) Run(ctx context.Context) {
	if r == nil {
		return
	}
	for {
		if err := r.Refill(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("refill tenant reserve", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		case <-time.After(r.opts.Interval):
		}
	}
}

// Refill makes one pass: unless another process holds the reserve lock, it
// builds the template if missing, drops stale spares (older migrations,
// builds cut short) and builds spares until Spares are ready.
func (r *Reserve) Refill(ctx context.Context) error {
	if r == nil || !r.opts.Template {
		return nil
	}
	conn, err := r.control.Conn(ctx)
	if err != nil {
		return dbError("reserve: connect", err)
	}
	defer conn.Close()
	var locked bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, reserveLockKey).Scan(&locked); err != nil {
		return dbError("reserve: lock", err)
	}
	if !locked {
		return nil
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, reserveLockKey)

	if err := r.ensureTemplate(ctx); err != nil {
		return err
	}
	if err := r.collect(ctx); err != nil {
		return err
	}
	for {
		n, err := r.readySpares(ctx)
		if err != nil {
			return err
		}
		r.opts.Metrics.SparesReady(n)
		if n > r.opts.Spares { // SPARE_TENANTS was lowered
			return r.dropSurplus(ctx, n-r.opts.Spares)
		}
		if n == r.opts.Spares || ctx.Err() != nil {
			return nil
		}
		if err := r.buildSpare(ctx); err != nil {
			return err
		}
	}
}

// dropSurplus drops n unclaimed spares. Each row is taken as a claim would
// take it (FOR UPDATE SKIP LOCKED), so a concurrent claim gets another.
func (r *Reserve) dropSurplus(ctx context.Context, n int) error {
	const q = `DELETE FROM spares WHERE name = (SELECT name FROM spares
			WHERE state = 'READY' AND claimed_by IS NULL
			ORDER BY created_at DESC, name LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING name`
	for range n {
		var name string
		err := r.control.GetContext(ctx, &name, q)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return dbError("reserve: drop surplus spare", err)
		}
		if err := r.dropDatabase(ctx, name); err != nil {
			return err
		}
		if err := r.dropRole(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// readySpares counts the spares a tenant can claim now.
func (r *Reserve) readySpares(ctx context.Context) (int, error) {
	const q = `SELECT count(*) FROM spares WHERE state = 'READY' AND claimed_by IS NULL AND version = $1`
	var n int
	if err := r.control.GetContext(ctx, &n, q, r.version); err != nil {
		return 0, dbError("reserve: count spares", err)
	}
	return n, nil
}

// buildSpare makes one spare: its row first (so that its objects are
// never mistaken for orphans), then its role and a clone of the template
// owned by it, with CONNECT revoked from PUBLIC; then the row turns READY.
func (r *Reserve) buildSpare(ctx context.Context) error {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("reserve: spare name: %w", err)
	}
	name := r.prefix + "spare_" + hex.EncodeToString(b)
	q, err := r.quoteReserved(name)
	if err != nil {
		return err
	}
	tpl, _ := r.quoteReserved(r.tpl)
	if _, err := r.control.ExecContext(ctx, `INSERT INTO spares (name, version, state) VALUES ($1, $2, 'BUILDING')`, name, r.version); err != nil {
		return dbError("reserve: record spare", err)
	}
	if err := r.ensureNologinRole(ctx, name); err != nil {
		return err
	}
	if _, err := r.control.ExecContext(ctx, "CREATE DATABASE "+q+" OWNER "+q+" TEMPLATE "+tpl); err != nil {
		return dbError("reserve: create spare", err)
	}
	if err := r.adopt(ctx, name, name); err != nil {
		return err
	}
	for _, stmt := range []string{
		"REVOKE ALL ON DATABASE " + q + " FROM PUBLIC",
		"GRANT CONNECT, TEMPORARY ON DATABASE " + q + " TO " + q,
	} {
		if _, err := r.control.ExecContext(ctx, stmt); err != nil {
			return dbError("reserve: spare privileges", err)
		}
	}
	if _, err := r.control.ExecContext(ctx, `UPDATE spares SET state = 'READY' WHERE name = $1`, name); err != nil {
		return dbError("reserve: spare ready", err)
	}
	return nil
}

// collect drops what no one will claim: spares cut short while being built
// (the caller holds the lock, so no build is in progress), unclaimed spares
// of older tenant migrations, and spare-named databases and roles with no
// row (a tenant deleted in the middle of its claim).
func (r *Reserve) collect(ctx context.Context) error {
	var rows []struct {
		Name    string `db:"name"`
		Version string `db:"version"`
		State   string `db:"state"`
		Claimed bool   `db:"claimed"`
	}
	if err := r.control.SelectContext(ctx, &rows, `SELECT name, version, state, claimed_by IS NOT NULL AS claimed FROM spares`); err != nil {
		return dbError("reserve: list spares", err)
	}
	known := map[string]bool{}
	for _, s := range rows {
		known[s.Name] = true
		if s.Claimed || (s.State == "READY" && s.Version >= r.version) {
			continue
		}
		if err := r.dropSpare(ctx, s.Name); err != nil {
			return err
		}
	}
	var objects []string
	const q = `SELECT datname FROM pg_database WHERE datname ~ $1 UNION SELECT rolname FROM pg_roles WHERE rolname ~ $1`
	if err := r.control.SelectContext(ctx, &objects, q, r.spareRe.String()); err != nil {
		return dbError("reserve: list spare objects", err)
	}
	for _, o := range objects {
		if !known[o] {
			if err := r.dropSpare(ctx, o); err != nil {
				return err
			}
		}
	}
	return nil
}

// dropSpare drops a spare's database, role and row.
func (r *Reserve) dropSpare(ctx context.Context, name string) error {
	if err := r.dropDatabase(ctx, name); err != nil {
		return err
	}
	if err := r.dropRole(ctx, name); err != nil {
		return err
	}
	if _, err := r.control.ExecContext(ctx, `DELETE FROM spares WHERE name = $1 AND claimed_by IS NULL`, name); err != nil {
		return dbError("reserve: delete spare", err)
	}
	return nil
}

// quoteReserved validates a template or spare name, then quotes it.
func (r *Reserve) quoteReserved(name string) (string, error) {
	if !r.tplRe.MatchString(name) && !r.spareRe.MatchString(name) {
		return "", fmt.Errorf("tenancy: refusing identifier %q", name)
	}
	return pq.QuoteIdentifier(name), nil
}

// templateReady reports whether the current template is complete: it is
// marked IS_TEMPLATE and closed to connections only once migrated.
func (r *Reserve) templateReady(ctx context.Context) (bool, error) {
	const q = `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate AND NOT datallowconn)`
	var ok bool
	if err := r.control.GetContext(ctx, &ok, q, r.tpl); err != nil {
		return false, dbError("reserve: template lookup", err)
	}
	return ok, nil
}

// ensureTemplate builds the current template unless it is complete. The
// caller holds the reserve lock.
func (r *Reserve) ensureTemplate(ctx context.Context) error {
	if ok, err := r.templateReady(ctx); err != nil || ok {
		return err
	}
	start := time.Now()
	name, err := r.quoteReserved(r.tpl)
	if err != nil {
		return err
	}
	// A half-built template (a crash during its migrations) starts over.
	if err := r.dropDatabase(ctx, r.tpl); err != nil {
		return err
	}
	if err := r.ensureNologinRole(ctx, r.tpl); err != nil {
		return err
	}
	if _, err := r.control.ExecContext(ctx, "CREATE DATABASE "+name+" TEMPLATE template0 ENCODING 'UTF8'"); err != nil {
		return dbError("reserve: create template", err)
	}
	if _, err := r.control.ExecContext(ctx, "REVOKE ALL ON DATABASE "+name+" FROM PUBLIC"); err != nil {
		return dbError("reserve: template privileges", err)
	}
	// Migrate as the template's own role, so that its objects belong to
	// it and a clone can hand them over with REASSIGN OWNED; the role
	// owns the public schema too, which the clone's role then gets.
	db, err := r.open(r.tpl, "")
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, "ALTER SCHEMA public OWNER TO "+name)
	db.Close()
	if err != nil {
		return dbError("reserve: template schema owner", err)
	}
	if db, err = r.open(r.tpl, r.tpl); err != nil {
		return err
	}
	_, err = migrations.TenantSet().ExecContext(ctx, db.DB, "postgres", migrations.Tenant(), migrate.Up)
	db.Close()
	if err != nil {
		return fmt.Errorf("reserve: migrate template: %w", err)
	}
	if _, err := r.control.ExecContext(ctx, "ALTER DATABASE "+name+" WITH ALLOW_CONNECTIONS false IS_TEMPLATE true"); err != nil {
		return dbError("reserve: mark template", err)
	}
	r.log.Info("tenant template built", "template", r.tpl, "version", r.version, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// ensureNologinRole creates a NOLOGIN role unless it exists, and makes the
// control role a member (a non-superuser needs that to create databases
// owned by it and to REASSIGN its objects).
func (r *Reserve) ensureNologinRole(ctx context.Context, name string) error {
	q, err := r.quoteReserved(name)
	if err != nil {
		return err
	}
	var found bool
	if err := r.control.GetContext(ctx, &found, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, name); err != nil {
		return dbError("reserve: role lookup", err)
	}
	if !found {
		_, err := r.control.ExecContext(ctx, "CREATE ROLE "+q+" NOLOGIN")
		if err != nil && pq.As(err, "42710") == nil {
			return dbError("reserve: create role", err)
		}
	}
	return r.grantToControl(ctx, q)
}

// grantToControl makes the control role a member of role (quoted) unless
// it is a superuser.
func (r *Reserve) grantToControl(ctx context.Context, role string) error {
	var super bool
	if err := r.control.GetContext(ctx, &super, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`); err != nil {
		return dbError("reserve: check control role", err)
	}
	if super {
		return nil
	}
	if _, err := r.control.ExecContext(ctx, "GRANT "+role+" TO CURRENT_USER"); err != nil {
		return dbError("reserve: grant role", err)
	}
	return nil
}

// open returns a one-connection handle on database dbName as the control
// role, acting as role asRole when not "".
func (r *Reserve) open(dbName, asRole string) (*sqlx.DB, error) {
	u := *r.server
	u.Path = "/" + dbName
	q := u.Query()
	q.Set("application_name", "tenantql-reserve")
	if asRole != "" {
		q.Set("options", "-c role="+asRole)
	}
	u.RawQuery = q.Encode()
	db, err := sqlx.Open("postgres", u.String())
	if err != nil {
		return nil, fmt.Errorf("reserve: open %s: %w", dbName, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// createDatabase creates the tenant database dbName (quoted) owned by role
// (quoted) from the template when it is ready, else from template0 (the
// migrate step then builds the schema). It counts the source.
func (r *Reserve) createDatabase(ctx context.Context, control *sqlx.DB, role, dbName string) error {
	if r != nil && r.opts.Template {
		ok, err := r.templateReady(ctx)
		if err != nil {
			return err
		}
		if ok {
			tpl, _ := r.quoteReserved(r.tpl)
			_, err := control.ExecContext(ctx, "CREATE DATABASE "+dbName+" OWNER "+role+" TEMPLATE "+tpl)
			switch {
			case err == nil:
				r.opts.Metrics.DatabaseCreated("template")
				return nil
			case pq.As(err, "42P04") != nil: // duplicate_database: created meanwhile
				return nil
			}
			// Someone is connected to the template, or it went away:
			// template0 still works.
			r.log.Warn("clone tenant template; falling back to template0", "template", r.tpl, "err", err)
		}
	}
	_, err := control.ExecContext(ctx, "CREATE DATABASE "+dbName+" OWNER "+role+" TEMPLATE template0 ENCODING 'UTF8'")
	if err != nil && pq.As(err, "42P04") == nil {
		return dbError("create database", err)
	}
	if err == nil && r != nil {
		r.opts.Metrics.DatabaseCreated("template0")
	}
	return nil
}

// adopt hands every object in database dbName that belongs to a template
// role (a clone's tables, from the template) to role toRole. It asks the
// shared catalog first and connects only when there is something to hand
// over, so it is cheap to call again after a crash.
func (r *Reserve) adopt(ctx context.Context, dbName, toRole string) error {
	if r == nil {
		return nil
	}
	const q = `SELECT DISTINCT o.rolname FROM pg_shdepend d
		JOIN pg_database db ON db.oid = d.dbid
		JOIN pg_roles o ON o.oid = d.refobjid
		WHERE db.datname = $1 AND d.deptype = 'o' AND o.rolname ~ $2`
	var owners []string
	if err := r.control.SelectContext(ctx, &owners, q, dbName, r.tplRe.String()); err != nil {
		return dbError("reserve: ownership lookup", err)
	}
	if len(owners) == 0 {
		return nil
	}
	to := pq.QuoteIdentifier(toRole)
	db, err := r.open(dbName, "")
	if err != nil {
		return err
	}
	defer db.Close()
	// The public schema first: REASSIGN OWNED may reach a function before
	// the schema, and the new owner of a function needs CREATE on its
	// schema (a trigger function of the tenant migrations did).
	var schemaOwner string
	if err := db.GetContext(ctx, &schemaOwner, `SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'public'`); err != nil {
		return dbError("reserve: schema owner lookup", err)
	}
	if slices.Contains(owners, schemaOwner) {
		if _, err := db.ExecContext(ctx, "ALTER SCHEMA public OWNER TO "+to); err != nil {
			return dbError("reserve: hand over the public schema", err)
		}
	}
	for _, o := range owners {
		from, err := r.quoteReserved(o)
		if err != nil {
			return err
		}
		if _, err := db.ExecContext(ctx, "REASSIGN OWNED BY "+from+" TO "+to); err != nil {
			return dbError("reserve: hand over objects", err)
		}
	}
	return nil
}

// dropDatabase drops a template or spare database if it exists.
func (r *Reserve) dropDatabase(ctx context.Context, name string) error {
	q, err := r.quoteReserved(name)
	if err != nil {
		return err
	}
	var isTemplate sql.NullBool
	if err := r.control.GetContext(ctx, &isTemplate, `SELECT (SELECT datistemplate FROM pg_database WHERE datname = $1)`, name); err != nil {
		return dbError("reserve: database lookup", err)
	}
	if !isTemplate.Valid {
		return nil
	}
	if isTemplate.Bool {
		if _, err := r.control.ExecContext(ctx, "ALTER DATABASE "+q+" WITH IS_TEMPLATE false"); err != nil {
			return dbError("reserve: unmark template", err)
		}
	}
	if _, err := r.control.ExecContext(ctx, "DROP DATABASE IF EXISTS "+q+" WITH (FORCE)"); err != nil {
		return dbError("reserve: drop database", err)
	}
	return nil
}

// dropRole drops a template or spare role if it exists.
func (r *Reserve) dropRole(ctx context.Context, name string) error {
	q, err := r.quoteReserved(name)
	if err != nil {
		return err
	}
	if _, err := r.control.ExecContext(ctx, "DROP ROLE IF EXISTS "+q); err != nil {
		return dbError("reserve: drop role", err)
	}
	return nil
}

// isReservedName reports whether name is a template or spare name of this
// deployment.
func (r *Reserve) isReservedName(name string) bool {
	return r != nil && (r.tplRe.MatchString(name) || r.spareRe.MatchString(name))
}

// claim gives tenant t a spare's database and role, renamed to the
// tenant's names, and reports whether it did. It claims only for a tenant
// that has neither a database nor a role yet. The claim is a row update
// (FOR UPDATE SKIP LOCKED: concurrent claims take different spares) that
// names the tenant; the renames follow, each skipped when done, and the
// row goes last. A claim cut short by a crash is found by its row and
// finished by the next pass, on any process. boundary is called between
// the stages (a failpoint may stop there). The role step then re-keys the
// role (LOGIN, password, limits), the database step finds the database.
func (r *Reserve) claim(ctx context.Context, control sqlxExecGetter, t *Tenant) (bool, error) {
	if r == nil {
		return false, nil
	}
	var name string
	err := control.GetContext(ctx, &name, `SELECT name FROM spares WHERE claimed_by = $1`, t.ID)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if r.opts.Spares <= 0 {
			return false, nil
		}
		var has bool
		const qHas = `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) OR EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $2)`
		if err := control.GetContext(ctx, &has, qHas, t.DBName, t.RoleName); err != nil {
			return false, dbError("claim spare: catalog lookup", err)
		}
		if has {
			return false, nil // an earlier pass went the other way
		}
		const qClaim = `UPDATE spares SET claimed_by = $1, claimed_at = now()
			WHERE name = (SELECT name FROM spares
				WHERE state = 'READY' AND claimed_by IS NULL AND version = $2
				ORDER BY created_at, name LIMIT 1 FOR UPDATE SKIP LOCKED)
			RETURNING name`
		err = control.GetContext(ctx, &name, qClaim, t.ID, r.version)
		if errors.Is(err, sql.ErrNoRows) {
			r.Kick()
			return false, nil
		}
		if err != nil {
			return false, dbError("claim spare", err)
		}
		// No Kick here: the provisioner kicks once this tenant is done, so
		// building the next spare (a CREATE DATABASE) does not compete
		// with the rest of this sign-up for the CPUs.
	case err != nil:
		return false, dbError("claim spare: lookup", err)
	}

	spare, err := r.quoteReserved(name)
	if err != nil {
		return false, err
	}
	var st struct {
		SpareDB    bool `db:"spare_db"`
		TenantDB   bool `db:"tenant_db"`
		SpareRole  bool `db:"spare_role"`
		TenantRole bool `db:"tenant_role"`
	}
	const qState = `SELECT
		EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS spare_db,
		EXISTS (SELECT 1 FROM pg_database WHERE datname = $2) AS tenant_db,
		EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS spare_role,
		EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $3) AS tenant_role`
	if err := control.GetContext(ctx, &st, qState, name, t.DBName, t.RoleName); err != nil {
		return false, dbError("claim spare: catalog lookup", err)
	}
	if (!st.SpareDB && !st.TenantDB) || (!st.SpareRole && !st.TenantRole) {
		// The spare lost its objects (dropped by hand?): give it up and
		// go the slow way.
		r.log.Warn("claimed spare is incomplete; dropping it", "spare", name, "tenant", t.Slug)
		_, _ = control.ExecContext(ctx, `DELETE FROM spares WHERE name = $1`, name)
		_ = r.dropDatabase(ctx, name)
		_ = r.dropRole(ctx, name)
		return false, nil
	}
	dbName, err := quoteTenantName(t.DBName)
	if err != nil {
		return false, err
	}
	role, err := quoteTenantName(t.RoleName)
	if err != nil {
		return false, err
	}
	if st.SpareDB && !st.TenantDB {
		if _, err := control.ExecContext(ctx, "ALTER DATABASE "+spare+" RENAME TO "+dbName); err != nil {
			return false, dbError("claim spare: rename database", err)
		}
	}
	if st.SpareRole && !st.TenantRole {
		if _, err := control.ExecContext(ctx, "ALTER ROLE "+spare+" RENAME TO "+role); err != nil {
			return false, dbError("claim spare: rename role", err)
		}
	}
	if _, err := control.ExecContext(ctx, `DELETE FROM spares WHERE name = $1 AND claimed_by = $2`, name, t.ID); err != nil {
		return false, dbError("claim spare: done", err)
	}
	r.opts.Metrics.DatabaseCreated("spare")
	return true, nil
}

// sqlxExecGetter is the part of *sqlx.DB that claim uses.
type sqlxExecGetter interface {
	GetContext(ctx context.Context, dest any, query string, args ...any) error
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// quoteTenantName quotes a tenant database or role name ("<prefix><32 hex>")
// after checking its shape; the prefix was validated by the registry.
func quoteTenantName(name string) (string, error) {
	if len(name) < 33 || len(name) > 63 {
		return "", fmt.Errorf("tenancy: refusing identifier %q", name)
	}
	if _, err := hex.DecodeString(name[len(name)-32:]); err != nil {
		return "", fmt.Errorf("tenancy: refusing identifier %q", name)
	}
	if !prefixPattern.MatchString(name[:len(name)-32]) {
		return "", fmt.Errorf("tenancy: refusing identifier %q", name)
	}
	return pq.QuoteIdentifier(name), nil
}

// ReserveStatus is what `tenantql doctor` shows of the reserve.
type ReserveStatus struct {
	Template      string // name of the current template database
	TemplateReady bool
	Version       string   // newest tenant migration, the template's
	Spares        []string // spare databases ready to be claimed
	Pending       int      // spares being built or claimed
}

// Check describes the reserve and reports its problems: template
// databases of other tenant migrations (stale-template), spare-named
// databases or roles without a spares row (orphan-spare) and ready spares
// whose database or role is missing (missing-spare). With repair it drops
// the first two and forgets the last. Spares and the template are never
// tenant orphans: they are not tenant-named.
func (r *Reserve) Check(ctx context.Context, repair bool) (ReserveStatus, []Problem, error) {
	st := ReserveStatus{Template: r.tpl, Version: r.version}
	var err error
	if st.TemplateReady, err = r.templateReady(ctx); err != nil {
		return st, nil, err
	}
	var problems []Problem
	var tpls []string
	if err := r.control.SelectContext(ctx, &tpls, `SELECT datname FROM pg_database WHERE datname ~ $1 AND datname <> $2`, r.tplRe.String(), r.tpl); err != nil {
		return st, nil, dbError("reserve: list templates", err)
	}
	for _, name := range tpls {
		p := Problem{Kind: "stale-template", Object: name, Detail: "template of other tenant migrations than " + r.version}
		if repair {
			p.Repaired = r.dropDatabase(ctx, name) == nil && r.dropRole(ctx, name) == nil
		}
		problems = append(problems, p)
	}
	var rows []struct {
		Name    string `db:"name"`
		State   string `db:"state"`
		Claimed bool   `db:"claimed"`
		DB      bool   `db:"db"`
		Role    bool   `db:"role"`
	}
	const q = `SELECT s.name, s.state, s.claimed_by IS NOT NULL AS claimed,
		EXISTS (SELECT 1 FROM pg_database WHERE datname = s.name) AS db,
		EXISTS (SELECT 1 FROM pg_roles WHERE rolname = s.name) AS role
		FROM spares s ORDER BY s.created_at, s.name`
	if err := r.control.SelectContext(ctx, &rows, q); err != nil {
		return st, nil, dbError("reserve: list spares", err)
	}
	known := map[string]bool{}
	for _, s := range rows {
		known[s.Name] = true
		switch {
		case s.Claimed || s.State != "READY":
			st.Pending++
		case !s.DB || !s.Role:
			p := Problem{Kind: "missing-spare", Object: s.Name, Detail: "spare row without its database or role"}
			if repair {
				p.Repaired = r.dropSpare(ctx, s.Name) == nil
			}
			problems = append(problems, p)
		default:
			st.Spares = append(st.Spares, s.Name)
		}
	}
	// Objects first seen without a row and still there after a second
	// look are orphans (a spare's row is written before its objects).
	var objects []string
	const qo = `SELECT datname FROM pg_database WHERE datname ~ $1 UNION SELECT rolname FROM pg_roles WHERE rolname ~ $1`
	if err := r.control.SelectContext(ctx, &objects, qo, r.spareRe.String()); err != nil {
		return st, nil, dbError("reserve: list spare objects", err)
	}
	for _, o := range objects {
		if known[o] {
			continue
		}
		var has bool
		if err := r.control.GetContext(ctx, &has, `SELECT EXISTS (SELECT 1 FROM spares WHERE name = $1)`, o); err != nil {
			return st, nil, dbError("reserve: recheck spare", err)
		}
		if has {
			continue
		}
		p := Problem{Kind: "orphan-spare", Object: o, Detail: "spare-named object with no spares row"}
		if repair {
			p.Repaired = r.dropDatabase(ctx, o) == nil && r.dropRole(ctx, o) == nil
		}
		problems = append(problems, p)
	}
	return st, problems, nil
}
