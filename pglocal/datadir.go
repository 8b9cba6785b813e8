package pglocal

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// passwordFile, inside the data directory, holds the superuser password.
const passwordFile = "superuser.password"

// prepareDataDir makes sure c.dataDir holds a cluster, running initdb when
// it holds none yet, and loads the superuser password. The caller holds
// the data directory's lock.
func (c *Cluster) prepareDataDir(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(c.dataDir, "PG_VERSION")); err == nil {
		pw, err := os.ReadFile(filepath.Join(c.dataDir, passwordFile))
		if err != nil {
			return fmt.Errorf("pglocal: existing cluster without a password file (it was not made by pglocal?): %w", err)
		}
		c.password = strings.TrimSpace(string(pw))
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("pglocal: data directory: %w", err)
	}
	// Only an empty directory is ours to give away: chowning, say, /tmp
	// would be a disaster, and initdb refuses a non-empty one anyway.
	entries, err := os.ReadDir(c.dataDir)
	if err != nil {
		return fmt.Errorf("pglocal: data directory: %w", err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("pglocal: data directory %s holds files but no cluster (no PG_VERSION)", c.dataDir)
	}
	if err := c.acct.chown(c.dataDir); err != nil {
		return err
	}
	return c.initdb(ctx)
}

// makeDataDir creates the data directory (0700) and its missing parents
// (0755), and gives the ones it created to the account running
// PostgreSQL. Another process may be creating them at the same time.
func (c *Cluster) makeDataDir() error {
	var missing []string
	for p := c.dataDir; ; p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("pglocal: data directory: %w", err)
		}
		missing = append(missing, p)
		if p == filepath.Dir(p) {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		mode := os.FileMode(0o755)
		if i == 0 {
			mode = 0o700
		}
		if err := os.Mkdir(missing[i], mode); errors.Is(err, fs.ErrExist) {
			continue // made by another process meanwhile
		} else if err != nil {
			return fmt.Errorf("pglocal: data directory: %w", err)
		}
		if err := c.acct.chown(missing[i]); err != nil {
			return err
		}
	}
	return nil
}

// initdb creates the cluster with a fresh random superuser password, then
// stores the password in the data directory.
func (c *Cluster) initdb(ctx context.Context) error {
	password := rand.Text()
	// initdb wants an empty data directory, so the password travels in a
	// temporary file beside it.
	pwfile, err := os.CreateTemp(filepath.Dir(c.dataDir), ".pglocal-pwfile-*")
	if err != nil {
		return fmt.Errorf("pglocal: initdb: password file: %w", err)
	}
	defer os.Remove(pwfile.Name())
	_, err = pwfile.WriteString(password + "\n")
	if cerr := pwfile.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = c.acct.chown(pwfile.Name())
	}
	if err != nil {
		return fmt.Errorf("pglocal: initdb: password file: %w", err)
	}

	args := []string{
		"-D", c.dataDir,
		"--username=" + Superuser,
		"--pwfile=" + pwfile.Name(),
		"--auth-local=trust",
		"--auth-host=scram-sha-256",
		"--encoding=UTF8",
		"--no-locale",
	}
	if c.fsyncOff {
		args = append(args, "--no-sync")
	}
	began := time.Now()
	if out, err := c.run(ctx, "initdb", args...); err != nil {
		return fmt.Errorf("pglocal: initdb: %w\n%s", err, lastLines(string(out), 20))
	}
	if err := c.writePassword(password); err != nil {
		return err
	}
	c.password = password
	c.log.Info("pglocal: cluster initialised", "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// writePassword stores password in the data directory (mode 0600, owned
// by the account running PostgreSQL), atomically.
func (c *Cluster) writePassword(password string) error {
	path := filepath.Join(c.dataDir, passwordFile)
	tmp := path + ".tmp"
	err := os.WriteFile(tmp, []byte(password+"\n"), 0o600)
	if err == nil {
		err = c.acct.chown(tmp)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pglocal: store superuser password: %w", err)
	}
	return nil
}
