package tenancy

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	migrate "github.com/rubenv/sql-migrate"

	"github.com/tenantql/tenantql/internal/pgtest"
	"github.com/tenantql/tenantql/migrations"
	"github.com/tenantql/tenantql/store"
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

// TestPreparedStatementsAreBounded: a connection keeps at most
// maxPreparedPerConn statements prepared, closing the least recently run
// one; a closed one that runs again is prepared again.
func TestPreparedStatementsAreBounded(t *testing.T) {
	t.Parallel()
	c, err := pq.NewConnector(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(preparedConnector{Connector: c, prepared: func(string) bool { return true }})
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	query := func(k int) string { return fmt.Sprintf("SELECT $1::int + %d", k) }
	run := func(k int) {
		t.Helper()
		var got int
		if err := db.QueryRowContext(ctx, query(k), 1).Scan(&got); err != nil || got != 1+k {
			t.Fatalf("%s: %d, %v; want %d", query(k), got, err, 1+k)
		}
	}
	isPrepared := func(k int) bool {
		t.Helper()
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_prepared_statements WHERE statement = $1`, query(k)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	for k := range maxPreparedPerConn + 3 {
		run(k)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_prepared_statements`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != maxPreparedPerConn {
		t.Fatalf("%d statements prepared on the connection, want %d", n, maxPreparedPerConn)
	}
	if isPrepared(0) || !isPrepared(maxPreparedPerConn+2) {
		t.Fatal("want the least recently run statement closed and the last one kept")
	}
	run(0)
	if !isPrepared(0) {
		t.Fatal("a closed statement run again is not prepared again")
	}
}

// TestIssuePagesSettleOnGenericPlans: every page statement of the store,
// run by name on a connection, is planned once: PostgreSQL chooses its
// generic plan (a "LIMIT $n" would be costed at 10 % of the issues, the
// generic plan would look dearer than a custom one, and PostgreSQL would
// plan the statement again at every run).
func TestIssuePagesSettleOnGenericPlans(t *testing.T) {
	t.Parallel()
	c, err := pq.NewConnector(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	db := sqlx.NewDb(sql.OpenDB(preparedConnector{Connector: c, prepared: store.Preparable}), "postgres")
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	if _, err := migrations.TenantSet().Exec(db.DB, "postgres", migrations.Tenant(), migrate.Up); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	// 2,000 issues, as many assigned, in two projects and three statuses
	for _, q := range []string{
		`INSERT INTO users (id, email, name, role, password_hash) VALUES (gen_random_uuid(), 'ann@example.com', 'Ann', 'OWNER', 'x')`,
		`INSERT INTO projects (id, key, name, last_number) VALUES (gen_random_uuid(), 'WEB', 'Web', 1000), (gen_random_uuid(), 'API', 'Api', 1000)`,
		`INSERT INTO issues (id, project_id, number, title, description, status, assignee_id, reporter_id, created_at, updated_at)
		 SELECT gen_random_uuid(), p.id, g, 'issue ' || g, '', (ARRAY['TODO', 'IN_PROGRESS', 'DONE'])[1 + g % 3], u.id, u.id,
			now() - g * interval '1 minute', now() - g * interval '1 minute'
		 FROM generate_series(1, 1000) g, projects p, users u`,
		`ANALYZE`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	s := store.New(db)
	done := store.StatusDone
	web := "WEB"
	for _, f := range []store.IssueFilter{{}, {Status: &done}, {ProjectKey: &web}} {
		for _, first := range []int{20, 50} {
			for _, join := range []bool{false, true} {
				args := store.PageArgs{First: first, SkipCount: true, JoinAssignee: join}
				for range 8 {
					p, err := s.ListIssues(ctx, f, args)
					if err != nil || len(p.Items) != first {
						t.Fatalf("page %+v %+v: %d issues, %v", f, args, len(p.Items), err)
					}
				}
			}
		}
	}
	rows, err := db.QueryContext(ctx, `SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var q string
		var generic, custom int
		if err := rows.Scan(&q, &generic, &custom); err != nil {
			t.Fatal(err)
		}
		n++
		if generic == 0 || custom > 5 {
			t.Errorf("%d generic and %d custom plans in 8 runs of\n%s", generic, custom, q)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 12 {
		t.Fatalf("%d statements prepared, want 12 (3 filters x 2 page sizes x with and without the assignee)", n)
	}
}
