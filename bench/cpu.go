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

func readCPU(serverPID int) cpuSample {
	var s cpuSample
	if serverPID != 0 {
		s.server = procTimes(serverPID, false)
	}
	// A backend's time moves into the postmaster's cutime/cstime when it
	// exits, so live processes plus waited-for children count every one.
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		comm, err := os.ReadFile(filepath.Join(d, "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(d))
		s.postgres += procTimes(pid, true)
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
