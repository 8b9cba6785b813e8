package pglocal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrDataDirUnreachable is returned (wrapped) by Start when running as root
// and the postgres user cannot traverse to the data directory, as with
// any path under /root.
var ErrDataDirUnreachable = errors.New("pglocal: data directory not reachable by the postgres user")

// account is the OS user that runs initdb, pg_ctl and postgres.
type account struct {
	uid, gid   int
	home       string // HOME for the programs when switchUser
	switchUser bool   // running as root: run the programs as this user
}

// env returns the environment for PostgreSQL programs: the process's,
// without PG* variables (PGDATA, PGPORT, … would override what we pass),
// in the C locale so that messages are stable, with HOME set to the
// account's when switching users.
func (a account) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") ||
			(a.switchUser && strings.HasPrefix(kv, "HOME=")) {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "LC_ALL=C")
	if a.switchUser && a.home != "" {
		env = append(env, "HOME="+a.home)
	}
	return env
}

// checkReachable returns an error wrapping ErrDataDirUnreachable when a
// switched-to account cannot traverse some existing parent of dir: each
// must be world-searchable (o+x), or searchable by the account as owner or
// group. Missing parents are fine: makeDataDir creates them for the account.
func (a account) checkReachable(dir string) error {
	if !a.switchUser {
		return nil
	}
	real, err := resolveExisting(dir)
	if err != nil {
		return fmt.Errorf("pglocal: data directory %s: %w", dir, err)
	}
	for p := filepath.Dir(real); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return fmt.Errorf("pglocal: data directory %s: %w", dir, err)
		case !a.canSearch(fi):
			return fmt.Errorf("%w: %s: %s (mode %v) is not searchable by user %s (uid %d); paths under /root do not work, use one under /tmp or /var/lib",
				ErrDataDirUnreachable, dir, p, fi.Mode().Perm(), Superuser, a.uid)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

func (a account) canSearch(fi os.FileInfo) bool {
	perm := fi.Mode().Perm()
	if perm&0o001 != 0 {
		return true
	}
	uid, gid, ok := owner(fi)
	return ok && (uid == a.uid && perm&0o100 != 0 || gid == a.gid && perm&0o010 != 0)
}

// chown gives path to the account when switching users.
func (a account) chown(path string) error {
	if !a.switchUser {
		return nil
	}
	if err := os.Chown(path, a.uid, a.gid); err != nil {
		return fmt.Errorf("pglocal: chown to %s: %w", Superuser, err)
	}
	return nil
}

// resolveExisting resolves symlinks in the longest existing prefix of the
// absolute path dir and appends the missing rest unchanged.
func resolveExisting(dir string) (string, error) {
	var rest []string
	for p := dir; ; p = filepath.Dir(p) {
		real, err := filepath.EvalSymlinks(p)
		if err == nil {
			return filepath.Join(append([]string{real}, rest...)...), nil
		}
		if !errors.Is(err, fs.ErrNotExist) || p == filepath.Dir(p) {
			return "", err
		}
		rest = append([]string{filepath.Base(p)}, rest...)
	}
}
