//go:build unix

package pgtest

import (
	"log/slog"
	"os/exec"
	"strconv"
	"syscall"
)

// reaperScript waits for process $1 to end, then shuts down the cluster
// whose data directory $2 is (SIGQUIT: immediate shutdown) and removes $2.
const reaperScript = `
while kill -0 "$1" 2>/dev/null; do sleep 1; done
if [ -f "$2/postmaster.pid" ]; then
	pm=$(head -n 1 "$2/postmaster.pid")
	kill -QUIT "$pm" 2>/dev/null
	i=0
	while [ $i -lt 10 ] && [ -f "$2/postmaster.pid" ] && kill -0 "$pm" 2>/dev/null; do sleep 1; i=$((i+1)); done
fi
rm -rf "$2"
`

// startReaper starts a detached shell that, once process watch has ended,
// stops the throwaway cluster in dir and removes dir: a test binary killed
// by its timeout or a signal must not leak a running postmaster. The
// returned func ends the shell (for a normal exit, which cleans up
// itself). Failing to start it is only logged.
func startReaper(watch int, dir string, log *slog.Logger) (stop func()) {
	cmd := exec.Command("/bin/sh", "-c", reaperScript, "pgtest-reaper", strconv.Itoa(watch), dir)
	// Its own process group: a Ctrl-C to the test run must not reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Warn("pgtest: no watchdog for the throwaway cluster", "error", err)
		return func() {}
	}
	return func() {
		cmd.Process.Kill()
		cmd.Wait()
	}
}
