package tenancy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/tenantql/tenantql/migrations"
)

// Moving a tenant to another database server (moveTenant). The Registry
// makes the tenant MOVING and names its new copy (Move); the Provisioner
// then builds the copy on the target server (role, database, privileges,
// migrations, as for a new tenant), freezes the old one (new sessions are
// read-only, writers still running are waited for, then every old session
// ends), copies the rows, checks the row counts, switches the tenants row
// to the new copy in one update (every replica follows it through NOTIFY),
// and drops the old copy once the new one answers. Queries are served from
// the old copy until the switch; mutations are refused while MOVING
// (ErrTenantMoving). A move that fails MaxAttempts times before its switch
// is undone ("unmove"): the new copy is dropped, the old one thawed, and
// the tenant is READY where it was, with lastError saying why.

// writerWait is how long the freeze waits for transactions that were
// running on the old copy to finish before it ends their sessions.
const writerWait = 10 * time.Second

// drainWait is how long the clean-up waits for the replicas' pools to
// leave the old copy before it drops it (with FORCE) anyway.
const drainWait = 10 * time.Second

// Move starts moving the READY tenant with slug to the database server
// to, which must be ACTIVE and not the tenant's own. The tenant becomes
// MOVING at once; the Provisioner (Kick it) does the rest. Moving a
// tenant already moving to to is a no-op.
// Returns ErrTenantNotFound, ErrInvalidInput (unknown, inactive or same
// server) or ErrWrongState (not READY, or behind the tenant migrations).
func (r *Registry) Move(ctx context.Context, slug, to string) (*Tenant, error) {
	cur, err := r.Get(ctx, slug)
	if err != nil {
		return nil, err
	}
	switch {
	case cur.Status == StatusMoving && cur.MoveTo == to:
		return cur, nil
	case cur.Status == StatusMoving:
		return nil, fmt.Errorf("%w: tenant %q is moving to %q already", ErrWrongState, slug, cur.MoveTo)
	case cur.Status != StatusReady:
		return nil, fmt.Errorf("%w: tenant %q is %s; only a READY tenant can move", ErrWrongState, slug, cur.Status)
	case cur.Server == to:
		return nil, invalid("tenant %q is on database server %q already", slug, to)
	case cur.RoleName != cur.DBName:
		return nil, fmt.Errorf("tenancy: tenant %q: role %q and database %q differ", slug, cur.RoleName, cur.DBName)
	}
	if _, behind := r.SchemaBehind(cur); behind {
		return nil, fmt.Errorf("%w: tenant %q is behind the tenant migrations: run tenantql migrate first", ErrWrongState, slug)
	}
	if r.servers == nil {
		return nil, invalid("no database server is named %q", to)
	}
	if _, err := r.servers.Place(ctx, to); err != nil { // ACTIVE and known
		return nil, err
	}
	newName, _ := r.names.forID(uuid.New())
	const q = `UPDATE tenants SET status = 'MOVING', move_server = $2, move_db_name = $3,
			move_switched = false, move_abort = false, step = '', attempts = 0, last_error = NULL,
			next_attempt_at = now(), updated_at = now()
		WHERE slug = $1 AND status = 'READY' AND database_server <> $2 RETURNING id`
	var id uuid.UUID
	err = r.db.GetContext(ctx, &id, q, slug, to, newName)
	if errors.Is(err, sql.ErrNoRows) { // changed since we read it
		if now, gerr := r.Get(ctx, slug); gerr == nil && now.Status == StatusMoving && now.MoveTo == to {
			return now, nil
		}
		return nil, fmt.Errorf("%w: tenant %q changed meanwhile, try again", ErrWrongState, slug)
	}
	if err != nil {
		return nil, dbError("move tenant", err)
	}
	r.log.Info("tenant move started", "tenant", slug, "from", cur.Server, "to", to)
	return r.refresh(ctx, id)
}

