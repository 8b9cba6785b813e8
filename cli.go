package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tenantql/tenantql/tenancy"
)

const usage = `tenantql: a multi-tenant GraphQL API server

Usage:
  tenantql [serve]                 migrate the control database, then serve
  tenantql migrate [-p N]          migrate the control database and every tenant database, on every
                                   database server at once, N per server at a time (default 4); a
                                   progress bar, then a table per server and each failure
  tenantql tenants list            table of tenants
  tenantql tenants create --org NAME --owner-email E --owner-password P [--owner-name N] [--slug S] [--demo]
  tenantql tenants delete SLUG [--purge]
                                   delete a tenant: DELETED (restorable for DELETE_GRACE_HOURS),
                                   or with --purge dropped now; waits until DELETED or gone
  tenantql tenants restore SLUG    a DELETED tenant back to READY with its data
  tenantql tenants move SLUG --to SERVER
                                   move a tenant's database to another database server, with
                                   progress; waits until it is READY there (or the move is undone)
  tenantql servers list            the database servers of the fleet
  tenantql servers add NAME URL [--capacity N]
                                   add a database server (URL of a CREATEDB CREATEROLE role; probed first)
  tenantql servers drain|activate|remove NAME
  tenantql servers remove NAME --force
                                   forget a server that does not answer (its template and spares stay on it)
  tenantql servers drain NAME --move [-p N]
                                   drain, then move every tenant off the server (N at a time, default 1)
                                   to the ACTIVE servers placement chooses; a progress bar, then a summary
  tenantql doctor [--repair]       check the control database against every database server's catalogs
  tenantql rotate-secret           re-seal every stored password under SECRET_KEY (run with the old key
                                   in SECRET_KEY_PREVIOUS); prints how many, safe to re-run
  tenantql audit [--limit N]       the last N (default 50) platform mutations: when, what, which tenant, outcome,
                                   client address, token fingerprint, request id

Every command reads the same environment as the server (see README.md). In
development mode (no DATABASE_URL) a command uses the embedded PostgreSQL of
a server running on the same DATA_DIR, and leaves it running.
`

// run executes one command line and returns the process exit code.
func run(args []string, getenv func(string) string) int {
	cfg, err := LoadConfig(getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tenantql: configuration:", err)
		return 2
	}
	log := newLogger(cfg, os.Stderr)
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		err = serve(cfg, log)
	case "migrate":
		err = migrateCommand(cfg, log, args)
	case "tenants":
		err = tenantsCommand(cfg, log, args)
	case "servers":
		err = serversCommand(cfg, log, args)
	case "doctor":
		fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
		repair := fs.Bool("repair", false, "fix what is safe to fix")
		if err = fs.Parse(args); err == nil {
			err = withApp(cfg, log, func(ctx context.Context, a *app) error { return a.doctor(ctx, os.Stdout, *repair) })
		}
	case "audit":
		fs := flag.NewFlagSet("audit", flag.ContinueOnError)
		limit := fs.Int("limit", 50, "how many records, newest first (1 to 10000)")
		if err = fs.Parse(args); err == nil {
			err = withApp(cfg, log, func(ctx context.Context, a *app) error { return a.audit(ctx, os.Stdout, *limit) })
		}
	case "rotate-secret":
		err = withApp(cfg, log, func(ctx context.Context, a *app) error { return a.rotateSecret(ctx, os.Stdout) })
	case "help", "-h", "--help":
		fmt.Print(usage)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "tenantql: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		var exit exitCode
		if errors.As(err, &exit) {
			return int(exit)
		}
		fmt.Fprintln(os.Stderr, "tenantql:", err)
		return 1
	}
	return 0
}

// exitCode ends a command with a code and no further message.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit %d", int(e)) }

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// withApp wires an app for a one-off command and runs f with a context
// that Ctrl-C cancels.
func withApp(cfg Config, log *slog.Logger, f func(context.Context, *app) error) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	a, err := newApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	return f(ctx, a)
}

