package tenancy

import (
	"container/list"
	"context"
	"database/sql/driver"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"go.opentelemetry.io/otel/trace"

	"github.com/tenantql/tenantql/tracing"
)

// PoolOptions configure the tenant connection pools.
type PoolOptions struct {
	// ServerURL is the PostgreSQL server holding the tenant databases (the
	// control database URL will do); its user, password and database are
	// replaced by each tenant's own.
	ServerURL string
	// MaxConns bounds the connections of all tenant pools together on
	// each database server: every server has a budget of its own, so that
	// one full or slow server never starves the tenants of another.
	// Defaults to 64.
	MaxConns int
	// MaxConnsPerTenant bounds one tenant's pool. Defaults to min(8, MaxConns).
	MaxConnsPerTenant int
	// RoleConnLimit is the CONNECTION LIMIT of tenant roles, which every
	// server process's connections to a tenant share (see SetReplicas).
	// Defaults to DefaultRoleConnLimit.
	RoleConnLimit int
	// AcquireTimeout bounds the wait for a free connection slot. Defaults to 3s.
	AcquireTimeout time.Duration
	// IdleTimeout closes a tenant's idle connections after this long. Defaults to 30s.
	IdleTimeout time.Duration
	// MaxPools bounds how many tenant pools stay open (least recently used
	// closed first when idle). Defaults to 1000.
	MaxPools int
	// NamePrefix starts tenant database and role names, as given to
	// NewRegistry (DefaultNamePrefix when ""): a pool opens only on a
	// tenant-shaped name, never on a spare or the template.
	NamePrefix string
	// Metrics receives pool events; nil records nothing.
	Metrics PoolMetrics
	// TracerProvider, when set, makes a span of every statement on a
	// tenant pool run inside a span (tracing.OpenDB); nil: none.
	TracerProvider trace.TracerProvider
	// Prepared picks the statements (with arguments) that each tenant
	// connection prepares the first time it runs them and then runs by
	// name (prepared.go); they must have plans that suit any arguments.
	// nil: none.
	Prepared func(query string) bool
}

// PoolMetrics is told about the connection budget.
type PoolMetrics interface {
	PoolOpened()
	PoolClosed(evicted bool)
	ConnOpened()
	ConnClosed()
	ConnWait(d time.Duration, ok bool)
	// ConnReclaimed counts an idle connection closed to free a slot for another tenant.
	ConnReclaimed()
}

type noMetrics struct{}

func (noMetrics) PoolOpened()                  {}
func (noMetrics) PoolClosed(bool)              {}
func (noMetrics) ConnOpened()                  {}
func (noMetrics) ConnClosed()                  {}
func (noMetrics) ConnWait(time.Duration, bool) {}
func (noMetrics) ConnReclaimed()               {}

// Pools holds one lazily opened *sqlx.DB per tenant, each logging in as the
// tenant's own role, under a connection budget per database server.
type Pools struct {
	opts   PoolOptions
	server *url.URL
	sealer *Sealer
	names  naming

	mu       sync.Mutex
	pools    map[uuid.UUID]*list.Element // of *tenantPool, most recently used at the front
	lru      *list.List
	budgets  map[string]*serverBudget // by database server name
	sharedAt time.Time                // last recount of the active pools
	// servers reaches tenants not on the default server (see SetServers)
	servers atomic.Pointer[Servers]
	// tenantCap bounds each pool: MaxConnsPerTenant, or less when the
	// role's CONNECTION LIMIT is shared by several processes
	tenantCap int
}

// serverBudget is the connection budget of one database server: the
// pools of the tenants placed there share its MaxConns slots.
type serverBudget struct {
	server string
	slots  chan struct{} // one token per open PostgreSQL connection
	active int           // its pools used within FairShareWindow, as of Pools.sharedAt (guarded by Pools.mu)
}

type tenantPool struct {
	id     uuid.UUID
	budget *serverBudget
	db     *sqlx.DB
	gate   chan struct{} // one token per request using db (see Enter)
	used   time.Time     // last DB call
	limit  int           // MaxOpenConns: the fair share (guarded by Pools.mu)
	conns  atomic.Int32  // connections holding a slot (see budgetDialer)

	resizing sync.Mutex // one resize at a time
}

