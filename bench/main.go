// Command bench measures tenantql end to end on a throwaway PostgreSQL
// cluster: sign-up latency (createTenant until READY) with and without
// spare databases, then the issues query under load over many tenants,
// against a plain net/http baseline that runs the same SQL on the same
// tenant databases and writes the same JSON. Run it from the repository
// root:
//
//	go run ./bench -tenants 50 -clients 32 -duration 20s
//
// It builds the server from the working tree, starts it as a separate
// process (DATABASE_URL on the throwaway cluster) and stops everything at
// the end. See docs/performance.md.
package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/tenantql/tenantql/internal/gqlclient"
	"github.com/tenantql/tenantql/pglocal"
)

const (
	adminToken = "bench-admin-token-0123456789abcdef"
	secretKey  = "bench-secret-key-0123456789abcdef-0123456789"
	baseDomain = "bench.test"
	password   = "bench-password"
	// issuesQuery is what every client sends.
	issuesQuery = `{ issues(first: 20) { edges { node { id number title status assignee { id name } } } } }`
	// tenantRolePattern matches the server's tenant roles (default prefix).
	tenantRolePattern = `^tenant_[0-9a-f]{32}$`
)

type options struct {
	tenants, clients, issues, signups, maxConns, spares, parallel int
	duration                                                      time.Duration
	repo, pprofDir, sharedBuffers, pgConf, serverEnv, compare     string
	postgraphile                                                  string
	baseline, pgbench                                             bool
	zipf                                                          float64
}

func main() {
	var o options
	flag.IntVar(&o.tenants, "tenants", 50, "tenants to create and query")
	flag.IntVar(&o.clients, "clients", 32, "concurrent clients")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "length of each load run")
	flag.IntVar(&o.issues, "issues", 1000, "issues per tenant")
	flag.IntVar(&o.signups, "signups", 10, "sign-ups timed with spares, and again without")
	flag.IntVar(&o.maxConns, "max-conns", 64, "MAX_DB_CONNECTIONS of the server")
	flag.IntVar(&o.spares, "spares", 2, "SPARE_TENANTS of the server (the no-spare sign-ups use 0)")
	flag.IntVar(&o.parallel, "parallel", 8, "concurrent createTenant calls while creating the rest of the tenants")
	flag.StringVar(&o.repo, "repo", ".", "repository root to build the server from")
	flag.StringVar(&o.pprofDir, "pprof", "", "directory for CPU and allocation profiles of the server during the load run")
	flag.BoolVar(&o.baseline, "baseline", true, "also run the plain net/http baseline")
	flag.BoolVar(&o.pgbench, "pgbench", true, "also run PostgreSQL's pgbench: the page as one joined, prepared statement on one tenant database, then over several at tenantql's rate (the floors; skipped with a note when pgbench is not installed)")
	flag.Float64Var(&o.zipf, "zipf", 0, "skew of the traffic over tenants: 0 picks a tenant uniformly at random for each request; s > 1 picks the tenant of rank k (k = 1, 2, ...) with probability proportional to 1/k^s (Zipf; the issue's realistic skew is 1.1)")
	flag.StringVar(&o.postgraphile, "postgraphile", "../shared/peers/postgraphile", "directory with PostGraphile's package.json and package-lock.json, installed with npm ci and loaded right after tenantql on one tenant database (relative to -repo; \"\" skips it)")
	flag.StringVar(&o.sharedBuffers, "shared-buffers", "", "PostgreSQL shared_buffers, e.g. 2GB (default: PostgreSQL's 128MB)")
	flag.StringVar(&o.pgConf, "pg-conf", "", "more PostgreSQL settings, space-separated name=value pairs (e.g. autovacuum_naptime=10min)")
	flag.StringVar(&o.serverEnv, "server-env", "", "extra environment of the server, space-separated KEY=VALUE pairs (e.g. GOGC=200)")
	flag.StringVar(&o.compare, "compare", "", "more GraphQL load runs after the first, each on a server restarted with this extra environment; '|' separates the runs (e.g. 'GOGC=400|GOGC=800')")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// bench is one run's shared state.
type bench struct {
	o          options
	dir        string
	cluster    *pglocal.Cluster
	admin      *sqlx.DB // superuser on the control database
	bin        string
	srv        *server
	compareEnv string // extra environment of the current -compare run
	http       *http.Client
}

