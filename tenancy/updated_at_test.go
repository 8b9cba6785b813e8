package tenancy

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/lib/pq"

	"github.com/tenantql/tenantql/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestUpdatedAtGrowsInCommitOrder: a transaction that started first but
// updates the row last still leaves the greater updated_at, so the routing
// table's "keep the newer copy" rule follows commit order.
func TestUpdatedAtGrowsInCommitOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openT(t, pgtest.NewDatabase(t))
	if _, err := MigrateControl(ctx, db.DB); err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	if _, err := db.Exec(`INSERT INTO tenants (id, slug, name, status, db_name, role_name, role_password)
		VALUES ($1, 'grow', 'Grow', 'READY', 'x_db', 'x_role', '\x00')`, id); err != nil {
		t.Fatal(err)
	}
	early, err := db.Beginx() // starts first: its now() is the older one
	if err != nil {
		t.Fatal(err)
	}
	defer early.Rollback()
	if _, err := early.Exec(`SELECT 1`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	var later time.Time
	if err := db.Get(&later, `UPDATE tenants SET status = 'SUSPENDED', updated_at = now() WHERE id = $1 RETURNING updated_at`, id); err != nil {
		t.Fatal(err)
	}
	var last time.Time
	if err := early.Get(&last, `UPDATE tenants SET status = 'READY', updated_at = now() WHERE id = $1 RETURNING updated_at`, id); err != nil {
		t.Fatal(err)
	}
	if err := early.Commit(); err != nil {
		t.Fatal(err)
	}
	if !last.After(later) {
		t.Fatalf("the last committed change has updated_at %v, not after the earlier change's %v", last, later)
	}
}
