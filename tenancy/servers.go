package tenancy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// DefaultServer is the name of the database server of DATABASE_URL, which
// also holds the control database.
const DefaultServer = "default"

// Server statuses, as the platform API shows them.
const (
	ServerActive      = "ACTIVE"      // new tenants may be placed here
	ServerDraining    = "DRAINING"    // keeps its tenants, takes no new ones
	ServerUnreachable = "UNREACHABLE" // the last probe failed
)

// Server errors; test them with errors.Is.
var (
	// ErrServerNotFound: no database server has that name.
	ErrServerNotFound = errors.New("database server not found")
	// ErrServerTaken: a database server already has that name.
	ErrServerTaken = errors.New("database server name is already taken")
	// ErrServerInUse: tenant databases, a move or a claimed spare are
	// still on the database server.
	ErrServerInUse = errors.New("database server is still in use")
)

var serverNameRe = regexp.MustCompile(`^[a-z][a-z0-9-]{0,38}$`)

// DatabaseServer is one PostgreSQL server of the fleet, as the platform API
// shows it: never its URL or credentials.
type DatabaseServer struct {
	Name        string
	Host        string // "host:port"
	Status      string // ServerActive, ServerDraining or ServerUnreachable
	Capacity    int    // most tenant databases placed here; 0 = no limit
	TenantCount int    // tenant databases on it (spares and templates not counted)
	LastError   string // the last probe's failure, "" when it answered
	CreatedAt   time.Time
}

// ServersOptions tune Servers.
type ServersOptions struct {
	// ProbeEvery is how often Run probes every server. Defaults to 5s.
	ProbeEvery time.Duration
	Log        *slog.Logger
	// Metrics, when set, hears every probe's outcome.
	Metrics ServerMetrics
}

// ServerMetrics records the probes of database servers (by server name:
// few, a fine label).
type ServerMetrics interface {
	ServerProbed(server string, ok bool)
}

// Servers is the fleet of database servers: the table in the control
// database, the URL of each (DATABASE_URL's for "default", sealed in the
// table for the others) and an administrative handle on each, as the
// server's role, on the database its URL names.
type Servers struct {
	control    *sqlx.DB
	sealer     *Sealer
	defaultURL *url.URL
	o          ServersOptions
	reserve    *Reserve // prepares added servers, clears removed ones; nil: none

	mu     sync.Mutex
	admins map[string]*sqlx.DB // open administrative handles, by name
	urls   map[string]*url.URL // known URLs, by name
	down   map[string]bool     // servers this process's last probe found silent
}

type serverRow struct {
	Name      string         `db:"name"`
	Host      string         `db:"host"`
	URLSealed []byte         `db:"url_sealed"`
	Capacity  int            `db:"capacity"`
	Draining  bool           `db:"draining"`
	Reachable bool           `db:"reachable"`
	LastError sql.NullString `db:"last_error"`
	CreatedAt time.Time      `db:"created_at"`
	Tenants   int            `db:"tenants"`
}

func (r serverRow) public() DatabaseServer {
	status := ServerActive
	switch {
	case !r.Reachable:
		status = ServerUnreachable
	case r.Draining:
		status = ServerDraining
	}
	return DatabaseServer{Name: r.Name, Host: r.Host, Status: status, Capacity: r.Capacity,
		TenantCount: r.Tenants, LastError: r.LastError.String, CreatedAt: r.CreatedAt.UTC()}
}