func tenantsCommand(cfg Config, log *slog.Logger, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("tenants: want list, create, delete, restore or move")
	}
	switch args[0] {
	case "list":
		return withApp(cfg, log, func(ctx context.Context, a *app) error { return a.listTenants(ctx, os.Stdout) })
	case "create":
		fs := flag.NewFlagSet("tenants create", flag.ContinueOnError)
		org := fs.String("org", "", "organization display name (required)")
		slug := fs.String("slug", "", "subdomain label (default: derived from --org)")
		email := fs.String("owner-email", "", "owner's email (required)")
		password := fs.String("owner-password", "", "owner's password, at least 8 characters (required)")
		name := fs.String("owner-name", "", "owner's name (default: the email's local part)")
		demo := fs.Bool("demo", false, "seed demo data")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *name == "" {
			*name, _, _ = strings.Cut(*email, "@")
		}
		in := tenancy.SignUp{Organization: *org, OwnerEmail: *email, OwnerName: *name, OwnerPassword: *password, SeedDemo: *demo}
		if *slug != "" {
			in.Slug = slug
		}
		return withApp(cfg, log, func(ctx context.Context, a *app) error { return a.createTenant(ctx, os.Stdout, in) })
	case "delete":
		fs := flag.NewFlagSet("tenants delete", flag.ContinueOnError)
		purge := fs.Bool("purge", false, "drop the database now instead of keeping it for DELETE_GRACE_HOURS")
		if err := fs.Parse(slugFirst(args[1:])); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return fmt.Errorf("tenants delete: want exactly one SLUG")
		}
		return withApp(cfg, log, func(ctx context.Context, a *app) error {
			return a.deleteTenant(ctx, os.Stdout, fs.Arg(0), *purge)
		})
	case "restore":
		if len(args) != 2 {
			return fmt.Errorf("tenants restore: want exactly one SLUG")
		}
		return withApp(cfg, log, func(ctx context.Context, a *app) error { return a.restoreTenant(ctx, os.Stdout, args[1]) })
	case "move":
		fs := flag.NewFlagSet("tenants move", flag.ContinueOnError)
		to := fs.String("to", "", "name of the database server to move to (required)")
		if err := fs.Parse(slugFirst(args[1:])); err != nil {
			return err
		}
		if fs.NArg() != 1 || *to == "" {
			return fmt.Errorf("tenants move: want SLUG --to SERVER")
		}
		return withApp(cfg, log, func(ctx context.Context, a *app) error {
			return a.moveTenant(ctx, os.Stdout, fs.Arg(0), *to)
		})
	}
	return fmt.Errorf("tenants: unknown subcommand %q", args[0])
}

func (a *app) listTenants(ctx context.Context, out io.Writer) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SLUG\tNAME\tSTATUS\tHOST\tSCHEMA\tCREATED\tLAST ERROR")
	after := ""
	for {
		page, err := a.registry.List(ctx, tenancy.ListOptions{First: 100, After: after})
		if err != nil {
			return err
		}
		for _, t := range page.Tenants {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Slug, t.Name, t.Status, a.publicHost(t.Host(a.cfg.BaseDomain)),
				t.SchemaVersion, t.CreatedAt.Format(time.RFC3339), t.LastError)
			after = tenancy.Cursor(t)
		}
		if !page.HasNextPage {
			break
		}
	}
	return tw.Flush()
}

// runProvisioner works the provisioner in the background until the
// returned stop function is called.
func (a *app) runProvisioner() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.provisioner.Run(ctx) }()
	return func() { cancel(); <-done }
}

// watchTenants keeps the routing table current, and so feeds
// Registry.SubscribeStatus with the changes any process makes, until the
// returned stop function is called.
func (a *app) watchTenants() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.registry.Watch(ctx, tenancy.WatchOptions{ListenerURL: a.controlURL}); err != nil {
			a.log.Warn("tenant watcher stopped", "err", err)
		}
	}()
	return func() { cancel(); <-done }
}