// NewPools returns an empty set of pools.
func NewPools(o PoolOptions, sealer *Sealer) (*Pools, error) {
	u, err := url.Parse(o.ServerURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("tenancy: server URL must be a postgres:// URL with a host")
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 64
	}
	if o.MaxConnsPerTenant <= 0 {
		o.MaxConnsPerTenant = min(8, o.MaxConns)
	}
	if o.RoleConnLimit <= 0 {
		o.RoleConnLimit = DefaultRoleConnLimit
	}
	if o.AcquireTimeout <= 0 {
		o.AcquireTimeout = 3 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 30 * time.Second
	}
	if o.MaxPools <= 0 {
		o.MaxPools = 1000
	}
	if o.Metrics == nil {
		o.Metrics = noMetrics{}
	}
	names, err := newNaming(o.NamePrefix)
	if err != nil {
		return nil, err
	}
	return &Pools{
		opts: o, server: u, sealer: sealer, names: names,
		pools: map[uuid.UUID]*list.Element{}, lru: list.New(),
		budgets:   map[string]*serverBudget{},
		tenantCap: o.MaxConnsPerTenant,
	}, nil
}

// SetServers lets the pools reach tenants on every server of the fleet;
// without it every tenant is on the server of PoolOptions.ServerURL. Call
// it before the pools are used.
func (p *Pools) SetServers(s *Servers) { p.servers.Store(s) }

// SetReplicas shares each tenant role's CONNECTION LIMIT among n live
// server processes (counted by their Presence): one process's pool for a
// tenant opens at most RoleConnLimit/n - 1 connections (the one left is
// for the process's LISTEN connection), never more than
// MaxConnsPerTenant and never fewer than one. With more processes than
// that allows, PostgreSQL refuses the surplus connections (53300), which
// the requests that wanted them answer as SERVICE_UNAVAILABLE. Pools
// adopt the new bound on their next use.
func (p *Pools) SetReplicas(n int) {
	capacity := max(1, min(p.opts.MaxConnsPerTenant, p.opts.RoleConnLimit/max(n, 1)-1))
	p.mu.Lock()
	p.tenantCap = capacity
	p.mu.Unlock()
}

// TenantCap returns the most connections one tenant's pool may open now.
func (p *Pools) TenantCap() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tenantCap
}

// DB returns the tenant's pool, opening it on first use. Each call counts
// as a use of the pool (for the LRU order and the fair share).
func (p *Pools) DB(t *Tenant) (*sqlx.DB, error) {
	now := time.Now()
	p.mu.Lock()
	if p.servers.Load().Down(t.Server) {
		p.mu.Unlock()
		return nil, fmt.Errorf("%w: database server %q does not answer", ErrUnavailable, t.Server)
	}
	if now.Sub(p.sharedAt) > shareEvery {
		p.recountLocked(now)
	}
	if e, ok := p.pools[t.ID]; ok {
		p.lru.MoveToFront(e)
		tp := e.Value.(*tenantPool)
		tp.used = now
		resize := p.shareLocked(tp)
		p.mu.Unlock()
		if resize {
			p.resize(tp)
		}
		return tp.db, nil
	}
	defer p.mu.Unlock()
	tp := &tenantPool{
		id: t.ID, budget: p.budgetLocked(t.Server),
		gate: make(chan struct{}, p.opts.MaxConnsPerTenant), used: now, limit: p.opts.MaxConnsPerTenant,
	}
	db, err := p.open(t, tp)
	if err != nil {
		return nil, err
	}
	tp.db = db
	p.pools[t.ID] = p.lru.PushFront(tp)
	tp.budget.active++
	if p.shareLocked(tp) {
		setLimit(db, tp.limit) // no connection yet: nothing to close
	}
	p.opts.Metrics.PoolOpened()
	p.evictLocked()
	return db, nil
}

// resize applies tp's current limit. Lowering it closes idle connections
// at once, so it runs without p.mu, one resize of a pool at a time, and
// always applies the latest limit.
func (p *Pools) resize(tp *tenantPool) {
	tp.resizing.Lock()
	defer tp.resizing.Unlock()
	p.mu.Lock()
	n := tp.limit
	p.mu.Unlock()
	setLimit(tp.db, n)
}

// setLimit bounds a pool's open and idle connections.
func setLimit(db *sqlx.DB, n int) {
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
}

