package pglocal

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

func TestProcessStateTreatsZombieAsGone(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("sleep", "0")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer cmd.Wait() // reap it at last
	pid := cmd.Process.Pid
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, alive := procStat(pid); !alive {
			break // a zombie now: not yet reaped, but dead
		}
		if time.Now().After(deadline) {
			t.Fatal("sleep 0 still alive")
		}
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
		t.Fatalf("zombie not visible in /proc: %v", err)
	}
	if got := processState(pid, t.TempDir()); got != procGone {
		t.Fatalf("processState(zombie) = %v, want procGone", got)
	}
	if got := processState(os.Getpid(), t.TempDir()); got != procGone {
		t.Fatalf("processState(non-postgres) = %v, want procGone", got)
	}
}