// createTenant signs a tenant up from the command line (tenancy's SignUp,
// as the createTenant mutation does) and waits until it is READY (or
// FAILED), following its status whichever process provisions it.
func (a *app) createTenant(ctx context.Context, out io.Writer, in tenancy.SignUp) error {
	stop := a.runProvisioner()
	defer stop()
	stopWatch := a.watchTenants()
	defer stopWatch()
	t, err := a.provisioner.SignUp(ctx, in)
	if err != nil {
		return err
	}
	slug := t.Slug
	fmt.Fprintf(out, "creating %s ...\n", slug)
	updates, cancel := a.registry.SubscribeStatus(slug)
	defer cancel()
	// the state now, read once the subscription is in place; then each change
	if t, err = a.registry.Get(ctx, slug); err != nil {
		return err
	}
	for {
		switch t.Status {
		case tenancy.StatusReady:
			fmt.Fprintf(out, "%s is READY at http://%s/\n", slug, a.publicHost(t.Host(a.cfg.BaseDomain)))
			return nil
		case tenancy.StatusFailed:
			return fmt.Errorf("%s FAILED: %s", slug, t.LastError)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case cur := <-updates:
			if cur == nil { // deleted meanwhile
				return fmt.Errorf("%s: %w", slug, tenancy.ErrTenantNotFound)
			}
			t = cur
		}
	}
}