// budgetLocked returns the budget of the database server named server
// ("" is the default one), made on first use.
func (p *Pools) budgetLocked(server string) *serverBudget {
	if server == "" {
		server = DefaultServer
	}
	b := p.budgets[server]
	if b == nil {
		b = &serverBudget{server: server, slots: make(chan struct{}, p.opts.MaxConns)}
		p.budgets[server] = b
	}
	return b
}

// budget is budgetLocked for callers that do not hold p.mu.
func (p *Pools) budget(server string) *serverBudget {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.budgetLocked(server)
}

// OpenConns returns the connections this process holds open to each
// database server it has used (pools, LISTEN and provisioning
// connections alike), by server name.
func (p *Pools) OpenConns() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	open := make(map[string]int, len(p.budgets))
	for name, b := range p.budgets {
		open[name] = len(b.slots)
	}
	return open
}

// The fair share, per database server: when more of a server's tenants
// are active than its budget has room for at MaxConnsPerTenant each, each
// of their pools may open only MaxConns/active connections (at least
// one). Active are the pools used
// within FairShareWindow and those still holding connections: a tenant with
// more requests in flight than its share then waits a moment for one of
// its own connections instead of closing another tenant's idle one (which
// that tenant will likely dial again) and dialing: reusing a connection
// costs microseconds, a new backend milliseconds. With few active tenants
// the share is MaxConnsPerTenant.
const (
	// FairShareWindow is how recently a pool must have been used to
	// count as active for the fair share.
	FairShareWindow = 5 * time.Second
	shareEvery      = 250 * time.Millisecond
)

// recountLocked counts the active pools of each server (at most MaxPools
// pools in all).
func (p *Pools) recountLocked(now time.Time) {
	for _, b := range p.budgets {
		b.active = 0
	}
	for e := p.lru.Front(); e != nil; e = e.Next() {
		if tp := e.Value.(*tenantPool); now.Sub(tp.used) < FairShareWindow || tp.conns.Load() > 0 {
			tp.budget.active++
		}
	}
	p.sharedAt = now
}

// shareLocked sets tp's limit to the fair share and reports whether it
// changed.
func (p *Pools) shareLocked(tp *tenantPool) bool {
	share := p.tenantCap
	if active := tp.budget.active; active > 0 {
		share = max(1, min(share, p.opts.MaxConns/active))
	}
	if share == tp.limit {
		return false
	}
	tp.limit = share
	return true
}

// Enter admits one request to the tenant's open pool: at most
// MaxConnsPerTenant requests of a tenant use it at once, so a request never
// queues without bound inside database/sql behind a busy tenant's others.
// It waits at most AcquireTimeout, then returns ErrUnavailable. Call leave
// once the request is done. A tenant with no open pool is admitted at once.
func (p *Pools) Enter(ctx context.Context, id uuid.UUID) (leave func(), err error) {
	p.mu.Lock()
	var gate chan struct{}
	if e, ok := p.pools[id]; ok {
		gate = e.Value.(*tenantPool).gate
	}
	p.mu.Unlock()
	if gate == nil {
		return func() {}, nil
	}
	leave = func() { <-gate }
	select {
	case gate <- struct{}{}:
		return leave, nil
	default:
	}
	timer := time.NewTimer(p.opts.AcquireTimeout)
	defer timer.Stop()
	select {
	case gate <- struct{}{}:
		return leave, nil
	case <-timer.C:
		p.opts.Metrics.ConnWait(p.opts.AcquireTimeout, false)
		return nil, fmt.Errorf("%w: tenant busy: no free database connection within %s", ErrUnavailable, p.opts.AcquireTimeout)
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: tenant busy: %v", ErrUnavailable, ctx.Err())
	}
}

// evictLocked closes least recently used pools that hold no connection in
// use while there are more than MaxPools.
func (p *Pools) evictLocked() {
	for e := p.lru.Back(); e != nil && p.lru.Len() > p.opts.MaxPools; {
		prev := e.Prev()
		tp := e.Value.(*tenantPool)
		if tp.db.Stats().InUse == 0 {
			p.lru.Remove(e)
			delete(p.pools, tp.id)
			go tp.db.Close()
			p.opts.Metrics.PoolClosed(true)
		}
		e = prev
	}
}

// Close closes the tenant's pool (if open) at once: used when a tenant is
// suspended or deleted.
func (p *Pools) Close(id uuid.UUID) {
	p.mu.Lock()
	e, ok := p.pools[id]
	if ok {
		p.lru.Remove(e)
		delete(p.pools, id)
	}
	p.mu.Unlock()
	if ok {
		e.Value.(*tenantPool).db.Close()
		p.opts.Metrics.PoolClosed(false)
	}
}

