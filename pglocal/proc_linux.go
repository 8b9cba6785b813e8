package pglocal

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// processState tells, from /proc, whether pid is a live postgres process
// working in dataDir.
func processState(pid int, dataDir string) procState {
	comm, alive := procStat(pid)
	if !alive || comm != "postgres" {
		return procGone
	}
	cwd, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd")
	if err != nil {
		return procUnknown // another user's process: not ours to judge
	}
	if real, err := filepath.EvalSymlinks(dataDir); err == nil && cwd == real {
		return procRunning
	}
	return procGone
}

// processesIn returns the live postgres processes working in dataDir.
func processesIn(dataDir string) []int {
	real, err := filepath.EvalSymlinks(dataDir)
	if err != nil {
		return nil
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if comm, alive := procStat(pid); !alive || comm != "postgres" {
			continue
		}
		if cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd"); err == nil && cwd == real {
			pids = append(pids, pid)
		}
	}
	return pids
}

// procStat returns pid's command name and whether it is alive (exists and
// is neither a zombie nor dead).
func procStat(pid int) (comm string, alive bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", false
	}
	// "pid (comm) state ...", where comm may itself hold ") ".
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open || len(s) < end+3 {
		return "", false
	}
	state := s[end+2]
	return s[open+1 : end], state != 'Z' && state != 'X' && state != 'x'
}
