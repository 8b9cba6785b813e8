package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"text/tabwriter"
)

const serversUsage = `usage: tenantql servers list | add NAME URL [--capacity N] | drain NAME [--move [-p N]] | activate NAME | remove NAME [--force]`

// serversCommand runs `tenantql servers ...`: the fleet of database
// servers, as the platform API's databaseServers and its mutations.
func serversCommand(cfg Config, log *slog.Logger, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, serversUsage)
		return exitCode(2)
	}
	return withApp(cfg, log, func(ctx context.Context, a *app) error {
		return a.serversCLI(ctx, os.Stdout, args)
	})
}

// serversCLI runs one servers subcommand, printing to out. A bad command
// line is exit code 2; what the fleet refuses comes back as its error.
func (a *app) serversCLI(ctx context.Context, out io.Writer, args []string) error {
	sub, rest := args[0], args[1:]
	switch sub {
	case "list":
		if len(rest) != 0 {
			fmt.Fprintln(os.Stderr, serversUsage)
			return exitCode(2)
		}
		return a.printServers(ctx, out)
	case "add":
		fs := flag.NewFlagSet("servers add", flag.ContinueOnError)
		capacity := fs.Int("capacity", 0, "most tenant databases placed on it; 0 = no limit")
		if len(rest) < 2 {
			fmt.Fprintln(os.Stderr, serversUsage)
			return exitCode(2)
		}
		if err := fs.Parse(rest[2:]); err != nil {
			return exitCode(2)
		}
		s, err := a.servers.Add(ctx, rest[0], rest[1], *capacity)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s added (%s, %s)\n", s.Name, s.Host, s.Status)
		return nil
	case "drain", "activate":
		fs := flag.NewFlagSet("servers "+sub, flag.ContinueOnError)
		move := fs.Bool("move", false, "drain: then move every tenant off the server")
		parallel := fs.Int("p", 1, "with --move: how many tenants move at once")
		if err := fs.Parse(slugFirst(rest)); err != nil || fs.NArg() != 1 || *parallel < 1 || *move && sub != "drain" {
			fmt.Fprintln(os.Stderr, serversUsage)
			return exitCode(2)
		}
		s, err := a.servers.SetDraining(ctx, fs.Arg(0), sub == "drain")
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s is %s\n", s.Name, s.Status)
		if *move {
			return a.moveAllOff(ctx, out, s.Name, *parallel)
		}
		return nil
	case "remove":
		fs := flag.NewFlagSet("servers remove", flag.ContinueOnError)
		force := fs.Bool("force", false, "forget a server that does not answer, leaving its template and spares on it")
		if len(rest) < 1 {
			fmt.Fprintln(os.Stderr, serversUsage)
			return exitCode(2)
		}
		if err := fs.Parse(rest[1:]); err != nil || fs.NArg() != 0 {
			fmt.Fprintln(os.Stderr, serversUsage)
			return exitCode(2)
		}
		if err := a.servers.Remove(ctx, rest[0], *force); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s removed\n", rest[0])
		return nil
	}
	fmt.Fprintln(os.Stderr, serversUsage)
	return exitCode(2)
}

// printServers prints the fleet as a table (never a URL or credential).
func (a *app) printServers(ctx context.Context, out io.Writer) error {
	list, err := a.servers.List(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tHOST\tSTATUS\tTENANTS\tCAPACITY\tLAST ERROR")
	for _, s := range list {
		capacity := "-"
		if s.Capacity > 0 {
			capacity = fmt.Sprint(s.Capacity)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\n", s.Name, s.Host, s.Status, s.TenantCount, capacity, s.LastError)
	}
	return w.Flush()
}
