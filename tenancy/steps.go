package tenancy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/tenantql/tenantql/migrations"
	"github.com/tenantql/tenantql/tracing"
)

// provision drives a PROVISIONING tenant to READY, one idempotent step
// after another (the create steps of the lifecycle table).
func (p *Provisioner) provision(ctx context.Context, t *Tenant, j job) error {
	// refill the spare this sign-up may have claimed, once it is done
	defer p.opts.Reserve.Kick()
	role, err := p.reg.names.quote(t.RoleName)
	if err != nil {
		return err
	}
	dbName, err := p.reg.names.quote(t.DBName)
	if err != nil {
		return err
	}
	// One handle on the tenant database, as its own role, for the migrate
	// and owner steps: the owner step reuses the migrate step's
	// connection instead of starting another backend.
	var tenantDB *sqlx.DB
	defer func() {
		if tenantDB != nil {
			tenantDB.Close()
		}
	}()
	withTenantDB := func(f func(db *sqlx.DB) error) error {
		if tenantDB == nil {
			db, err := p.openTenantDB(t)
			if err != nil {
				return err
			}
			tenantDB = db
		}
		return f(tenantDB)
	}
	// the password hash takes as long as the steps before the owner's:
	// it runs beside them
	ownerPasswordHash := p.hashOwnerPassword(ctx, t, j)
	run := map[string]func() error{
		"spare": func() error {
			_, err := p.opts.Reserve.claim(ctx, t) // a spare of the tenant's server
			return err
		},
		"role":       func() error { return p.ensureRole(ctx, t, role) },
		"database":   func() error { return p.ensureDatabase(ctx, t, role, dbName) },
		"privileges": func() error { return p.ensurePrivileges(ctx, t, role, dbName) },
		"migrate": func() error {
			return withTenantDB(func(db *sqlx.DB) error { _, err := MigrateTenantDB(ctx, db.DB); return err })
		},
		"owner": func() error {
			if !j.OwnerEmail.Valid {
				return nil // created by an earlier pass, which then cleared it
			}
			hash, err := ownerPasswordHash()
			if err != nil {
				return err
			}
			o := Owner{Email: j.OwnerEmail.String, Name: j.OwnerName.String, PasswordHash: hash}
			return withTenantDB(func(db *sqlx.DB) error {
				if err := p.seeder.CreateOwner(ctx, db, o); err != nil {
					return err
				}
				if j.SeedDemo {
					return p.seeder.SeedDemo(ctx, db, o)
				}
				return nil
			})
		},
	}
	if err := p.runSteps(ctx, t, StatusProvisioning, "create", run); err != nil {
		return err
	}
	version, err := migrations.LatestID(migrations.Tenant())
	if err != nil {
		return err
	}
	const q = `UPDATE tenants SET status = 'READY', step = '', attempts = 0, last_error = NULL,
			schema_version = $3, owner_email = NULL, owner_name = NULL, owner_password_hash = NULL,
			owner_password_sealed = NULL,
			lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
		WHERE id = $1 AND lease_owner = $2 AND status = 'PROVISIONING'`
	res, err := p.control.ExecContext(ctx, q, t.ID, p.me, version)
	if err != nil {
		return inStep("ready", dbError("mark ready", err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errLeaseLost
	}
	if _, err := p.reg.refresh(ctx, t.ID); err != nil {
		p.log.Warn("refresh after ready", "tenant", t.Slug, "err", err)
	}
	p.log.Info("tenant ready", "tenant", t.Slug, "tenant_id", t.ID)
	return nil
}

// runSteps runs op's steps from the lifecycle table in order, crossing a
// boundary before the first and after each, and logs each step's event
// line (logStep). run must implement exactly those steps.
func (p *Provisioner) runSteps(ctx context.Context, t *Tenant, status Status, op string, run map[string]func() error) error {
	id := t.ID
	steps := stepsOf(op)
	if len(steps) != len(run) {
		return fmt.Errorf("tenancy: %s implements %d steps, the lifecycle table lists %d", op, len(run), len(steps))
	}
	if err := p.boundary(ctx, id, status, op+".start"); err != nil {
		return err
	}
	for _, s := range steps {
		f := run[s]
		if f == nil {
			return fmt.Errorf("tenancy: %s step %q is not implemented", op, s)
		}
		start := time.Now()
		err := inStep(op+"."+s, f())
		p.reg.stepEvent(ctx, p.log, t, op+"."+s, start, err)
		if err != nil {
			return err
		}
		if err := p.boundary(ctx, id, status, op+".after-"+s); err != nil {
			return err
		}
	}
	return nil
}

// admin returns the administrative handle on the tenant's database
// server, where its role and database live.
func (p *Provisioner) admin(ctx context.Context, t *Tenant) (*sqlx.DB, error) {
	if t.Server == DefaultServer || t.Server == "" || p.opts.Servers == nil {
		return p.control, nil
	}
	db, err := p.opts.Servers.Admin(ctx, t.Server)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return db, nil
}

func (p *Provisioner) exists(ctx context.Context, db *sqlx.DB, q, name string) (bool, error) {
	var ok bool
	if err := db.GetContext(ctx, &ok, q, name); err != nil {
		return false, dbError("catalog lookup", err)
	}
	return ok, nil
}

// ensureRole creates the tenant's LOGIN role, or resets its password and
// attributes when it already exists (a crash may have cut the last try).
func (p *Provisioner) ensureRole(ctx context.Context, t *Tenant, role string) error {
	pw, err := p.pools.sealer.Open(t.sealedPassword, t.ID[:])
	if err != nil {
		return err
	}
	verifier, err := scramVerifier(string(pw))
	if err != nil {
		return err
	}
	db, err := p.admin(ctx, t)
	if err != nil {
		return err
	}
	found, err := p.exists(ctx, db, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, t.RoleName)
	if err != nil {
		return err
	}
	// CREATE may say NOSUPERUSER, NOREPLICATION and NOBYPASSRLS; ALTER may
	// not (PostgreSQL 15 asks a superuser for naming those attributes at
	// all), so a role that exists is checked for them instead.
	attrs := fmt.Sprintf("LOGIN NOCREATEDB NOCREATEROLE CONNECTION LIMIT %d PASSWORD %s",
		p.opts.RoleConnLimit, pq.QuoteLiteral(verifier))
	if !found {
		_, err = db.ExecContext(ctx, "CREATE ROLE "+role+" WITH NOSUPERUSER NOREPLICATION NOBYPASSRLS "+attrs)
		if pq.As(err, "42710") != nil { // duplicate_object: created meanwhile by a worker that lost its lease
			found = true
		} else if err != nil {
			return dbError("create role", err)
		}
	}
	if found {
		if err := p.checkRoleUnprivileged(ctx, db, t.RoleName); err != nil {
			return err
		}
		if _, err := db.ExecContext(ctx, "ALTER ROLE "+role+" WITH "+attrs); err != nil {
			return dbError("alter role", err)
		}
	}
	for _, stmt := range []string{
		"ALTER ROLE " + role + " SET statement_timeout = " + pq.QuoteLiteral(p.opts.StatementTimeout),
		"ALTER ROLE " + role + " SET idle_in_transaction_session_timeout = '60s'",
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return dbError("configure role", err)
		}
	}
	// A non-superuser control role needs membership to create a database
	// owned by the tenant role (and, later, to drop it).
	var super bool
	if err := db.GetContext(ctx, &super, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`); err != nil {
		return dbError("check control role", err)
	}
	if !super {
		if _, err := db.ExecContext(ctx, "GRANT "+role+" TO CURRENT_USER"); err != nil {
			return dbError("grant role", err)
		}
	}
	return nil
}

// errPrivilegedRole is the failure of a tenant role that someone gave
// SUPERUSER, REPLICATION or BYPASSRLS behind tenantql's back: only a
// superuser may take those away, so provisioning stops rather than hand
// such a role to a tenant.
var errPrivilegedRole = errors.New("tenant role has SUPERUSER, REPLICATION or BYPASSRLS; a superuser must remove it")

// checkRoleUnprivileged returns errPrivilegedRole when the existing role
// name has an attribute a tenant role must never have.
func (p *Provisioner) checkRoleUnprivileged(ctx context.Context, db *sqlx.DB, name string) error {
	const q = `SELECT rolsuper OR rolreplication OR rolbypassrls FROM pg_roles WHERE rolname = $1`
	var privileged bool
	if err := db.GetContext(ctx, &privileged, q, name); err != nil {
		return dbError("check role attributes", err)
	}
	if privileged {
		return errPrivilegedRole
	}
	return nil
}

// ensureDatabase creates the tenant's database owned by its role.
func (p *Provisioner) ensureDatabase(ctx context.Context, t *Tenant, role, dbName string) error {
	db, err := p.admin(ctx, t)
	if err != nil {
		return err
	}
	found, err := p.exists(ctx, db, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, t.DBName)
	if err != nil {
		return err
	}
	if !found { // from the template when there is one (template.go), else template0
		if err := p.opts.Reserve.createDatabase(ctx, db, role, dbName); err != nil {
			return err
		}
	}
	// a restored tenant's database was made unreachable by lock
	closed, err := p.exists(ctx, db, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND NOT datallowconn)`, t.DBName)
	if err != nil {
		return err
	}
	if closed {
		if _, err := db.ExecContext(ctx, "ALTER DATABASE "+dbName+" WITH ALLOW_CONNECTIONS true"); err != nil {
			return dbError("reopen database", err)
		}
	}
	return p.opts.Reserve.adoptOn(ctx, t.Server, t.DBName, t.RoleName) // a clone's objects become the tenant role's
}

// ensurePrivileges makes sure only the tenant's role may connect.
func (p *Provisioner) ensurePrivileges(ctx context.Context, t *Tenant, role, dbName string) error {
	db, err := p.admin(ctx, t)
	if err != nil {
		return err
	}
	for _, stmt := range []string{
		"REVOKE ALL ON DATABASE " + dbName + " FROM PUBLIC",
		"GRANT CONNECT, TEMPORARY ON DATABASE " + dbName + " TO " + role,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return dbError("set privileges", err)
		}
	}
	return nil
}