func run(ctx context.Context, o options) error {
	dir, err := os.MkdirTemp("", "tenantql-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	_ = os.Chmod(dir, 0o755) // the postgres user must reach the data directory
	b := &bench{o: o, dir: dir, http: &http.Client{
		Transport: &http.Transport{MaxIdleConns: 4 * o.clients, MaxIdleConnsPerHost: 4 * o.clients, IdleConnTimeout: time.Minute},
		Timeout:   60 * time.Second,
	}}

	// PostGraphile installs while the rest is set up.
	peerInstalled := make(chan peerInstall, 1)
	if o.postgraphile != "" {
		src := o.postgraphile
		if !filepath.IsAbs(src) {
			src = filepath.Join(o.repo, src)
		}
		b.o.postgraphile = src
		go func() {
			bin, err := installPeer(ctx, src, filepath.Join(dir, "postgraphile"))
			peerInstalled <- peerInstall{bin: bin, err: err}
		}()
	}

	step := logStep("start PostgreSQL and build the server")
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b.cluster, err = pglocal.Start(ctx, pglocal.Options{
		DataDir: filepath.Join(dir, "pg"), FsyncOff: true, Logger: log, MaxConnections: max(300, max(o.maxConns, o.tenants)+o.tenants+300), // the server's budget, the baseline's pools and ours
	})
	if err != nil {
		return err
	}
	defer b.cluster.Stop()
	if b.admin, err = sqlx.Open("postgres", b.cluster.URL("postgres")); err != nil {
		return err
	}
	settings := strings.Fields(o.pgConf)
	if o.sharedBuffers != "" {
		settings = append(settings, "shared_buffers="+o.sharedBuffers)
	}
	if len(settings) > 0 {
		for _, kv := range settings {
			name, value, ok := strings.Cut(kv, "=")
			if !ok || !pgSettingName.MatchString(name) {
				return fmt.Errorf("-pg-conf: %q is not name=value", kv)
			}
			if _, err := b.admin.ExecContext(ctx, `ALTER SYSTEM SET `+name+` = `+pq.QuoteLiteral(value)); err != nil {
				return fmt.Errorf("-pg-conf %s: %w", name, err)
			}
		}
		b.admin.Close()
		if err := b.cluster.Restart(ctx); err != nil {
			return err
		}
		if b.admin, err = sqlx.Open("postgres", b.cluster.URL("postgres")); err != nil {
			return err
		}
	}
	if _, err := b.admin.ExecContext(ctx, `CREATE DATABASE tenantql`); err != nil {
		return err
	}
	b.admin.Close()
	if b.admin, err = sqlx.Open("postgres", b.cluster.URL("tenantql")); err != nil {
		return err
	}
	defer b.admin.Close()
	b.admin.SetMaxOpenConns(8)
	b.bin = filepath.Join(dir, "tenantql")
	build := exec.CommandContext(ctx, "go", "build", "-o", b.bin, ".")
	build.Dir, build.Stdout, build.Stderr = o.repo, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build the server: %w", err)
	}
	step()

	var rep report
	rep.o = o
	// Sign-ups without spares (the template is ready), then with spares.
	step = logStep("time sign-ups without spares")
	if err := b.startServer(ctx, 0); err != nil {
		return err
	}
	defer func() { b.srv.stop() }()
	if o.signups > 0 { // -signups 0 also runs servers without a reserve
		if err := b.waitReserve(ctx, 0); err != nil {
			return err
		}
	}
	n := 0
	for range o.signups {
		d, err := b.signUp(ctx, fmt.Sprintf("bench-%04d", n))
		if err != nil {
			return err
		}
		n++
		rep.signupNoSpare = append(rep.signupNoSpare, d)
	}
	b.srv.stop()
	step()
	step = logStep("time sign-ups with spares")
	if err := b.startServer(ctx, o.spares); err != nil {
		return err
	}
	for range o.signups {
		if err := b.waitReserve(ctx, o.spares); err != nil {
			return err
		}
		d, err := b.signUp(ctx, fmt.Sprintf("bench-%04d", n))
		if err != nil {
			return err
		}
		n++
		rep.signupSpare = append(rep.signupSpare, d)
	}
	step()

	step = logStep(fmt.Sprintf("create the other %d tenants, %d at a time", max(0, o.tenants-n), o.parallel))
	start := time.Now()
	if err := b.createMany(ctx, n, o.tenants); err != nil {
		return err
	}
	rep.bulkCreate, rep.bulkCount = time.Since(start), max(0, o.tenants-n)
	step()

	step = logStep(fmt.Sprintf("fill %d tenants with %d issues each", o.tenants, o.issues))
	tenants, err := b.tenants(ctx)
	if err != nil {
		return err
	}
	start = time.Now()
	if err := b.fill(ctx, tenants); err != nil {
		return err
	}
	rep.fill = time.Since(start)
	step()

	step = logStep("log in to every tenant")
	if err := b.login(ctx, tenants); err != nil {
		return err
	}
	step()

	step = logStep(fmt.Sprintf("GraphQL load: %d clients for %s", o.clients, o.duration))
	var profiles sync.WaitGroup
	if o.pprofDir != "" {
		profiles.Add(1)
		go func() {
			defer profiles.Done()
			if err := b.profile(ctx); err != nil {
				fmt.Fprintln(os.Stderr, "bench: profile:", err)
			}
		}()
	}
	rep.gql, err = b.load(ctx, "http://"+b.srv.addr, tenants, b.srv.cmd.Process.Pid, b.issuesWorkload())
	if err != nil {
		return err
	}
	profiles.Wait()
	rep.gqlHWM = b.srv.rssHWM()
	step()

	if o.postgraphile != "" {
		b.srv.stop() // as for the baseline: its connections and CPU stay out of the peer's run
		step = logStep(fmt.Sprintf("PostGraphile load on one tenant database: %d clients for %s", o.clients, o.duration))
		rep.peer, rep.peerErr = b.runPeer(ctx, peerInstalled, tenants)
		if rep.peerErr != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fmt.Fprintf(os.Stderr, "bench: PostGraphile NOT MEASURED: %v\n", rep.peerErr)
		}
		step()
	}

	for _, env := range strings.Split(o.compare, "|") {
		if env = strings.TrimSpace(env); env == "" {
			continue
		}
		step = logStep(fmt.Sprintf("GraphQL load with %s: %d clients for %s", env, o.clients, o.duration))
		b.srv.stop()
		b.compareEnv = env
		if err := b.startServer(ctx, o.spares); err != nil {
			return err
		}
		r, err := b.load(ctx, "http://"+b.srv.addr, tenants, b.srv.cmd.Process.Pid, b.issuesWorkload())
		if err != nil {
			return err
		}
		rep.compared = append(rep.compared, compared{env: env, res: r})
		step()
	}

	if o.baseline {
		b.srv.stop() // its connections would count against the baseline's
		step = logStep(fmt.Sprintf("baseline load: %d clients for %s", o.clients, o.duration))
		base, err := startBaseline(b.cluster, tenants)
		if err != nil {
			return err
		}
		rep.base, err = b.load(ctx, "http://"+base.addr, tenants, 0, b.issuesWorkload())
		base.close()
		if err != nil {
			return err
		}
		step()
	}
	if o.pgbench {
		b.srv.stop() // with -baseline=false it still runs
		step = logStep(fmt.Sprintf("floor: pgbench on one tenant database: %d clients for %s once all run", o.clients, o.duration))
		rep.floor, rep.floorErr = b.runFloor(ctx, tenants[:1], 0)
		if rep.floorErr != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fmt.Fprintf(os.Stderr, "bench: pgbench floor NOT MEASURED: %v\n", rep.floorErr)
		}
		step()
		if len(tenants) > 1 && rep.floorErr == nil && rep.gql.rate() > 0 {
			spread := min(len(tenants), o.clients)
			step = logStep(fmt.Sprintf("floor: pgbench over %d tenant databases, a pgbench each, at tenantql's %.0f tx/s: %d clients for %s once all run",
				spread, rep.gql.rate(), o.clients, o.duration))
			rep.floorSpread, rep.floorSpreadErr = b.runFloor(ctx, tenants, rep.gql.rate())
			if rep.floorSpreadErr != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				fmt.Fprintf(os.Stderr, "bench: pgbench floor over %d databases NOT MEASURED: %v\n", spread, rep.floorSpreadErr)
			}
			step()
		}
	}
	rep.print(os.Stdout)
	return nil
}

