//go:build ignore

package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/lib/pq"
)

const q = `SELECT i.id, i.project_id, p.key AS project_key, i.number, i.title, i.description,
	i.status, i.assignee_id, i.reporter_id, i.created_at, i.updated_at FROM issues i JOIN projects p ON p.id = i.project_id
		WHERE ($1::uuid IS NULL OR i.project_id = $1)
		AND ($2::text IS NULL OR i.project_id = (SELECT id FROM projects WHERE key = $2))
		AND ($3::text IS NULL OR i.status = $3)
		AND ($4::uuid IS NULL OR i.assignee_id = $4)
		AND ($5::timestamptz IS NULL OR (i.created_at, i.id) < ($5, $6::uuid))
		ORDER BY i.created_at DESC, i.id DESC LIMIT $7`

const qu = `SELECT id, email, name, role, password_hash, created_at FROM users WHERE id = ANY($1::uuid[])`
const qv = `SELECT id, email, name, role, password_hash, created_at FROM users WHERE id = $1`

func backendCPU(db *sql.Conn) func() time.Duration {
	var pid int
	db.QueryRowContext(context.Background(), "SELECT pg_backend_pid()").Scan(&pid)
	read := func() time.Duration {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		var u, st int64
		fmt.Sscan(f[11], &u)
		fmt.Sscan(f[12], &st)
		return time.Duration(u+st) * 10 * time.Millisecond
	}
	t0 := read()
	return func() time.Duration { return read() - t0 }
}

func main() {
	url := os.Args[1]
	ctx := context.Background()
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	db, _ := sql.Open("postgres", url+sep+"binary_parameters=yes")
	if _, err := db.Exec("SELECT 1"); err != nil {
		panic(err)
	}
	db.Exec(`INSERT INTO issues (id, project_id, number, title, status, assignee_id, reporter_id, created_at)
		SELECT gen_random_uuid(), p.id, g, 'x issue '||g, 'TODO', (SELECT id FROM users ORDER BY random()+g LIMIT 1), (SELECT id FROM users LIMIT 1), now() - g * interval '1 minute'
		FROM projects p, generate_series(1,1000) g ON CONFLICT DO NOTHING`)
	db.Exec(`ANALYZE`)
	var ids []string
	rows, _ := db.Query(`SELECT id FROM users`)
	for rows.Next() {
		var s string
		rows.Scan(&s)
		ids = append(ids, s)
	}
	rows.Close()
	const n = 3000
	run := func(name string, prepared bool) {
		c, _ := db.Conn(ctx)
		defer c.Close()
		cpu := backendCPU(c)
		var st, su, sv *sql.Stmt
		if prepared {
			st, _ = c.PrepareContext(ctx, q)
			su, _ = c.PrepareContext(ctx, qu)
			sv, _ = c.PrepareContext(ctx, qv)
		}
		t0 := time.Now()
		for i := 0; i < n; i++ {
			var r *sql.Rows
			var err error
			if prepared {
				r, err = st.QueryContext(ctx, nil, nil, nil, nil, nil, nil, 21)
			} else {
				r, err = c.QueryContext(ctx, q, nil, nil, nil, nil, nil, nil, 21)
			}
			if err != nil {
				panic(err)
			}
			for r.Next() {
			}
			r.Close()
			if prepared {
				r, err = su.QueryContext(ctx, pq.Array(ids))
			} else {
				r, err = c.QueryContext(ctx, qu, pq.Array(ids))
			}
			if err != nil {
				panic(err)
			}
			for r.Next() {
			}
			r.Close()
			if prepared {
				r, err = sv.QueryContext(ctx, ids[0])
			} else {
				r, err = c.QueryContext(ctx, qv, ids[0])
			}
			for r.Next() {
			}
			r.Close()
		}
		el := time.Since(t0)
		fmt.Printf("%-10s wall %.3f ms/request, backend CPU %.3f ms/request (3 queries)\n", name, float64(el.Microseconds())/1000/n, float64(cpu().Microseconds())/1000/n)
	}
	run("unnamed", false)
	run("prepared", true)
	run("unnamed", false)
	run("prepared", true)
}
