package faulttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/tenantql/tenantql/internal/gqlclient"
	"github.com/tenantql/tenantql/internal/pgtest"
)

// binPath is the tenantql binary TestMain builds once for the whole run.
// Written before any test runs, read-only afterwards.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tenantql-faulttest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "faulttest:", err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "tenantql")
	build := exec.Command("go", "build", "-o", binPath, ".")
	build.Dir = ".." // the repository root: package main
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "faulttest: go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := pgtest.RunOwnCluster(m) // restarted by these tests: never share it
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	adminToken = "faulttest-admin-token-0123456789"
	secretKey  = "faulttest-secret-key-0123456789-0123456789"
	baseDomain = "example.test"
)

// deployment is one tenantql installation: a control database, a tenant
// name prefix of its own (so parallel tests never see each other's
// databases and roles) and the server processes running on it.
type deployment struct {
	t       testing.TB
	url     string // control database, as the server's (non-superuser) role
	prefix  string
	env     map[string]string
	logDir  string
	control *sqlx.DB // superuser on the control database
	admin   *sqlx.DB // superuser on the postgres database

	mu      sync.Mutex
	servers []*server
	started int
}

// newDeployment prepares a fresh control database; env adds to or
// overrides the servers' environment. Cleanup kills the servers and drops
// every database and role with the prefix.
func newDeployment(t testing.TB, env map[string]string) *deployment {
	t.Helper()
	url := pgtest.NewControlDatabase(t)
	d := &deployment{
		t: t, url: url, prefix: "f" + randomHex(4) + "_", logDir: t.TempDir(),
	}
	// Production's defaults but for what these tests need, each said why:
	// tenants are made from the spares and the template (tenant objects
	// are told from theirs by name: see objects), leases and backoff are
	// the defaults.
	d.env = map[string]string{
		"DATABASE_URL":       url,
		"ADMIN_TOKEN":        adminToken,
		"SECRET_KEY":         secretKey,
		"TENANT_NAME_PREFIX": d.prefix, // parallel deployments on one cluster
		"BASE_DOMAIN":        baseDomain,
		"LOG_LEVEL":          "info", // the access log lines, read by some tests
		"RATE_LIMIT_RPS":     "0",    // these tests are the load
		// deleteTenant drops at once unless a test asks for the grace
		"DELETE_GRACE_HOURS": "0",
	}
	for k, v := range env {
		d.env[k] = v
	}
	var err error
	if d.control, err = sqlx.Open("postgres", pgtest.SuperuserURL(t, url)); err != nil {
		t.Fatal(err)
	}
	if d.admin, err = sqlx.Open("postgres", pgtest.WithURLDatabase(pgtest.AdminURL(t), "postgres")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.mu.Lock()
		servers := d.servers
		d.mu.Unlock()
		for _, s := range servers {
			s.kill()
		}
		if t.Failed() {
			for _, s := range servers {
				t.Logf("--- last lines of %s:\n%s", s.name, tail(s.logPath, 40))
			}
		}
		d.dropObjects()
		d.control.Close()
		d.admin.Close()
	})
	return d
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// environ is the process environment for a server or command.
func (d *deployment) environ(extra map[string]string) []string {
	vars := map[string]string{}
	for k, v := range d.env {
		vars[k] = v
	}
	for k, v := range extra {
		vars[k] = v
	}
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir()}
	for k, v := range vars {
		if v != "" {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// dropObjects removes every database and role with the prefix (tenants',
// and whatever else the deployment named so: templates, spares).
func (d *deployment) dropObjects() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dbs, roles, err := d.objectsErr(ctx, "^"+d.prefix)
	if err != nil {
		d.t.Logf("cleanup: %v", err)
		return
	}
	for _, name := range dbs {
		q := pq.QuoteIdentifier(name)
		_, _ = d.admin.ExecContext(ctx, `ALTER DATABASE `+q+` IS_TEMPLATE false`)
		if _, err := d.admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+q+` WITH (FORCE)`); err != nil {
			d.t.Logf("cleanup: %v", err)
		}
	}
	for _, name := range roles {
		_, _ = d.admin.ExecContext(ctx, `DROP ROLE IF EXISTS `+pq.QuoteIdentifier(name))
	}
}

