package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// at is a time of the tests: ms milliseconds after 1000 s after the epoch.
func at(ms int) time.Time { return time.Unix(1000, 0).Add(time.Duration(ms) * time.Millisecond) }

func TestReadFloorLogs(t *testing.T) {
	dir := t.TempDir()
	// client_id transaction_no time(µs) script_no time_epoch time_us; a
	// log per thread
	logs := map[string]string{
		"tx0.100":   "0 0 5000 0 1000 900000\n0 1 700 0 1001 500000\n",
		"tx0.100.1": "1 0 400 0 1001 200000\n1 1 failed 0 1001 300000\n",
		// a second pgbench, on another database, numbers its clients from 0 too
		"tx1.101": "0 0 600 0 1001 400000\n",
	}
	for name, text := range logs {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	txs, err := readFloorLogs(dir)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(txs, func(a, b floorTx) int { return a.end.Compare(b.end) })
	want := []floorTx{
		{client: "tx0/0", end: at(900), latency: 5 * time.Millisecond},
		{client: "tx0/1", end: at(1200), latency: 400 * time.Microsecond},
		{client: "tx0/1", end: at(1300), failed: true},
		{client: "tx1/0", end: at(1400), latency: 600 * time.Microsecond},
		{client: "tx0/0", end: at(1500), latency: 700 * time.Microsecond},
	}
	if !slices.EqualFunc(txs, want, func(a, b floorTx) bool {
		return a.client == b.client && a.end.Equal(b.end) && a.latency == b.latency && a.failed == b.failed
	}) {
		t.Errorf("got %+v\nwant %+v", txs, want)
	}
}

func TestReadFloorLogsRejectsGarbage(t *testing.T) {
	for name, text := range map[string]string{
		"short line":  "0 0 500\n",
		"bad latency": "0 0 fast 0 1001 0\n",
		"bad epoch":   "0 0 500 0 soon 0\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "tx.1"), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := readFloorLogs(dir); err == nil {
				t.Error("no error")
			}
		})
	}
	if _, err := readFloorLogs(t.TempDir()); err == nil {
		t.Error("no error for a directory without logs")
	}
}

// floorRun is two clients: client 0 runs from 1 s to 10 s, client 1
// connects late (first transaction at 2.05 s) and stops at 9.5 s; CPU is
// sampled every 100 ms from 0 to 11 s, 10 ms of PostgreSQL CPU a sample.
func floorRun() ([]floorTx, []cpuAt) {
	txs := []floorTx{
		{client: "0", end: at(1000)}, {client: "0", end: at(10000)},
		{client: "1", end: at(2050)}, {client: "1", end: at(9500)},
	}
	var samples []cpuAt
	for i := range 111 {
		samples = append(samples, cpuAt{at: at(100 * i), cpu: cpuSample{postgres: time.Duration(i) * 10 * time.Millisecond}})
	}
	return txs, samples
}

func TestFloorWindowOpensWhenEveryClientRuns(t *testing.T) {
	txs, samples := floorRun()
	for _, c := range []struct {
		d          time.Duration
		start, end time.Time
	}{
		{5 * time.Second, at(2100), at(7100)},  // d after the last client's first transaction
		{10 * time.Second, at(2100), at(9500)}, // cut where the first client stopped
		{14 * time.Second, at(2100), at(9500)}, // 7.4 s: still at least half of d
		{100 * time.Millisecond, at(2100), at(2200)},
	} {
		w, err := floorWindow(txs, samples, c.d)
		if err != nil {
			t.Fatalf("d %s: %v", c.d, err)
		}
		if !w.start.Equal(c.start) || !w.end.Equal(c.end) {
			t.Errorf("d %s: window %s to %s, want %s to %s", c.d, w.start.Sub(at(0)), w.end.Sub(at(0)), c.start.Sub(at(0)), c.end.Sub(at(0)))
		}
		if want := w.end.Sub(w.start) / 10; w.cpu.postgres != want {
			t.Errorf("d %s: PostgreSQL CPU %s over the window, want %s", c.d, w.cpu.postgres, want)
		}
	}
	if _, err := floorWindow(txs, samples, 15*time.Second); err == nil {
		t.Error("a window of 7.4 s for 15 s: no error")
	}
	if _, err := floorWindow(txs, samples[:20], 5*time.Second); err == nil {
		t.Error("no sample after every client started: no error")
	}
}

func TestWindowResultCountsItsTransactionsOnly(t *testing.T) {
	w := window{start: at(1000), end: at(4000), cpu: cpuSample{postgres: time.Second}}
	txs := []floorTx{
		{end: at(1000), latency: 9 * time.Millisecond}, // on the start: before the window
		{end: at(1500), latency: 3 * time.Millisecond},
		{end: at(2000), failed: true},
		{end: at(3000), latency: 1 * time.Millisecond},
		{end: at(4000), latency: 2 * time.Millisecond}, // on the end: inside
		{end: at(4001), latency: 9 * time.Millisecond},
	}
	res := w.result(txs)
	if res.requests != 4 || res.failed != 1 || res.elapsed != 3*time.Second || res.cpu.postgres != time.Second {
		t.Errorf("requests %d failed %d elapsed %s cpu %s, want 4, 1, 3s, 1s", res.requests, res.failed, res.elapsed, res.cpu.postgres)
	}
	want := []time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond}
	if !slices.Equal(res.latencies, want) {
		t.Errorf("latencies %v, want %v", res.latencies, want)
	}
}