// openTenantDB returns a small handle on the tenant's database as its own
// role (two connections: migrations take an advisory lock on one), whose
// connections count in the pools' budget.
func (p *Provisioner) openTenantDB(t *Tenant) (*sqlx.DB, error) {
	dsn, err := p.pools.TenantURL(t)
	if err != nil {
		return nil, err
	}
	c, err := pq.NewConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("open tenant database: %w", err)
	}
	c.Dialer(p.pools.Dialer(t))
	db := sqlx.NewDb(tracing.OpenDB(c, p.opts.TracerProvider), "postgres")
	db.SetMaxOpenConns(2)
	return db, nil
}

// drop removes a DELETING tenant's pool, database, role and row (the
// delete steps of the lifecycle table). Whatever is already gone is
// skipped, so a FAILED tenant that got only some of them is cleaned too.
func (p *Provisioner) drop(ctx context.Context, t *Tenant) error {
	role, err := p.reg.names.quote(t.RoleName)
	if err != nil {
		return err
	}
	dbName, err := p.reg.names.quote(t.DBName)
	if err != nil {
		return err
	}
	db, err := p.admin(ctx, t)
	if err != nil {
		return err
	}
	run := map[string]func() error{
		"database": func() error {
			p.pools.Close(t.ID)
			// FORCE disconnects every session (other processes' pools too);
			// sessions connecting meanwhile wait for the drop, then fail.
			if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+dbName+" WITH (FORCE)"); err != nil {
				return dbError("drop database", err)
			}
			return nil
		},
		"role": func() error {
			if _, err := db.ExecContext(ctx, "DROP ROLE IF EXISTS "+role); err != nil {
				return dbError("drop role", err)
			}
			return nil
		},
	}
	if err := p.runSteps(ctx, t, StatusDeleting, "delete", run); err != nil {
		return err
	}
	const q = `DELETE FROM tenants WHERE id = $1 AND lease_owner = $2 AND status = 'DELETING'`
	res, err := p.control.ExecContext(ctx, q, t.ID, p.me)
	if err != nil {
		return inStep("delete.row", dbError("delete tenant row", err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errLeaseLost
	}
	p.reg.routes.put(t.ID, nil)
	p.log.Info("tenant deleted", "tenant", t.Slug, "tenant_id", t.ID)
	return nil
}

// retire works on a DELETED tenant: once its grace is over it becomes
// DELETING (the next claim drops it); before that, the lock steps of the
// lifecycle table make its database unreachable, keeping every byte: the
// role may no longer log in, the database refuses connections and the
// sessions it had are ended. The job then sleeps until purge_after.
func (p *Provisioner) retire(ctx context.Context, t *Tenant) error {
	const qPurge = `UPDATE tenants SET status = 'DELETING', step = '', attempts = 0, updated_at = now(),
			next_attempt_at = now(), lease_owner = NULL, lease_expires_at = NULL
		WHERE id = $1 AND lease_owner = $2 AND status = 'DELETED' AND purge_after <= now()`
	res, err := p.control.ExecContext(ctx, qPurge, t.ID, p.me)
	if err != nil {
		return inStep("lock.purge", dbError("purge deleted tenant", err))
	}
	if n, _ := res.RowsAffected(); n == 1 {
		p.log.Info("tenant grace over: purging", "tenant", t.Slug, "tenant_id", t.ID)
		_, _ = p.reg.refresh(ctx, t.ID)
		p.Kick()
		return nil
	}
	role, err := p.reg.names.quote(t.RoleName)
	if err != nil {
		return err
	}
	dbName, err := p.reg.names.quote(t.DBName)
	if err != nil {
		return err
	}
	db, err := p.admin(ctx, t)
	if err != nil {
		return err
	}
	run := map[string]func() error{
		"role": func() error {
			found, err := p.exists(ctx, db, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, t.RoleName)
			if err != nil || !found {
				return err // a tenant deleted before its role was made has none to lock
			}
			if _, err := db.ExecContext(ctx, "ALTER ROLE "+role+" WITH NOLOGIN"); err != nil {
				return dbError("lock role", err)
			}
			return nil
		},
		"database": func() error {
			p.pools.Close(t.ID)
			found, err := p.exists(ctx, db, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, t.DBName)
			if err != nil || !found {
				return err
			}
			if _, err := db.ExecContext(ctx, "ALTER DATABASE "+dbName+" WITH ALLOW_CONNECTIONS false"); err != nil {
				return dbError("lock database", err)
			}
			// sessions opened before: every process's pools, live feeds
			const q = `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`
			var n int
			if err := db.GetContext(ctx, &n, q, t.DBName); err != nil {
				return dbError("end sessions", err)
			}
			return nil
		},
	}
	if err := p.runSteps(ctx, t, StatusDeleted, "lock", run); err != nil {
		return err
	}
	const qDone = `UPDATE tenants SET step = '', attempts = 0, last_error = NULL, next_attempt_at = purge_after,
			lease_owner = NULL, lease_expires_at = NULL
		WHERE id = $1 AND lease_owner = $2 AND status = 'DELETED'`
	res, err = p.control.ExecContext(ctx, qDone, t.ID, p.me)
	if err != nil {
		return inStep("lock.done", dbError("record lock", err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errLeaseLost
	}
	p.log.Info("tenant deleted: kept unreachable until its purge", "tenant", t.Slug, "tenant_id", t.ID, "purge_after", t.PurgeAfter)
	return nil
}
