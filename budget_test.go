package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/tenantql/tenantql/internal/pgtest"
	"github.com/tenantql/tenantql/tenancy"
)

// holdConnections takes one connection of each tenant's pool and keeps it
// in use until the test ends.
func (ta *testApp) holdConnections(t *testing.T, slugs ...string) {
	t.Helper()
	ctx := context.Background()
	for _, s := range slugs {
		tn, err := ta.registry.Get(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		db, err := ta.pools.DB(tn)
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := db.Conn(cctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
}

// tenantBackends counts this app's tenant connections as PostgreSQL sees
// them: backends logged in as a role of the app's prefix.
func (ta *testApp) tenantBackends(t testing.TB) int {
	t.Helper()
	var n int
	if err := ta.control.Get(&n, `SELECT count(*) FROM pg_stat_activity WHERE starts_with(usename, $1)`, ta.prefix); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestConnectionBudgetHoldsUnderLoad(t *testing.T) {
	t.Parallel()
	const budget, perTenant = 5, 2
	// a small budget (and a per-tenant cap within it): the point is more
	// tenants than connections
	ta, counter := newCountedApp(t, map[string]string{
		"MAX_DB_CONNECTIONS": fmt.Sprint(budget), "MAX_DB_CONNECTIONS_PER_TENANT": fmt.Sprint(perTenant),
	})
	slugs := []string{"bud-a", "bud-b", "bud-c", "bud-d", "bud-e", "bud-f", "bud-g", "bud-h"}
	tokens := map[string]string{}
	for _, s := range slugs {
		ta.createTenant(t, s, false)
		tokens[s] = ta.login(t, s)
	}
	statements := func() int {
		n := 0
		for _, s := range slugs {
			n += ta.tenantStatements(t, counter, s)
		}
		return n
	}
	before := statements()

	// Sample PostgreSQL's view and the pools' own counters while 12
	// clients hit 8 tenants at random: more tenants than connections.
	stop := make(chan struct{})
	var peakPG, peakOpen atomic.Int64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if n := int64(ta.tenantBackends(t)); n > peakPG.Load() {
				peakPG.Store(n)
			}
			// the pools' own count every 50 ms: a scrape of /metrics
			// costs far more than a look at pg_stat_activity
			if i%10 != 0 {
				continue
			}
			if n := int64(ta.metric(t, "tenantql_tenant_connections_open")); n > peakOpen.Load() {
				peakOpen.Store(n)
			}
		}
	}()
	var wg sync.WaitGroup
	var failures, refusals atomic.Int64
	var firstFailure atomic.Value
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				s := slugs[rand.IntN(len(slugs))]
				// The users list is read from the tenant's database every
				// time (the viewer alone comes from the user cache). 12
				// clients on 5 connections queue for them; one that waited
				// longer than the pools allow (a loaded machine) is
				// refused with SERVICE_UNAVAILABLE, which a client retries:
				// every request must get its data in the end.
				var r gqlResponse
				for try := 0; try < 5; try++ {
					if r = ta.do(t, s+".example.test", tokens[s], budgetLoadQuery, nil); r.Code() != "SERVICE_UNAVAILABLE" {
						break
					}
					refusals.Add(1)
				}
				if r.Status != 200 || len(r.Errors) > 0 || field(r.Data, "viewer", "email") != "owner@"+s+".test" ||
					field(r.Data, "users", "totalCount") != 1.0 {
					failures.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("HTTP %d %s", r.Status, r.Raw))
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-sampled
	if n := failures.Load(); n > 0 {
		t.Errorf("%d of 300 requests failed; first: %v", n, firstFailure.Load())
	}
	if n := refusals.Load(); n > 0 {
		t.Logf("%d answers were SERVICE_UNAVAILABLE, retried", n)
	}
	if peakPG.Load() > budget || peakOpen.Load() > budget {
		t.Fatalf("peak tenant connections: %d in pg_stat_activity, %d in the pools; budget %d", peakPG.Load(), peakOpen.Load(), budget)
	}
	if peakPG.Load() == 0 {
		t.Fatal("sampler never saw a tenant connection")
	}
	// every request ran its statement on a tenant database: the load went
	// through the budget, not around it
	ran := statements() - before
	if ran < 300 {
		t.Fatalf("300 requests ran %d statements on the tenant databases: some never reached PostgreSQL", ran)
	}
	t.Logf("peak tenant backends %d, pool connections %d (budget %d); %d statements on the tenant databases", peakPG.Load(), peakOpen.Load(), budget, ran)
}

// budgetLoadQuery is answered from the tenant's database on every request.
const budgetLoadQuery = `{ viewer { email } users(first: 1) { totalCount } }`

func TestConnectionWaitIsBoundedAndRetryable(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, map[string]string{"MAX_DB_CONNECTIONS": "2", "MAX_DB_CONNECTIONS_PER_TENANT": "2"})
	for _, s := range []string{"hog-one", "hog-two", "late"} {
		ta.createTenant(t, s, false)
	}
	tok := ta.login(t, "late")
	ctx := context.Background()
	// two other tenants hold every connection of the budget, in use
	ta.holdConnections(t, "hog-one", "hog-two")
	start := time.Now()
	r := ta.do(t, "late.example.test", tok, `{ viewer { email } }`, nil)
	took := time.Since(start)
	if r.Code() != "SERVICE_UNAVAILABLE" {
		t.Fatalf("with the budget in use: HTTP %d %s, want SERVICE_UNAVAILABLE", r.Status, r.Raw)
	}
	if took > 10*time.Second {
		t.Fatalf("the refusal took %s", took)
	}
	// directly: the error is ErrUnavailable, within the wait
	late, _ := ta.registry.Get(ctx, "late")
	ldb, err := ta.pools.DB(late)
	if err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := ldb.PingContext(waitCtx); !errors.Is(err, tenancy.ErrUnavailable) {
		t.Fatalf("ping with the budget in use: %v, want ErrUnavailable", err)
	}
	if waitCtx.Err() != nil {
		t.Fatal("the wait was not bounded by the pool")
	}
}

func TestBusyTenantDoesNotStarveOthers(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, map[string]string{"MAX_DB_CONNECTIONS": "4", "MAX_DB_CONNECTIONS_PER_TENANT": "2"})
	ta.createTenant(t, "busy", false)
	ta.createTenant(t, "calm", false)
	tok := ta.login(t, "calm")
	ctx := context.Background()
	busy, _ := ta.registry.Get(ctx, "busy")
	db, err := ta.pools.DB(busy)
	if err != nil {
		t.Fatal(err)
	}
	// 10 queries of busy that wait for a lock the test holds: the 2 that
	// get busy's connections hang on it until the test lets go, the rest
	// queue in busy's pool behind them
	_, super := ta.superuserDB(t, "busy")
	lock, err := super.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(ctx, `SELECT pg_advisory_lock(7)`); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = db.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7)`)
		}()
	}
	waiting := func() int {
		var n int
		const q = `SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock' AND query LIKE '%pg_advisory_xact_lock%'`
		if err := ta.super.Get(&n, q, busy.DBName); err != nil {
			t.Fatal(err)
		}
		return n
	}
	deadline := time.Now().Add(30 * time.Second)
	for n := waiting(); n < 2; n = waiting() {
		if time.Now().After(deadline) {
			t.Fatalf("%d of busy's queries wait on the lock after 30s, want 2", n)
		}
		sleepBriefly()
	}
	if open := db.Stats().OpenConnections; open > 2 {
		t.Errorf("busy holds %d connections, per-tenant cap 2", open)
	}
	// calm is answered from its own database while busy's connections are
	// all taken and its queue is full: busy's queries cannot end before
	// the lock is released, so a calm request stuck behind them would
	// time out
	r := ta.do(t, "calm.example.test", tok, budgetLoadQuery, nil)
	if r.Status != 200 || len(r.Errors) > 0 || field(r.Data, "users", "totalCount") != 1.0 {
		t.Errorf("calm with busy's connections all waiting: HTTP %d %s", r.Status, r.Raw)
	}
	if n := waiting(); n != 2 {
		t.Errorf("%d of busy's queries wait on the lock after calm's request, want 2 (its cap)", n)
	}
	if _, err := lock.ExecContext(ctx, `SELECT pg_advisory_unlock(7)`); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

