package tenancy

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/tenantql/tenantql/internal/pgtest"
)

// TestHistoryIsBoundedAndMasked: every step event becomes a row of its
// tenant's history, newest first; the control database keeps the last
// HistoryKept per tenant; a failed step keeps lastError's words (never
// the SQL error's text); other tenants' histories are their own; a purged
// tenant's history goes with its row.
func TestHistoryIsBoundedAndMasked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	control := openT(t, pgtest.NewControlDatabase(t))
	if _, err := MigrateControl(ctx, control.DB); err != nil {
		t.Fatal(err)
	}
	sealer, _ := NewSealer("secret-key-A-0123456789-0123456789")
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	reg, err := NewRegistry(control, sealer, "h_", log)
	if err != nil {
		t.Fatal(err)
	}
	tenants := map[string]*Tenant{}
	for _, slug := range []string{"busy", "quiet"} {
		tn := &Tenant{ID: uuid.New(), Slug: slug}
		tenants[slug] = tn
		if _, err := control.Exec(`INSERT INTO tenants (id, slug, name, status, db_name, role_name, role_password)
			VALUES ($1, $2, $2, 'READY', 'x_'||$2, 'x_'||$2, '\x00')`, tn.ID, slug); err != nil {
			t.Fatal(err)
		}
	}
	busy, quiet := tenants["busy"], tenants["quiet"]
	reg.stepEvent(ctx, log, quiet, "create.role", time.Now(), nil)
	for i := range HistoryKept + 10 {
		reg.stepEvent(ctx, log, busy, "upgrade.migrate", time.Now().Add(-time.Duration(i)*time.Millisecond), nil)
	}
	leak := &pq.Error{Code: "42P07", Message: `relation "secret_table" already exists`, Detail: "password 'hunter2'"}
	reg.stepEvent(ctx, log, busy, "create.database", time.Now().Add(-40*time.Millisecond), leak)

	var rows int
	if err := control.Get(&rows, `SELECT count(*) FROM tenant_events WHERE tenant_id = $1`, busy.ID); err != nil || rows != HistoryKept {
		t.Fatalf("busy keeps %d events (%v), want %d", rows, err, HistoryKept)
	}
	h, err := reg.History(ctx, busy.ID, HistoryKept)
	if err != nil || len(h) != HistoryKept {
		t.Fatalf("History(%d) = %d events, %v", HistoryKept, len(h), err)
	}
	first := h[0]
	if first.Step != "create.database" || first.Outcome != OutcomeError || first.Duration < 40*time.Millisecond ||
		first.Error != "create.database failed: database error duplicate_table" || time.Since(first.At) > time.Minute {
		t.Fatalf("newest event %+v", first)
	}
	for _, e := range h[1:] {
		if e.Step != "upgrade.migrate" || e.Outcome != OutcomeOK || e.Error != "" || e.At.After(first.At) {
			t.Fatalf("older event %+v", e)
		}
	}
	if h, err := reg.History(ctx, busy.ID, 3); err != nil || len(h) != 3 || h[0].Step != "create.database" {
		t.Fatalf("History(3) = %+v, %v", h, err)
	}
	for _, e := range h {
		if strings.Contains(e.Error, "hunter2") || strings.Contains(e.Error, "secret_table") {
			t.Fatalf("the history shows the SQL error: %q", e.Error)
		}
	}
	if h, err := reg.History(ctx, quiet.ID, 20); err != nil || len(h) != 1 || h[0].Step != "create.role" {
		t.Fatalf("quiet's history: %+v, %v", h, err)
	}
	for _, last := range []int{0, HistoryKept + 1} {
		if _, err := reg.History(ctx, busy.ID, last); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("History(%d): %v, want ErrInvalidInput", last, err)
		}
	}

	// a purged tenant's history goes with it; a late step is dropped quietly
	if _, err := control.Exec(`DELETE FROM tenants WHERE id = $1`, busy.ID); err != nil {
		t.Fatal(err)
	}
	reg.stepEvent(ctx, log, busy, "delete.role", time.Now(), nil)
	if err := control.Get(&rows, `SELECT count(*) FROM tenant_events WHERE tenant_id = $1`, busy.ID); err != nil || rows != 0 {
		t.Fatalf("a purged tenant keeps %d events (%v)", rows, err)
	}
}
