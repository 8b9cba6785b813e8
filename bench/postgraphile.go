package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// PostGraphile (v4, Node) is the GraphQL server a PostgreSQL user would
// pick instead of tenantql. It serves one database, so the benchmark runs
// it on ONE of its tenant databases while tenantql serves all of them
// (which favours PostGraphile), with the same clients, right after
// tenantql's load run. Its package and lock file are pinned outside the
// repository (-postgraphile, ../shared/peers/postgraphile); the benchmark
// installs them with `npm ci` in its temporary directory.

// peerQuery is tenantql's issuesQuery in PostGraphile's schema (the
// peer's README): the same 20 newest issues with their assignees.
const peerQuery = `{ allIssues(first: 20, orderBy: CREATED_AT_DESC) { nodes { id number title status userByAssigneeId { id name } } } }`

// peer is a running PostGraphile.
type peer struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{}
	out  *bytes.Buffer // its output, for the error when it does not start
}

// installPeer copies the package and lock file of src into dir and runs
// `npm ci` there; it returns the postgraphile executable.
func installPeer(ctx context.Context, src, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for _, f := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			return "", err
		}
	}
	var out bytes.Buffer
	npm := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--omit=dev")
	npm.Dir, npm.Stdout, npm.Stderr = dir, &out, &out
	if err := npm.Run(); err != nil {
		return "", fmt.Errorf("npm ci: %w: %s", err, lastLines(out.String(), 5))
	}
	bin := filepath.Join(dir, "node_modules", ".bin", "postgraphile")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("npm ci installed no postgraphile: %w", err)
	}
	return bin, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

// startPeer starts PostGraphile on dbURL and waits until it answers.
// Node runs the executable itself (its #! line), so the process's CPU
// time and RSS are PostGraphile's.
func startPeer(ctx context.Context, bin, dbURL string) (*peer, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	host, port, _ := strings.Cut(addr, ":")
	p := &peer{addr: addr, done: make(chan struct{}), out: &bytes.Buffer{}}
	p.cmd = exec.Command(bin, "-c", dbURL+"&application_name=postgraphile",
		"--schema", "public", "--host", host, "--port", port, "--disable-query-log", "--disable-graphiql")
	p.cmd.Env = append(os.Environ(), "NODE_ENV=production")
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Post("http://"+addr+"/graphql", "application/json", strings.NewReader(`{"query":"{ __typename }"}`))
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p, nil
			}
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("postgraphile exited: %s", lastLines(p.out.String(), 5))
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, errors.New("postgraphile did not start within 60 s")
		}
	}
}

func (p *peer) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// peerAnswer is PostGraphile's answer to peerQuery.
type peerAnswer struct {
	Data struct {
		AllIssues struct {
			Nodes []struct {
				ID       string `json:"id"`
				Number   int    `json:"number"`
				Title    string `json:"title"`
				Status   string `json:"status"`
				Assignee *struct {
					ID   string `json:"id"`
					Name string `json:"name"`
				} `json:"userByAssigneeId"`
			} `json:"nodes"`
		} `json:"allIssues"`
	} `json:"data"`
	Errors []json.RawMessage `json:"errors"`
}

// peerWorkload sends peerQuery without a token (PostGraphile has no
// tenants or users here) and checks the answer as tenantql's is checked.
func (b *bench) peerWorkload() workload {
	body, _ := json.Marshal(map[string]string{"query": peerQuery})
	return workload{body: body, noToken: true, check: func(raw []byte, t *tenant) (leaks int64, ok bool) {
		var a peerAnswer
		if json.Unmarshal(raw, &a) != nil || len(a.Errors) > 0 || len(a.Data.AllIssues.Nodes) != min(20, b.o.issues) {
			return 0, false
		}
		for _, n := range a.Data.AllIssues.Nodes {
			if !strings.HasPrefix(n.Title, t.Slug+" issue ") {
				leaks++
			}
		}
		return leaks, true
	}}
}

// runPeer installs (once started by run) and loads PostGraphile on the
// first tenant's database. An error means PostGraphile could not be
// measured; the benchmark reports it and goes on.
func (b *bench) runPeer(ctx context.Context, install <-chan peerInstall, ts []*tenant) (result, error) {
	in := <-install
	if in.err != nil {
		return result{}, fmt.Errorf("install PostGraphile from %s: %w", b.o.postgraphile, in.err)
	}
	t := ts[0]
	p, err := startPeer(ctx, in.bin, b.cluster.URL(t.DBName))
	if err != nil {
		return result{}, err
	}
	defer p.stop()
	return b.load(ctx, "http://"+p.addr, []*tenant{t}, p.cmd.Process.Pid, b.peerWorkload())
}

