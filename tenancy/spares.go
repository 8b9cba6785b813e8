package tenancy

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"
)

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