func (d *deployment) objectsErr(ctx context.Context, pattern string) (dbs, roles []string, err error) {
	if err = d.admin.SelectContext(ctx, &dbs, `SELECT datname FROM pg_database WHERE datname ~ $1 ORDER BY 1`, pattern); err != nil {
		return nil, nil, err
	}
	err = d.admin.SelectContext(ctx, &roles, `SELECT rolname FROM pg_roles WHERE rolname ~ $1 ORDER BY 1`, pattern)
	return dbs, roles, err
}

// objects lists the tenant databases and roles of this deployment (named
// <prefix><32 hex digits>, like tenancy names them).
func (d *deployment) objects(t testing.TB) (dbs, roles []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dbs, roles, err := d.objectsErr(ctx, "^"+d.prefix+"[0-9a-f]{32}$")
	if err != nil {
		t.Fatal(err)
	}
	return dbs, roles
}

// tenantNames returns the database (and role) name of the tenant with slug.
func (d *deployment) tenantNames(t testing.TB, slug string) (dbName, roleName string) {
	t.Helper()
	if err := d.control.QueryRow(`SELECT db_name, role_name FROM tenants WHERE slug = $1`, slug).Scan(&dbName, &roleName); err != nil {
		t.Fatalf("tenant %s: %v", slug, err)
	}
	return dbName, roleName
}

