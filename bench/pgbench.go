package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
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

// floorSlack is how much longer than o.duration pgbench runs: the
// measured window opens only once every client has finished a first
// transaction (connected and prepared), so that it holds no backend start,
// as the other runs' warm-up keeps theirs free of them.
const floorSlack = 10 * time.Second

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

// runFloor checks that floorStatement reads the store's page of ts[0],
// then runs it under pgbench with o.clients clients and measures
// o.duration of it once every client is running: the transactions that
// ended in that window, their latencies, and the CPU of the bench's
// cluster over it. With one tenant, one pgbench runs every client on its
// database; with more, the clients are spread over min(clients, tenants)
// of their databases, a pgbench each (a PostgreSQL connection serves one
// database): what the same statement costs PostgreSQL when its backends
// work in many databases, as tenantql's do. A rate above 0 holds them
// all together to that many transactions a second (pgbench -R): a
// backend's CPU per statement depends on how often it runs (the
// cluster's background work is spread over fewer statements, and a
// backend woken for each one runs on cold caches), so the floor fit to
// compare with tenantql's figure runs at tenantql's rate. An error means
// the floor was not measured.
func (b *bench) runFloor(ctx context.Context, ts []*tenant, rate float64) (result, error) {
	bin, err := findPgbench()
	if err != nil {
		return result{}, err
	}
	if err := b.checkFloorStatement(ctx, ts[0]); err != nil {
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
	secs := strconv.Itoa(int(math.Ceil((b.o.duration + floorSlack).Seconds())))
	dbs := min(len(ts), b.o.clients)
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for k := range dbs {
		clients := b.o.clients / dbs
		if k < b.o.clients%dbs {
			clients++
		}
		env, err := libpqEnv(b.cluster.URL(ts[k].DBName))
		if err != nil {
			return result{}, err
		}
		args := []string{"-n", "-M", "prepared", "-f", script,
			"-c", strconv.Itoa(clients), "-j", strconv.Itoa(min(clients, runtime.NumCPU())),
			"-T", secs, "--log", "--log-prefix", filepath.Join(dir, fmt.Sprintf("tx%d", k))}
		if rate > 0 { // this pgbench's share of it
			args = append(args, "-R", strconv.FormatFloat(rate*float64(clients)/float64(b.o.clients), 'f', 1, 64))
		}
		cmd := exec.CommandContext(ctx, bin, args...)
		out := new(bytes.Buffer)
		cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = append(os.Environ(), env...), dir, out, out
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	stop := make(chan struct{})
	samples := sampleCPU(stop, postmasterPID(b.cluster.DataDir()))
	var errs []error
	for k, cmd := range cmds {
		if err := cmd.Start(); err != nil {
			errs = append(errs, fmt.Errorf("start pgbench: %w", err))
			cmds = cmds[:k]
			break
		}
	}
	for k, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("pgbench on %s: %w: %s", ts[k].DBName, err, lastLines(outs[k].String(), 5)))
		}
	}
	close(stop)
	if err := errors.Join(errs...); err != nil {
		return result{}, err
	}
	txs, err := readFloorLogs(dir)
	if err != nil {
		return result{}, err
	}
	win, err := floorWindow(txs, <-samples, b.o.duration)
	if err != nil {
		return result{}, err
	}
	return win.result(txs), nil
}

// cpuAt is the cluster's CPU read at a time.
type cpuAt struct {
	at  time.Time
	cpu cpuSample
}

