package tenancy

import (
	"context"
	"fmt"
	"net/url"

	"github.com/jmoiron/sqlx"
)

// The reserve of a fleet: every ACTIVE database server keeps its own
// template database and its own Spares spares, built with that server's
// URL and administrative handle and listed in the control table spares
// with the server's name. A sign-up claims a spare of its tenant's server.
// A DRAINING or UNREACHABLE server gets nothing new (what it has stays
// until it is removed); removing a server drops its template and spares.

// site is one database server as the reserve works on it.
type site struct {
	name  string
	admin *sqlx.DB // administrative handle (the control database's for "default")
	url   *url.URL // the server's URL: it holds a password, never log it
}

// site returns the server name ("" is the default server). Returns
// ErrServerNotFound for a server the fleet does not have.
func (r *Reserve) site(ctx context.Context, name string) (site, error) {
	if name == "" || name == DefaultServer {
		return site{name: DefaultServer, admin: r.control, url: r.server}, nil
	}
	if r.opts.Servers == nil {
		return site{}, fmt.Errorf("database server %q: %w", name, ErrServerNotFound)
	}
	admin, err := r.opts.Servers.Admin(ctx, name)
	if err != nil {
		return site{}, err
	}
	u, err := r.opts.Servers.URL(ctx, name)
	if err != nil {
		return site{}, err
	}
	return site{name: name, admin: admin, url: u}, nil
}

// preparedServers lists the servers whose reserve is kept ready: the
// ACTIVE ones, "default" first (without a fleet, "default" only).
func (r *Reserve) preparedServers(ctx context.Context) ([]string, error) {
	const q = `SELECT name FROM database_servers WHERE reachable AND NOT draining
		AND ($1 OR name = 'default') ORDER BY name <> 'default', name`
	var names []string
	if err := r.control.SelectContext(ctx, &names, q, r.opts.Servers != nil); err != nil {
		return nil, dbError("reserve: list database servers", err)
	}
	return names, nil
}

// stillPrepared reports whether the server name is still ACTIVE, read
// under its reserve lock: a removal deletes the row under that lock, so a
// pass that started before it builds nothing there afterwards.
func (r *Reserve) stillPrepared(ctx context.Context, name string) (bool, error) {
	const q = `SELECT EXISTS (SELECT 1 FROM database_servers WHERE name = $1 AND reachable AND NOT draining)`
	var ok bool
	if err := r.control.GetContext(ctx, &ok, q, name); err != nil {
		return false, dbError("reserve: database server lookup", err)
	}
	return ok, nil
}

// reserveLockClass is the first key of the advisory locks (in the control
// database) that one process holds while it works on the reserve of a
// server; the second key is the hash of the server's name.
const reserveLockClass = 730_501_900

// withServerLock runs f holding the reserve lock of the server name. With
// wait false it returns nil at once, without running f, when another
// session holds the lock (another process is refilling that server).
func (r *Reserve) withServerLock(ctx context.Context, name string, wait bool, f func() error) error {
	conn, err := r.control.Conn(ctx)
	if err != nil {
		return dbError("reserve: connect", err)
	}
	defer conn.Close()
	if wait {
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1, hashtext($2))`, reserveLockClass, name); err != nil {
			return dbError("reserve: lock", err)
		}
	} else {
		var locked bool
		if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1, hashtext($2))`, reserveLockClass, name).Scan(&locked); err != nil {
			return dbError("reserve: lock", err)
		}
		if !locked {
			return nil
		}
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1, hashtext($2))`, reserveLockClass, name)
	return f()
}

// clearServer drops the spares and templates of the server name (their
// databases, NOLOGIN roles and rows), then runs forget, which removes the
// server from the fleet; all under the server's reserve lock, so that no
// refill builds there meanwhile. Each spare's objects go before its row,
// so a crash midway leaves no orphan: the rows left (objects gone) are
// dropped by the next removal, or by the next refill if the server stays.
// Spares claimed by a sign-up are left to it (forget then fails: the
// spares row still names the server).
func (r *Reserve) clearServer(ctx context.Context, name string, forget func() error) error {
	return r.withServerLock(ctx, name, true, func() error {
		s, err := r.site(ctx, name)
		if err != nil {
			return err
		}
		var spares []string
		const q = `SELECT name FROM spares WHERE server = $1 AND claimed_by IS NULL`
		if err := r.control.SelectContext(ctx, &spares, q, s.name); err != nil {
			return dbError("reserve: list spares", err)
		}
		objs, err := r.spareObjects(ctx, s)
		if err != nil {
			return err
		}
		orphans, err := r.orphans(ctx, objs)
		if err != nil {
			return err
		}
		for _, sp := range append(spares, orphans...) {
			if err := r.dropSpare(ctx, s, sp); err != nil {
				return err
			}
		}
		if err := r.dropTemplates(ctx, s); err != nil {
			return err
		}
		return forget()
	})
}

// forgetServer deletes the rows of the unclaimed spares of the server
// name, then runs forget, under the server's reserve lock, without
// reaching the server (it does not answer): its template and spares stay
// on it, unknown to tenantql.
func (r *Reserve) forgetServer(ctx context.Context, name string, forget func() error) error {
	return r.withServerLock(ctx, name, true, func() error {
		const q = `DELETE FROM spares WHERE server = $1 AND claimed_by IS NULL`
		if _, err := r.control.ExecContext(ctx, q, name); err != nil {
			return dbError("reserve: forget spares", err)
		}
		return forget()
	})
}

// dropTemplates drops every template database and role on s, current or
// stale.
func (r *Reserve) dropTemplates(ctx context.Context, s site) error {
	var names []string
	const q = `SELECT datname FROM pg_database WHERE datname ~ $1 UNION SELECT rolname FROM pg_roles WHERE rolname ~ $1`
	if err := s.admin.SelectContext(ctx, &names, q, r.tplRe.String()); err != nil {
		return dbError("reserve: list templates", err)
	}
	for _, n := range names {
		if err := r.dropDatabase(ctx, s, n); err != nil {
			return err
		}
		if err := r.dropRole(ctx, s, n); err != nil {
			return err
		}
	}
	return nil
}