// With room in the budget for one connection per tenant and no more, a
// tenant with two requests at once waits for its own connection rather
// than closing another tenant's idle one, even a tenant quiet for longer
// than the fair-share window: that tenant would only dial again.
func TestBurstDoesNotCloseOtherTenantsIdleConnections(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, map[string]string{"MAX_DB_CONNECTIONS": "3", "MAX_DB_CONNECTIONS_PER_TENANT": "2"})
	ctx := context.Background()
	dbs := map[string]*sqlx.DB{}
	tenants := map[string]*tenancy.Tenant{}
	slugs := []string{"keep-a", "keep-b", "keep-c"}
	for _, s := range slugs {
		ta.createTenant(t, s, false) // (provisioning uses budget slots too)
	}
	for _, s := range slugs {
		tn, err := ta.registry.Get(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		tenants[s] = tn
		if dbs[s], err = ta.pools.DB(tn); err != nil {
			t.Fatal(err)
		}
		if err := dbs[s].PingContext(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// keep-b and keep-c quiet for longer than the fair-share window: the
	// time passing is the condition under test, not a stand-in for a signal
	time.Sleep(tenancy.FairShareWindow + time.Second)
	// a request takes its tenant's pool (and share) first
	if _, err := ta.pools.DB(tenants["keep-a"]); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := dbs["keep-a"].ExecContext(ctx, `SELECT pg_sleep(0.3)`); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for _, s := range []string{"keep-b", "keep-c"} {
		if open := dbs[s].Stats().OpenConnections; open != 1 {
			t.Errorf("%s has %d connections after keep-a's burst, want its idle one kept", s, open)
		}
	}
	if open := dbs["keep-a"].Stats().OpenConnections; open != 1 {
		t.Errorf("keep-a opened %d connections, its share is 1", open)
	}
}

// TestHotPathSendsNothingToControlDatabase closes the control database to
// connections and ends the app's sessions on it, so that any query there
// fails; tenant requests and unknown hosts must be answered all the same.
func TestHotPathSendsNothingToControlDatabase(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	ta.createTenant(t, "quiet", false)
	tok := ta.login(t, "quiet")
	mustOK(t, ta.do(t, "quiet.example.test", tok, `{ viewer { email } }`, nil)) // the pool is open
	ctx := context.Background()
	var controlDB string
	if err := ta.control.Get(&controlDB, `SELECT current_database()`); err != nil {
		t.Fatal(err)
	}
	admin, err := sqlx.Open("postgres", pgtest.AdminURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ident := pq.QuoteIdentifier(controlDB)
	if _, err := admin.ExecContext(ctx, `ALTER DATABASE `+ident+` WITH ALLOW_CONNECTIONS false`); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if _, err := admin.ExecContext(ctx, `ALTER DATABASE `+ident+` WITH ALLOW_CONNECTIONS true`); err != nil {
			t.Error(err)
		}
	}()
	if _, err := admin.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, controlDB); err != nil {
		t.Fatal(err)
	}
	if err := ta.control.PingContext(ctx); err == nil {
		t.Fatal("the control database still answers")
	}
	for i := range 100 {
		r := ta.do(t, "quiet.example.test", tok, `{ viewer { email } }`, nil)
		if r.Status != 200 || len(r.Errors) > 0 || field(r.Data, "viewer", "email") != "owner@quiet.test" {
			t.Fatalf("request %d with the control database closed: HTTP %d %s", i, r.Status, r.Raw)
		}
		if r := ta.do(t, fmt.Sprintf("nowhere%d.example.test", i), "", `{ __typename }`, nil); r.Status != 404 || r.Code() != "TENANT_NOT_FOUND" {
			t.Fatalf("unknown host with the control database closed: HTTP %d %s", r.Status, r.Raw)
		}
	}
}

func TestSuspendAndDeleteCloseThePoolAtOnce(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	ta.createTenant(t, "brief", false)
	tok := ta.login(t, "brief")
	mustOK(t, ta.do(t, "brief.example.test", tok, `{ viewer { email } }`, nil))
	if n := ta.tenantBackends(t); n == 0 {
		t.Fatal("no tenant connection after a request")
	}
	mustOK(t, ta.admin(t, `mutation { suspendTenant(slug: "brief") { status } }`, nil))
	// The change closes the pool in whichever goroutine applies it first
	// (the mutation's refresh or the NOTIFY watcher): within moments,
	// with no idle timeout to wait for.
	ta.waitPoolsClosed(t, "suspend")
	mustOK(t, ta.admin(t, `mutation { resumeTenant(slug: "brief") { status } }`, nil))
	mustOK(t, ta.do(t, "brief.example.test", tok, `{ viewer { email } }`, nil))
	mustOK(t, ta.admin(t, `mutation { deleteTenant(slug: "brief") { tenant { status } } }`, nil))
	ta.waitPoolsClosed(t, "delete")
}

// waitPoolsClosed waits up to a second for no tenant pool, slot or backend.
func (ta *testApp) waitPoolsClosed(t *testing.T, after string) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		pools, conns := ta.metric(t, "tenantql_tenant_pools_open"), ta.metric(t, "tenantql_tenant_connections_open")
		n := ta.tenantBackends(t)
		if pools == 0 && conns == 0 && n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a second after %s: %v pools, %v connections, %d tenant backends", after, pools, conns, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
