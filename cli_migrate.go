package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/tenantql/tenantql/tenancy"
)

// defaultMigratePerServer is how many tenant databases of one server
// `tenantql migrate` migrates at once unless -p says otherwise.
const defaultMigratePerServer = 4

// migrateCommand runs `tenantql migrate [-p N]`.
func migrateCommand(cfg Config, log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	perServer := fs.Int("p", defaultMigratePerServer, "tenant databases migrated at once on each database server")
	if err := fs.Parse(args); err != nil {
		return exitCode(2)
	}
	if *perServer < 1 || fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: tenantql migrate [-p N] (N at least 1)")
		return exitCode(2)
	}
	return withApp(cfg, log, func(ctx context.Context, a *app) error { return a.migrateAll(ctx, os.Stdout, *perServer) })
}

// migrateAll migrates every tenant database, perServer at a time on each
// database server, with progress, then prints a table per server and
// each failure. It fails when any tenant did.
func (a *app) migrateAll(ctx context.Context, out io.Writer, perServer int) error {
	fmt.Fprintln(out, "control database: up to date")
	var bar *progress
	var results []tenancy.MigrationResult
	began := time.Now()
	failed, err := a.registry.MigrateTenants(ctx, a.pools, tenancy.MigrateOptions{
		PerServer: perServer,
		Progress: func(_, total int, res tenancy.MigrationResult) {
			if bar == nil {
				bar = newProgress(out, total)
			}
			results = append(results, res)
			bar.step(migrationLine(res), res.Err != nil)
		},
	})
	if bar != nil {
		bar.finish()
	}
	printMigrationTable(out, results, time.Since(began))
	if err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d tenant database(s) failed to migrate", failed)
	}
	return nil
}

// migrationLine says what happened to one tenant.
func migrationLine(res tenancy.MigrationResult) string {
	if res.Err != nil {
		return fmt.Sprintf("%s (%s): FAILED: %v", res.Tenant.Slug, res.Server, res.Err)
	}
	return fmt.Sprintf("%s (%s): %d migration(s) applied", res.Tenant.Slug, res.Server, res.Applied)
}

// serverTally counts one server's outcomes for the final table.
type serverTally struct {
	tenants, migrated, current, failed int
	first, last                        time.Time // the first start and last end on the server
}

func (s *serverTally) add(res tenancy.MigrationResult) {
	s.tenants++
	switch {
	case res.Err != nil:
		s.failed++
	case res.Applied > 0:
		s.migrated++
	default:
		s.current++
	}
	if s.first.IsZero() || res.Started.Before(s.first) {
		s.first = res.Started
	}
	if end := res.Started.Add(res.Took); end.After(s.last) {
		s.last = end
	}
}

// printMigrationTable prints, per server ("default" first), how many
// tenants were migrated, already current or failed and how long the
// server took; then the total and each failure.
func printMigrationTable(out io.Writer, results []tenancy.MigrationResult, took time.Duration) {
	tallies := map[string]*serverTally{}
	var all serverTally
	for _, res := range results {
		if tallies[res.Server] == nil {
			tallies[res.Server] = &serverTally{}
		}
		tallies[res.Server].add(res)
		all.add(res)
	}
	names := make([]string, 0, len(tallies))
	for name := range tallies {
		names = append(names, name)
	}
	slices.SortFunc(names, func(a, b string) int {
		if (a == tenancy.DefaultServer) != (b == tenancy.DefaultServer) {
			if a == tenancy.DefaultServer {
				return -1
			}
			return 1
		}
		return cmp.Compare(a, b)
	})
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "SERVER\tTENANTS\tMIGRATED\tCURRENT\tFAILED\tTIME")
	for _, name := range names {
		s := tallies[name]
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%.1fs\n", name, s.tenants, s.migrated, s.current, s.failed, s.last.Sub(s.first).Seconds())
	}
	fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%.1fs\n", "total", all.tenants, all.migrated, all.current, all.failed, took.Seconds())
	w.Flush()
	for _, res := range results {
		if res.Err != nil {
			fmt.Fprintf(out, "FAILED %s (%s): %v\n", res.Tenant.Slug, res.Server, res.Err)
		}
	}
}
