// Package usage counts each tenant's requests for the platform API's
// Tenant.usage: every process counts in memory, per tenant and minute, and
// adds its counts to the control database every few seconds, so the
// figures of all replicas add up; reading sums the last hour and day.
// Facts of a tenant database (its size, its users) are sampled when read,
// at most once a minute, never per request.
package usage

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/tenantql/tenantql/apierr"
	"github.com/tenantql/tenantql/pgerr"
	"github.com/tenantql/tenantql/tenancy"
)

// bucketBounds are the upper bounds, in milliseconds, of the latency
// histogram kept per tenant and minute; a last bucket holds the rest. They
// are fixed so that histograms of every replica add up.
var bucketBounds = [...]float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000}

const buckets = len(bucketBounds) + 1

// Defaults of Options fields left zero.
const (
	DefaultFlushEvery = 5 * time.Second
	DefaultSampleTTL  = time.Minute
	// keep is how long per-minute rows are kept: the day read, and a margin.
	keep = 48 * time.Hour
)

// Options configure a Recorder.
type Options struct {
	// FlushEvery is how often counts are added to the control database.
	// Defaults to DefaultFlushEvery.
	FlushEvery time.Duration
	// SampleTTL is how old a database sample may be before a read takes a
	// new one. Defaults to DefaultSampleTTL.
	SampleTTL time.Duration
	// Users counts a tenant's users (on its own database); required for Of.
	Users func(ctx context.Context, t *tenancy.Tenant) (int, error)
	Log   *slog.Logger
}

// Recorder counts requests per tenant and minute until they are flushed.
type Recorder struct {
	control *sqlx.DB
	o       Options

	mu      sync.Mutex
	pending map[key]*counts
}

type key struct {
	tenant uuid.UUID
	minute time.Time
}

type counts struct {
	requests, errors int
	latency          [buckets]int
	last             time.Time
}

// New returns a Recorder writing to the control database.
func New(control *sqlx.DB, o Options) *Recorder {
	if o.FlushEvery <= 0 {
		o.FlushEvery = DefaultFlushEvery
	}
	if o.SampleTTL <= 0 {
		o.SampleTTL = DefaultSampleTTL
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Recorder{control: control, o: o, pending: map[key]*counts{}}
}

// Record counts one request of a tenant that ended at, took d and failed
// or not.
func (r *Recorder) Record(tenant uuid.UUID, at time.Time, d time.Duration, failed bool) {
	k := key{tenant: tenant, minute: at.UTC().Truncate(time.Minute)}
	ms := float64(d) / float64(time.Millisecond)
	b := len(bucketBounds)
	for i, bound := range bucketBounds {
		if ms <= bound {
			b = i
			break
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.pending[k]
	if c == nil {
		c = &counts{}
		r.pending[k] = c
	}
	c.requests++
	if failed {
		c.errors++
	}
	c.latency[b]++
	if at.After(c.last) {
		c.last = at
	}
}

type markKey struct{}

// mark says whether the request's answer carried an error. Root fields
// resolve concurrently, so several may mark one request at once.
type mark struct{ failed atomic.Bool }

// MarkError records that the answer of ctx's request carries an error (a
// GraphQL error in a 200 answer); the error presenter calls it. It is safe
// for concurrent use.
func MarkError(ctx context.Context) {
	if m, ok := ctx.Value(markKey{}).(*mark); ok {
		m.failed.Store(true)
	}
}

// Middleware counts every request to a tenant host that next serves (it
// must run inside the tenancy router): its latency, and whether it failed
// (HTTP 4xx/5xx, or a GraphQL error marked by MarkError). Websocket
// upgrades are not requests of that kind and are not counted.
func (r *Recorder) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		t, ok := tenancy.FromContext(req.Context())
		if !ok || t.Tenant == nil || req.Header.Get("Upgrade") != "" {
			next.ServeHTTP(w, req)
			return
		}
		start := time.Now()
		m := &mark{}
		sw := &apierr.StatusRecorder{ResponseWriter: w}
		next.ServeHTTP(sw, req.WithContext(context.WithValue(req.Context(), markKey{}, m)))
		end := time.Now()
		r.Record(t.Tenant.ID, end, end.Sub(start), m.failed.Load() || sw.Status() >= 400)
	})
}

