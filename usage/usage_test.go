package usage

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"

	"github.com/tenantql/tenantql/internal/pgtest"
	"github.com/tenantql/tenantql/tenancy"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestCountsOfReplicasAddUp: two recorders (two processes) count requests
// of one tenant in the same minutes; once both flushed, the usage read is
// their sum, with the errors, the p95 of the merged histogram and the
// last request. A deleted tenant's counts are dropped, not an error.
func TestCountsOfReplicasAddUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	control, err := sqlx.Open("postgres", pgtest.NewControlDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer control.Close()
	if _, err := tenancy.MigrateControl(ctx, control.DB); err != nil {
		t.Fatal(err)
	}
	var dbName string
	if err := control.Get(&dbName, `SELECT current_database()`); err != nil {
		t.Fatal(err)
	}
	tn := &tenancy.Tenant{ID: uuid.New(), Slug: "acme", DBName: dbName}
	if _, err := control.Exec(`INSERT INTO tenants (id, slug, name, status, db_name, role_name, role_password)
		VALUES ($1, 'acme', 'Acme', 'READY', $2, 'x_role', '\x00')`, tn.ID, dbName); err != nil {
		t.Fatal(err)
	}
	users := func(context.Context, *tenancy.Tenant) (int, error) { return 3, nil }
	a := New(control, Options{Users: users})
	b := New(control, Options{Users: users})

	now := time.Now()
	for i := range 19 {
		a.Record(tn.ID, now, 3*time.Millisecond, i == 0) // 2..5 ms bucket
	}
	b.Record(tn.ID, now, 700*time.Millisecond, true) // the slowest: 500..1000 ms
	b.Record(tn.ID, now.Add(-2*time.Hour), time.Millisecond, false)
	gone := uuid.New()
	b.Record(gone, now, time.Millisecond, false)
	for _, r := range []*Recorder{a, b} {
		if err := r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	a.Record(tn.ID, now, time.Millisecond, false) // not flushed: not counted yet

	u, err := b.Of(ctx, tn)
	if err != nil {
		t.Fatal(err)
	}
	if u.RequestsLastHour != 20 || u.RequestsLastDay != 21 || u.ErrorsLastDay != 2 {
		t.Fatalf("hour %d day %d errors %d, want 20 21 2", u.RequestsLastHour, u.RequestsLastDay, u.ErrorsLastDay)
	}
	// 19 of 20 at <= 5 ms: the 95th percentile (the 19th) is in that bucket
	if u.P95LatencyMs == nil || *u.P95LatencyMs != 5 {
		t.Fatalf("p95 = %v, want 5", u.P95LatencyMs)
	}
	if u.LastRequestAt == nil || u.LastRequestAt.Sub(now).Abs() > time.Millisecond {
		t.Fatalf("last request at %v, want %v", u.LastRequestAt, now)
	}
	// hour by hour, oldest first: 20 in the last hour, 1 two hours ago
	wantByHour := make([]int, 24)
	wantByHour[23], wantByHour[21] = 20, 1
	if fmt.Sprint(u.RequestsByHour) != fmt.Sprint(wantByHour) {
		t.Fatalf("requests by hour %v, want %v", u.RequestsByHour, wantByHour)
	}
	if u.Users != 3 || u.DatabaseBytes < 1<<20 {
		t.Fatalf("users %d, database %d bytes", u.Users, u.DatabaseBytes)
	}

	// one more slow request tips the p95 into the slow bucket
	b.Record(tn.ID, now, 700*time.Millisecond, false)
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if u, err = a.Of(ctx, tn); err != nil || u.P95LatencyMs == nil || *u.P95LatencyMs != 1000 {
		t.Fatalf("p95 after a second slow request = %v (%v), want 1000", u.P95LatencyMs, err)
	}

	quiet := &tenancy.Tenant{ID: gone, DBName: dbName}
	if u, err := a.Of(ctx, quiet); err != nil || u.RequestsLastDay != 0 || u.P95LatencyMs != nil || u.LastRequestAt != nil ||
		fmt.Sprint(u.RequestsByHour) != fmt.Sprint(make([]int, 24)) {
		t.Fatalf("a tenant with no row: %+v %v", u, err)
	}
}