// OnServer returns, by slug, the tenants whose database is on the
// database server name, and those moving onto it, whatever their status.
func (r *Registry) OnServer(ctx context.Context, name string) ([]*Tenant, error) {
	if err := r.Load(ctx); err != nil {
		return nil, err
	}
	r.routes.mu.RLock()
	var out []*Tenant
	for _, t := range r.routes.byID {
		if t.Server == name || t.MoveTo == name {
			out = append(out, t)
		}
	}
	r.routes.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Slug < out[j].Slug })
	return out, nil
}

// moveCopies returns the tenant's old copy (where the move started) and
// new copy (its target) from the claimed job. Before the switch the
// tenants row names the old copy and move_* the new one; after, the
// reverse.
func moveCopies(t *Tenant, j job) (old, cur *Tenant) {
	other := *t
	other.Server, other.DBName, other.RoleName = j.MoveServer.String, j.MoveDBName.String, j.MoveDBName.String
	if j.MoveSwitched {
		return &other, t
	}
	return t, &other
}

// move drives a MOVING tenant through the move steps of the lifecycle
// table to READY on its new server.
func (p *Provisioner) move(ctx context.Context, t *Tenant, j job) error {
	if !j.MoveServer.Valid || !j.MoveDBName.Valid {
		return fmt.Errorf("tenancy: MOVING tenant %s has no destination", t.ID)
	}
	old, dst := moveCopies(t, j)
	oldDB, err := p.reg.names.quote(old.DBName)
	if err != nil {
		return err
	}
	dstRole, err := p.reg.names.quote(dst.RoleName)
	if err != nil {
		return err
	}
	dstDB, err := p.reg.names.quote(dst.DBName)
	if err != nil {
		return err
	}
	switched := j.MoveSwitched
	// the steps before the switch build and fill the new copy; once the
	// switch is done (a crash after it), only the clean-up is left
	before := func(f func() error) func() error {
		return func() error {
			if switched {
				return nil
			}
			return f()
		}
	}
	run := map[string]func() error{
		"role":       before(func() error { return p.ensureRole(ctx, dst, dstRole) }),
		"database":   before(func() error { return p.ensureDatabase(ctx, dst, dstRole, dstDB) }),
		"privileges": before(func() error { return p.ensurePrivileges(ctx, dst, dstRole, dstDB) }),
		"migrate": before(func() error {
			db, err := p.openTenantDB(dst)
			if err != nil {
				return err
			}
			defer db.Close()
			_, err = MigrateTenantDB(ctx, db.DB)
			return err
		}),
		"freeze": before(func() error { return p.freeze(ctx, old, oldDB) }),
		"copy": before(func() error {
			src, err := p.openTenantDB(old)
			if err != nil {
				return err
			}
			defer src.Close()
			to, err := p.openTenantDB(dst)
			if err != nil {
				return err
			}
			defer to.Close()
			n, err := copyTenantData(ctx, src, to)
			if err == nil {
				p.log.Info("tenant copied", "tenant", t.Slug, "rows", n)
			}
			return err
		}),
		"switch": before(func() error {
			if err := p.switchCopies(ctx, t); err != nil {
				return err
			}
			switched = true
			return nil
		}),
		"cleanup": func() error { return p.dropOldCopy(ctx, old, dst) },
	}
	if err := p.runSteps(ctx, t, StatusMoving, "move", run); err != nil {
		return err
	}
	const q = `UPDATE tenants SET status = 'READY', step = '', attempts = 0, last_error = NULL,
			move_server = NULL, move_db_name = NULL, move_switched = false, move_abort = false,
			lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
		WHERE id = $1 AND lease_owner = $2 AND status = 'MOVING' AND move_switched`
	if err := p.finish(ctx, t, q, "move.ready"); err != nil {
		return err
	}
	p.log.Info("tenant moved", "tenant", t.Slug, "tenant_id", t.ID, "from", old.Server, "to", dst.Server)
	return nil
}