// Run flushes every FlushEvery until ctx ends, then once more, and drops
// rows older than two days once an hour.
func (r *Recorder) Run(ctx context.Context) {
	tick := time.NewTicker(r.o.FlushEvery)
	defer tick.Stop()
	pruned := time.Time{}
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			if err := r.Flush(final); err != nil {
				r.o.Log.Warn("usage: final flush", "err", err)
			}
			cancel()
			return
		case <-tick.C:
		}
		if err := r.Flush(ctx); err != nil && ctx.Err() == nil {
			r.o.Log.Warn("usage: flush", "err", err)
		}
		if time.Since(pruned) > time.Hour {
			const q = `DELETE FROM tenant_usage WHERE minute < now() - $1 * interval '1 second'`
			if _, err := r.control.ExecContext(ctx, q, keep.Seconds()); err != nil && ctx.Err() == nil {
				r.o.Log.Warn("usage: prune", "err", err)
			} else {
				pruned = time.Now()
			}
		}
	}
}

// Flush adds the counts gathered since the last flush to the control
// database. Counts it could not write are kept for the next flush; those of
// tenants deleted meanwhile are dropped.
func (r *Recorder) Flush(ctx context.Context) error {
	r.mu.Lock()
	batch := r.pending
	r.pending = map[key]*counts{}
	r.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	const q = `INSERT INTO tenant_usage AS u (tenant_id, minute, requests, errors, latency_buckets, last_request_at)
		SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM tenants WHERE id = $1)
		ON CONFLICT (tenant_id, minute) DO UPDATE SET
			requests = u.requests + excluded.requests,
			errors = u.errors + excluded.errors,
			latency_buckets = ARRAY(SELECT a + b FROM unnest(u.latency_buckets, excluded.latency_buckets) AS x(a, b)),
			last_request_at = greatest(u.last_request_at, excluded.last_request_at)`
	var failed error
	for k, c := range batch {
		lat := make(pq.Int64Array, buckets)
		for i, n := range c.latency {
			lat[i] = int64(n)
		}
		if _, err := r.control.ExecContext(ctx, q, k.tenant, k.minute, c.requests, c.errors, lat, c.last); err != nil {
			failed = err
			r.putBack(k, c)
		}
	}
	return failed
}

// putBack returns unwritten counts to pending, merged with newer ones.
func (r *Recorder) putBack(k key, c *counts) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.pending[k]
	if cur == nil {
		r.pending[k] = c
		return
	}
	cur.requests += c.requests
	cur.errors += c.errors
	for i := range cur.latency {
		cur.latency[i] += c.latency[i]
	}
	if c.last.After(cur.last) {
		cur.last = c.last
	}
}

// Usage is a tenant's activity and size, as the platform API shows it.
type Usage struct {
	RequestsLastHour int
	RequestsLastDay  int
	ErrorsLastDay    int
	P95LatencyMs     *float64 // over the last hour; nil when there was no request
	DatabaseBytes    int64
	Users            int
	LastRequestAt    *time.Time
	// RequestsByHour counts the requests of the last day hour by hour,
	// oldest first: 24 counts, the last one the hour up to now. They add
	// up to RequestsLastDay.
	RequestsByHour []int
}