// commits returns the transactions committed on database db so far, as
// PostgreSQL counts them on the server side (pg_stat_database: a backend
// reports its counts once idle, at most every second, so recent ones may
// be missing). A database that is gone has none.
func (d *deployment) commits(t testing.TB, db string) int64 {
	t.Helper()
	var n int64
	var err error
	for try := 0; try < 50; try++ { // through a PostgreSQL restart
		if err = d.admin.Get(&n, `SELECT coalesce(sum(xact_commit), 0) FROM pg_stat_database WHERE datname = $1`, db); err == nil {
			return n
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("pg_stat_database: %v", err)
	return 0
}

// waitCommits waits until the databases dbs have committed, together, at
// least want transactions more than since (their commits before), and
// fails the test after 15 s: the statements of answers already received
// reach pg_stat_database within a second or two.
func (d *deployment) waitCommits(t testing.TB, what string, dbs []string, since map[string]int64, want int64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var got int64
		for _, db := range dbs {
			got += d.commits(t, db) - since[db]
		}
		if got >= want {
			t.Logf("%s: %d transactions on the tenant databases for %d answers", what, got, want)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d answers came from the tenant databases, yet PostgreSQL counts %d transactions there: the load did not reach them", what, want, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// commitsOf returns commits for each of dbs.
func (d *deployment) commitsOf(t testing.TB, dbs []string) map[string]int64 {
	t.Helper()
	m := map[string]int64{}
	for _, db := range dbs {
		m[db] = d.commits(t, db)
	}
	return m
}

// doctor runs `tenantql doctor args...` and returns its exit code and
// standard output.
func (d *deployment) doctor(t testing.TB, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, append([]string{"doctor"}, args...)...)
	cmd.Env = d.environ(map[string]string{"LOG_LEVEL": "warn"})
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String()
	case errors.As(err, &exit) && exit.ExitCode() > 0:
		return exit.ExitCode(), stdout.String() + stderr.String()
	}
	t.Fatalf("doctor: %v\n%s%s", err, stdout.String(), stderr.String())
	return -1, ""
}

// mustDoctorClean runs doctor and fails the test unless it exits 0.
func (d *deployment) mustDoctorClean(t testing.TB) {
	t.Helper()
	if code, out := d.doctor(t); code != 0 {
		t.Fatalf("doctor exited %d:\n%s", code, out)
	}
}

// server is one tenantql process of a deployment.
type server struct {
	name    string
	cmd     *exec.Cmd
	base    string // http://127.0.0.1:port
	logPath string
	done    chan struct{}
	code    int // exit code, once done is closed
	client  *http.Client
	// killed is set before the test sends SIGKILL: a request cut by it
	// may end in a transport error, which a live server's never should.
	killed atomic.Bool
}

var errPortTaken = errors.New("port taken")

// withQuery returns the URL u with query parameter key set to value.
func withQuery(u, key, value string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		panic(err)
	}
	q := parsed.Query()
	q.Set(key, value)
	parsed.RawQuery = q.Encode()
	return parsed.String()
}

// logLines returns the lines of the log at path that contain any of subs.
func logLines(path string, subs ...string) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, line := range strings.Split(string(raw), "\n") {
		for _, sub := range subs {
			if strings.Contains(line, sub) {
				out = append(out, line)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// errExitedEarly is tryStart's error for a server that exited before it
// served (tryStart then returns the exited server too, with its code).
var errExitedEarly = errors.New("exited before serving")

// start runs `tenantql serve` with extra environment and waits until it
// answers /healthz.
func (d *deployment) start(t testing.TB, extra map[string]string) *server {
	t.Helper()
	for attempt := 1; ; attempt++ {
		s, err := d.tryStart(extra)
		if err == nil {
			return s
		}
		if !errors.Is(err, errPortTaken) || attempt == 5 {
			t.Fatalf("start server: %v", err)
		}
	}
}

// startErr is start for callers that expect it may fail (PostgreSQL down).
func (d *deployment) startErr(extra map[string]string) (*server, error) {
	for attempt := 1; ; attempt++ {
		s, err := d.tryStart(extra)
		if err == nil || !errors.Is(err, errPortTaken) || attempt == 5 {
			return s, err
		}
	}
}

func (d *deployment) tryStart(extra map[string]string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.started++
	n := d.started
	d.mu.Unlock()
	s := &server{
		name:    fmt.Sprintf("server %d", n),
		base:    "http://127.0.0.1:" + strconv.Itoa(port),
		logPath: filepath.Join(d.logDir, fmt.Sprintf("server-%d.log", n)),
		done:    make(chan struct{}),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second,
		}},
	}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	env := map[string]string{"LISTEN_ADDR": "127.0.0.1:" + strconv.Itoa(port)}
	for k, v := range extra {
		env[k] = v
	}
	s.cmd = exec.Command(binPath, "serve")
	s.cmd.Env = d.environ(env)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	s.cmd.SysProcAttr = childAttr()
	if err := s.cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	go func() {
		err := s.cmd.Wait()
		logFile.Close()
		s.code = 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			s.code = exit.ExitCode() // -1 when killed by a signal
		} else if err != nil {
			s.code = -2
		}
		close(s.done)
	}()
	d.mu.Lock()
	d.servers = append(d.servers, s)
	d.mu.Unlock()

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-s.done:
			log := tail(s.logPath, 30)
			if strings.Contains(log, "address already in use") {
				return nil, fmt.Errorf("%w: %d", errPortTaken, port)
			}
			return s, fmt.Errorf("%s %w with %d:\n%s", s.name, errExitedEarly, s.code, log)
		default:
		}
		if resp, err := s.client.Get(s.base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.kill()
			return nil, fmt.Errorf("%s did not answer /healthz within 30s:\n%s", s.name, tail(s.logPath, 30))
		}
		time.Sleep(30 * time.Millisecond)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// alive reports whether the process still runs.
func (s *server) alive() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// kill ends the process with SIGKILL and waits for it.
func (s *server) kill() {
	s.killed.Store(true)
	if s.alive() {
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-s.done
	s.client.CloseIdleConnections()
}

// term sends SIGTERM and returns the exit code (fails after 40s).
func (s *server) term(t testing.TB) int {
	t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	code, ok := s.waitExit(40 * time.Second)
	if !ok {
		t.Fatalf("%s still running 40s after SIGTERM", s.name)
	}
	return code
}

// waitExit waits up to timeout for the process to end. A process that
// has ended is seen as such even with a timeout of 0 (a select with both
// ready would pick either).
func (s *server) waitExit(timeout time.Duration) (code int, ok bool) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-s.done:
		return s.code, true
	case <-timer.C:
	}
	select {
	case <-s.done:
		return s.code, true
	default:
		return 0, false
	}
}