// NewServers returns the fleet of the control database control, whose own
// server (DefaultServer) is reached through defaultURL.
func NewServers(control *sqlx.DB, defaultURL string, sealer *Sealer, o ServersOptions) (*Servers, error) {
	u, err := url.Parse(defaultURL)
	if err != nil || u.Host == "" {
		return nil, errors.New("tenancy: the default server's URL must be a postgres:// URL with a host")
	}
	if o.ProbeEvery <= 0 {
		o.ProbeEvery = 5 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	s := &Servers{control: control, sealer: sealer, defaultURL: u, o: o,
		admins: map[string]*sqlx.DB{DefaultServer: control},
		urls:   map[string]*url.URL{DefaultServer: u}, down: map[string]bool{}}
	return s, nil
}

// SetReserve makes the reserve prepare each server added (its template
// and spares) and clear each server removed. Call it before serving.
func (s *Servers) SetReserve(r *Reserve) { s.reserve = r }

const serverColumns = `s.name, s.host, s.url_sealed, s.capacity, s.draining, s.reachable, s.last_error, s.created_at,
	(SELECT count(*) FROM tenants t WHERE t.database_server = s.name) AS tenants`

// List returns every server, "default" first, then by name.
func (s *Servers) List(ctx context.Context) ([]DatabaseServer, error) {
	var rows []serverRow
	q := `SELECT ` + serverColumns + ` FROM database_servers s ORDER BY s.name <> 'default', s.name`
	if err := s.control.SelectContext(ctx, &rows, q); err != nil {
		return nil, dbError("list database servers", err)
	}
	out := make([]DatabaseServer, 0, len(rows))
	for _, r := range rows {
		if r.Name == DefaultServer {
			r.Host = s.defaultURL.Host
		}
		out = append(out, r.public())
	}
	return out, nil
}

// Get returns the server name. Returns ErrServerNotFound when there is none.
func (s *Servers) Get(ctx context.Context, name string) (DatabaseServer, error) {
	r, err := s.row(ctx, name)
	if err != nil {
		return DatabaseServer{}, err
	}
	if r.Name == DefaultServer {
		r.Host = s.defaultURL.Host
	}
	return r.public(), nil
}

func (s *Servers) row(ctx context.Context, name string) (serverRow, error) {
	var r serverRow
	q := `SELECT ` + serverColumns + ` FROM database_servers s WHERE s.name = $1`
	if err := s.control.GetContext(ctx, &r, q, name); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return r, fmt.Errorf("database server %q: %w", name, ErrServerNotFound)
		}
		return r, dbError("get database server", err)
	}
	return r, nil
}

// Add probes rawURL (a postgres:// URL of a role with CREATEDB and
// CREATEROLE, never a superuser's need) and records the server as name,
// its URL sealed. Returns ErrInvalidInput for a bad name or capacity, a
// URL that is not one, a server that does not answer, or a role that
// lacks what tenantql needs (the message says which, never the URL);
// ErrServerTaken when the name or the server is already in the fleet.
func (s *Servers) Add(ctx context.Context, name, rawURL string, capacity int) (DatabaseServer, error) {
	if !serverNameRe.MatchString(name) {
		return DatabaseServer{}, invalid("a server name is a lower-case letter, then up to 38 lower-case letters, digits and '-'")
	}
	if capacity < 0 {
		return DatabaseServer{}, invalid("capacity must be 0 (no limit) or more")
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" || u.User == nil {
		return DatabaseServer{}, invalid("url must be a postgres://user:password@host:port/database URL")
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/postgres"
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), "5432")
	}
	if sameServer(u, s.defaultURL) {
		return DatabaseServer{}, fmt.Errorf("server %s: %w", u.Host, ErrServerTaken)
	}
	if err := s.probe(ctx, u); err != nil {
		return DatabaseServer{}, err
	}
	sealed, err := s.sealer.Seal([]byte(u.String()), serverURLAD(name))
	if err != nil {
		return DatabaseServer{}, err
	}
	const q = `INSERT INTO database_servers (name, host, url_sealed, capacity) VALUES ($1, $2, $3, $4)`
	if _, err := s.control.ExecContext(ctx, q, name, u.Host, sealed, capacity); err != nil {
		if pq.As(err, "23505") != nil {
			return DatabaseServer{}, fmt.Errorf("database server %q: %w", name, ErrServerTaken)
		}
		return DatabaseServer{}, dbError("add database server", err)
	}
	s.o.Log.Info("database server added", "server", name, "host", u.Host)
	s.reserve.Kick() // its template and spares, soon; sign-ups fall back to template0 meanwhile
	return s.Get(ctx, name)
}

