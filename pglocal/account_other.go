//go:build !unix

package pglocal

import (
	"os"
	"os/exec"
)

// currentAccount returns the current user: there is no user switching
// outside Unix.
func currentAccount() (account, error) { return account{uid: -1, gid: -1}, nil }

// apply is a no-op outside Unix.
func (a account) apply(*exec.Cmd) {}

// owner is unknown outside Unix.
func owner(os.FileInfo) (uid, gid int, ok bool) { return 0, 0, false }
