//go:build unix

package pglocal

import (
	"errors"
	"os"
	"syscall"
)

const (
	lockExclusive = syscall.LOCK_EX
	lockShared    = syscall.LOCK_SH
	lockRelease   = syscall.LOCK_UN
)

// flock applies how (lockExclusive, lockShared or lockRelease) to f with
// flock(2), without waiting: it reports false when another open file
// (another process) holds a conflicting lock.
func flock(f *os.File, how int) (bool, error) {
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, syscall.EWOULDBLOCK):
			return false, nil
		case errors.Is(err, syscall.EINTR):
		default:
			return false, &os.PathError{Op: "flock", Path: f.Name(), Err: err}
		}
	}
}
