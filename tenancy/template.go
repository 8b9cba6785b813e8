package tenancy

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
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

// TemplateName returns the name of the template database (and of the role
// owning its objects) for the current tenant migrations.
func (r *Reserve) TemplateName() string { return r.tpl }

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
	_, err = migrations.TenantSet.ExecContext(ctx, db.DB, "postgres", migrations.Tenant(), migrate.Up)
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