// peerInstall is the outcome of installPeer.
type peerInstall struct {
	bin string
	err error
}

// printSideBySide prints the comparison of the issue's table: tenantql
// over every tenant, PostGraphile over one tenant database, the net/http
// baseline, pgbench's floor, and tenantql's ratios to PostGraphile and to
// the floor.
func (rep report) printSideBySide(w io.Writer) {
	o := rep.o
	fmt.Fprintf(w, "\nside by side (one run, %d closed-loop clients, %s each):\n", o.clients, o.duration)
	fmt.Fprintf(w, "| | req/s | p99 ms | server CPU ms/req | PostgreSQL CPU ms/req | peak RSS MiB |\n|---|---:|---:|---:|---:|---:|\n")
	row := func(name string, r result) {
		server, rss := "—", "—"
		if r.cpu.server > 0 {
			server = fmt.Sprintf("%.3f", perRequest(r, r.cpu.server))
		}
		if r.peakRSS > 0 {
			rss = fmt.Sprintf("%.0f", float64(r.peakRSS)/(1<<20))
		}
		fmt.Fprintf(w, "| %s | %.0f | %.1f | %s | %.3f | %s |\n",
			name, r.rate(), float64(r.pct(0.99).Microseconds())/1000, server, perRequest(r, r.cpu.postgres), rss)
	}
	row(fmt.Sprintf("tenantql, %d databases", o.tenants), rep.gql)
	if o.postgraphile != "" {
		if rep.peerErr != nil {
			fmt.Fprintf(w, "| PostGraphile | NOT MEASURED: %.200s | | | | |\n", rep.peerErr)
		} else {
			row("PostGraphile v4, one database", rep.peer)
		}
	}
	if o.baseline {
		row(fmt.Sprintf("net/http baseline, %d databases", o.tenants), rep.base)
	}
	if o.pgbench {
		if rep.floorErr != nil {
			fmt.Fprintf(w, "| floor: pgbench | NOT MEASURED: %.200s | | | | |\n", rep.floorErr)
		} else {
			row("floor: pgbench, one joined statement", rep.floor)
		}
		if rep.floorSpreadErr != nil {
			fmt.Fprintf(w, "| floor over %d databases | NOT MEASURED: %.200s | | | | |\n", rep.spreadDatabases(), rep.floorSpreadErr)
		} else if rep.spreadMeasured() {
			row(fmt.Sprintf("floor: the same over %d databases at tenantql's rate", rep.spreadDatabases()), rep.floorSpread)
		}
	}
	g := rep.gql
	if o.pgbench && rep.floorErr == nil && rep.floor.requests > 0 && g.requests > 0 {
		fmt.Fprintf(w, "tenantql PostgreSQL CPU per request / pgbench's: %s (target ≤ 1.6×)",
			ratio(perRequest(g, g.cpu.postgres), perRequest(rep.floor, rep.floor.cpu.postgres)))
		if f := rep.floorSpread; rep.spreadMeasured() && f.requests > 0 {
			fmt.Fprintf(w, "; / pgbench's over %d databases at tenantql's rate: %s", rep.spreadDatabases(),
				ratio(perRequest(g, g.cpu.postgres), perRequest(f, f.cpu.postgres)))
		}
		fmt.Fprintln(w)
	}
	if o.postgraphile == "" || rep.peerErr != nil || rep.peer.requests == 0 || g.requests == 0 {
		return
	}
	p := rep.peer
	fmt.Fprintf(w, "tenantql / PostGraphile: req/s %s (target ≥ 2×), p99 %s (target ≤ 0.5×), server CPU per request %s, PostgreSQL CPU per request %s, peak RSS %s\n",
		ratio(g.rate(), p.rate()), ratio(float64(g.pct(0.99)), float64(p.pct(0.99))),
		ratio(perRequest(g, g.cpu.server), perRequest(p, p.cpu.server)),
		ratio(perRequest(g, g.cpu.postgres), perRequest(p, p.cpu.postgres)),
		ratio(float64(g.peakRSS), float64(p.peakRSS)))
}

// spreadMeasured reports whether the floor over several databases ran.
func (rep report) spreadMeasured() bool {
	return rep.o.pgbench && rep.floorSpreadErr == nil && rep.floorSpread.elapsed > 0
}

// spreadDatabases is how many tenant databases the spread floor used.
func (rep report) spreadDatabases() int { return min(rep.o.tenants, rep.o.clients) }

// ratio is a/b as "1.23×", "—" when b is 0.
func ratio(a, b float64) string {
	if b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// perRequest is d per request of r, in milliseconds.
func perRequest(r result, d time.Duration) float64 {
	if r.requests == 0 {
		return 0
	}
	return d.Seconds() * 1000 / float64(r.requests)
}
