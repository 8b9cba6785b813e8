package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"sync"
	"testing"
)

// syncBuffer is a log destination that tests read while the app writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines decodes every JSON log line written so far.
func (b *syncBuffer) lines(t testing.TB) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// newLoggedTestApp is newTestApp with the process logger the server makes
// for env (LOG_FORMAT, LOG_LEVEL) writing to w instead of stderr.
func newLoggedTestApp(t *testing.T, env map[string]string, w io.Writer) *testApp {
	t.Helper()
	cfg, prefix := testConfig(t, env)
	return startLoggedTestApp(t, cfg, prefix, true, newLogger(cfg, w))
}

// TestTenantStepEvents: provisioning, suspension, deletion and `tenantql
// migrate` log one info line per step, in JSON with LOG_FORMAT=json, with
// the tenant, the step, its duration and its outcome.
func TestTenantStepEvents(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	ta := newLoggedTestApp(t, map[string]string{"LOG_FORMAT": "json", "LOG_LEVEL": "info", "SPARE_TENANTS": "0"}, &logs)
	ta.createTenant(t, "evt", false)
	if err := ta.migrateAll(context.Background(), io.Discard, 1); err != nil {
		t.Fatal(err)
	}
	mustOK(t, ta.admin(t, `mutation { suspendTenant(slug: "evt") { status } }`, nil))
	mustOK(t, ta.admin(t, `mutation { resumeTenant(slug: "evt") { status } }`, nil))
	mustOK(t, ta.admin(t, `mutation { deleteTenant(slug: "evt", purge: true) { tenant { slug } } }`, nil))
	ta.waitStatus(t, "evt", "GONE")

	want := []string{
		"create.spare", "create.role", "create.database", "create.privileges", "create.migrate", "create.owner",
		"upgrade.migrate",
		"suspend.status", "resume.status",
		"purge.status", "delete.database", "delete.role",
	}
	var got []string
	for _, l := range logs.lines(t) {
		if l["msg"] != "tenant step" {
			continue
		}
		step, _ := l["step"].(string)
		got = append(got, step)
		if l["level"] != "INFO" || l["tenant"] != "evt" || l["outcome"] != "ok" {
			t.Errorf("step %s: want level INFO, tenant evt, outcome ok; got %v", step, l)
		}
		if _, ok := l["tenant_id"].(string); !ok {
			t.Errorf("step %s: no tenant_id: %v", step, l)
		}
		if d, ok := l["duration_ms"].(float64); !ok || d < 0 {
			t.Errorf("step %s: duration_ms = %v", step, l["duration_ms"])
		}
		if step == "upgrade.migrate" {
			if _, ok := l["applied"].(float64); !ok {
				t.Errorf("upgrade.migrate: no applied count: %v", l)
			}
		}
	}
	if len(got) != len(want) {
		t.Fatalf("step lines %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("step lines %v, want %v", got, want)
		}
	}
}