// retiredPoolLifetime is how long a retired pool stays open for the
// requests still using it: longer than any request.
const retiredPoolLifetime = time.Minute

// Retire takes the tenant's pool (if open) out of use without failing the
// requests using it: its idle connections close at once, the others as
// they are given back, and the next request opens a new pool. Used when a
// served tenant's database changes under it (a move).
func (p *Pools) Retire(id uuid.UUID) {
	p.mu.Lock()
	e, ok := p.pools[id]
	if ok {
		p.lru.Remove(e)
		delete(p.pools, id)
	}
	p.mu.Unlock()
	if !ok {
		return
	}
	db := e.Value.(*tenantPool).db
	db.SetMaxIdleConns(0)
	time.AfterFunc(retiredPoolLifetime, func() { db.Close() })
	p.opts.Metrics.PoolClosed(false)
}

// CloseAll closes every pool (at shutdown).
func (p *Pools) CloseAll() {
	p.mu.Lock()
	var dbs []*sqlx.DB
	for _, e := range p.pools {
		dbs = append(dbs, e.Value.(*tenantPool).db)
	}
	p.pools = map[uuid.UUID]*list.Element{}
	p.lru.Init()
	p.mu.Unlock()
	for _, db := range dbs {
		db.Close()
	}
}

// TenantURL returns the connection URL of the tenant's own role and
// database. It carries the tenant's password: never log it.
func (p *Pools) TenantURL(t *Tenant) (string, error) {
	pw, err := p.sealer.Open(t.sealedPassword, t.ID[:])
	if err != nil {
		return "", err
	}
	u := *p.server
	servers := p.servers.Load()
	if t.Server != "" && t.Server != DefaultServer && servers != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		su, err := servers.URL(ctx, t.Server)
		cancel()
		if err != nil {
			return "", err
		}
		u = *su
	}
	u.User = url.UserPassword(t.RoleName, string(pw))
	u.Path = "/" + t.DBName
	q := u.Query()
	q.Set("application_name", "tenantql")
	if q.Get("connect_timeout") == "" {
		q.Set("connect_timeout", "5")
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func (p *Pools) open(t *Tenant, tp *tenantPool) (*sqlx.DB, error) {
	if !p.names.pattern.MatchString(t.DBName) || !p.names.pattern.MatchString(t.RoleName) {
		return nil, fmt.Errorf("tenancy: tenant %s: refusing database %q", t.ID, t.DBName)
	}
	dsn, err := p.TenantURL(t)
	if err != nil {
		return nil, err
	}
	// One round trip per query with arguments instead of two: lib/pq
	// otherwise prepares, waits for the description, then executes.
	// (No query of the request path passes []byte, which this mode would
	// send as binary.)
	dsn += "&binary_parameters=yes"
	c, err := pq.NewConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("tenancy: connector for tenant %s: %w", t.ID, err)
	}
	c.Dialer(budgetDialer{p: p, budget: tp.budget, tp: tp})
	var conns driver.Connector = c
	if p.opts.Prepared != nil {
		conns = preparedConnector{Connector: c, prepared: p.opts.Prepared}
	}
	db := sqlx.NewDb(tracing.OpenDB(conns, p.opts.TracerProvider), "postgres")
	db.SetMaxOpenConns(p.opts.MaxConnsPerTenant)
	db.SetMaxIdleConns(p.opts.MaxConnsPerTenant)
	db.SetConnMaxIdleTime(p.opts.IdleTimeout)
	db.SetConnMaxLifetime(30 * time.Minute)
	return db, nil
}