// sameServer reports whether two URLs reach the same host and port.
func sameServer(a, b *url.URL) bool {
	port := func(u *url.URL) string {
		if p := u.Port(); p != "" {
			return p
		}
		return "5432"
	}
	return a.Hostname() == b.Hostname() && port(a) == port(b)
}

// probe connects to u and checks its role: an invalid-input error that
// says what is wrong (never the URL, which holds a password).
func (s *Servers) probe(ctx context.Context, u *url.URL) error {
	pu := *u
	q := pu.Query()
	if q.Get("connect_timeout") == "" {
		q.Set("connect_timeout", "5")
	}
	q.Set("application_name", "tenantql-probe")
	pu.RawQuery = q.Encode()
	db, err := sqlx.Open("postgres", pu.String())
	if err != nil {
		return invalid("url: %s", "not a usable connection URL")
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var r struct {
		Super      bool `db:"rolsuper"`
		CreateDB   bool `db:"rolcreatedb"`
		CreateRole bool `db:"rolcreaterole"`
	}
	if err := db.GetContext(ctx, &r, `SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user`); err != nil {
		var pqErr *pq.Error
		if errors.As(err, &pqErr) {
			return invalid("the server refused the connection: %s", pqErr.Code.Name())
		}
		return invalid("the server at %s does not answer", u.Host)
	}
	if !r.Super && (!r.CreateDB || !r.CreateRole) {
		return invalid("the URL's role needs CREATEDB and CREATEROLE on that server")
	}
	return nil
}

// SetDraining drains the server name (no new tenants) or makes it take
// new tenants again, and returns it.
func (s *Servers) SetDraining(ctx context.Context, name string, draining bool) (DatabaseServer, error) {
	res, err := s.control.ExecContext(ctx, `UPDATE database_servers SET draining = $2 WHERE name = $1`, name, draining)
	if err != nil {
		return DatabaseServer{}, dbError("drain database server", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return DatabaseServer{}, fmt.Errorf("database server %q: %w", name, ErrServerNotFound)
	}
	return s.Get(ctx, name)
}

// Remove drops the template and spares of the server name (see
// Reserve.clearServer) and forgets the server. Returns ErrServerInUse
// while tenant databases, a move (from or to it) or a sign-up's claim of
// one of its spares are on it, ErrWrongState for "default",
// ErrServerNotFound, and ErrUnavailable when the server does not answer
// (its template and spares cannot be dropped) unless force: a server
// that is gone for good is then forgotten with its spares' rows, and
// whatever of ours is on it stays there.
func (s *Servers) Remove(ctx context.Context, name string, force bool) error {
	if name == DefaultServer {
		return fmt.Errorf("the default server holds the control database: %w", ErrWrongState)
	}
	if _, err := s.row(ctx, name); err != nil {
		return err
	}
	if err := s.checkUnused(ctx, name); err != nil {
		return err
	}
	forget := func() error {
		_, err := s.control.ExecContext(ctx, `DELETE FROM database_servers WHERE name = $1`, name)
		if pq.As(err, "23503") != nil { // a tenant placed there, or a spare claimed, meanwhile
			return fmt.Errorf("database server %q: %w", name, ErrServerInUse)
		}
		return dbError("remove database server", err)
	}
	var err error
	switch {
	case s.reserve == nil:
		err = forget()
	case force && s.ping(ctx, name) != nil:
		if err = s.reserve.forgetServer(ctx, name, forget); err == nil {
			s.o.Log.Warn("database server forgotten without dropping its template and spares: it does not answer", "server", name)
		}
	default:
		err = s.reserve.clearServer(ctx, name, forget)
		if errors.Is(err, ErrUnavailable) {
			s.o.Log.Warn("database server not removed: its template and spares cannot be dropped", "server", name, "err", err)
			err = fmt.Errorf("%w (%s): its template and spares cannot be dropped; with force it is forgotten, leaving them on it", ErrServerSilent, name)
		}
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	if db := s.admins[name]; db != nil {
		db.Close()
	}
	delete(s.admins, name)
	delete(s.urls, name)
	s.mu.Unlock()
	s.o.Log.Info("database server removed", "server", name)
	return nil
}

// checkUnused returns ErrServerInUse, saying why, while tenants, moves or
// claimed spares are on the server name.
func (s *Servers) checkUnused(ctx context.Context, name string) error {
	var use struct {
		Tenants bool `db:"tenants"`
		Moves   bool `db:"moves"`
		Claims  bool `db:"claims"`
	}
	const q = `SELECT
		EXISTS (SELECT 1 FROM tenants WHERE database_server = $1) AS tenants,
		EXISTS (SELECT 1 FROM tenants WHERE move_server = $1) AS moves,
		EXISTS (SELECT 1 FROM spares WHERE server = $1 AND claimed_by IS NOT NULL) AS claims`
	if err := s.control.GetContext(ctx, &use, q, name); err != nil {
		return dbError("database server use", err)
	}
	switch {
	case use.Tenants:
		return fmt.Errorf("database server %q: %w: tenant databases are on it", name, ErrServerInUse)
	case use.Moves:
		return fmt.Errorf("database server %q: %w: a tenant is moving to or from it", name, ErrServerInUse)
	case use.Claims:
		return fmt.Errorf("database server %q: %w: a sign-up is claiming one of its spares", name, ErrServerInUse)
	}
	return nil
}

// Place chooses the server of a new tenant: pinned when given (it must be
// ACTIVE: ErrInvalidInput otherwise), else the ACTIVE server with the most
// free capacity (0 = no limit counts as the most), ties broken by fewest
// tenants, then by name.
func (s *Servers) Place(ctx context.Context, pinned string) (string, error) {
	var rows []serverRow
	q := `SELECT ` + serverColumns + ` FROM database_servers s`
	if err := s.control.SelectContext(ctx, &rows, q); err != nil {
		return "", dbError("place tenant", err)
	}
	best, bestFree := "", -1
	bestTenants := 0
	for _, r := range rows {
		active := r.public().Status == ServerActive
		if pinned != "" {
			if r.Name != pinned {
				continue
			}
			if !active {
				return "", invalid("database server %q is %s: it takes no new tenants", pinned, r.public().Status)
			}
			if r.Capacity > 0 && r.Tenants >= r.Capacity {
				return "", invalid("database server %q is full (%d tenants)", pinned, r.Capacity)
			}
			return r.Name, nil
		}
		if !active {
			continue
		}
		free := int(^uint(0) >> 1)
		if r.Capacity > 0 {
			free = r.Capacity - r.Tenants
			if free <= 0 {
				continue
			}
		}
		if free > bestFree || free == bestFree && (r.Tenants < bestTenants || r.Tenants == bestTenants && r.Name < best) {
			best, bestFree, bestTenants = r.Name, free, r.Tenants
		}
	}
	if pinned != "" {
		return "", invalid("no database server is named %q", pinned)
	}
	if best == "" {
		return "", fmt.Errorf("no ACTIVE database server has room: %w", ErrUnavailable)
	}
	return best, nil
}

// URL returns the URL of the server name (its role's credentials: never
// log it).
func (s *Servers) URL(ctx context.Context, name string) (*url.URL, error) {
	s.mu.Lock()
	u := s.urls[name]
	s.mu.Unlock()
	if u != nil {
		return u, nil
	}
	r, err := s.row(ctx, name)
	if err != nil {
		return nil, err
	}
	plain, err := s.sealer.Open(r.URLSealed, serverURLAD(name))
	if err != nil {
		return nil, fmt.Errorf("database server %q: open its URL: %w", name, err)
	}
	if u, err = url.Parse(string(plain)); err != nil {
		return nil, fmt.Errorf("database server %q: its URL: %w", name, err)
	}
	s.mu.Lock()
	s.urls[name] = u
	s.mu.Unlock()
	return u, nil
}

// Admin returns the administrative handle on the server name (the
// control database's handle for "default"), opened on first use.
func (s *Servers) Admin(ctx context.Context, name string) (*sqlx.DB, error) {
	s.mu.Lock()
	db := s.admins[name]
	s.mu.Unlock()
	if db != nil {
		return db, nil
	}
	u, err := s.URL(ctx, name)
	if err != nil {
		return nil, err
	}
	au := *u
	q := au.Query()
	q.Set("application_name", "tenantql-admin")
	if q.Get("connect_timeout") == "" {
		q.Set("connect_timeout", "5")
	}
	au.RawQuery = q.Encode()
	db, err = sqlx.Open("postgres", au.String())
	if err != nil {
		return nil, fmt.Errorf("database server %q: %w", name, err)
	}
	db.SetMaxOpenConns(adminConns)
	db.SetMaxIdleConns(adminConns)
	db.SetConnMaxIdleTime(time.Minute)
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.admins[name]; cur != nil {
		db.Close()
		return cur, nil
	}
	s.admins[name] = db
	return db, nil
}

// Run probes every server but "default" (the control database's own, whose
// outage the rest of tenantql already answers) every ProbeEvery, and
// records whether it answered, until ctx ends.
func (s *Servers) Run(ctx context.Context) {
	tick := time.NewTicker(s.o.ProbeEvery)
	defer tick.Stop()
	for {
		s.ProbeAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// ProbeAll probes every server but "default" once and records the outcome.
func (s *Servers) ProbeAll(ctx context.Context) {
	var names []string
	if err := s.control.SelectContext(ctx, &names, `SELECT name FROM database_servers WHERE name <> 'default'`); err != nil {
		if ctx.Err() == nil {
			s.o.Log.Warn("probe database servers", "err", err)
		}
		return
	}
	for _, name := range names {
		perr := s.ping(ctx, name)
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		s.down[name] = perr != nil
		s.mu.Unlock()
		if s.o.Metrics != nil {
			s.o.Metrics.ServerProbed(name, perr == nil)
		}
		msg := sql.NullString{}
		if perr != nil {
			msg = sql.NullString{String: "the server does not answer", Valid: true}
		}
		const q = `UPDATE database_servers SET reachable = $2, last_error = $3
			WHERE name = $1 AND (reachable <> $2 OR last_error IS DISTINCT FROM $3)`
		res, err := s.control.ExecContext(ctx, q, name, perr == nil, msg)
		if err == nil {
			if n, _ := res.RowsAffected(); n > 0 {
				s.o.Log.Warn("database server reachability changed", "server", name, "reachable", perr == nil, "err", perr)
			}
		}
	}
}

func (s *Servers) ping(ctx context.Context, name string) error {
	db, err := s.Admin(ctx, name)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err == nil {
		return nil
	}
	// Idle connections that outlived a restart of the server answer with
	// its shutdown's error, one per ping: drop them all and ask once more
	// on a new connection.
	db.SetMaxIdleConns(0)
	db.SetMaxIdleConns(adminConns)
	return db.PingContext(ctx)
}

// adminConns bounds each server's administrative handle (see Admin).
const adminConns = 4

// Down reports whether this process's last probe of the server name found
// it silent: its tenants are then refused at once instead of waiting for
// a connection timeout.
func (s *Servers) Down(name string) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down[name]
}

// Reachable reports whether the server name answered its last probe, as
// recorded in the control database (by any replica).
func (s *Servers) Reachable(ctx context.Context, name string) (bool, error) {
	var ok bool
	if err := s.control.GetContext(ctx, &ok, `SELECT reachable FROM database_servers WHERE name = $1`, name); err != nil {
		return false, dbError("database server reachability", err)
	}
	return ok, nil
}

// Close closes the administrative handles of servers but "default".
func (s *Servers) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, db := range s.admins {
		if name != DefaultServer {
			db.Close()
		}
	}
}
