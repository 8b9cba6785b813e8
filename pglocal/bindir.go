package pglocal

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ErrNotInstalled is returned (wrapped) by FindBinDir and Start when
// PostgreSQL's server programs cannot be found.
var ErrNotInstalled = errors.New("pglocal: PostgreSQL server binaries (initdb, pg_ctl) not found")

// debianBinDirs is where Debian and Ubuntu install each major version.
const debianBinDirs = "/usr/lib/postgresql/*/bin"

// FindBinDir returns the directory holding initdb and pg_ctl: the one
// initdb is found in on PATH (after resolving symlinks, so that postgres is
// found beside it), else the highest version's /usr/lib/postgresql/*/bin.
// It returns an error wrapping ErrNotInstalled, naming PATH and the
// pattern searched, when none is found.
func FindBinDir() (string, error) {
	return findBinDir(exec.LookPath, debianBinDirs)
}

func findBinDir(lookPath func(string) (string, error), pattern string) (string, error) {
	if p, err := lookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil && hasServerTools(filepath.Dir(real)) {
			return filepath.Dir(real), nil
		}
		if abs, err := filepath.Abs(p); err == nil && hasServerTools(filepath.Dir(abs)) {
			return filepath.Dir(abs), nil
		}
	}
	dirs, err := filepath.Glob(pattern)
	if err != nil {
		return "", fmt.Errorf("pglocal: find binaries: %w", err)
	}
	// …/15/bin sorts after …/9.6/bin: compare versions, not strings.
	slices.SortFunc(dirs, func(a, b string) int {
		return compareVersions(versionOf(b), versionOf(a))
	})
	for _, d := range dirs {
		if hasServerTools(d) {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w: searched PATH=%q and %s", ErrNotInstalled, os.Getenv("PATH"), pattern)
}

// hasServerTools reports whether dir holds executable initdb and pg_ctl.
func hasServerTools(dir string) bool {
	for _, name := range []string{"initdb", "pg_ctl"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

// versionOf returns the numeric parts of the version directory above bin:
// "/usr/lib/postgresql/9.6/bin" gives [9 6]; non-numeric parts count as -1.
func versionOf(binDir string) []int {
	var v []int
	for _, part := range strings.Split(filepath.Base(filepath.Dir(binDir)), ".") {
		n, err := strconv.Atoi(part)
		if err != nil {
			n = -1
		}
		v = append(v, n)
	}
	return v
}

// compareVersions orders versions part by part; a missing part counts as 0.
func compareVersions(a, b []int) int {
	for i := range max(len(a), len(b)) {
		var x, y int
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return x - y
		}
	}
	return 0
}
