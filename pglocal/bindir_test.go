package pglocal

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fakeBinDir(t *testing.T, dir string, names ...string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFindBinDirPicksHighestVersion(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	fakeBinDir(t, filepath.Join(root, "9.6", "bin"), "initdb", "pg_ctl")
	fakeBinDir(t, filepath.Join(root, "15", "bin"), "initdb", "pg_ctl")
	fakeBinDir(t, filepath.Join(root, "16", "bin"), "initdb") // incomplete
	fakeBinDir(t, filepath.Join(root, "10", "bin"), "initdb", "pg_ctl")
	notOnPath := func(string) (string, error) { return "", errors.New("not found") }

	got, err := findBinDir(notOnPath, filepath.Join(root, "*", "bin"))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "15", "bin"); got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestFindBinDirPrefersPathAndResolvesSymlinks(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	real := filepath.Join(root, "real", "bin")
	fakeBinDir(t, real, "initdb", "pg_ctl")
	fakeBinDir(t, filepath.Join(root, "99", "bin"), "initdb", "pg_ctl")
	links := filepath.Join(root, "links")
	os.Mkdir(links, 0o755)
	if err := os.Symlink(filepath.Join(real, "initdb"), filepath.Join(links, "initdb")); err != nil {
		t.Fatal(err)
	}
	onPath := func(string) (string, error) { return filepath.Join(links, "initdb"), nil }
	got, err := findBinDir(onPath, filepath.Join(root, "*", "bin"))
	if err != nil {
		t.Fatal(err)
	}
	if got != real {
		t.Fatalf("got %s, want %s", got, real)
	}
}

func TestFindBinDirNotFound(t *testing.T) {
	t.Parallel()
	notOnPath := func(string) (string, error) { return "", errors.New("not found") }
	pattern := filepath.Join(t.TempDir(), "*", "bin")
	_, err := findBinDir(notOnPath, pattern)
	if !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("got %v, want ErrNotInstalled", err)
	}
	if !strings.Contains(err.Error(), pattern) || !strings.Contains(err.Error(), "PATH") {
		t.Fatalf("error does not name what was searched: %v", err)
	}
}
