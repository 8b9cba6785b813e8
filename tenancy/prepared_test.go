package tenancy

import (
	"context"
	"database/sql"
	"testing"

	"github.com/lib/pq"

	"github.com/tenantql/tenantql/internal/pgtest"
)

// TestPreparedStatementsPerConnection: a statement that Prepared accepts
// is prepared on the connection once and run by name afterwards (it shows
// in the session's pg_prepared_statements, once, after three runs); one it
// refuses is never prepared; a prepared statement the server dropped
// (DEALLOCATE ALL) is prepared again without failing the query.
func TestPreparedStatementsPerConnection(t *testing.T) {
	t.Parallel()
	const hot = `SELECT $1::int + 1`
	const cold = `SELECT $1::int + 2`
	c, err := pq.NewConnector(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(preparedConnector{Connector: c, prepared: func(q string) bool { return q == hot }})
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1) // one connection: every query below shares its session
	ctx := context.Background()
	run := func(q string, want int) {
		t.Helper()
		var got int
		if err := db.QueryRowContext(ctx, q, 1).Scan(&got); err != nil || got != want {
			t.Fatalf("%s: %d, %v; want %d", q, got, err, want)
		}
	}
	prepared := func(q string) int {
		t.Helper()
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_prepared_statements WHERE statement = $1`, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for range 3 {
		run(hot, 2)
		run(cold, 3)
	}
	if n, m := prepared(hot), prepared(cold); n != 1 || m != 0 {
		t.Fatalf("prepared on the connection: accepted statement %d times, refused one %d times; want 1 and 0", n, m)
	}
	if _, err := db.ExecContext(ctx, `DEALLOCATE ALL`); err != nil {
		t.Fatal(err)
	}
	run(hot, 2) // 26000 from the server, prepared again
	if n := prepared(hot); n != 1 {
		t.Fatalf("after DEALLOCATE ALL: prepared %d times, want 1", n)
	}
}