// Of returns the tenant's usage, as flushed by every replica (counts not
// yet flushed are not in it). Its database size and users are sampled: a
// sample older than SampleTTL is taken again; when that fails (the
// database is unreachable, or the tenant suspended), the last one stands.
func (r *Recorder) Of(ctx context.Context, t *tenancy.Tenant) (Usage, error) {
	var row struct {
		Hour, Day, Errors int
		Last              *time.Time `db:"last"`
		Buckets           pq.Int64Array
		ByHour            pq.Int64Array
	}
	const q = `SELECT
			COALESCE(sum(requests) FILTER (WHERE minute >= now() - interval '1 hour'), 0) AS hour,
			COALESCE(sum(requests), 0) AS day,
			COALESCE(sum(errors), 0) AS errors,
			max(last_request_at) AS last,
			COALESCE((SELECT array_agg(s ORDER BY i) FROM (
				SELECT i, sum(b) AS s FROM tenant_usage, unnest(latency_buckets) WITH ORDINALITY AS x(b, i)
				WHERE tenant_id = $1 AND minute >= now() - interval '1 hour' GROUP BY i) h), '{}') AS buckets,
			(SELECT array_agg(COALESCE(h.n, 0) ORDER BY g.age DESC) FROM generate_series(0, 23) AS g(age)
				LEFT JOIN (SELECT least(23, greatest(0, floor(extract(epoch FROM now() - minute) / 3600)))::int AS age,
						sum(requests) AS n
					FROM tenant_usage WHERE tenant_id = $1 AND minute >= now() - interval '1 day' GROUP BY 1) h
				ON h.age = g.age) AS by_hour
		FROM tenant_usage WHERE tenant_id = $1 AND minute >= now() - interval '1 day'`
	if err := r.control.QueryRowxContext(ctx, q, t.ID).Scan(&row.Hour, &row.Day, &row.Errors, &row.Last, &row.Buckets, &row.ByHour); err != nil {
		return Usage{}, pgerr.Wrap("usage: read counts", err)
	}
	u := Usage{RequestsLastHour: row.Hour, RequestsLastDay: row.Day, ErrorsLastDay: row.Errors, LastRequestAt: row.Last}
	u.RequestsByHour = make([]int, len(row.ByHour))
	for i, n := range row.ByHour {
		u.RequestsByHour[i] = int(n)
	}
	u.P95LatencyMs = p95(row.Buckets)
	var err error
	u.DatabaseBytes, u.Users, err = r.sample(ctx, t)
	return u, err
}

// p95 returns the upper bound of the histogram bucket holding the 95th
// percentile (the largest bound for the last, open bucket), or nil for
// an empty histogram.
func p95(hist []int64) *float64 {
	var total int64
	for _, n := range hist {
		total += n
	}
	if total == 0 {
		return nil
	}
	rank := int64(math.Ceil(0.95 * float64(total)))
	var seen int64
	for i, n := range hist {
		seen += n
		if seen >= rank {
			v := bucketBounds[min(i, len(bucketBounds)-1)]
			return &v
		}
	}
	v := bucketBounds[len(bucketBounds)-1]
	return &v
}

// sample returns the tenant database's size and users, sampled at most
// once per SampleTTL across replicas.
func (r *Recorder) sample(ctx context.Context, t *tenancy.Tenant) (bytes int64, users int, err error) {
	var s struct {
		Bytes int64     `db:"database_bytes"`
		Users int       `db:"users"`
		At    time.Time `db:"sampled_at"`
	}
	const get = `SELECT database_bytes, users, sampled_at FROM tenant_samples WHERE tenant_id = $1`
	err = r.control.GetContext(ctx, &s, get, t.ID)
	have := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, 0, pgerr.Wrap("usage: read sample", err)
	}
	if have && time.Since(s.At) < r.o.SampleTTL {
		return s.Bytes, s.Users, nil
	}
	var size int64
	if err := r.control.GetContext(ctx, &size, `SELECT pg_database_size($1)`, t.DBName); err != nil {
		r.o.Log.Warn("usage: database size", "tenant", t.Slug, "err", err)
		return s.Bytes, s.Users, nil
	}
	n, err := r.o.Users(ctx, t)
	if err != nil {
		r.o.Log.Warn("usage: count users", "tenant", t.Slug, "err", err)
		return size, s.Users, nil
	}
	const put = `INSERT INTO tenant_samples (tenant_id, database_bytes, users, sampled_at)
		SELECT $1, $2, $3, now() WHERE EXISTS (SELECT 1 FROM tenants WHERE id = $1)
		ON CONFLICT (tenant_id) DO UPDATE SET database_bytes = excluded.database_bytes,
			users = excluded.users, sampled_at = excluded.sampled_at`
	if _, err := r.control.ExecContext(ctx, put, t.ID, size, n); err != nil {
		return 0, 0, pgerr.Wrap("usage: write sample", err)
	}
	return size, n, nil
}