// deleteTenant is deleteTenant from the command line: it waits until the
// tenant is gone.
func (a *app) deleteTenant(ctx context.Context, out io.Writer, slug string, purge bool) error {
	stop := a.runProvisioner()
	defer stop()
	if _, err := a.registry.Delete(ctx, slug, purge); err != nil {
		return err
	}
	a.provisioner.Kick()
	fmt.Fprintf(out, "deleting %s ...\n", slug)
	for {
		t, err := a.registry.Get(ctx, slug)
		if errors.Is(err, tenancy.ErrTenantNotFound) {
			fmt.Fprintf(out, "%s deleted\n", slug)
			return nil
		}
		if err != nil {
			return err
		}
		if t.Status == tenancy.StatusDeleted && t.PurgeAfter != nil {
			fmt.Fprintf(out, "%s deleted; restorable with 'tenantql tenants restore %s' until %s\n",
				slug, slug, t.PurgeAfter.Format(time.RFC3339))
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// doctor prints every problem found; it fails (exit 1) when any is left.
func (a *app) doctor(ctx context.Context, out io.Writer, repair bool) error {
	problems, err := a.registry.Doctor(ctx, a.pools, repair)
	if err != nil {
		return err
	}
	more, err := a.doctorReserves(ctx, out, repair)
	if err != nil {
		return err
	}
	problems = append(problems, more...)
	left := 0
	for _, p := range problems {
		fmt.Fprintln(out, p)
		if !p.Repaired {
			left++
		}
	}
	if left > 0 {
		fmt.Fprintf(out, "%d problem(s)\n", left)
		return exitCode(1)
	}
	fmt.Fprintln(out, "ok: every tenant database and role belongs to exactly one tenant, every READY tenant is complete")
	return nil
}

// doctorReserves prints the template and spares of every database server
// and returns their problems. A server that does not answer is skipped:
// the registry's doctor reports it.
func (a *app) doctorReserves(ctx context.Context, out io.Writer, repair bool) ([]tenancy.Problem, error) {
	servers, err := a.servers.List(ctx)
	if err != nil {
		return nil, err
	}
	var problems []tenancy.Problem
	for _, s := range servers {
		if s.Status == tenancy.ServerUnreachable {
			continue
		}
		st, more, err := a.reserve.CheckServer(ctx, s.Name, repair)
		if errors.Is(err, tenancy.ErrServerNotFound) || errors.Is(err, tenancy.ErrUnavailable) {
			continue // removed, or gone silent, since the list was read
		}
		if err != nil {
			return nil, fmt.Errorf("reserve of server %s: %w", s.Name, err)
		}
		problems = append(problems, more...)
		fmt.Fprintf(out, "reserve on %s: template %s (tenant migrations up to %s) ready=%t; %d spare database(s) ready %v, %d being built or claimed\n",
			s.Name, st.Template, st.Version, st.TemplateReady, len(st.Spares), st.Spares, st.Pending)
	}
	return problems, nil
}

// slugFirst moves a leading non-flag argument after the flags, so that both
// "delete SLUG --purge" and "delete --purge SLUG" parse.
func slugFirst(args []string) []string {
	if len(args) > 1 && !strings.HasPrefix(args[0], "-") {
		return append(args[1:len(args):len(args)], args[0])
	}
	return args
}

// restoreTenant is restoreTenant from the command line: it waits until the
// tenant is READY again.
func (a *app) restoreTenant(ctx context.Context, out io.Writer, slug string) error {
	stop := a.runProvisioner()
	defer stop()
	if _, err := a.registry.Restore(ctx, slug); err != nil {
		return err
	}
	a.provisioner.Kick()
	fmt.Fprintf(out, "restoring %s ...\n", slug)
	for {
		t, err := a.registry.Get(ctx, slug)
		if err != nil {
			return err
		}
		switch t.Status {
		case tenancy.StatusReady:
			fmt.Fprintf(out, "%s restored\n", slug)
			return nil
		case tenancy.StatusFailed:
			return fmt.Errorf("restore %s: %s", slug, t.LastError)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// moveTenant is moveTenant from the command line: it prints each step as
// the provisioner (of this process or another) crosses it, and waits until
// the tenant is READY on the new server, or READY where it was when the
// move was undone (an error then, with the reason).
func (a *app) moveTenant(ctx context.Context, out io.Writer, slug, to string) error {
	stop := a.runProvisioner()
	defer stop()
	stopWatch := a.watchTenants()
	defer stopWatch()
	began := time.Now()
	started, step := false, ""
	err := a.moveAndWait(ctx, slug, to, func(t *tenancy.Tenant) {
		if !started {
			started = true
			fmt.Fprintf(out, "moving %s from %s to %s (queries served, mutations refused meanwhile) ...\n", slug, t.Server, to)
		}
		if t.Step != step && t.Step != "" {
			step = t.Step
			fmt.Fprintf(out, "  %-24s %6.1fs\n", step, time.Since(began).Seconds())
		}
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s is READY on %s (moved in %.1fs)\n", slug, to, time.Since(began).Seconds())
	return nil
}

// moveAndWait starts moving the tenant slug to the server to and follows
// it until it is READY there (nil) or the move ended otherwise: undone
// (READY where it was; the error says why), another status, or gone.
// seen is called with each state observed, first the one Move returned.
// The provisioner (of this process or another) does the move.
func (a *app) moveAndWait(ctx context.Context, slug, to string, seen func(*tenancy.Tenant)) error {
	updates, cancel := a.registry.SubscribeStatus(slug)
	defer cancel()
	t, err := a.registry.Move(ctx, slug, to)
	if err != nil {
		return err
	}
	a.provisioner.Kick()
	return a.follow(ctx, slug, updates, t, func(t *tenancy.Tenant) (bool, error) {
		seen(t)
		switch {
		case t.Status == tenancy.StatusReady && t.Server != to:
			return true, fmt.Errorf("move %s to %s undone: %s", slug, to, t.LastError)
		case t.Status == tenancy.StatusReady:
			return true, nil
		case t.Status != tenancy.StatusMoving:
			return true, fmt.Errorf("move %s: the tenant is %s", slug, t.Status)
		}
		return false, nil
	})
}

// follow calls check with the tenant slug, first t and then each change
// updates (its SubscribeStatus channel) delivers, until check says done;
// a missed update is made up for by reading the tenant every second.
func (a *app) follow(ctx context.Context, slug string, updates <-chan *tenancy.Tenant, t *tenancy.Tenant,
	check func(*tenancy.Tenant) (done bool, err error)) error {
	for {
		if done, err := check(t); done || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case cur := <-updates:
			if cur == nil {
				return fmt.Errorf("%s: %w", slug, tenancy.ErrTenantNotFound)
			}
			t = cur
		case <-time.After(time.Second):
			var err error
			if t, err = a.registry.Get(ctx, slug); err != nil {
				return err
			}
		}
	}
}