// acquire takes a connection slot of budget b, first asking idle pools
// of its server to give theirs back, and waits at most AcquireTimeout.
func (p *Pools) acquire(ctx context.Context, b *serverBudget) error {
	start := time.Now()
	// Take a free slot; with the budget full, close idle connections of
	// the least recently used pools (each returns once its backend is
	// gone) until a slot is ours; only when every connection is in use,
	// wait for one.
	for {
		select {
		case b.slots <- struct{}{}:
			p.opts.Metrics.ConnWait(time.Since(start), true)
			return nil
		default:
		}
		if ctx.Err() != nil || time.Since(start) > p.opts.AcquireTimeout || !p.reclaimIdle(b) {
			break
		}
	}
	timer := time.NewTimer(p.opts.AcquireTimeout - time.Since(start))
	defer timer.Stop()
	retry := time.NewTicker(5 * time.Millisecond)
	defer retry.Stop()
	for {
		select {
		case b.slots <- struct{}{}:
			p.opts.Metrics.ConnWait(time.Since(start), true)
			return nil
		case <-retry.C:
			p.reclaimIdle(b)
		case <-timer.C:
			p.opts.Metrics.ConnWait(time.Since(start), false)
			return fmt.Errorf("%w: no free database connection within %s", ErrUnavailable, p.opts.AcquireTimeout)
		case <-ctx.Done():
			p.opts.Metrics.ConnWait(time.Since(start), false)
			return fmt.Errorf("%w: no free database connection: %v", ErrUnavailable, ctx.Err())
		}
	}
}

// reclaimIdle closes one idle connection of the least recently used pool
// of b's server that has any, so that a busier tenant there can use the
// slot. It returns once
// the connection's server process is gone (see budgetConn.Close), and
// reports whether there was one.
func (p *Pools) reclaimIdle(b *serverBudget) bool {
	p.mu.Lock()
	var victim *sqlx.DB
	idle := 0
	for e := p.lru.Back(); e != nil; e = e.Prev() {
		tp := e.Value.(*tenantPool)
		if tp.budget != b || tp.conns.Load() == 0 {
			continue // most pools, with thousands of tenants: skip without locking them
		}
		if idle = tp.db.Stats().Idle; idle > 0 {
			victim = tp.db
			break
		}
	}
	p.mu.Unlock()
	if victim == nil {
		return false
	}
	// Lowering the idle limit closes the idle connections above it now
	// (a limit of 0 keeps none).
	victim.SetMaxIdleConns(idle - 1)
	victim.SetMaxIdleConns(p.opts.MaxConnsPerTenant) // capped at its open limit
	p.opts.Metrics.ConnReclaimed()
	return true
}

func (p *Pools) release(b *serverBudget) {
	<-b.slots
	p.opts.Metrics.ConnClosed()
}

// budgetDialer makes every PostgreSQL connection of a tenant pool hold one
// slot of its server's budget until its socket closes, and counts the
// pool's connections (tp nil: a connection of no pool, see Dialer).
type budgetDialer struct {
	p      *Pools
	budget *serverBudget
	tp     *tenantPool
}

// Dialer returns a dialer for connections to the tenant's database that
// belong to no pool (a LISTEN connection, the provisioner's): each holds
// one slot of the MAX_DB_CONNECTIONS budget of the tenant's server until
// it closes, like a pool's connection, but is never reclaimed as idle.
// Dialing waits for a slot as pools do, then fails with ErrUnavailable.
// Callers cap how many such connections they keep, so that pools still
// get slots.
func (p *Pools) Dialer(t *Tenant) pq.Dialer {
	return budgetDialer{p: p, budget: p.budget(t.Server)}
}

func (d budgetDialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

func (d budgetDialer) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return d.DialContext(ctx, network, address)
}

func (d budgetDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if err := d.p.acquire(ctx, d.budget); err != nil {
		return nil, err
	}
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, address)
	if err != nil {
		<-d.budget.slots
		return nil, err
	}
	d.p.opts.Metrics.ConnOpened()
	if d.tp == nil {
		return &budgetConn{Conn: c, release: func() { d.p.release(d.budget) }}, nil
	}
	d.tp.conns.Add(1)
	return &budgetConn{Conn: c, release: func() { d.tp.conns.Add(-1); d.p.release(d.budget) }}, nil
}

type budgetConn struct {
	net.Conn
	once    sync.Once
	release func()
	err     error
}

// Close closes the socket and gives the slot back once the server process
// has exited: PostgreSQL leaves the socket open until its backend is gone
// (and out of pg_stat_activity), so reading until EOF after lib/pq's
// Terminate message makes the budget count real backends, not sockets.
func (c *budgetConn) Close() error {
	c.once.Do(func() {
		_ = c.Conn.SetReadDeadline(time.Now().Add(closeWait))
		var buf [64]byte
		for {
			if _, err := c.Conn.Read(buf[:]); err != nil {
				break
			}
		}
		c.err = c.Conn.Close()
		c.release()
	})
	return c.err
}

// closeWait bounds how long Close waits for the server process to exit.
const closeWait = 2 * time.Second
