// Command withcluster runs a command with TEST_DATABASE_URL pointing at a
// throwaway PostgreSQL cluster (fsync off) that it starts first and
// removes afterwards, so that every test package shares one cluster:
//
//	go run ./internal/pgtest/withcluster go test ./...
//
// When TEST_DATABASE_URL is already set it just runs the command.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/tenantql/tenantql/internal/pgtest"
	"github.com/tenantql/tenantql/pglocal"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: withcluster COMMAND [ARG...]")
		os.Exit(2)
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if os.Getenv(pgtest.EnvURL) != "" {
		return runCommand(args)
	}
	dir, err := os.MkdirTemp("", "tenantql-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "withcluster:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	_ = os.Chmod(dir, 0o755) // the postgres user must reach the data directory
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cluster, err := pglocal.Start(context.Background(), pglocal.Options{
		DataDir: filepath.Join(dir, "data"), FsyncOff: true, Logger: log, MaxConnections: 500,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "withcluster:", err)
		return 1
	}
	defer cluster.Stop()
	os.Setenv(pgtest.EnvURL, cluster.URL("postgres"))
	fmt.Fprintf(os.Stderr, "withcluster: throwaway PostgreSQL on 127.0.0.1:%d\n", cluster.Port())
	return runCommand(args)
}

func runCommand(args []string) int {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "withcluster:", err)
		return 1
	}
	go func() {
		for s := range sig {
			_ = cmd.Process.Signal(s)
		}
	}()
	if err := cmd.Wait(); err != nil {
		if exit, ok := err.(*exec.ExitError); ok {
			return exit.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "withcluster:", err)
		return 1
	}
	return 0
}
