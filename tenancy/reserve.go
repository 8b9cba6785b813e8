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
// migrating it takes hundreds of milliseconds; so the reserve keeps, on
// every ACTIVE database server of the fleet (reserve_fleet.go),
//
//   - a template database, "<prefix>tpl_<hash>", at the newest tenant
//     migration (the hash is that of the tenant migrations, so a new
//     migration set gets a new template), marked IS_TEMPLATE and closed to
//     connections, owned by the control role; its objects belong to a
//     NOLOGIN role of the same name, so that a clone can hand them to its
//     tenant's role with REASSIGN OWNED without touching anything else;
//   - a few spare databases, "<prefix>spare_<hex>", cloned from it, each
//     owned (objects included) by a NOLOGIN role of the same name, with
//     CONNECT revoked from PUBLIC, listed in the control table spares
//     with the server they are on.
//
// A new tenant claims a spare of its own server by renaming its database
// and role to the tenant's names; the role step then re-keys the role
// (LOGIN, a fresh SCRAM verifier). With no spare it clones the server's
// template; with no template it falls back to template0 and the
// migrations. Spares and the template
// have no tenant row, so no host can ever route to them, and their roles
// cannot log in.

// ReserveOptions configure the template database and the spares.
type ReserveOptions struct {
	// ServerURL is the control database URL; its role (CREATEDB,
	// CREATEROLE) builds the template and the spares of the default
	// server and connects to the clones to hand their objects over.
	ServerURL string
	// Servers is the fleet: the template and spares of every other
	// ACTIVE server are built with that server's URL and administrative
	// handle. nil: the default server only.
	Servers *Servers
	// NamePrefix starts every name, as given to NewRegistry.
	NamePrefix string
	// Template keeps a template database at the newest tenant migration.
	// Spares need it: with Template false there are none.
	Template bool
	// Spares is how many spare tenant databases to keep ready on each
	// ACTIVE server; 0 disables them.
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
	// SparesReady reports the spares ready to be claimed, on all servers.
	SparesReady(n int)
}

type noReserveMetrics struct{}

func (noReserveMetrics) DatabaseCreated(string) {}
func (noReserveMetrics) SparesReady(int)        {}

// Reserve keeps the tenant template database and the spare databases of
// every ACTIVE server ready, and hands them to the provisioner. A nil
// *Reserve is valid: it has no template and no spares.
type Reserve struct {
	control *sqlx.DB
	server  *url.URL // the default server's (the control database's) URL
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

// Run builds the templates and keeps Spares spare databases ready on
// every ACTIVE server until ctx ends. Several processes may run it: one at
// a time works on each server.
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

// Refill makes one pass over the ACTIVE servers (refillServer). A server
// that fails does not keep the others from being refilled; the errors are
// returned together.
func (r *Reserve) Refill(ctx context.Context) error {
	if r == nil || !r.opts.Template {
		return nil
	}
	names, err := r.preparedServers(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		if err := r.refillServer(ctx, name); err != nil {
			errs = append(errs, fmt.Errorf("server %q: %w", name, err))
		}
	}
	if n, err := r.readySpares(ctx, ""); err == nil {
		r.opts.Metrics.SparesReady(n)
	}
	return errors.Join(errs...)
}

// refillServer works on the server name unless another process holds its
// reserve lock: it builds the template if missing, drops stale spares
// (older migrations, builds cut short) and builds spares until Spares are
// ready.
func (r *Reserve) refillServer(ctx context.Context, name string) error {
	return r.withServerLock(ctx, name, false, func() error {
		// drained, unreachable or removed since the list was read
		if ok, err := r.stillPrepared(ctx, name); err != nil || !ok {
			return err
		}
		s, err := r.site(ctx, name)
		if err != nil {
			return err
		}
		if err := r.ensureTemplate(ctx, s); err != nil {
			return err
		}
		if err := r.collect(ctx, s); err != nil {
			return err
		}
		for {
			n, err := r.readySpares(ctx, s.name)
			if err != nil {
				return err
			}
			if n > r.opts.Spares { // SPARE_TENANTS was lowered
				return r.dropSurplus(ctx, s, n-r.opts.Spares)
			}
			if n == r.opts.Spares || ctx.Err() != nil {
				return nil
			}
			if err := r.buildSpare(ctx, s); err != nil {
				return err
			}
		}
	})
}

// dropSurplus drops n unclaimed spares of s. Each row is taken as a claim
// would take it (FOR UPDATE SKIP LOCKED), so a concurrent claim gets
// another.
func (r *Reserve) dropSurplus(ctx context.Context, s site, n int) error {
	const q = `DELETE FROM spares WHERE name = (SELECT name FROM spares
			WHERE server = $1 AND state = 'READY' AND claimed_by IS NULL
			ORDER BY created_at DESC, name LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING name`
	for range n {
		var name string
		err := r.control.GetContext(ctx, &name, q, s.name)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return dbError("reserve: drop surplus spare", err)
		}
		if err := r.dropDatabase(ctx, s, name); err != nil {
			return err
		}
		if err := r.dropRole(ctx, s, name); err != nil {
			return err
		}
	}
	return nil
}

