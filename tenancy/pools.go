package tenancy

import (
	"container/list"
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// PoolOptions configure the tenant connection pools.
type PoolOptions struct {
	// ServerURL is the PostgreSQL server holding the tenant databases (the
	// control database URL will do); its user, password and database are
	// replaced by each tenant's own.
	ServerURL string
	// MaxConns bounds the connections of all tenant pools together. Defaults to 64.
	MaxConns int
	// MaxConnsPerTenant bounds one tenant's pool. Defaults to min(8, MaxConns).
	MaxConnsPerTenant int
	// AcquireTimeout bounds the wait for a free connection slot. Defaults to 3s.
	AcquireTimeout time.Duration
	// IdleTimeout closes a tenant's idle connections after this long. Defaults to 30s.
	IdleTimeout time.Duration
	// MaxPools bounds how many tenant pools stay open (least recently used
	// closed first when idle). Defaults to 1000.
	MaxPools int
	// Metrics receives pool events; nil records nothing.
	Metrics PoolMetrics
}

// PoolMetrics is told about the connection budget.
type PoolMetrics interface {
	PoolOpened()
	PoolClosed(evicted bool)
	ConnOpened()
	ConnClosed()
	ConnWait(d time.Duration, ok bool)
}

type noMetrics struct{}

func (noMetrics) PoolOpened()                  {}
func (noMetrics) PoolClosed(bool)              {}
func (noMetrics) ConnOpened()                  {}
func (noMetrics) ConnClosed()                  {}
func (noMetrics) ConnWait(time.Duration, bool) {}

// Pools holds one lazily opened *sqlx.DB per tenant, each logging in as the
// tenant's own role, under one global connection budget.
type Pools struct {
	opts   PoolOptions
	server *url.URL
	sealer *Sealer
	slots  chan struct{} // one token per open PostgreSQL connection

	mu    sync.Mutex
	pools map[uuid.UUID]*list.Element // of *tenantPool, most recently used at the front
	lru   *list.List
}

type tenantPool struct {
	id uuid.UUID
	db *sqlx.DB
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
	return &Pools{
		opts: o, server: u, sealer: sealer,
		slots: make(chan struct{}, o.MaxConns),
		pools: map[uuid.UUID]*list.Element{}, lru: list.New(),
	}, nil
}

// DB returns the tenant's pool, opening it on first use.
func (p *Pools) DB(t *Tenant) (*sqlx.DB, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.pools[t.ID]; ok {
		p.lru.MoveToFront(e)
		return e.Value.(*tenantPool).db, nil
	}
	db, err := p.open(t)
	if err != nil {
		return nil, err
	}
	p.pools[t.ID] = p.lru.PushFront(&tenantPool{id: t.ID, db: db})
	p.opts.Metrics.PoolOpened()
	p.evictLocked()
	return db, nil
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

// Stats reports the open pools and the connections they hold.
type Stats struct {
	Pools, Open, InUse, Idle int
}

// Stats sums the pools' statistics.
func (p *Pools) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Stats{Pools: p.lru.Len()}
	for e := p.lru.Front(); e != nil; e = e.Next() {
		st := e.Value.(*tenantPool).db.Stats()
		s.Open += st.OpenConnections
		s.InUse += st.InUse
		s.Idle += st.Idle
	}
	return s
}

// TenantURL returns the connection URL of the tenant's own role and
// database. It carries the tenant's password: never log it.
func (p *Pools) TenantURL(t *Tenant) (string, error) {
	pw, err := p.sealer.Open(t.sealedPassword, t.ID[:])
	if err != nil {
		return "", err
	}
	u := *p.server
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

func (p *Pools) open(t *Tenant) (*sqlx.DB, error) {
	dsn, err := p.TenantURL(t)
	if err != nil {
		return nil, err
	}
	c, err := pq.NewConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("tenancy: connector for tenant %s: %w", t.ID, err)
	}
	c.Dialer(budgetDialer{p: p})
	db := sqlx.NewDb(sql.OpenDB(c), "postgres")
	db.SetMaxOpenConns(p.opts.MaxConnsPerTenant)
	db.SetMaxIdleConns(p.opts.MaxConnsPerTenant)
	db.SetConnMaxIdleTime(p.opts.IdleTimeout)
	db.SetConnMaxLifetime(30 * time.Minute)
	return db, nil
}

// acquire takes a connection slot, first asking idle pools to give theirs
// back, and waits at most AcquireTimeout.
func (p *Pools) acquire(ctx context.Context) error {
	start := time.Now()
	select {
	case p.slots <- struct{}{}:
		p.opts.Metrics.ConnWait(0, true)
		return nil
	default:
	}
	p.reclaimIdle()
	timer := time.NewTimer(p.opts.AcquireTimeout)
	defer timer.Stop()
	retry := time.NewTicker(20 * time.Millisecond)
	defer retry.Stop()
	for {
		select {
		case p.slots <- struct{}{}:
			p.opts.Metrics.ConnWait(time.Since(start), true)
			return nil
		case <-retry.C:
			p.reclaimIdle()
		case <-timer.C:
			p.opts.Metrics.ConnWait(time.Since(start), false)
			return fmt.Errorf("%w: no free database connection within %s", ErrUnavailable, p.opts.AcquireTimeout)
		case <-ctx.Done():
			p.opts.Metrics.ConnWait(time.Since(start), false)
			return fmt.Errorf("%w: no free database connection: %v", ErrUnavailable, ctx.Err())
		}
	}
}

// reclaimIdle closes the idle connections of the least recently used pool
// that has any, so that a busier tenant can use the slot.
func (p *Pools) reclaimIdle() {
	p.mu.Lock()
	var victim *sqlx.DB
	for e := p.lru.Back(); e != nil; e = e.Prev() {
		db := e.Value.(*tenantPool).db
		if db.Stats().Idle > 0 {
			victim = db
			break
		}
	}
	p.mu.Unlock()
	if victim != nil {
		victim.SetMaxIdleConns(0) // closes its idle connections now
		victim.SetMaxIdleConns(p.opts.MaxConnsPerTenant)
	}
}

func (p *Pools) release() {
	<-p.slots
	p.opts.Metrics.ConnClosed()
}

// budgetDialer makes every PostgreSQL connection of a tenant pool hold one
// slot of the global budget until its socket closes.
type budgetDialer struct{ p *Pools }

func (d budgetDialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

func (d budgetDialer) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return d.DialContext(ctx, network, address)
}

func (d budgetDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if err := d.p.acquire(ctx); err != nil {
		return nil, err
	}
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, address)
	if err != nil {
		<-d.p.slots
		return nil, err
	}
	d.p.opts.Metrics.ConnOpened()
	return &budgetConn{Conn: c, release: d.p.release}, nil
}

type budgetConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *budgetConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