// finish runs the update q (id, lease owner) that ends a job, then
// refreshes the tenant.
func (p *Provisioner) finish(ctx context.Context, t *Tenant, q, step string) error {
	res, err := p.control.ExecContext(ctx, q, t.ID, p.me)
	if err != nil {
		return inStep(step, dbError("finish "+step, err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errLeaseLost
	}
	if _, err := p.reg.refresh(ctx, t.ID); err != nil {
		p.log.Warn("refresh tenant", "tenant", t.Slug, "err", err)
	}
	return nil
}

// freeze makes the old copy read-only for the rest of the move: new
// sessions start read-only, and transactions still running on older
// sessions (mutations admitted just before the tenant became MOVING) are
// given writerWait to finish; those still running then are ended, so
// nothing writes to the old copy once the copy starts. Idle older sessions
// are left alone: they serve queries only (mutations are refused while
// MOVING), and ending them would fail the reads about to use them.
func (p *Provisioner) freeze(ctx context.Context, old *Tenant, oldDB string) error {
	db, err := p.admin(ctx, old)
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, "ALTER DATABASE "+oldDB+" SET default_transaction_read_only = on"); err != nil {
		return dbError("freeze database", err)
	}
	var since time.Time
	if err := db.GetContext(ctx, &since, `SELECT statement_timestamp()`); err != nil {
		return dbError("freeze database", err)
	}
	// sessions older than the freeze that are in a statement or a transaction
	const qBusy = `FROM pg_stat_activity WHERE datname = $1 AND backend_start < $2
		AND pid <> pg_backend_pid() AND state IS DISTINCT FROM 'idle'`
	deadline := time.Now().Add(writerWait)
	for {
		var busy int
		if err := db.GetContext(ctx, &busy, `SELECT count(*) `+qBusy, old.DBName, since); err != nil {
			return dbError("freeze database", err)
		}
		if busy == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	var ended int
	if err := db.GetContext(ctx, &ended, `SELECT count(pg_terminate_backend(pid)) `+qBusy, old.DBName, since); err != nil {
		return dbError("end writing sessions", err)
	}
	p.log.Warn("move: ended sessions still busy on the old copy", "tenant", old.Slug, "sessions", ended)
	return nil
}

// switchCopies points the tenants row at the new copy and move_* at the
// old one, in one update: every replica routes to the new copy from the
// moment it sees it.
func (p *Provisioner) switchCopies(ctx context.Context, t *Tenant) error {
	const q = `UPDATE tenants SET database_server = move_server, db_name = move_db_name, role_name = move_db_name,
			move_server = database_server, move_db_name = db_name, move_switched = true, updated_at = now()
		WHERE id = $1 AND lease_owner = $2 AND status = 'MOVING' AND NOT move_switched AND NOT move_abort`
	res, err := p.control.ExecContext(ctx, q, t.ID, p.me)
	if err != nil {
		return dbError("switch to the new copy", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errLeaseLost
	}
	_, err = p.reg.refresh(ctx, t.ID) // our own routes (and pools) at once, the others through NOTIFY
	return err
}

// dropOldCopy drops the old copy's database and role once the new copy
// answers, giving the replicas' pools drainWait to leave it first.
func (p *Provisioner) dropOldCopy(ctx context.Context, old, cur *Tenant) error {
	db, err := p.openTenantDB(cur)
	if err != nil {
		return err
	}
	err = db.PingContext(ctx)
	db.Close()
	if err != nil {
		return dbError("reach the new copy", err)
	}
	return p.dropCopy(ctx, old, drainWait)
}

// dropCopy drops one copy of a tenant (database, then role) on its
// server, waiting up to wait for sessions to leave the database first.
func (p *Provisioner) dropCopy(ctx context.Context, c *Tenant, wait time.Duration) error {
	dbName, err := p.reg.names.quote(c.DBName)
	if err != nil {
		return err
	}
	role, err := p.reg.names.quote(c.RoleName)
	if err != nil {
		return err
	}
	db, err := p.admin(ctx, c)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		var n int
		if err := db.GetContext(ctx, &n, `SELECT count(*) FROM pg_stat_activity WHERE datname = $1`, c.DBName); err != nil {
			return dbError("sessions of the old copy", err)
		}
		if n == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+dbName+" WITH (FORCE)"); err != nil {
		return dbError("drop database copy", err)
	}
	if _, err := db.ExecContext(ctx, "DROP ROLE IF EXISTS "+role); err != nil {
		return dbError("drop role copy", err)
	}
	return nil
}

// unmove undoes a move that failed before its switch (the unmove steps of
// the lifecycle table): the new copy is dropped, the old one accepts
// writes again, and the tenant is READY where it was, its lastError
// saying why the move failed.
func (p *Provisioner) unmove(ctx context.Context, t *Tenant, j job) error {
	if j.MoveSwitched || !j.MoveServer.Valid || !j.MoveDBName.Valid {
		return fmt.Errorf("tenancy: tenant %s: only a move not yet switched can be undone", t.ID)
	}
	old, dst := moveCopies(t, j)
	oldDB, err := p.reg.names.quote(old.DBName)
	if err != nil {
		return err
	}
	run := map[string]func() error{
		"drop": func() error { return p.dropCopy(ctx, dst, 0) },
		"thaw": func() error {
			db, err := p.admin(ctx, old)
			if err != nil {
				return err
			}
			if _, err := db.ExecContext(ctx, "ALTER DATABASE "+oldDB+" RESET default_transaction_read_only"); err != nil {
				return dbError("thaw database", err)
			}
			return nil
		},
	}
	if err := p.runSteps(ctx, t, StatusMoving, "unmove", run); err != nil {
		return err
	}
	const q = `UPDATE tenants SET status = 'READY', step = '', attempts = 0,
			move_server = NULL, move_db_name = NULL, move_switched = false, move_abort = false,
			lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
		WHERE id = $1 AND lease_owner = $2 AND status = 'MOVING' AND move_abort`
	if err := p.finish(ctx, t, q, "unmove.ready"); err != nil {
		return err
	}
	p.log.Warn("tenant move undone", "tenant", t.Slug, "tenant_id", t.ID, "stayed_on", old.Server, "to", dst.Server)
	return nil
}

// copyTenantData copies every row of the tenant's tables from src to dst
// (both at the same tenant migration; dst's tables are emptied first) in
// one transaction on each side, parents before children, then checks that
// every table has as many rows on both sides. Values travel as text
// (COPY's own format), so every column type copies as it is.
func copyTenantData(ctx context.Context, src, dst *sqlx.DB) (rows int64, err error) {
	srcTx, err := src.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return 0, dbError("copy: begin on the old copy", err)
	}
	defer srcTx.Rollback()
	dstTx, err := dst.BeginTxx(ctx, nil)
	if err != nil {
		return 0, dbError("copy: begin on the new copy", err)
	}
	defer dstTx.Rollback()
	for _, tx := range []*sqlx.Tx{srcTx, dstTx} {
		// text forms that read back the same on any server
		if _, err := tx.ExecContext(ctx, `SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL TimeZone = 'UTC';
			SET LOCAL IntervalStyle = 'postgres'; SET LOCAL extra_float_digits = 3`); err != nil {
			return 0, dbError("copy: session settings", err)
		}
	}
	tables, err := copyOrder(ctx, dstTx)
	if err != nil {
		return 0, err
	}
	srcTables, err := copyOrder(ctx, srcTx)
	if err != nil {
		return 0, err
	}
	if !sameTableSet(tables, srcTables) {
		return 0, fmt.Errorf("tenancy: copy: the two copies have different tables (%v, %v)", srcTables, tables)
	}
	if len(tables) > 0 {
		quoted := make([]string, len(tables))
		for i, tb := range tables {
			quoted[i] = "public." + pq.QuoteIdentifier(tb)
		}
		if _, err := dstTx.ExecContext(ctx, "TRUNCATE "+strings.Join(quoted, ", ")); err != nil {
			return 0, dbError("copy: empty the new copy", err)
		}
	}
	for _, tb := range tables {
		n, err := copyTable(ctx, srcTx, dstTx, tb)
		if err != nil {
			return 0, err
		}
		rows += n
		var srcN, dstN int64
		count := "SELECT count(*) FROM public." + pq.QuoteIdentifier(tb)
		if err := srcTx.GetContext(ctx, &srcN, count); err != nil {
			return 0, dbError("copy: count rows", err)
		}
		if err := dstTx.GetContext(ctx, &dstN, count); err != nil {
			return 0, dbError("copy: count rows", err)
		}
		if srcN != dstN || srcN != n {
			return 0, fmt.Errorf("tenancy: copy: table %s has %d rows on the old copy, %d copied, %d on the new", tb, srcN, n, dstN)
		}
	}
	if err := dstTx.Commit(); err != nil {
		return 0, dbError("copy: commit", err)
	}
	return rows, nil
}

// copyTable streams one table's rows from src into dst with COPY.
func copyTable(ctx context.Context, src, dst *sqlx.Tx, table string) (int64, error) {
	var cols []string
	const qCols = `SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relname = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
		ORDER BY a.attnum`
	if err := dst.SelectContext(ctx, &cols, qCols, table); err != nil {
		return 0, dbError("copy: columns", err)
	}
	sel := make([]string, len(cols))
	for i, c := range cols {
		sel[i] = pq.QuoteIdentifier(c) + "::text"
	}
	rows, err := src.QueryContext(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM public."+pq.QuoteIdentifier(table))
	if err != nil {
		return 0, dbError("copy: read "+table, err)
	}
	defer rows.Close()
	stmt, err := dst.PrepareContext(ctx, pq.CopyInSchema("public", table, cols...))
	if err != nil {
		return 0, dbError("copy: start "+table, err)
	}
	defer stmt.Close()
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	args := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var n int64
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return 0, dbError("copy: read "+table, err)
		}
		for i, v := range vals {
			args[i] = nil
			if v.Valid {
				args[i] = v.String
			}
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return 0, dbError("copy: write "+table, err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return 0, dbError("copy: read "+table, err)
	}
	if _, err := stmt.ExecContext(ctx); err != nil { // flush
		return 0, dbError("copy: write "+table, err)
	}
	return n, nil
}

// copyOrder lists the tenant's tables (schema public, without the
// migrations table), every table after the tables its foreign keys
// reference.
func copyOrder(ctx context.Context, tx *sqlx.Tx) ([]string, error) {
	var tables []string
	const qTables = `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
		  AND c.relname <> $1 ORDER BY c.relname`
	if err := tx.SelectContext(ctx, &tables, qTables, migrations.TenantSet().TableName); err != nil {
		return nil, dbError("copy: tables", err)
	}
	var refs []struct {
		From string `db:"from_table"`
		To   string `db:"to_table"`
	}
	const qRefs = `SELECT c.relname AS from_table, f.relname AS to_table FROM pg_constraint k
		JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class f ON f.oid = k.confrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE k.contype = 'f' AND n.nspname = 'public' AND c.oid <> f.oid`
	if err := tx.SelectContext(ctx, &refs, qRefs); err != nil {
		return nil, dbError("copy: foreign keys", err)
	}
	deps := map[string][]string{}
	for _, r := range refs {
		deps[r.From] = append(deps[r.From], r.To)
	}
	var order []string
	state := map[string]int{} // 1: being visited, 2: placed
	var visit func(string) error
	visit = func(tb string) error {
		switch state[tb] {
		case 1:
			return fmt.Errorf("tenancy: copy: foreign keys form a cycle through %s", tb)
		case 2:
			return nil
		}
		state[tb] = 1
		for _, d := range deps[tb] {
			if err := visit(d); err != nil {
				return err
			}
		}
		state[tb] = 2
		order = append(order, tb)
		return nil
	}
	for _, tb := range tables {
		if err := visit(tb); err != nil {
			return nil, err
		}
	}
	return order, nil
}

func sameTableSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	in := map[string]bool{}
	for _, x := range a {
		in[x] = true
	}
	for _, x := range b {
		if !in[x] {
			return false
		}
	}
	return true
}