// readySpares counts the spares a tenant can claim now on the server
// named server, or on all servers when server is "".
func (r *Reserve) readySpares(ctx context.Context, server string) (int, error) {
	const q = `SELECT count(*) FROM spares
		WHERE state = 'READY' AND claimed_by IS NULL AND version = $1 AND ($2 = '' OR server = $2)`
	var n int
	if err := r.control.GetContext(ctx, &n, q, r.version, server); err != nil {
		return 0, dbError("reserve: count spares", err)
	}
	return n, nil
}

// buildSpare makes one spare on s: its row first (so that its objects are
// never mistaken for orphans), then its role and a clone of the template
// owned by it, with CONNECT revoked from PUBLIC; then the row turns READY.
func (r *Reserve) buildSpare(ctx context.Context, s site) error {
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
	const qRow = `INSERT INTO spares (name, version, state, server) VALUES ($1, $2, 'BUILDING', $3)`
	if _, err := r.control.ExecContext(ctx, qRow, name, r.version, s.name); err != nil {
		return dbError("reserve: record spare", err)
	}
	if err := r.ensureNologinRole(ctx, s, name); err != nil {
		return err
	}
	if _, err := s.admin.ExecContext(ctx, "CREATE DATABASE "+q+" OWNER "+q+" TEMPLATE "+tpl); err != nil {
		return dbError("reserve: create spare", err)
	}
	if err := r.adopt(ctx, s, name, name); err != nil {
		return err
	}
	for _, stmt := range []string{
		"REVOKE ALL ON DATABASE " + q + " FROM PUBLIC",
		"GRANT CONNECT, TEMPORARY ON DATABASE " + q + " TO " + q,
	} {
		if _, err := s.admin.ExecContext(ctx, stmt); err != nil {
			return dbError("reserve: spare privileges", err)
		}
	}
	if _, err := r.control.ExecContext(ctx, `UPDATE spares SET state = 'READY' WHERE name = $1`, name); err != nil {
		return dbError("reserve: spare ready", err)
	}
	return nil
}

// collect drops what no one will claim on s: spares cut short while being
// built (the caller holds the server's lock, so no build is in progress),
// unclaimed spares of older tenant migrations or that lost their database
// or role (a removal cut short), and spare-named databases and roles with
// no row (a tenant deleted in the middle of its claim).
func (r *Reserve) collect(ctx context.Context, s site) error {
	var rows []struct {
		Name    string `db:"name"`
		Version string `db:"version"`
		State   string `db:"state"`
		Claimed bool   `db:"claimed"`
	}
	const q = `SELECT name, version, state, claimed_by IS NOT NULL AS claimed FROM spares WHERE server = $1`
	if err := r.control.SelectContext(ctx, &rows, q, s.name); err != nil {
		return dbError("reserve: list spares", err)
	}
	objs, err := r.spareObjects(ctx, s)
	if err != nil {
		return err
	}
	for _, sp := range rows {
		complete := objs.dbs[sp.Name] && objs.roles[sp.Name]
		if sp.Claimed || (sp.State == "READY" && sp.Version >= r.version && complete) {
			continue
		}
		if err := r.dropSpare(ctx, s, sp.Name); err != nil {
			return err
		}
	}
	orphans, err := r.orphans(ctx, objs)
	if err != nil {
		return err
	}
	for _, o := range orphans {
		if err := r.dropSpare(ctx, s, o); err != nil {
			return err
		}
	}
	return nil
}

// spareObjectSet is what a server's catalog holds under spare names.
type spareObjectSet struct {
	dbs, roles map[string]bool
}