func logStep(what string) func() {
	start := time.Now()
	fmt.Fprintf(os.Stderr, "bench: %s ...\n", what)
	return func() { fmt.Fprintf(os.Stderr, "bench: %s: %s\n", what, time.Since(start).Round(time.Millisecond)) }
}

// server is the tenantql process under test.
type server struct {
	cmd       *exec.Cmd
	addr      string
	pprofAddr string
	done      chan struct{}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startServer starts tenantql with spares spare databases and waits for /healthz.
func (b *bench) startServer(ctx context.Context, spares int) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	pprofAddr, err := freeAddr()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(b.dir, "server.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(b.bin, "serve")
	cmd.Env = append(os.Environ(),
		"DATABASE_URL="+b.cluster.URL("tenantql"), "ADMIN_TOKEN="+adminToken, "SECRET_KEY="+secretKey,
		"LISTEN_ADDR="+addr, "BASE_DOMAIN="+baseDomain, "LOG_LEVEL=warn",
		"MAX_DB_CONNECTIONS="+strconv.Itoa(b.o.maxConns), "SPARE_TENANTS="+strconv.Itoa(spares),
		// the per-tenant rate limit (100/s by default) would refuse part of a
		// load that puts 80 requests a second on each tenant
		"RATE_LIMIT_RPS=0", "PPROF_ADDR="+pprofAddr,
	)
	cmd.Env = append(cmd.Env, strings.Fields(b.o.serverEnv)...)
	cmd.Env = append(cmd.Env, strings.Fields(b.compareEnv)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	s := &server{cmd: cmd, addr: addr, pprofAddr: pprofAddr, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(s.done) }()
	b.srv = s
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("server exited; see %s", filepath.Join(b.dir, "server.log"))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("server did not start")
		}
	}
}

