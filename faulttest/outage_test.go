package faulttest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/tenantql/tenantql/internal/pgtest"
)

// requestBound is the longest any request may take while PostgreSQL is
// restarting: connect_timeout (5s) bounds a connection attempt, the pool
// waits are shorter.
const requestBound = 10 * time.Second

// classify sorts an answer of a tenant host for load tests: "ok",
// "SERVICE_UNAVAILABLE" (200 with the code, or 503 with Retry-After) or
// a description of anything else (a failure).
func classify(slug string, r response, err error) string {
	switch {
	case err != nil:
		return "transport: " + err.Error()
	case r.OK():
		if merr := checkMarker(slug, r); merr != nil {
			return "WRONG TENANT: " + merr.Error()
		}
		return "ok"
	case r.Status == 200 && allCodes(r, "SERVICE_UNAVAILABLE"):
		if merr := checkMarker(slug, r); merr != nil {
			return "WRONG TENANT: " + merr.Error()
		}
		return "SERVICE_UNAVAILABLE"
	case r.Status == 503 && r.Code() == "SERVICE_UNAVAILABLE" && r.Header.Get("Retry-After") != "":
		return "SERVICE_UNAVAILABLE"
	}
	return fmt.Sprintf("HTTP %d %v", r.Status, r.Codes())
}