// response is a decoded GraphQL answer.
type response = gqlclient.Response

func tenantHost(slug string) string { return slug + "." + baseDomain }

// gql posts a GraphQL operation to host; transport failures are errors.
func (s *server) gql(ctx context.Context, host, token, query string, vars map[string]any) (response, error) {
	c := gqlclient.Client{URL: s.base, HTTP: s.client}
	return c.Post(ctx, host, token, query, vars)
}

// mustGQL is gql that fails the test on a transport error.
func (s *server) mustGQL(t testing.TB, host, token, query string, vars map[string]any) response {
	t.Helper()
	r, err := s.gql(context.Background(), host, token, query, vars)
	if err != nil {
		t.Fatalf("%s: request: %v", s.name, err)
	}
	return r
}

// admin posts a platform operation with the admin token.
func (s *server) admin(ctx context.Context, query string, vars map[string]any) (response, error) {
	return s.gql(ctx, baseDomain, adminToken, query, vars)
}

// mustOK fails the test unless r has data and no errors.
func mustOK(t testing.TB, r response) response {
	t.Helper()
	if !r.OK() {
		t.Fatalf("want data, got HTTP %d: %s", r.Status, r.Raw)
	}
	return r
}

// field walks a path of keys in decoded JSON.
func field(v any, path ...string) any { return gqlclient.Field(v, path...) }

func ownerEmail(slug string) string { return "owner@" + slug + ".test" }
func orgName(slug string) string    { return "Org " + slug }

const createMutation = `mutation($in: CreateTenantInput!) { createTenant(input: $in) { tenant { slug status } } }`

// createTenant sends createTenant for slug (organization "Org <slug>",
// owner owner@<slug>.test).
func (s *server) createTenant(ctx context.Context, slug string) (response, error) {
	return s.admin(ctx, createMutation, map[string]any{"in": map[string]any{
		"organization": orgName(slug), "slug": slug,
		"owner": map[string]any{"email": ownerEmail(slug), "name": "Owner " + slug, "password": "password-" + slug},
	}})
}

// platform sends a one-slug platform mutation such as deleteTenant.
func (s *server) platform(ctx context.Context, mutation, slug string) (response, error) {
	sel := "{ status }"
	if mutation == "deleteTenant" {
		sel = "{ tenant { status } }"
	}
	return s.admin(ctx, `mutation($s: String!) { `+mutation+`(slug: $s) `+sel+` }`, map[string]any{"s": slug})
}

// mustPlatform is platform that fails the test unless it succeeds.
func (s *server) mustPlatform(t testing.TB, mutation, slug string) {
	t.Helper()
	r, err := s.platform(context.Background(), mutation, slug)
	if err != nil {
		t.Fatalf("%s %s: %v", mutation, slug, err)
	}
	mustOK(t, r)
}

// status returns the tenant's status ("GONE" when there is none) and lastError.
func (s *server) status(ctx context.Context, slug string) (status, lastError string, err error) {
	r, err := s.admin(ctx, `query($s: String!) { tenant(slug: $s) { status lastError } }`, map[string]any{"s": slug})
	if err != nil {
		return "", "", err
	}
	if !r.OK() {
		return "", "", fmt.Errorf("tenant(%s): HTTP %d %s", slug, r.Status, r.Raw)
	}
	tn, _ := field(r.Data, "tenant").(map[string]any)
	if tn == nil {
		return "GONE", "", nil
	}
	st, _ := tn["status"].(string)
	le, _ := tn["lastError"].(string)
	return st, le, nil
}