// sampleCPU reads the CPU of the cluster every 100 ms until stop is
// closed, and then sends the samples.
func sampleCPU(stop <-chan struct{}, postmaster int) <-chan []cpuAt {
	out := make(chan []cpuAt, 1)
	go func() {
		var samples []cpuAt
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			samples = append(samples, cpuAt{at: time.Now(), cpu: readCPU(0, postmaster)})
			select {
			case <-stop:
				out <- samples
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// floorTx is one transaction of pgbench's log.
type floorTx struct {
	client  string
	end     time.Time
	latency time.Duration
	failed  bool
}

// window is the measured part of the pgbench run.
type window struct {
	start, end time.Time
	cpu        cpuSample // spent between start and end
}

// floorWindow picks the measured window: from the first CPU sample taken
// after every client has finished its first transaction, to the last one
// no later than d after it while every client was still running. It
// fails when that leaves less than half of d.
func floorWindow(txs []floorTx, samples []cpuAt, d time.Duration) (window, error) {
	first, last := map[string]time.Time{}, map[string]time.Time{}
	for _, tx := range txs {
		if f, ok := first[tx.client]; !ok || tx.end.Before(f) {
			first[tx.client] = tx.end
		}
		if tx.end.After(last[tx.client]) {
			last[tx.client] = tx.end
		}
	}
	var allRunning, oneStopped time.Time // all clients past their first transaction; one past its last
	for c := range first {
		if first[c].After(allRunning) {
			allRunning = first[c]
		}
		if oneStopped.IsZero() || last[c].Before(oneStopped) {
			oneStopped = last[c]
		}
	}
	i := slices.IndexFunc(samples, func(s cpuAt) bool { return !s.at.Before(allRunning) })
	if i < 0 {
		return window{}, errors.New("pgbench: no CPU sample after every client had started")
	}
	j := i
	for k := i + 1; k < len(samples) && !samples[k].at.After(oneStopped) && samples[k].at.Sub(samples[i].at) <= d; k++ {
		j = k
	}
	w := window{start: samples[i].at, end: samples[j].at, cpu: samples[j].cpu.sub(samples[i].cpu)}
	if w.end.Sub(w.start) < d/2 {
		return window{}, fmt.Errorf("pgbench: only %s with every client running (connecting took until %s into the run)",
			w.end.Sub(w.start).Round(time.Millisecond), allRunning.Sub(samples[0].at).Round(time.Millisecond))
	}
	return w, nil
}

// result is the load run of w: the transactions of txs that ended in it.
func (w window) result(txs []floorTx) result {
	res := result{elapsed: w.end.Sub(w.start), cpu: w.cpu}
	for _, tx := range txs {
		if !tx.end.After(w.start) || tx.end.After(w.end) {
			continue
		}
		res.requests++
		if tx.failed {
			res.failed++
			res.firstFailure = "a transaction failed (pgbench's log says no more)"
			continue
		}
		res.latencies = append(res.latencies, tx.latency)
	}
	slices.Sort(res.latencies)
	return res
}

// readFloorLogs reads pgbench's per-transaction logs in dir (one a
// thread of each pgbench, named "tx<k>.<pid>[.<thread>]": "client_id
// transaction_no time script_no time_epoch time_us", time in µs or
// "failed", the epoch pair the transaction's end). A client is named
// "tx<k>/<client_id>": each pgbench numbers its clients from 0.
func readFloorLogs(dir string) ([]floorTx, error) {
	files, err := filepath.Glob(filepath.Join(dir, "tx*.*"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("pgbench wrote no transaction log in %s", dir)
	}
	var txs []floorTx
	for _, f := range files {
		run, _, _ := strings.Cut(filepath.Base(f), ".")
		if txs, err = scanFloorLog(f, run+"/", txs); err != nil {
			return nil, err
		}
	}
	return txs, nil
}

// scanFloorLog appends the transactions of one pgbench log file to txs,
// their client ids prefixed with run.
func scanFloorLog(path, run string, txs []floorTx) ([]floorTx, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 {
			return nil, fmt.Errorf("pgbench log %s: short line %q", path, sc.Text())
		}
		sec, err1 := strconv.ParseInt(fs[4], 10, 64)
		usec, err2 := strconv.ParseInt(fs[5], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("pgbench log %s: %w", path, err)
		}
		tx := floorTx{client: run + fs[0], end: time.Unix(sec, usec*1000), failed: fs[2] == "failed"}
		if !tx.failed {
			us, err := strconv.ParseInt(fs[2], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("pgbench log %s: latency %q: %w", path, fs[2], err)
			}
			tx.latency = time.Duration(us) * time.Microsecond
		}
		txs = append(txs, tx)
	}
	return txs, sc.Err()
}

// checkFloorStatement fails unless floorStatement reads the same issues,
// with the same assignees, in the same order as the store's page on t's
// database: the floor must be the page tenantql serves, not a cheaper one.
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
	rows, err := floorRows(ctx, db)
	if err != nil {
		return fmt.Errorf("check the floor statement: %w", err)
	}
	if len(page.Items) == 0 || len(rows) < len(page.Items) {
		return fmt.Errorf("check the floor statement: %d rows for a page of %d", len(rows), len(page.Items))
	}
	for i, is := range page.Items {
		want := floorRow{id: is.ID}
		if is.AssigneeID != nil {
			want.assignee = uuid.NullUUID{UUID: *is.AssigneeID, Valid: true}
		}
		if rows[i] != want {
			return fmt.Errorf("check the floor statement: row %d is %+v, the store's page has %+v", i, rows[i], want)
		}
	}
	return nil
}

// floorRow is what checkFloorStatement compares of a row.
type floorRow struct {
	id       uuid.UUID
	assignee uuid.NullUUID
}

// floorRows runs floorStatement once.
func floorRows(ctx context.Context, db *sqlx.DB) ([]floorRow, error) {
	rows, err := db.QueryContext(ctx, floorStatement)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []floorRow
	for rows.Next() {
		var r floorRow
		var number int
		var title, status string
		var name sql.NullString
		if err := rows.Scan(&r.id, &number, &title, &status, &r.assignee, &name); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
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