// spareObjects lists the spare-named databases and roles on s.
func (r *Reserve) spareObjects(ctx context.Context, s site) (spareObjectSet, error) {
	var rows []struct {
		Name string `db:"name"`
		IsDB bool   `db:"is_db"`
	}
	const q = `SELECT datname AS name, true AS is_db FROM pg_database WHERE datname ~ $1
		UNION ALL SELECT rolname, false FROM pg_roles WHERE rolname ~ $1`
	if err := s.admin.SelectContext(ctx, &rows, q, r.spareRe.String()); err != nil {
		return spareObjectSet{}, dbError("reserve: list spare objects", err)
	}
	set := spareObjectSet{dbs: map[string]bool{}, roles: map[string]bool{}}
	for _, o := range rows {
		if o.IsDB {
			set.dbs[o.Name] = true
		} else {
			set.roles[o.Name] = true
		}
	}
	return set, nil
}

// orphans returns the names of objs that no spares row names (of any
// server: two server entries might reach one cluster). A spare's row is
// written before its objects and deleted after them, so an object without
// a row is one that no build or claim will finish.
func (r *Reserve) orphans(ctx context.Context, objs spareObjectSet) ([]string, error) {
	var names []string
	for n := range objs.dbs {
		names = append(names, n)
	}
	for n := range objs.roles {
		if !objs.dbs[n] {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	var known []string
	if err := r.control.SelectContext(ctx, &known, `SELECT name FROM spares WHERE name = ANY($1)`, pq.StringArray(names)); err != nil {
		return nil, dbError("reserve: look up spares", err)
	}
	var out []string
	for _, n := range names {
		if !slices.Contains(known, n) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}

// dropSpare drops a spare's database, role and row, in that order: a
// crash midway leaves a row without objects (given up by a claim, dropped
// by the next collect), never objects without a row.
func (r *Reserve) dropSpare(ctx context.Context, s site, name string) error {
	if err := r.dropDatabase(ctx, s, name); err != nil {
		return err
	}
	if err := r.dropRole(ctx, s, name); err != nil {
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

// templateReady reports whether the current template is complete on the
// server of the administrative handle admin: it is marked IS_TEMPLATE and
// closed to connections only once migrated.
func (r *Reserve) templateReady(ctx context.Context, admin *sqlx.DB) (bool, error) {
	const q = `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate AND NOT datallowconn)`
	var ok bool
	if err := admin.GetContext(ctx, &ok, q, r.tpl); err != nil {
		return false, dbError("reserve: template lookup", err)
	}
	return ok, nil
}

// ensureTemplate builds the current template on s unless it is complete.
// The caller holds the server's reserve lock.
func (r *Reserve) ensureTemplate(ctx context.Context, s site) error {
	if ok, err := r.templateReady(ctx, s.admin); err != nil || ok {
		return err
	}
	start := time.Now()
	name, err := r.quoteReserved(r.tpl)
	if err != nil {
		return err
	}
	// A half-built template (a crash during its migrations) starts over.
	if err := r.dropDatabase(ctx, s, r.tpl); err != nil {
		return err
	}
	if err := r.ensureNologinRole(ctx, s, r.tpl); err != nil {
		return err
	}
	if _, err := s.admin.ExecContext(ctx, "CREATE DATABASE "+name+" TEMPLATE template0 ENCODING 'UTF8'"); err != nil {
		return dbError("reserve: create template", err)
	}
	if _, err := s.admin.ExecContext(ctx, "REVOKE ALL ON DATABASE "+name+" FROM PUBLIC"); err != nil {
		return dbError("reserve: template privileges", err)
	}
	// Migrate as the template's own role, so that its objects belong to
	// it and a clone can hand them over with REASSIGN OWNED; the role
	// owns the public schema too, which the clone's role then gets.
	db, err := r.open(s, r.tpl, "")
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, "ALTER SCHEMA public OWNER TO "+name)
	db.Close()
	if err != nil {
		return dbError("reserve: template schema owner", err)
	}
	if db, err = r.open(s, r.tpl, r.tpl); err != nil {
		return err
	}
	_, err = migrations.TenantSet().ExecContext(ctx, db.DB, "postgres", migrations.Tenant(), migrate.Up)
	db.Close()
	if err != nil {
		return fmt.Errorf("reserve: migrate template: %w", err)
	}
	if _, err := s.admin.ExecContext(ctx, "ALTER DATABASE "+name+" WITH ALLOW_CONNECTIONS false IS_TEMPLATE true"); err != nil {
		return dbError("reserve: mark template", err)
	}
	r.log.Info("tenant template built", "server", s.name, "template", r.tpl, "version", r.version, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// ensureNologinRole creates a NOLOGIN role on s unless it exists, and
// makes the server's role a member (a non-superuser needs that to create
// databases owned by it and to REASSIGN its objects).
func (r *Reserve) ensureNologinRole(ctx context.Context, s site, name string) error {
	q, err := r.quoteReserved(name)
	if err != nil {
		return err
	}
	var found bool
	if err := s.admin.GetContext(ctx, &found, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, name); err != nil {
		return dbError("reserve: role lookup", err)
	}
	if !found {
		_, err := s.admin.ExecContext(ctx, "CREATE ROLE "+q+" NOLOGIN")
		if err != nil && pq.As(err, "42710") == nil {
			return dbError("reserve: create role", err)
		}
	}
	return r.grantToServerRole(ctx, s, q)
}

// grantToServerRole makes the role of s's URL a member of role (quoted)
// unless it is a superuser.
func (r *Reserve) grantToServerRole(ctx context.Context, s site, role string) error {
	var super bool
	if err := s.admin.GetContext(ctx, &super, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`); err != nil {
		return dbError("reserve: check the server's role", err)
	}
	if super {
		return nil
	}
	if _, err := s.admin.ExecContext(ctx, "GRANT "+role+" TO CURRENT_USER"); err != nil {
		return dbError("reserve: grant role", err)
	}
	return nil
}

// open returns a one-connection handle on database dbName of s as the
// server's role, acting as role asRole when not "".
func (r *Reserve) open(s site, dbName, asRole string) (*sqlx.DB, error) {
	u := *s.url
	u.Path = "/" + dbName
	q := u.Query()
	q.Set("application_name", "tenantql-reserve")
	if q.Get("connect_timeout") == "" {
		q.Set("connect_timeout", "5")
	}
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
// (quoted), through the administrative handle admin of its server, from
// that server's template when it is ready, else from template0 (the
// migrate step then builds the schema). It counts the source.
func (r *Reserve) createDatabase(ctx context.Context, admin *sqlx.DB, role, dbName string) error {
	if r != nil && r.opts.Template {
		ok, err := r.templateReady(ctx, admin)
		if err != nil {
			return err
		}
		if ok {
			tpl, _ := r.quoteReserved(r.tpl)
			_, err := admin.ExecContext(ctx, "CREATE DATABASE "+dbName+" OWNER "+role+" TEMPLATE "+tpl)
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
	_, err := admin.ExecContext(ctx, "CREATE DATABASE "+dbName+" OWNER "+role+" TEMPLATE template0 ENCODING 'UTF8'")
	if err != nil && pq.As(err, "42P04") == nil {
		return dbError("create database", err)
	}
	if err == nil && r != nil {
		r.opts.Metrics.DatabaseCreated("template0")
	}
	return nil
}

// adoptOn is adopt on the server named server, for the provisioner.
func (r *Reserve) adoptOn(ctx context.Context, server, dbName, toRole string) error {
	if r == nil {
		return nil
	}
	s, err := r.site(ctx, server)
	if err != nil {
		return err
	}
	return r.adopt(ctx, s, dbName, toRole)
}

// adopt hands every object in database dbName of s that belongs to a
// template role (a clone's tables, from the template) to role toRole. It
// asks the shared catalog first and connects only when there is something
// to hand over, so it is cheap to call again after a crash.
func (r *Reserve) adopt(ctx context.Context, s site, dbName, toRole string) error {
	const q = `SELECT DISTINCT o.rolname FROM pg_shdepend d
		JOIN pg_database db ON db.oid = d.dbid
		JOIN pg_roles o ON o.oid = d.refobjid
		WHERE db.datname = $1 AND d.deptype = 'o' AND o.rolname ~ $2`
	var owners []string
	if err := s.admin.SelectContext(ctx, &owners, q, dbName, r.tplRe.String()); err != nil {
		return dbError("reserve: ownership lookup", err)
	}
	if len(owners) == 0 {
		return nil
	}
	to := pq.QuoteIdentifier(toRole)
	db, err := r.open(s, dbName, "")
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

// dropDatabase drops a template or spare database of s if it exists.
func (r *Reserve) dropDatabase(ctx context.Context, s site, name string) error {
	q, err := r.quoteReserved(name)
	if err != nil {
		return err
	}
	var isTemplate sql.NullBool
	if err := s.admin.GetContext(ctx, &isTemplate, `SELECT (SELECT datistemplate FROM pg_database WHERE datname = $1)`, name); err != nil {
		return dbError("reserve: database lookup", err)
	}
	if !isTemplate.Valid {
		return nil
	}
	if isTemplate.Bool {
		if _, err := s.admin.ExecContext(ctx, "ALTER DATABASE "+q+" WITH IS_TEMPLATE false"); err != nil {
			return dbError("reserve: unmark template", err)
		}
	}
	if _, err := s.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+q+" WITH (FORCE)"); err != nil {
		return dbError("reserve: drop database", err)
	}
	return nil
}

// dropRole drops a template or spare role of s if it exists.
func (r *Reserve) dropRole(ctx context.Context, s site, name string) error {
	q, err := r.quoteReserved(name)
	if err != nil {
		return err
	}
	if _, err := s.admin.ExecContext(ctx, "DROP ROLE IF EXISTS "+q); err != nil {
		return dbError("reserve: drop role", err)
	}
	return nil
}

// isReservedName reports whether name is a template or spare name of this
// deployment.
func (r *Reserve) isReservedName(name string) bool {
	return r != nil && (r.tplRe.MatchString(name) || r.spareRe.MatchString(name))
}

// claim gives tenant t a spare of its server, database and role renamed
// to the tenant's names, and reports whether it did. It claims only for a
// tenant that has neither a database nor a role yet. The claim is a row update
// (FOR UPDATE SKIP LOCKED: concurrent claims take different spares) that
// names the tenant; the renames follow, each skipped when done, and the
// row goes last. A claim cut short by a crash is found by its row and
// finished by the next pass, on any process. boundary is called between
// the stages (a failpoint may stop there). The role step then re-keys the
// role (LOGIN, password, limits), the database step finds the database.
func (r *Reserve) claim(ctx context.Context, t *Tenant) (bool, error) {
	if r == nil {
		return false, nil
	}
	var name string
	err := r.control.GetContext(ctx, &name, `SELECT name FROM spares WHERE claimed_by = $1`, t.ID)
	if errors.Is(err, sql.ErrNoRows) && r.opts.Spares <= 0 {
		return false, nil
	}
	s, serr := r.site(ctx, t.Server)
	if serr != nil {
		return false, serr
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		var has bool
		const qHas = `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) OR EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $2)`
		if err := s.admin.GetContext(ctx, &has, qHas, t.DBName, t.RoleName); err != nil {
			return false, dbError("claim spare: catalog lookup", err)
		}
		if has {
			return false, nil // an earlier pass went the other way
		}
		const qClaim = `UPDATE spares SET claimed_by = $1, claimed_at = now()
			WHERE name = (SELECT name FROM spares
				WHERE server = $3 AND state = 'READY' AND claimed_by IS NULL AND version = $2
				ORDER BY created_at, name LIMIT 1 FOR UPDATE SKIP LOCKED)
			RETURNING name`
		err = r.control.GetContext(ctx, &name, qClaim, t.ID, r.version, s.name)
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
	if err := s.admin.GetContext(ctx, &st, qState, name, t.DBName, t.RoleName); err != nil {
		return false, dbError("claim spare: catalog lookup", err)
	}
	if (!st.SpareDB && !st.TenantDB) || (!st.SpareRole && !st.TenantRole) {
		// The spare lost its objects (dropped by hand?): give it up and
		// go the slow way.
		r.log.Warn("claimed spare is incomplete; dropping it", "spare", name, "tenant", t.Slug)
		_, _ = r.control.ExecContext(ctx, `DELETE FROM spares WHERE name = $1`, name)
		_ = r.dropDatabase(ctx, s, name)
		_ = r.dropRole(ctx, s, name)
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
		if _, err := s.admin.ExecContext(ctx, "ALTER DATABASE "+spare+" RENAME TO "+dbName); err != nil {
			return false, dbError("claim spare: rename database", err)
		}
	}
	if st.SpareRole && !st.TenantRole {
		if _, err := s.admin.ExecContext(ctx, "ALTER ROLE "+spare+" RENAME TO "+role); err != nil {
			return false, dbError("claim spare: rename role", err)
		}
	}
	if _, err := r.control.ExecContext(ctx, `DELETE FROM spares WHERE name = $1 AND claimed_by = $2`, name, t.ID); err != nil {
		return false, dbError("claim spare: done", err)
	}
	r.opts.Metrics.DatabaseCreated("spare")
	return true, nil
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

// ReserveStatus is what `tenantql doctor` shows of the reserve of one
// database server.
type ReserveStatus struct {
	Server        string // the database server
	Template      string // name of the current template database
	TemplateReady bool
	Version       string   // newest tenant migration, the template's
	Spares        []string // spare databases ready to be claimed
	Pending       int      // spares being built or claimed
}

// Check is CheckServer of the default server.
func (r *Reserve) Check(ctx context.Context, repair bool) (ReserveStatus, []Problem, error) {
	return r.CheckServer(ctx, DefaultServer, repair)
}

// CheckServer describes the reserve of the database server name and
// reports its problems: template databases of other tenant migrations
// (stale-template), spare-named databases or roles without a spares row
// (orphan-spare) and ready spares whose database or role is missing
// (missing-spare). With repair it drops the first two and forgets the
// last. Spares and the template are never tenant orphans: they are not
// tenant-named. Returns ErrServerNotFound for an unknown server, and an
// error when the server does not answer.
func (r *Reserve) CheckServer(ctx context.Context, name string, repair bool) (ReserveStatus, []Problem, error) {
	st := ReserveStatus{Server: name, Template: r.tpl, Version: r.version}
	s, err := r.site(ctx, name)
	if err != nil {
		return st, nil, err
	}
	if st.TemplateReady, err = r.templateReady(ctx, s.admin); err != nil {
		return st, nil, err
	}
	problems, err := r.staleTemplates(ctx, s, repair)
	if err != nil {
		return st, nil, err
	}
	var rows []struct {
		Name    string `db:"name"`
		State   string `db:"state"`
		Claimed bool   `db:"claimed"`
	}
	const q = `SELECT name, state, claimed_by IS NOT NULL AS claimed FROM spares WHERE server = $1 ORDER BY created_at, name`
	if err := r.control.SelectContext(ctx, &rows, q, s.name); err != nil {
		return st, nil, dbError("reserve: list spares", err)
	}
	// the catalog after the rows: a spare built meanwhile has its row
	objs, err := r.spareObjects(ctx, s)
	if err != nil {
		return st, nil, err
	}
	for _, sp := range rows {
		switch {
		case sp.Claimed || sp.State != "READY":
			st.Pending++
		case !objs.dbs[sp.Name] || !objs.roles[sp.Name]:
			p := Problem{Server: s.name, Kind: "missing-spare", Object: sp.Name, Detail: "spare row without its database or role"}
			if repair {
				p.Repaired = r.dropSpare(ctx, s, sp.Name) == nil
			}
			problems = append(problems, p)
		default:
			st.Spares = append(st.Spares, sp.Name)
		}
	}
	orphans, err := r.orphans(ctx, objs)
	if err != nil {
		return st, nil, err
	}
	for _, o := range orphans {
		p := Problem{Server: s.name, Kind: "orphan-spare", Object: o, Detail: "spare-named object with no spares row"}
		if repair {
			p.Repaired = r.dropDatabase(ctx, s, o) == nil && r.dropRole(ctx, s, o) == nil
		}
		problems = append(problems, p)
	}
	return st, problems, nil
}

// staleTemplates reports (and with repair drops) the template databases
// on s of other tenant migrations than the current one.
func (r *Reserve) staleTemplates(ctx context.Context, s site, repair bool) ([]Problem, error) {
	var tpls []string
	if err := s.admin.SelectContext(ctx, &tpls, `SELECT datname FROM pg_database WHERE datname ~ $1 AND datname <> $2`, r.tplRe.String(), r.tpl); err != nil {
		return nil, dbError("reserve: list templates", err)
	}
	var problems []Problem
	for _, name := range tpls {
		p := Problem{Server: s.name, Kind: "stale-template", Object: name, Detail: "template of other tenant migrations than " + r.version}
		if repair {
			p.Repaired = r.dropDatabase(ctx, s, name) == nil && r.dropRole(ctx, s, name) == nil
		}
		problems = append(problems, p)
	}
	return problems, nil
}
