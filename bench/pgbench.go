package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/tenantql/tenantql/pglocal"
	"github.com/tenantql/tenantql/store"
)

// The floor of the side-by-side table: PostgreSQL's own pgbench running
// the page issuesQuery asks for as ONE joined statement, prepared, on one
// tenant database (as PostGraphile's row), with the same clients. No
// server, no JSON, no GraphQL: what PostgreSQL itself spends on the page
// is what tenantql's PostgreSQL CPU per request is compared with.

// floorStatement is the page of issuesQuery in one statement: the issue
// fields and the assignee, newest first in the store's page order
// (store/issues.go: created_at DESC, id DESC), 21 rows as the store reads
// first+1 to know whether a next page follows.
const floorStatement = `SELECT i.id, i.number, i.title, i.status, a.id, a.name FROM issues i LEFT JOIN users a ON a.id = i.assignee_id ORDER BY i.created_at DESC, i.id DESC LIMIT 21`

// floorWarmup is how long pgbench runs before the measured window opens,
// so that the window holds no backend start (as the other runs' warm-up
// request per tenant keeps theirs free of them).
const floorWarmup = 2 * time.Second

// errNoPgbench is returned when no pgbench executable can be found.
var errNoPgbench = errors.New("pgbench is not installed")

// findPgbench returns the pgbench beside the initdb the bench's cluster
// runs on (the same PostgreSQL version), else the one on PATH.
func findPgbench() (string, error) {
	dir, err := pglocal.FindBinDir()
	if err == nil {
		p := filepath.Join(dir, "pgbench")
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	if p, err := exec.LookPath("pgbench"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w (looked beside initdb in %q and on PATH)", errNoPgbench, dir)
}

// runFloor checks that floorStatement reads the store's page of t, then
// runs it under pgbench with o.clients clients for floorWarmup plus
// o.duration, and measures the window after the warm-up: the
// transactions that ended in it, their latencies, and the CPU of the
// bench's cluster over it. An error means the floor was not measured.
func (b *bench) runFloor(ctx context.Context, t *tenant) (result, error) {
	bin, err := findPgbench()
	if err != nil {
		return result{}, err
	}
	if err := b.checkFloorStatement(ctx, t); err != nil {
		return result{}, err
	}
	dir, err := os.MkdirTemp(b.dir, "pgbench-")
	if err != nil {
		return result{}, err
	}
	script := filepath.Join(dir, "page.sql")
	if err := os.WriteFile(script, []byte(floorStatement+";\n"), 0o644); err != nil {
		return result{}, err
	}
	env, err := libpqEnv(b.cluster.URL(t.DBName))
	if err != nil {
		return result{}, err
	}
	secs := int(math.Ceil((floorWarmup + b.o.duration + time.Second).Seconds()))
	cmd := exec.CommandContext(ctx, bin, "-n", "-M", "prepared", "-f", script,
		"-c", strconv.Itoa(b.o.clients), "-j", strconv.Itoa(min(b.o.clients, runtime.NumCPU())),
		"-T", strconv.Itoa(secs), "--log", "--log-prefix", filepath.Join(dir, "tx"))
	var out bytes.Buffer
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = append(os.Environ(), env...), dir, &out, &out
	if err := cmd.Start(); err != nil {
		return result{}, fmt.Errorf("start pgbench: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	win, err := measureWindow(ctx, exited, postmasterPID(b.cluster.DataDir()), b.o.duration)
	if err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return result{}, fmt.Errorf("pgbench: %w: %s", err, lastLines(out.String(), 5))
	}
	if err := <-exited; err != nil {
		return result{}, fmt.Errorf("pgbench: %w: %s", err, lastLines(out.String(), 5))
	}
	return readFloorLogs(dir, win)
}

// window is the measured part of the pgbench run.
type window struct {
	start, end time.Time
	cpu        cpuSample
}

// measureWindow waits floorWarmup, then reads the cluster's CPU over the
// next d. pgbench exiting before the window has closed is an error.
func measureWindow(ctx context.Context, exited <-chan error, postmaster int, d time.Duration) (window, error) {
	wait := func(d time.Duration) error {
		select {
		case err := <-exited:
			return fmt.Errorf("exited before the measured window closed (%v)", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
			return nil
		}
	}
	if err := wait(floorWarmup); err != nil {
		return window{}, err
	}
	w := window{start: time.Now()}
	cpu0 := readCPU(0, postmaster)
	if err := wait(d); err != nil {
		return window{}, err
	}
	w.cpu, w.end = readCPU(0, postmaster).sub(cpu0), time.Now()
	return w, nil
}

// readFloorLogs turns pgbench's per-transaction logs in dir (one a
// thread: "client_id transaction_no time script_no time_epoch time_us",
// time in µs or "failed", the epoch pair the transaction's end) into the
// result of win: the transactions that ended in it.
func readFloorLogs(dir string, win window) (result, error) {
	files, err := filepath.Glob(filepath.Join(dir, "tx.*"))
	if err != nil || len(files) == 0 {
		return result{}, fmt.Errorf("pgbench wrote no transaction log in %s", dir)
	}
	res := result{elapsed: win.end.Sub(win.start), cpu: win.cpu}
	late := map[string]bool{} // clients whose first transaction ended inside the window
	seen := map[string]bool{}
	for _, f := range files {
		if err := scanFloorLog(f, func(client string, latency time.Duration, failed bool, end time.Time) {
			if !seen[client] {
				seen[client], late[client] = true, end.After(win.start)
			}
			if end.Before(win.start) || end.After(win.end) {
				return
			}
			res.requests++
			if failed {
				res.failed++
				res.firstFailure = "a transaction failed (pgbench's log says no more)"
				return
			}
			res.latencies = append(res.latencies, latency)
		}); err != nil {
			return result{}, err
		}
	}
	if n := countTrue(late); n > 0 {
		fmt.Fprintf(os.Stderr, "bench: pgbench: %d clients finished their first transaction after the warm-up: their backend starts fall in the measured window\n", n)
	}
	slices.Sort(res.latencies)
	return res, nil
}

// scanFloorLog calls f for each transaction of one pgbench log file.
func scanFloorLog(path string, f func(client string, latency time.Duration, failed bool, end time.Time)) error {
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 {
			return fmt.Errorf("pgbench log %s: short line %q", path, sc.Text())
		}
		sec, err1 := strconv.ParseInt(fs[4], 10, 64)
		usec, err2 := strconv.ParseInt(fs[5], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("pgbench log %s: %w", path, err)
		}
		end := time.Unix(sec, usec*1000)
		if fs[2] == "failed" {
			f(fs[0], 0, true, end)
			continue
		}
		us, err := strconv.ParseInt(fs[2], 10, 64)
		if err != nil {
			return fmt.Errorf("pgbench log %s: latency %q: %w", path, fs[2], err)
		}
		f(fs[0], time.Duration(us)*time.Microsecond, false, end)
	}
	return sc.Err()
}

// checkFloorStatement fails unless floorStatement reads the same issues
// in the same order as the store's page on t's database: the floor must
// be the page tenantql serves, not a cheaper one.
func (b *bench) checkFloorStatement(ctx context.Context, t *tenant) error {
	db, err := sqlx.Open("postgres", b.cluster.URL(t.DBName))
	if err != nil {
		return err
	}
	defer db.Close()
	page, err := store.New(db).ListIssues(ctx, store.IssueFilter{}, store.PageArgs{First: 20, SkipCount: true, JoinAssignee: true})
	if err != nil {
		return fmt.Errorf("check the floor statement: the store's page: %w", err)
	}
	var ids []uuid.UUID
	if err := db.SelectContext(ctx, &ids, `SELECT id FROM (`+floorStatement+`) page`); err != nil {
		return fmt.Errorf("check the floor statement: %w", err)
	}
	if len(page.Items) == 0 || len(ids) < len(page.Items) {
		return fmt.Errorf("check the floor statement: %d rows for a page of %d", len(ids), len(page.Items))
	}
	for i, is := range page.Items {
		if ids[i] != is.ID {
			return fmt.Errorf("check the floor statement: row %d is issue %s, the store's page has %s", i, ids[i], is.ID)
		}
	}
	return nil
}

// libpqEnv turns a postgres:// URL into libpq's environment variables,
// so that the password reaches pgbench without showing on its command
// line.
func libpqEnv(rawURL string) ([]string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("cluster URL: %w", err)
	}
	pw, _ := u.User.Password()
	return []string{"PGHOST=" + u.Hostname(), "PGPORT=" + u.Port(), "PGUSER=" + u.User.Username(),
		"PGPASSWORD=" + pw, "PGDATABASE=" + strings.TrimPrefix(u.Path, "/"), "PGSSLMODE=disable",
		"PGAPPNAME=pgbench"}, nil
}

func countTrue(m map[string]bool) (n int) {
	for _, v := range m {
		if v {
			n++
		}
	}
	return n
}