// stop ends the server (SIGTERM, then SIGKILL) and waits for it.
func (s *server) stop() {
	if s == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// rssHWM returns the server's peak resident set size (VmHWM) in bytes.
func (s *server) rssHWM() int64 { return procStatus(s.cmd.Process.Pid, "VmHWM") }

// procStatus reads a kB field of /proc/<pid>/status, in bytes.
func procStatus(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// waitReserve waits until the template is built and spares spares are ready.
func (b *bench) waitReserve(ctx context.Context, spares int) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var st struct {
			Template bool `db:"template"`
			Spares   int  `db:"spares"`
		}
		const q = `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname ~ '^tenant_tpl_' AND datistemplate AND NOT datallowconn) AS template,
			(SELECT count(*) FROM spares WHERE state = 'READY' AND claimed_by IS NULL) AS spares`
		if err := b.admin.GetContext(ctx, &st, q); err != nil {
			return err
		}
		if st.Template && st.Spares >= spares {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("reserve not ready: %+v", st)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// gql posts one GraphQL operation to host and decodes the answer into out.
func (b *bench) gql(ctx context.Context, host, token, query string, vars map[string]any, out any) error {
	c := gqlclient.Client{URL: "http://" + b.srv.addr, HTTP: b.http}
	r, err := c.Post(ctx, host, token, query, vars)
	if err != nil {
		return err
	}
	if !r.OK() {
		return fmt.Errorf("%s: HTTP %d %s", host, r.Status, r.Raw)
	}
	if out == nil {
		return nil
	}
	return r.DecodeData(out)
}

// signup is one timed sign-up.
type signup struct {
	total    time.Duration // sending createTenant until READY is read
	mutation time.Duration // sending createTenant until its answer (PROVISIONING)
}

// signUp creates a tenant and times it until the tenantStatusChanged
// subscription says READY: how the console and any client waits, instead
// of polling tenant(slug), which at a poll every 2 ms took a good part of
// the two CPUs the sign-up itself needs (the owner's password hash ran at
// a third of its speed). The socket is opened and acknowledged before the
// clock starts, as a client's would be already.
func (b *bench) signUp(ctx context.Context, slug string) (signup, error) {
	ws, _, err := gqlclient.Dial(ctx, "http://"+b.srv.addr, gqlclient.DialOptions{Host: baseDomain})
	if err != nil {
		return signup{}, err
	}
	defer ws.CloseNow()
	if err := ws.Init(map[string]any{"Authorization": "Bearer " + adminToken}, 10*time.Second); err != nil {
		return signup{}, err
	}
	start := time.Now()
	const m = `mutation($in: CreateTenantInput!) { createTenant(input: $in) { tenant { status } } }`
	in := map[string]any{"organization": "Org " + slug, "slug": slug,
		"owner": map[string]any{"email": "owner@" + slug + ".test", "name": "Owner of " + slug, "password": password}}
	if err := b.gql(ctx, baseDomain, adminToken, m, map[string]any{"in": in}, nil); err != nil {
		return signup{}, err
	}
	mutation := time.Since(start)
	// the first event is the tenant's state when the subscription starts
	const sub = `subscription($s: String!) { tenantStatusChanged(slug: $s) { status lastError } }`
	if err := ws.Subscribe("1", sub, map[string]any{"s": slug}); err != nil {
		return signup{}, err
	}
	for {
		msg, err := ws.Next(2*time.Minute - time.Since(start))
		if err != nil {
			return signup{}, fmt.Errorf("tenant %s: waiting for READY: %w", slug, err)
		}
		e, err := msg.Event()
		switch {
		case err != nil:
			return signup{}, err
		case len(e.Errors) > 0 || e.Complete:
			return signup{}, fmt.Errorf("tenant %s: subscription ended: %+v", slug, e)
		}
		switch gqlclient.Field(e.Data, "tenantStatusChanged", "status") {
		case "READY":
			return signup{total: time.Since(start), mutation: mutation}, nil
		case "FAILED":
			return signup{}, fmt.Errorf("tenant %s FAILED: %v", slug, gqlclient.Field(e.Data, "tenantStatusChanged", "lastError"))
		}
	}
}

// createMany creates tenants from..to-1, o.parallel at a time.
func (b *bench) createMany(ctx context.Context, from, to int) error {
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	errc := make(chan error, b.o.parallel)
	for range b.o.parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= to || ctx.Err() != nil {
					return
				}
				if _, err := b.signUp(ctx, fmt.Sprintf("bench-%04d", i)); err != nil {
					errc <- err
					return
				}
				if (i+1)%100 == 0 {
					fmt.Fprintf(os.Stderr, "bench:   %d tenants\n", i+1)
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// tenant is one benchmark tenant.
type tenant struct {
	Slug   string `db:"slug"`
	DBName string `db:"db_name"`
	token  string
	host   string
}

func (b *bench) tenants(ctx context.Context) ([]*tenant, error) {
	var ts []*tenant
	if err := b.admin.SelectContext(ctx, &ts, `SELECT slug, db_name FROM tenants WHERE status = 'READY' ORDER BY slug`); err != nil {
		return nil, err
	}
	if len(ts) != b.o.tenants {
		return nil, fmt.Errorf("%d READY tenants, want %d", len(ts), b.o.tenants)
	}
	for _, t := range ts {
		t.host = t.Slug + "." + baseDomain
	}
	return ts, nil
}

// fill gives each tenant 9 more users, a project and o.issues issues whose
// titles start with the tenant's slug, 4 in 5 assigned, as the superuser.
func (b *bench) fill(ctx context.Context, ts []*tenant) error {
	return forEach(ctx, ts, 4, func(t *tenant) error {
		db, err := sqlx.Open("postgres", b.cluster.URL(t.DBName))
		if err != nil {
			return err
		}
		defer db.Close()
		tx, err := db.BeginTxx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		stmts := []string{
			`INSERT INTO users (id, email, name, role, password_hash)
			 SELECT gen_random_uuid(), 'member' || g || '@' || $1 || '.test', 'Member ' || g || ' of ' || $1, 'MEMBER',
				(SELECT password_hash FROM users WHERE role = 'OWNER' LIMIT 1)
			 FROM generate_series(1, 9) g`,
			`INSERT INTO projects (id, key, name, last_number) VALUES (gen_random_uuid(), 'BENCH', 'Project of ' || $1, $2)`,
			`WITH u AS (SELECT array_agg(id ORDER BY email) AS ids FROM users),
			      p AS (SELECT id FROM projects WHERE key = 'BENCH'),
			      o AS (SELECT id FROM users WHERE role = 'OWNER' LIMIT 1)
			 INSERT INTO issues (id, project_id, number, title, description, status, assignee_id, reporter_id, created_at, updated_at)
			 SELECT gen_random_uuid(), p.id, g, $1 || ' issue ' || g, 'Issue ' || g || ' of ' || $1,
				(ARRAY['TODO', 'IN_PROGRESS', 'DONE'])[1 + g % 3],
				CASE WHEN g % 5 = 0 THEN NULL ELSE u.ids[1 + g % 10] END, o.id,
				now() - ($2 - g) * interval '1 minute', now() - ($2 - g) * interval '1 minute'
			 FROM generate_series(1, $2) g, u, p, o`,
		}
		for i, s := range stmts {
			args := []any{t.Slug}
			if i > 0 {
				args = append(args, b.o.issues)
			}
			if _, err := tx.ExecContext(ctx, s, args...); err != nil {
				return fmt.Errorf("fill %s: %w", t.Slug, err)
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		// as autovacuum would soon after such a load (it would otherwise
		// run during the measurement): statistics and the visibility map
		_, err = db.ExecContext(ctx, `VACUUM ANALYZE`)
		return err
	})
}

func (b *bench) login(ctx context.Context, ts []*tenant) error {
	return forEach(ctx, ts, 2, func(t *tenant) error {
		var out struct {
			Login struct {
				Token string `json:"token"`
			} `json:"login"`
		}
		err := b.gql(ctx, t.host, "", `mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }`,
			map[string]any{"e": "owner@" + t.Slug + ".test", "p": password}, &out)
		t.token = out.Login.Token
		return err
	})
}

func forEach(ctx context.Context, ts []*tenant, n int, f func(*tenant) error) error {
	ch := make(chan *tenant)
	errc := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range ch {
				if err := f(t); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	var err error
loop:
	for _, t := range ts {
		select {
		case ch <- t:
		case err = <-errc:
			break loop
		case <-ctx.Done():
			err = ctx.Err()
			break loop
		}
	}
	close(ch)
	wg.Wait()
	close(errc)
	if err == nil {
		err = <-errc
	}
	return err
}

// profile records a CPU profile over the middle of the load run and the
// allocation profile at its end.
func (b *bench) profile(ctx context.Context) error {
	if err := os.MkdirAll(b.o.pprofDir, 0o755); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	secs := max(1, int((b.o.duration-4*time.Second)/time.Second))
	get := func(path, file string) error {
		resp, err := http.Get("http://" + b.srv.pprofAddr + path)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		f, err := os.Create(filepath.Join(b.o.pprofDir, file))
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(f, resp.Body)
		return err
	}
	if err := get(fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), "cpu.pprof"); err != nil {
		return err
	}
	return get("/debug/pprof/allocs", "allocs.pprof")
}

// result is one load run.
type result struct {
	requests, failed, leaks int64
	firstFailure            string
	elapsed                 time.Duration
	latencies               []time.Duration
	peakTenantConns         int
	peakBackends            int
	sessions                int64 // backends started in the tenant databases during the run
	peakRSS, lastRSS        int64
	cpu                     cpuSample // spent during the run
}

// issuesAnswer is the JSON both the server and the baseline write.
type issuesAnswer struct {
	Data struct {
		Issues struct {
			Edges []struct {
				Node struct {
					ID       string `json:"id"`
					Number   int    `json:"number"`
					Title    string `json:"title"`
					Status   string `json:"status"`
					Assignee *struct {
						ID   string `json:"id"`
						Name string `json:"name"`
					} `json:"assignee"`
				} `json:"node"`
			} `json:"edges"`
		} `json:"issues"`
	} `json:"data"`
	Errors []json.RawMessage `json:"errors"`
}

// workload is what a load run sends (the body, with each tenant's token
// unless noToken) and how it checks an answer: ok false for a wrong
// answer, leaks the issues of another tenant.
type workload struct {
	body    []byte
	noToken bool
	check   func(raw []byte, t *tenant) (leaks int64, ok bool)
}

// issuesWorkload is issuesQuery, whose answer both the server and the
// baseline write.
func (b *bench) issuesWorkload() workload {
	body, _ := json.Marshal(map[string]string{"query": issuesQuery})
	return workload{body: body, check: func(raw []byte, t *tenant) (leaks int64, ok bool) {
		var a issuesAnswer
		if json.Unmarshal(raw, &a) != nil || len(a.Errors) > 0 || len(a.Data.Issues.Edges) != min(20, b.o.issues) {
			return 0, false
		}
		prefix := t.Slug + " issue "
		for _, e := range a.Data.Issues.Edges {
			if !strings.HasPrefix(e.Node.Title, prefix) {
				leaks++
			}
		}
		return leaks, true
	}}
}

// load runs o.clients clients for o.duration against baseURL, each
// request for a random tenant of ts, checking every answer; it samples
// pg_stat_activity (and the RSS of pid, when not 0) every 100 ms.
func (b *bench) load(ctx context.Context, baseURL string, ts []*tenant, pid int, w workload) (result, error) {
	var res result
	body := w.body
	token := func(req *http.Request, t *tenant) {
		if !w.noToken {
			req.Header.Set("Authorization", "Bearer "+t.token)
		}
	}
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			var c struct {
				Tenant int `db:"tenant"`
				All    int `db:"all"`
			}
			const q = `SELECT count(*) FILTER (WHERE usename ~ $1) AS tenant, count(*) FILTER (WHERE backend_type = 'client backend') AS all FROM pg_stat_activity`
			if err := b.admin.GetContext(ctx, &c, q, tenantRolePattern); err == nil {
				res.peakTenantConns = max(res.peakTenantConns, c.Tenant)
				res.peakBackends = max(res.peakBackends, c.All-1) // not our own
			}
			if pid != 0 {
				res.lastRSS = procStatus(pid, "VmRSS")
				res.peakRSS = max(res.peakRSS, res.lastRSS)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	// Warm up: one request per tenant, unmeasured, so that the run sees a
	// server in its steady state (as many tenant connections open as the
	// budget keeps) rather than one just started.
	if err := forEach(ctx, ts, b.o.clients, func(t *tenant) error {
		req, _ := http.NewRequestWithContext(ctx, "POST", baseURL+"/graphql", bytes.NewReader(body))
		req.Host = t.host
		req.Header.Set("Content-Type", "application/json")
		token(req, t)
		resp, err := b.http.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}); err != nil {
		return res, fmt.Errorf("warm up: %w", err)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	deadline := time.Now().Add(b.o.duration)
	start := time.Now()
	pm := postmasterPID(b.cluster.DataDir())
	cpu0 := readCPU(pid, pm)
	sessions0, err := b.tenantSessions(ctx)
	if err != nil {
		return res, err
	}
	for c := range b.o.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pick := b.picker(ts, uint64(c))
			var lat []time.Duration
			var n, failed, leaks int64
			first := ""
			fail := func(s string) {
				failed++
				if first == "" {
					first = s
				}
			}
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t := pick()
				req, _ := http.NewRequestWithContext(ctx, "POST", baseURL+"/graphql", bytes.NewReader(body))
				req.Host = t.host
				req.Header.Set("Content-Type", "application/json")
				token(req, t)
				t0 := time.Now()
				resp, err := b.http.Do(req)
				if err != nil {
					fail(err.Error())
					continue
				}
				raw, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				lat = append(lat, time.Since(t0))
				n++
				switch {
				case err != nil:
					fail(err.Error())
				case resp.StatusCode != 200:
					fail(fmt.Sprintf("HTTP %d %s", resp.StatusCode, raw))
				default:
					l, ok := w.check(raw, t)
					if !ok {
						fail(string(raw))
					}
					leaks += l
				}
			}
			mu.Lock()
			res.latencies = append(res.latencies, lat...)
			res.requests += n
			res.failed += failed
			res.leaks += leaks
			if res.firstFailure == "" {
				res.firstFailure = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.cpu = readCPU(pid, pm).sub(cpu0)
	sessions1, err := b.tenantSessions(ctx)
	if err != nil {
		return res, err
	}
	res.sessions = sessions1 - sessions0
	close(stop)
	<-sampled
	slices.Sort(res.latencies)
	return res, ctx.Err()
}

// picker returns a client's choice of tenant for each request: uniform,
// or Zipf-distributed over ts in their order with -zipf (the first tenant
// the busiest). seed tells the clients' sequences apart.
func (b *bench) picker(ts []*tenant, seed uint64) func() *tenant {
	if b.o.zipf <= 1 || len(ts) < 2 {
		return func() *tenant { return ts[rand.IntN(len(ts))] }
	}
	z := rand.NewZipf(rand.New(rand.NewPCG(seed, uint64(time.Now().UnixNano()))), b.o.zipf, 1, uint64(len(ts)-1))
	return func() *tenant { return ts[z.Uint64()] }
}

// tenantSessions is the number of backends ever started in the tenant
// databases (pg_stat_database.sessions; a backend reports its stats about
// once a second, so a run's difference is its churn, give or take).
func (b *bench) tenantSessions(ctx context.Context) (int64, error) {
	var n int64
	const q = `SELECT COALESCE(sum(sessions), 0) FROM pg_stat_database WHERE datname ~ $1`
	if err := b.admin.GetContext(ctx, &n, q, tenantRolePattern); err != nil {
		return 0, fmt.Errorf("read sessions: %w", err)
	}
	return n, nil
}

func (r result) rate() float64 { return float64(r.requests) / r.elapsed.Seconds() }

func (r result) pct(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	return r.latencies[min(len(r.latencies)-1, int(p*float64(len(r.latencies))))]
}

// compared is a load run on a server with extra environment (-compare).
type compared struct {
	env string
	res result
}

type report struct {
	o                          options
	signupSpare, signupNoSpare []signup
	bulkCreate, fill           time.Duration
	bulkCount                  int
	gql, base, peer, floor     result
	peerErr                    error // PostGraphile was not measured
	floorErr                   error // the pgbench floor was not measured
	// the floor with the clients spread over several tenant databases
	floorSpread    result
	floorSpreadErr error
	gqlHWM         int64
	compared       []compared
}

// medians returns the p50 of the total and of the mutation alone.
// inOrder lists the sign-ups' times in the order they ran, in ms.
func inOrder(ss []signup) string {
	var out []string
	for _, s := range ss {
		out = append(out, strconv.FormatFloat(float64(s.total.Microseconds())/1000, 'f', 1, 64))
	}
	return strings.Join(out, ", ")
}

func medians(ss []signup) (total, mutation time.Duration) {
	var t, m []time.Duration
	for _, s := range ss {
		t, m = append(t, s.total), append(m, s.mutation)
	}
	return median(t), median(m)
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// pgSettingName is what -pg-conf accepts as a setting's name (it is
// spliced into ALTER SYSTEM).
var pgSettingName = regexp.MustCompile(`^[a-z_]+$`)

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func (rep report) print(w io.Writer) {
	o := rep.o
	traffic := "uniform over tenants"
	if o.zipf > 1 {
		traffic = fmt.Sprintf("Zipf s=%.2f over tenants", o.zipf)
	}
	fmt.Fprintf(w, "\ntenantql benchmark: %d tenants x %d issues, %d clients, %s per run, traffic %s, MAX_DB_CONNECTIONS=%d, shared_buffers %s, PostgreSQL settings: %s\n",
		o.tenants, o.issues, o.clients, o.duration, traffic, o.maxConns, cmp.Or(o.sharedBuffers, "default"), cmp.Or(o.pgConf, "default"))
	st, sm := medians(rep.signupSpare)
	nt, nm := medians(rep.signupNoSpare)
	if o.signups > 0 {
		fmt.Fprintf(w, "sign-up (createTenant sent -> READY seen by a tenantStatusChanged subscription, n=%d each): p50 %s with spares (SPARE_TENANTS=%d), p50 %s without (SPARE_TENANTS=0: template clone)\n",
			len(rep.signupSpare), ms(st), o.spares, ms(nt))
		fmt.Fprintf(w, "          of which the createTenant answer itself (the row, the owner's password sealed): p50 %s and %s\n", ms(sm), ms(nm))
		fmt.Fprintf(w, "          each with spares, in order (a server started just before them): %s\n", inOrder(rep.signupSpare))
	}
	if rep.bulkCount > 0 {
		fmt.Fprintf(w, "bulk creation: %d tenants in %s (%.1f/s, %d at a time); fill: %s\n",
			rep.bulkCount, rep.bulkCreate.Round(time.Millisecond), float64(rep.bulkCount)/rep.bulkCreate.Seconds(), o.parallel, rep.fill.Round(time.Millisecond))
	}
	line := func(name string, r result) {
		fmt.Fprintf(w, "%-9s %8.0f req/s  p50 %-9s p99 %-9s requests %d  failed %d  leaks %d  peak PostgreSQL: %d tenant connections, %d client backends",
			name, r.rate(), ms(r.pct(0.50)), ms(r.pct(0.99)), r.requests, r.failed, r.leaks, r.peakTenantConns, r.peakBackends)
		if r.peakRSS > 0 {
			fmt.Fprintf(w, "  server RSS peak %.1f MB, %.1f MB at the end", float64(r.peakRSS)/(1<<20), float64(r.lastRSS)/(1<<20))
		}
		fmt.Fprintf(w, "\n          backends started in tenant databases during the run (connection churn): %d\n", r.sessions)
		if r.requests > 0 {
			per := func(d time.Duration) string { return fmt.Sprintf("%.3f ms", d.Seconds()*1000/float64(r.requests)) }
			fmt.Fprintf(w, "          CPU per request: whole machine %s", per(r.cpu.busy))
			if r.cpu.server > 0 {
				fmt.Fprintf(w, ", server %s", per(r.cpu.server))
			}
			fmt.Fprintf(w, ", PostgreSQL %s; CPU stolen by the hypervisor %.1f%% of the run\n",
				per(r.cpu.postgres), 100*r.cpu.steal.Seconds()/r.elapsed.Seconds()/float64(runtime.NumCPU()))
		}
		if r.firstFailure != "" {
			fmt.Fprintf(w, "          first failure: %.300s\n", r.firstFailure)
		}
	}
	line("graphql", rep.gql)
	fmt.Fprintf(w, "          server VmHWM (peak RSS since start, set-up included) %.1f MB\n", float64(rep.gqlHWM)/(1<<20))
	for _, c := range rep.compared {
		fmt.Fprintf(w, "graphql with %s:\n", c.env)
		line("", c.res)
		if rep.gql.rate() > 0 {
			fmt.Fprintf(w, "          against the first graphql run: %.0f%%\n", 100*c.res.rate()/rep.gql.rate())
		}
	}
	if o.postgraphile != "" && rep.peerErr == nil {
		line("postgraphile", rep.peer)
	}
	if o.baseline {
		line("baseline", rep.base)
		if rep.base.rate() > 0 {
			fmt.Fprintf(w, "graphql/baseline: %.0f%%\n", 100*rep.gql.rate()/rep.base.rate())
		}
	}
	if o.pgbench && rep.floorErr == nil {
		f := rep.floor
		fmt.Fprintf(w, "pgbench   %8.0f tx/s   p50 %-9s p99 %-9s transactions %d  failed %d (one joined statement, prepared, on one tenant database, over %s from when every client had connected)\n",
			f.rate(), ms(f.pct(0.50)), ms(f.pct(0.99)), f.requests, f.failed, f.elapsed.Round(time.Millisecond))
		if f.requests > 0 {
			fmt.Fprintf(w, "          CPU per transaction: whole machine (pgbench included) %.3f ms, PostgreSQL %.3f ms\n",
				perRequest(f, f.cpu.busy), perRequest(f, f.cpu.postgres))
		}
		if f := rep.floorSpread; rep.spreadMeasured() {
			fmt.Fprintf(w, "pgbench   %8.0f tx/s   p50 %-9s p99 %-9s transactions %d  failed %d (the same, the clients spread over %d tenant databases, a pgbench each, held to tenantql's rate)\n",
				f.rate(), ms(f.pct(0.50)), ms(f.pct(0.99)), f.requests, f.failed, rep.spreadDatabases())
			if f.requests > 0 {
				fmt.Fprintf(w, "          CPU per transaction: whole machine (pgbench included) %.3f ms, PostgreSQL %.3f ms\n",
					perRequest(f, f.cpu.busy), perRequest(f, f.cpu.postgres))
			}
		}
	}
	rep.printSideBySide(w)
}
