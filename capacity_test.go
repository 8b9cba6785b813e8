package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkTenantFootprint measures what one tenant costs a database
// server, for capacity planning (docs/operations.md): the disk of a new
// tenant database and of one holding 1,000 issues with a comment each, and
// the private memory of a tenant connection's server process after it
// served a page of issues. One op is one sign-up (createTenant to READY).
func BenchmarkTenantFootprint(b *testing.B) {
	ta := newTestApp(b, nil)
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		createOn(b, ta, fmt.Sprintf("foot-%d", i), "default")
	}
	b.StopTimer()
	size := func(slug string) float64 {
		tn, err := ta.registry.Get(ctx, slug)
		if err != nil {
			b.Fatal(err)
		}
		var n int64
		if err := ta.super.Get(&n, `SELECT pg_database_size($1)`, tn.DBName); err != nil {
			b.Fatal(err)
		}
		return float64(n)
	}
	b.ReportMetric(size("foot-0")/(1<<20), "MiB/new-db")

	createOn(b, ta, "foot-big", "default")
	ta.seedThousandIssues(b, "foot-big")
	b.ReportMetric(size("foot-big")/(1<<20), "MiB/1k-issue-db")

	// a tenant connection, warm: it has served the benchmark's page
	owner := ta.owner(b, "foot-big")
	owner.must(b, `{ issues(first: 20) { edges { node { id number title status assignee { id name } } } } }`, nil)
	tn, err := ta.registry.Get(ctx, "foot-big")
	if err != nil {
		b.Fatal(err)
	}
	db, err := ta.pools.DB(tn)
	if err != nil {
		b.Fatal(err)
	}
	conn, err := db.Connx(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	var pid int
	if err := conn.GetContext(ctx, &pid, `SELECT pg_backend_pid()`); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, `SELECT count(*) FROM issues i JOIN users u ON u.id = i.assignee_id`); err != nil {
		b.Fatal(err)
	}
	if kb, err := privateKB(pid); err == nil {
		b.ReportMetric(float64(kb)/1024, "MiB/backend")
	} else {
		b.Logf("backend memory not measured: %v", err)
	}
}

// privateKB returns the private memory (clean and dirty) of process pid,
// from /proc/PID/smaps_rollup: what the process costs beyond the shared
// buffers and code it shares with the others.
func privateKB(pid int) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	total := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "Private_Clean" && name != "Private_Dirty") {
			continue
		}
		kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
		if err != nil {
			return 0, fmt.Errorf("smaps_rollup %s: %w", name, err)
		}
		total += kb
	}
	return total, sc.Err()
}