// TestPostgresRestartUnderLoad restarts PostgreSQL (pg_ctl restart -m
// fast) under load: requests fail fast with SERVICE_UNAVAILABLE while it
// is down, none hangs, none gets another tenant's data, and the server
// recovers within 10s of PostgreSQL coming back, without a restart. The
// load and the recovery probe read the tenants' databases (markerQuery's
// users), and PostgreSQL's own counts after the restart confirm it.
// Not parallel: it restarts the package's cluster.
func TestPostgresRestartUnderLoad(t *testing.T) {
	cluster := pgtest.Cluster()
	d := newDeployment(t, nil)
	s := d.start(t, nil)
	slugs := []string{"rs-alpha", "rs-beta", "rs-gamma"}
	tokens := map[string]string{}
	var dbs []string
	for _, slug := range slugs {
		s.createReady(t, slug)
		tokens[slug] = s.login(t, slug)
		db, _ := d.tenantNames(t, slug)
		dbs = append(dbs, db)
	}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	out := newOutcome()
	var backAt atomic.Int64  // when PostgreSQL was back (UnixNano), once it is
	var okAfter atomic.Int64 // answers with data to requests sent after that
	var slowest time.Duration
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				slug := slugs[rand.IntN(len(slugs))]
				began := time.Now()
				r, err := s.gql(ctx, tenantHost(slug), tokens[slug], markerQuery, nil)
				took := time.Since(began)
				if ctx.Err() != nil {
					return
				}
				kind := classify(slug, r, err)
				if b := backAt.Load(); kind == "ok" && b != 0 && began.UnixNano() > b {
					okAfter.Add(1)
				}
				bad := ""
				if kind != "ok" && kind != "SERVICE_UNAVAILABLE" {
					bad = kind + " " + r.Raw
				}
				out.add(kind, took, bad)
				mu.Lock()
				slowest = max(slowest, took)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(time.Second)

	began := time.Now()
	rctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	if err := cluster.Restart(rctx); err != nil {
		cancel()
		t.Fatalf("restart PostgreSQL: %v", err)
	}
	cancel()
	back := time.Now()
	commitsBack := d.commitsOf(t, dbs)
	backAt.Store(time.Now().UnixNano()) // (after the count: no answer counted here is missing there)

	// Recovered: every tenant answers with data, the platform API and
	// /readyz work, all at once.
	recovered := time.Duration(-1)
	for time.Since(back) < 15*time.Second {
		if s.probe(slugs, tokens) == nil {
			recovered = time.Since(back)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // load on the recovered server
	stop()
	wg.Wait()

	t.Logf("restart took %s; recovered %s after PostgreSQL was back; %d requests %v; slowest %s",
		back.Sub(began).Round(time.Millisecond), recovered.Round(time.Millisecond), out.total(), out.byCode, slowest.Round(time.Millisecond))
	if recovered < 0 || recovered > 10*time.Second {
		t.Errorf("not recovered within 10s of PostgreSQL coming back: %v", s.probe(slugs, tokens))
	}
	if len(out.bad) > 0 {
		t.Errorf("answers other than data or SERVICE_UNAVAILABLE: %v\n%s", out.byCode, strings.Join(out.bad, "\n"))
	}
	if slowest > requestBound {
		t.Errorf("a request took %s (bound %s)", slowest, requestBound)
	}
	if out.byCode["ok"] == 0 {
		t.Errorf("no request succeeded: %v", out.byCode)
	}
	// the answers since PostgreSQL came back, the probe's included, were
	// read from the tenants' databases
	probed := int64(0)
	if recovered >= 0 {
		probed = int64(len(slugs))
	}
	d.waitCommits(t, "after the restart", dbs, commitsBack, okAfter.Load()+probed)
	// the provisioner works again too
	s.createReady(t, "rs-after")
	d.mustDoctorClean(t)
}

// probe returns nil when every tenant, the platform API and /readyz answer.
func (s *server) probe(slugs []string, tokens map[string]string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, slug := range slugs {
		r, err := s.gql(ctx, tenantHost(slug), tokens[slug], markerQuery, nil)
		if err != nil || !r.OK() {
			return fmt.Errorf("%s: %v %s", slug, err, r.Raw)
		}
	}
	r, err := s.admin(ctx, `{ tenants(first: 1) { totalCount } }`, nil)
	if err != nil || !r.OK() {
		return fmt.Errorf("platform: %v %s", err, r.Raw)
	}
	if code := s.readyz(ctx); code != 200 {
		return fmt.Errorf("/readyz: %d", code)
	}
	return nil
}

// readyz returns the status of GET /readyz (0 on a transport error).
func (s *server) readyz(ctx context.Context) int {
	req, _ := http.NewRequestWithContext(ctx, "GET", s.base+"/readyz", nil)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestControlDatabaseDown makes only the control database unreachable
// (connections refused, sessions terminated): tenant traffic keeps
// working from the in-memory routing table, /readyz says 503, platform
// operations answer SERVICE_UNAVAILABLE quickly, and everything is back
// once the control database is.
func TestControlDatabaseDown(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, nil)
	s := d.start(t, nil)
	s.createReady(t, "ctl-alpha")
	token := s.login(t, "ctl-alpha")
	u, err := url.Parse(d.url)
	if err != nil {
		t.Fatal(err)
	}
	control := pq.QuoteIdentifier(strings.TrimPrefix(u.Path, "/"))
	cut := func(allow bool) {
		t.Helper()
		if _, err := d.admin.Exec(fmt.Sprintf(`ALTER DATABASE %s ALLOW_CONNECTIONS %v`, control, allow)); err != nil {
			t.Fatal(err)
		}
		if !allow {
			const q = `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1`
			if _, err := d.admin.Exec(q, strings.TrimPrefix(u.Path, "/")); err != nil {
				t.Fatal(err)
			}
		}
	}
	cut(false)
	t.Cleanup(func() { _, _ = d.admin.Exec(`ALTER DATABASE ` + control + ` ALLOW_CONNECTIONS true`) })
	ctx := context.Background()

	deadline := time.Now().Add(10 * time.Second)
	for s.readyz(ctx) != 503 {
		if time.Now().After(deadline) {
			t.Fatal("/readyz still not 503 with the control database down")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// tenant traffic: unaffected
	for i := range 20 {
		s.viewerOK(t, "ctl-alpha", token)
		if i%5 == 0 {
			s.viewerOK(t, "ctl-alpha", s.login(t, "ctl-alpha"))
		}
	}
	// platform operations: SERVICE_UNAVAILABLE, fast
	for _, op := range []struct {
		name string
		call func() (response, error)
	}{
		{"createTenant", func() (response, error) { return s.createTenant(ctx, "ctl-beta") }},
		{"suspendTenant", func() (response, error) { return s.platform(ctx, "suspendTenant", "ctl-alpha") }},
		{"tenant", func() (response, error) { _, _, err := s.status(ctx, "ctl-alpha"); return response{}, err }},
		{"tenants", func() (response, error) { return s.admin(ctx, `{ tenants { totalCount } }`, nil) }},
	} {
		began := time.Now()
		r, err := op.call()
		took := time.Since(began)
		if op.name == "tenant" {
			if err == nil || !strings.Contains(err.Error(), "SERVICE_UNAVAILABLE") {
				t.Errorf("%s with the control database down: %v", op.name, err)
			}
		} else if err != nil || r.Status != 200 || r.Code() != "SERVICE_UNAVAILABLE" {
			t.Errorf("%s with the control database down: HTTP %d %s %v", op.name, r.Status, r.Raw, err)
		}
		if took > 6*time.Second {
			t.Errorf("%s took %s", op.name, took)
		}
	}
	s.viewerOK(t, "ctl-alpha", token)

	cut(true)
	deadline = time.Now().Add(10 * time.Second)
	for s.readyz(ctx) != 200 {
		if time.Now().After(deadline) {
			t.Fatal("/readyz not back to 200 within 10s of the control database")
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.createReady(t, "ctl-beta")
	s.viewerOK(t, "ctl-alpha", token)
	d.mustDoctorClean(t)
}
