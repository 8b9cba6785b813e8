package tenancy

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"log/slog"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
)

// presenceLockSpace is the first key of every presence lock (the second is
// hashtext of the process's name): "tnql".
const presenceLockSpace = 0x746e716c

// presenceCheckEvery is how often the presence session is checked and the
// replicas counted.
const presenceCheckEvery = time.Second

// Presence is a server process's presence in the control database: for as
// long as the process runs it holds a session-level advisory lock named
// after it on a connection of its own. PostgreSQL releases the lock the
// moment that session ends, so a process that died (its socket closed, or
// its host silent past the session's TCP keepalives) is known to be gone
// at once: its provisioning jobs are taken over without waiting for their
// lease (see Provisioner.claim), and the replicas still alive are counted
// to share each tenant role's CONNECTION LIMIT among them.
type Presence struct {
	control *sqlx.DB
	name    string
	log     *slog.Logger
	// OnReplicas, when set before Run, is called with the number of live
	// processes of the deployment whenever it changes.
	OnReplicas func(n int)

	mu       sync.Mutex
	held     bool
	lost     chan struct{} // closed when the lock held is lost
	replicas int
}

// NewPresence returns the presence of the process named name (unique per
// process; the provisioner's lease owner name).
func NewPresence(control *sqlx.DB, name string, log *slog.Logger) *Presence {
	if log == nil {
		log = slog.Default()
	}
	return &Presence{control: control, name: name, log: log, lost: make(chan struct{})}
}

// Held reports whether the lock is held now, and returns a channel closed
// when it is lost. Work begun while it is held belongs to that session.
func (p *Presence) Held() (bool, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held, p.lost
}

// Run takes the lock and keeps it until ctx ends, taking it again on a new
// connection whenever its session is lost (the control database restarted,
// say). On return the lock is released.
func (p *Presence) Run(ctx context.Context) {
	for ctx.Err() == nil {
		conn, err := p.take(ctx)
		if err != nil {
			if ctx.Err() == nil {
				p.log.Warn("presence lock", "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(presenceCheckEvery):
			}
			continue
		}
		p.setHeld(true)
		p.keep(ctx, conn)
		p.setHeld(false)
		// never back to the pool: the session still holds the lock when
		// it is alive, and is broken when not
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		_ = conn.Close()
	}
}

// take opens a connection of its own and locks the process's key on it.
// Keepalives make PostgreSQL notice within about 15 s a host that vanished
// without closing the connection.
func (p *Presence) take(ctx context.Context) (*sql.Conn, error) {
	conn, err := p.control.Conn(ctx)
	if err != nil {
		return nil, dbError("presence: connect", err)
	}
	for _, q := range []string{
		`SET application_name = 'tenantql-presence'`,
		`SET tcp_keepalives_idle = 5`, `SET tcp_keepalives_interval = 2`, `SET tcp_keepalives_count = 4`,
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			_ = conn.Close()
			return nil, dbError("presence: configure session", err)
		}
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1, hashtext($2))`, presenceLockSpace, p.name); err != nil {
		_ = conn.Close()
		return nil, dbError("presence: lock", err)
	}
	return conn, nil
}

// keep checks the session every presenceCheckEvery and counts the live
// processes, until the session fails or ctx ends.
func (p *Presence) keep(ctx context.Context, conn *sql.Conn) {
	const q = `SELECT count(*) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND classid = $1::oid AND objsubid = 2
		  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`
	tick := time.NewTicker(presenceCheckEvery)
	defer tick.Stop()
	for {
		checkCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var n int
		err := conn.QueryRowContext(checkCtx, q, int64(presenceLockSpace)).Scan(&n)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			p.log.Warn("presence session lost; taking the lock again", "err", err)
			return
		}
		p.setReplicas(n)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (p *Presence) setHeld(held bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held && !held {
		close(p.lost)
		p.lost = make(chan struct{})
	}
	p.held = held
}

func (p *Presence) setReplicas(n int) {
	p.mu.Lock()
	changed := n != p.replicas
	p.replicas = n
	p.mu.Unlock()
	if changed && p.OnReplicas != nil {
		p.OnReplicas(max(n, 1))
	}
}

// Replicas returns the number of live processes last counted (0 before
// the first count).
func (p *Presence) Replicas() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.replicas
}
