//go:build !unix

package pglocal

import "os"

const (
	lockExclusive = iota
	lockShared
	lockRelease
)

// flock always succeeds outside Unix: every process believes itself the
// cluster's only user, as pglocal did before processes shared clusters.
func flock(*os.File, int) (bool, error) { return true, nil }
