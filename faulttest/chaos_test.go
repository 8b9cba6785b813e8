package faulttest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tenantql/tenantql/internal/pgtest"
)

// TestChaos runs tenant create/suspend/resume/delete cycles under
// concurrent query load on two server processes sharing one control
// database, while SIGKILLing a server and restarting PostgreSQL at random
// moments. Every tenant's rows carry its slug (organization, owner email,
// project name) and every answer is checked for another tenant's data.
// At the end every tenant is in a final state, the long-lived tenants
// still have their data and tokens, and doctor finds nothing.
//
// It runs for CHAOS_DURATION (default 60s) and is not parallel: it
// restarts the package's cluster.
func TestChaos(t *testing.T) {
	duration := 60 * time.Second
	if v := os.Getenv("CHAOS_DURATION"); v != "" {
		var err error
		if duration, err = time.ParseDuration(v); err != nil {
			t.Fatalf("CHAOS_DURATION: %v", err)
		}
	}
	// the production defaults (tenants made from spares and the template)
	env := map[string]string{"LOG_LEVEL": "warn"}
	c := &chaos{t: t, d: newDeployment(t, env), tenants: map[string]*chaosTenant{}}
	for range 2 {
		c.fleet = append(c.fleet, c.d.start(t, nil))
	}
	c.load = newOutcome()
	// long-lived tenants: never suspended or deleted, they must answer
	// with data (or SERVICE_UNAVAILABLE) the whole time
	for _, slug := range []string{"stable-one", "stable-two", "stable-three"} {
		s := c.fleet[0]
		s.createReady(t, slug)
		tok := s.login(t, slug)
		mustOK(t, s.mustGQL(t, tenantHost(slug), tok, createProjectMutation, map[string]any{"n": projectName(slug)}))
		c.tenants[slug] = &chaosTenant{token: tok, stable: true}
	}

	ctx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	cyclesCtx, stopCycles := context.WithTimeout(context.Background(), duration)
	defer stopCycles()
	var load, cycles sync.WaitGroup
	for range 12 {
		load.Add(1)
		go func() { defer load.Done(); c.query(ctx) }()
	}
	for w := range 3 {
		cycles.Add(1)
		go func() { defer cycles.Done(); c.cycleLoop(cyclesCtx, w) }()
	}
	monkeyDone := make(chan struct{})
	go func() { defer close(monkeyDone); c.monkey(cyclesCtx, duration) }()

	<-cyclesCtx.Done()
	<-monkeyDone
	c.ensureFleet() // every server running again
	waited := make(chan struct{})
	go func() { cycles.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(2 * time.Minute):
		t.Fatal("tenant cycles did not finish within 2 minutes of the end")
	}
	time.Sleep(time.Second)
	stopLoad()
	load.Wait()

	// every tenant in a final state: the cycles' tenants gone, the stable ones READY with their data
	s := c.fleet[0]
	r := mustOK(t, s.mustGQL(t, baseDomain, adminToken, `{ tenants(first: 100) { edges { node { slug status lastError } } } }`, nil))
	var left []string
	for _, e := range field(r.Data, "tenants", "edges").([]any) {
		slug, status := field(e, "node", "slug").(string), field(e, "node", "status").(string)
		if !c.tenants[slug].isStable() || status != "READY" {
			left = append(left, slug+":"+status)
		}
	}
	if len(left) > 0 {
		t.Errorf("tenants not in their final state: %v", left)
	}
	for slug, ct := range c.tenants {
		if !ct.stable {
			continue
		}
		s.viewerOK(t, slug, ct.token)
		r := mustOK(t, s.mustGQL(t, tenantHost(slug), ct.token, `{ projects(first: 5) { edges { node { name } } } }`, nil))
		if !strings.Contains(r.Raw, projectName(slug)) {
			t.Errorf("%s lost its project: %s", slug, r.Raw)
		}
	}
	code, out := c.d.doctor(t)
	orphans := 0
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "orphan-") {
			orphans++
		}
	}
	if code != 0 {
		t.Errorf("doctor exited %d:\n%s", code, out)
	}
	dbs, roles := c.d.objects(t)
	if len(dbs) != 3 || len(roles) != 3 {
		t.Errorf("tenant databases %v and roles %v: want the three stable tenants' only", dbs, roles)
	}

	codes := map[string]int{}
	requests := 0
	c.load.mu.Lock()
	for k, n := range c.load.byCode {
		if k != "ok" && !strings.HasPrefix(k, "transport") {
			codes[k] = n
		}
		if !strings.HasPrefix(k, "transport") {
			requests += n
		}
	}
	transport := 0
	for k, n := range c.load.byCode {
		if strings.HasPrefix(k, "transport") {
			transport += n
		}
	}
	bad := slices.Clone(c.load.bad)
	c.load.mu.Unlock()
	t.Logf("chaos summary: %s, %d cycles (%d retried after FAILED), %d server kills, %d PostgreSQL restarts, %d requests answered (%d lost with a killed server), errors by code %v, %d wrong-tenant answers, %d orphans, doctor exit %d",
		duration, c.cycles.Load(), c.retries.Load(), c.kills.Load(), c.restarts.Load(), requests, transport, codes, c.crossTenant.Load(), orphans, code)
	if len(bad) > 0 {
		t.Errorf("unacceptable answers:\n%s", strings.Join(bad, "\n"))
	}
	if c.kills.Load() == 0 || c.restarts.Load() == 0 || c.cycles.Load() == 0 {
		t.Errorf("too little chaos: %d kills, %d restarts, %d cycles", c.kills.Load(), c.restarts.Load(), c.cycles.Load())
	}
}

