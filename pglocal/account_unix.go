//go:build unix

package pglocal

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
)

// currentAccount returns the account initdb, pg_ctl and postgres run as:
// the current user, or the postgres system user when running as root
// (PostgreSQL refuses to run as root). It returns an error when root and
// no postgres user exists.
func currentAccount() (account, error) {
	if os.Geteuid() != 0 {
		return account{uid: os.Geteuid(), gid: os.Getegid()}, nil
	}
	u, err := user.Lookup(Superuser)
	if err != nil {
		return account{}, fmt.Errorf("pglocal: running as root needs a %q system user to run PostgreSQL: %w", Superuser, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return account{}, fmt.Errorf("pglocal: user %s: uid %q: %w", u.Username, u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return account{}, fmt.Errorf("pglocal: user %s: gid %q: %w", u.Username, u.Gid, err)
	}
	return account{uid: uid, gid: gid, home: u.HomeDir, switchUser: true}, nil
}

// apply makes cmd run as a, dropping root's supplementary groups.
func (a account) apply(cmd *exec.Cmd) {
	if !a.switchUser {
		return
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uint32(a.uid), Gid: uint32(a.gid), Groups: []uint32{}},
	}
}

// owner returns the uid and gid owning fi, and whether they are known.
func owner(fi os.FileInfo) (uid, gid int, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}
