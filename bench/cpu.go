package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// CPU time is the measure that machine noise disturbs least: requests per
// second fall when a neighbour takes the CPU, but the CPU each request
// costs barely moves. The benchmark reads it from /proc before and after
// each load run.

// clockTick is USER_HZ, the unit of the times in /proc (100 on Linux).
const clockTick = 10 * time.Millisecond

// cpuSample is one reading of the CPU spent so far.
type cpuSample struct {
	server   time.Duration // the tenantql process (0 for the baseline)
	postgres time.Duration // every postgres process, exited backends included
	busy     time.Duration // the whole machine, all CPUs, not idle
	steal    time.Duration // taken by the hypervisor for other machines
}

// readCPU reads the CPU spent so far by the server (serverPID, 0 for
// none), by the bench's PostgreSQL cluster (the postmaster postmasterPID
// and its children: other clusters on a shared machine do not count) and
// by the whole machine.
func readCPU(serverPID, postmasterPID int) cpuSample {
	var s cpuSample
	if serverPID != 0 {
		s.server = procTimes(serverPID, false)
	}
	// A backend's time moves into the postmaster's cutime/cstime when it
	// exits, so live processes plus waited-for children count every one.
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, _ := strconv.Atoi(filepath.Base(d))
		if pid == postmasterPID {
			s.postgres += procTimes(pid, true)
		} else if parentPID(pid) == postmasterPID {
			s.postgres += procTimes(pid, false)
		}
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal
		tick := func(i int) time.Duration {
			if i >= len(f) {
				return 0
			}
			n, _ := strconv.ParseInt(f[i], 10, 64)
			return time.Duration(n) * clockTick
		}
		s.busy = tick(1) + tick(2) + tick(3) + tick(6) + tick(7)
		s.steal = tick(8)
	}
	return s
}

// parentPID is the parent of pid (0 when unknown).
func parentPID(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b)[i+1:]) // f[0] is field 3 (state), f[1] the parent
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// postmasterPID is the pid of the cluster's postmaster, from the first
// line of postmaster.pid in its data directory (0 when unreadable).
func postmasterPID(dataDir string) int {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

// procTimes is the user and system time of pid, with that of its exited
// children when children is set.
func procTimes(pid int, children bool) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// the command name may hold spaces; fields resume after its ')'
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b)[i+1:]) // f[0] is field 3 (state)
	sum := func(idx ...int) time.Duration {
		var t time.Duration
		for _, k := range idx {
			if k < len(f) {
				n, _ := strconv.ParseInt(f[k], 10, 64)
				t += time.Duration(n) * clockTick
			}
		}
		return t
	}
	t := sum(11, 12) // utime, stime (fields 14 and 15)
	if children {
		t += sum(13, 14) // cutime, cstime
	}
	return t
}

func (a cpuSample) sub(b cpuSample) cpuSample {
	return cpuSample{server: a.server - b.server, postgres: a.postgres - b.postgres, busy: a.busy - b.busy, steal: a.steal - b.steal}
}