const createProjectMutation = `mutation($n: String!) { createProject(input: {key: "MARK", name: $n}) { key } }`

func projectName(slug string) string { return "Project of " + slug }

// chaosQuery reads every marker a tenant has.
const chaosQuery = `{ organization { slug name } viewer { email } projects(first: 5) { edges { node { name } } } }`

type chaosTenant struct {
	token  string
	stable bool
}

func (ct *chaosTenant) isStable() bool { return ct != nil && ct.stable }

type chaos struct {
	t *testing.T
	d *deployment

	mu      sync.Mutex
	fleet   []*server // nil while being restarted
	tenants map[string]*chaosTenant

	load                             *outcome
	cycles, retries, kills, restarts atomic.Int64
	crossTenant                      atomic.Int64
}

// server returns a random running server, waiting for one if need be.
func (c *chaos) server() *server {
	for {
		c.mu.Lock()
		var up []*server
		for _, s := range c.fleet {
			if s != nil && s.alive() {
				up = append(up, s)
			}
		}
		c.mu.Unlock()
		if len(up) > 0 {
			return up[rand.IntN(len(up))]
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// query is one load worker: random tenants, every answer checked.
func (c *chaos) query(ctx context.Context) {
	for ctx.Err() == nil {
		c.mu.Lock()
		slugs := make([]string, 0, len(c.tenants))
		for slug := range c.tenants {
			slugs = append(slugs, slug)
		}
		c.mu.Unlock()
		slug := slugs[rand.IntN(len(slugs))]
		c.mu.Lock()
		ct := c.tenants[slug]
		c.mu.Unlock()
		if ct == nil || ct.token == "" {
			continue
		}
		s := c.server()
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		began := time.Now()
		r, err := s.gql(rctx, tenantHost(slug), ct.token, chaosQuery, nil)
		cancel()
		if ctx.Err() != nil {
			return
		}
		took := time.Since(began)
		if err != nil {
			switch {
			case s.killed.Load():
				c.load.add("transport", took, "") // lost with a killed server
			case took > requestBound:
				c.load.add("transport (hung)", took, fmt.Sprintf("%s: %s hung for %s: %v", slug, s.name, took, err))
			default: // a live server dropped the connection: a panic, say
				c.load.add("transport (live server)", took, fmt.Sprintf("%s: %s, not killed, failed the request: %v", slug, s.name, err))
			}
			continue
		}
		if merr := c.checkMarkers(slug, r); merr != nil {
			c.crossTenant.Add(1)
			c.load.add("WRONG TENANT", took, merr.Error()+": "+r.Raw)
			continue
		}
		if r.OK() {
			c.load.add("ok", took, "")
			continue
		}
		code := r.Code()
		if !allCodes(r, code) {
			code = strings.Join(r.Codes(), "+")
		}
		key := fmt.Sprintf("%s (HTTP %d)", code, r.Status)
		bad := ""
		switch {
		case code == "SERVICE_UNAVAILABLE" && (r.Status == 200 || r.Status == 503 && r.Header.Get("Retry-After") != ""):
		case !ct.stable && (code == "TENANT_NOT_FOUND" || code == "TENANT_SUSPENDED" || code == "TENANT_NOT_READY"):
		default:
			bad = fmt.Sprintf("%s (stable %v) via %s: HTTP %d %s", slug, ct.stable, s.name, r.Status, r.Raw)
		}
		if took > requestBound {
			bad = fmt.Sprintf("%s: answer took %s", slug, took)
		}
		c.load.add(key, took, bad)
	}
}

// checkMarkers returns an error when r holds data of another tenant.
func (c *chaos) checkMarkers(slug string, r response) error {
	if err := checkMarker(slug, r); err != nil {
		return err
	}
	edges, _ := field(r.Data, "projects", "edges").([]any)
	for _, e := range edges {
		if n, _ := field(e, "node", "name").(string); n != projectName(slug) {
			return fmt.Errorf("host %s answered project %q", tenantHost(slug), n)
		}
	}
	return nil
}

// cycleLoop runs whole tenant lifecycles until ctx ends (the last one is
// finished whatever happens).
func (c *chaos) cycleLoop(ctx context.Context, worker int) {
	for n := 0; ctx.Err() == nil; n++ {
		slug := fmt.Sprintf("chaos-%d-%d", worker, n)
		if err := c.cycle(slug); err != nil {
			c.t.Errorf("cycle %s: %v", slug, err)
			return
		}
		c.cycles.Add(1)
	}
}

// cycle creates a tenant, gives it data, suspends, resumes and deletes it,
// each step retried through killed servers and PostgreSQL restarts until
// it took effect, as a client would.
func (c *chaos) cycle(slug string) error {
	if err := c.until(slug, "createTenant", func(s *server) (bool, error) {
		r, err := s.createTenant(context.Background(), slug)
		return err == nil && (r.OK() || r.Code() == "CONFLICT"), acceptable(s, r, err, "CONFLICT")
	}); err != nil {
		return err
	}
	if err := c.waitFor(slug, "READY"); err != nil {
		return err
	}
	var token string
	if err := c.until(slug, "login", func(s *server) (bool, error) {
		r, err := s.gql(context.Background(), tenantHost(slug), "", `mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }`,
			map[string]any{"e": ownerEmail(slug), "p": "password-" + slug})
		if err == nil && r.OK() {
			token, _ = field(r.Data, "login", "token").(string)
			return true, nil
		}
		return false, acceptable(s, r, err, "TENANT_NOT_READY")
	}); err != nil {
		return err
	}
	if err := c.until(slug, "createProject", func(s *server) (bool, error) {
		r, err := s.gql(context.Background(), tenantHost(slug), token, createProjectMutation, map[string]any{"n": projectName(slug)})
		return err == nil && (r.OK() || r.Code() == "CONFLICT"), acceptable(s, r, err, "CONFLICT", "TENANT_NOT_READY")
	}); err != nil {
		return err
	}
	c.mu.Lock()
	c.tenants[slug] = &chaosTenant{token: token}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.tenants, slug)
		c.mu.Unlock()
	}()
	pause := func() { time.Sleep(time.Duration(300+rand.IntN(1500)) * time.Millisecond) }
	pause()
	for _, step := range []struct{ mutation, status string }{
		{"suspendTenant", "SUSPENDED"}, {"resumeTenant", "READY"}, {"deleteTenant", "GONE"},
	} {
		if err := c.until(slug, step.mutation, func(s *server) (bool, error) {
			r, err := s.platform(context.Background(), step.mutation, slug)
			done := err == nil && (r.OK() || step.mutation == "deleteTenant" && r.Code() == "NOT_FOUND")
			return done, acceptable(s, r, err, "NOT_FOUND")
		}); err != nil {
			return err
		}
		if err := c.waitFor(slug, step.status); err != nil {
			return err
		}
		if step.status != "GONE" {
			pause()
		}
	}
	return nil
}

// acceptable returns nil for answers a client retries (a request lost
// with a killed server, an outage) or expects (codes), an error for
// anything else: a transport error from a server that was not killed
// too.
func acceptable(s *server, r response, err error, codes ...string) error {
	switch {
	case err != nil && s.killed.Load(), err == nil && r.OK():
		return nil
	case err != nil:
		return fmt.Errorf("%s, not killed, failed the request: %w", s.name, err)
	case allCodes(r, "SERVICE_UNAVAILABLE"):
		return nil
	case slices.Contains(codes, r.Code()):
		return nil
	}
	return fmt.Errorf("HTTP %d %s", r.Status, r.Raw)
}

// until retries f on running servers for up to two minutes, until it
// reports done; f's error ends it at once.
func (c *chaos) until(slug, what string, f func(s *server) (done bool, err error)) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		done, err := f(c.server())
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s of %s did not succeed within 2 minutes", what, slug)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitFor polls the tenant's status until it is want (GONE: no tenant);
// a FAILED tenant is retried (and counted).
func (c *chaos) waitFor(slug, want string) error {
	var last string
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		s := c.server()
		st, le, err := s.status(context.Background(), slug)
		if err == nil {
			last = st + " " + le
			switch st {
			case want:
				return nil
			case "FAILED":
				// Outages do not use up attempts and a takeover of a
				// killed server's job uses one of five: FAILED means a
				// step failed for another reason. Retried so that the
				// run ends in a final state, and reported.
				c.retries.Add(1)
				c.t.Errorf("%s FAILED (%s): retryTenant", slug, le)
				_, _ = s.platform(context.Background(), "retryTenant", slug)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("not %s within 2 minutes (last: %s)", want, last)
}

// monkey kills a server or restarts PostgreSQL every few seconds until
// ctx ends; both happen at least once.
func (c *chaos) monkey(ctx context.Context, duration time.Duration) {
	every := max(duration/10, 2*time.Second)
	for i := 0; ; i++ {
		wait := every/2 + time.Duration(rand.Int64N(int64(every)))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		switch {
		case i == 1, i > 1 && rand.IntN(3) == 0:
			c.restartPostgres()
		default:
			c.killServer()
		}
	}
}

func (c *chaos) restartPostgres() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := pgtest.Cluster().Restart(ctx); err != nil {
		c.t.Errorf("restart PostgreSQL: %v", err)
		return
	}
	c.restarts.Add(1)
}

// killServer SIGKILLs a random server and starts a new one in its place
// after a moment.
func (c *chaos) killServer() {
	c.mu.Lock()
	i := rand.IntN(len(c.fleet))
	s := c.fleet[i]
	c.fleet[i] = nil
	c.mu.Unlock()
	if s != nil {
		s.kill()
		c.kills.Add(1)
	}
	time.Sleep(time.Duration(rand.IntN(1500)) * time.Millisecond)
	c.restartSlot(i)
}

// restartSlot starts a server in fleet slot i, retrying while PostgreSQL
// may be restarting.
func (c *chaos) restartSlot(i int) {
	for attempt := 0; attempt < 20; attempt++ {
		s, err := c.d.startErr(nil)
		if err == nil {
			c.mu.Lock()
			c.fleet[i] = s
			c.mu.Unlock()
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	c.t.Errorf("server slot %d could not be restarted", i)
}

// ensureFleet restarts any server that is not running.
func (c *chaos) ensureFleet() {
	for i := range c.fleet {
		c.mu.Lock()
		s := c.fleet[i]
		c.mu.Unlock()
		if s == nil || !s.alive() {
			c.restartSlot(i)
		}
	}
}