// waitStatus polls until the tenant has status ("GONE": no tenant). It
// fails on FAILED unless that is wanted.
func (s *server) waitStatus(t testing.TB, slug, want string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var st, le string
	var err error
	for {
		st, le, err = s.status(context.Background(), slug)
		switch {
		case err == nil && st == want:
			s.waitRouted(t, slug, want, deadline)
			return le
		case err == nil && st == "FAILED":
			t.Fatalf("tenant %s FAILED: %s", slug, le)
		}
		if time.Now().After(deadline) {
			t.Fatalf("tenant %s not %s after %s: status %q lastError %q err %v", slug, want, timeout, st, le, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitRouted waits until the tenant's host answers as status says: the
// registry reads the control database, routing the in-memory table that
// follows it a moment later (NOTIFY).
func (s *server) waitRouted(t testing.TB, slug, status string, deadline time.Time) {
	t.Helper()
	want := map[string]int{"READY": 200, "SUSPENDED": 403, "GONE": 404, "DELETING": 404, "DELETED": 404, "PROVISIONING": 503, "FAILED": 503}[status]
	for {
		r, err := s.gql(context.Background(), tenantHost(slug), "", `{ organization { slug } }`, nil)
		if err == nil && r.Status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("host of %s (%s) answers HTTP %d %s (%v), want %d", slug, status, r.Status, r.Raw, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// createReady creates slug and waits until it is READY.
func (s *server) createReady(t testing.TB, slug string) {
	t.Helper()
	r, err := s.createTenant(context.Background(), slug)
	if err != nil {
		t.Fatalf("createTenant %s: %v", slug, err)
	}
	mustOK(t, r)
	s.waitStatus(t, slug, "READY", 30*time.Second)
}

// login signs in as slug's owner and returns the token.
func (s *server) login(t testing.TB, slug string) string {
	t.Helper()
	r := mustOK(t, s.mustGQL(t, tenantHost(slug), "", `mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }`,
		map[string]any{"e": ownerEmail(slug), "p": "password-" + slug}))
	tok, _ := field(r.Data, "login", "token").(string)
	if tok == "" {
		t.Fatalf("no token: %s", r.Raw)
	}
	return tok
}

// markerQuery reads the tenant's own marker rows: the organization
// (slug, name) from the registry, the signed-in owner (from the user
// cache, mostly) and the tenant's users, which are read from its
// database on every request: an answer with data has reached it.
const markerQuery = `{ organization { slug name } viewer { email } users(first: 5) { edges { node { email } } } }`

// checkMarker returns an error when r carries another tenant's data.
func checkMarker(slug string, r response) error {
	if s, ok := field(r.Data, "organization", "slug").(string); ok && s != slug {
		return fmt.Errorf("host %s answered organization %q", tenantHost(slug), s)
	}
	if n, ok := field(r.Data, "organization", "name").(string); ok && n != orgName(slug) {
		return fmt.Errorf("host %s answered organization name %q", tenantHost(slug), n)
	}
	if e, ok := field(r.Data, "viewer", "email").(string); ok && e != ownerEmail(slug) {
		return fmt.Errorf("host %s answered viewer %q", tenantHost(slug), e)
	}
	// the tenants of these tests have one user: their owner
	users, _ := field(r.Data, "users", "edges").([]any)
	for _, u := range users {
		if e, _ := field(u, "node", "email").(string); e != ownerEmail(slug) {
			return fmt.Errorf("host %s answered user %q", tenantHost(slug), e)
		}
	}
	if field(r.Data, "users") != nil && len(users) != 1 {
		return fmt.Errorf("host %s answered %d users, want its owner", tenantHost(slug), len(users))
	}
	return nil
}

// viewerOK fails the test unless token still signs in slug's owner.
func (s *server) viewerOK(t testing.TB, slug, token string) {
	t.Helper()
	r := mustOK(t, s.mustGQL(t, tenantHost(slug), token, markerQuery, nil))
	if err := checkMarker(slug, r); err != nil || field(r.Data, "viewer", "email") != ownerEmail(slug) || field(r.Data, "users") == nil {
		t.Fatalf("viewer on %s: %v %s", slug, err, r.Raw)
	}
}
