package tenancy

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// recorder is a slog.Handler that keeps every record.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec.Clone())
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func TestLogStepLine(t *testing.T) {
	tn := &Tenant{ID: uuid.New(), Slug: "acme"}
	for _, tc := range []struct {
		err     error
		outcome string
	}{
		{nil, "ok"},
		{errors.New("create role: boom"), "error"},
	} {
		var rec recorder
		logStep(context.Background(), slog.New(&rec), tn, "create.role", time.Now().Add(-5*time.Millisecond), tc.err)
		if len(rec.records) != 1 {
			t.Fatalf("%d records, want 1", len(rec.records))
		}
		r := rec.records[0]
		attrs := map[string]slog.Value{}
		r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value; return true })
		if r.Level != slog.LevelInfo || r.Message != "tenant step" {
			t.Errorf("level %v message %q", r.Level, r.Message)
		}
		if attrs["tenant"].String() != "acme" || attrs["tenant_id"].String() != tn.ID.String() ||
			attrs["step"].String() != "create.role" || attrs["outcome"].String() != tc.outcome {
			t.Errorf("attrs %v", attrs)
		}
		if d := attrs["duration_ms"].Float64(); d < 5 {
			t.Errorf("duration_ms = %v, want ≥ 5", d)
		}
		if _, has := attrs["err"]; has != (tc.err != nil) {
			t.Errorf("err attribute present = %v with err %v", has, tc.err)
		}
	}
}
