package store_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantql/tenantql/store"
)

// lister pages through one list of a kind of row.
type lister[T any] struct {
	fetch  func(context.Context, store.PageArgs) (store.Page[T], error)
	key    func(T) (time.Time, uuid.UUID)
	newest bool // newest first, else oldest first
}

// collect reads the whole list first items at a time, checking each page,
// and calls between after each page but the last.
func (l lister[T]) collect(t *testing.T, ctx context.Context, first int, between func()) []T {
	t.Helper()
	var all []T
	after := ""
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatal("paging does not end")
		}
		p, err := l.fetch(ctx, store.PageArgs{First: first, After: after})
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		if len(p.Cursors) != len(p.Items) || len(p.Items) > first || p.HasNextPage && len(p.Items) != first {
			t.Fatalf("page %d: %d items, %d cursors, first %d, next %v", pages, len(p.Items), len(p.Cursors), first, p.HasNextPage)
		}
		if p.TotalCount < len(all)+len(p.Items) && between == nil {
			t.Fatalf("page %d: total %d, but %d rows read", pages, p.TotalCount, len(all)+len(p.Items))
		}
		all = append(all, p.Items...)
		if !p.HasNextPage {
			if between == nil && p.TotalCount != len(all) {
				t.Fatalf("read %d rows, total %d", len(all), p.TotalCount)
			}
			return all
		}
		after = p.Cursors[len(p.Cursors)-1]
		if between != nil {
			between()
		}
	}
}

// checkOrder fails unless rows are in strict list order (so none repeats).
func (l lister[T]) checkOrder(t *testing.T, rows []T) {
	t.Helper()
	for i := 1; i < len(rows); i++ {
		pt, pid := l.key(rows[i-1])
		ct, cid := l.key(rows[i])
		c := pt.Compare(ct)
		if c == 0 {
			c = bytes.Compare(pid[:], cid[:])
		}
		if l.newest {
			c = -c
		}
		if c >= 0 {
			t.Fatalf("rows %d and %d out of order: (%v, %s) then (%v, %s)", i-1, i, pt, pid, ct, cid)
		}
	}
}

// ids returns the ids of rows.
func (l lister[T]) ids(rows []T) []uuid.UUID {
	out := make([]uuid.UUID, len(rows))
	for i, r := range rows {
		_, out[i] = l.key(r)
	}
	return out
}

func userKey(u store.User) (time.Time, uuid.UUID)       { return u.CreatedAt, u.ID }
func projectKey(p store.Project) (time.Time, uuid.UUID) { return p.CreatedAt, p.ID }
func issueKey(i store.Issue) (time.Time, uuid.UUID)     { return i.CreatedAt, i.ID }
func commentKey(c store.Comment) (time.Time, uuid.UUID) { return c.CreatedAt, c.ID }
func projectKeyName(i int) string                       { return fmt.Sprintf("P%04d", i) }
func titled(i int) string                               { return fmt.Sprintf("issue %d", i) }
func noFilter(s *store.Store) func(context.Context, store.PageArgs) (store.Page[store.Issue], error) {
	return func(ctx context.Context, a store.PageArgs) (store.Page[store.Issue], error) {
		return s.ListIssues(ctx, store.IssueFilter{}, a)
	}
}

// fixture fills a database with n rows of every kind (users: n+1) and
// returns inserters that add one more of each.
type fixture struct {
	e        env
	reporter store.User
	issue    store.Issue // the issue all comments are on
	seq      atomic.Int64
}

func newFixture(t *testing.T, n int) *fixture {
	f := &fixture{e: newEnv(t)}
	f.reporter = f.e.user(t, "reporter")
	f.e.project(t, "WEB")
	f.issue = f.e.issue(t, "WEB", f.reporter.ID, "the discussed issue")
	for range n - 1 {
		for _, add := range []func() error{f.addUser, f.addProject, f.addIssue, f.addComment} {
			if err := add(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := f.addUser(); err != nil {
		t.Fatal(err)
	}
	if err := f.addComment(); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) next() int64 { return f.seq.Add(1) }

func (f *fixture) addUser() error {
	_, err := f.e.s.CreateUser(context.Background(), store.NewUser{Email: fmt.Sprintf("u%d@example.com", f.next()),
		Name: "U", Role: store.RoleMember, PasswordHash: "h"})
	return err
}

func (f *fixture) addProject() error {
	_, err := f.e.s.CreateProject(context.Background(), projectKeyName(int(f.next())), "P")
	return err
}

func (f *fixture) addIssue() error {
	_, err := f.e.s.CreateIssue(context.Background(), store.NewIssue{ProjectKey: "WEB", Title: titled(int(f.next())),
		ReporterID: f.reporter.ID})
	return err
}

func (f *fixture) addComment() error {
	_, err := f.e.s.AddComment(context.Background(), f.issue.Key(), f.reporter.ID, fmt.Sprintf("c%d", f.next()))
	return err
}

func TestPagination(t *testing.T) {
	t.Parallel()
	const n = 23
	f := newFixture(t, n)
	ctx, s := ctxT(t), f.e.s
	users := lister[store.User]{fetch: s.ListUsers, key: userKey}
	projects := lister[store.Project]{fetch: s.ListProjects, key: projectKey}
	issues := lister[store.Issue]{fetch: noFilter(s), key: issueKey, newest: true}
	comments := lister[store.Comment]{key: commentKey, fetch: func(ctx context.Context, a store.PageArgs) (store.Page[store.Comment], error) {
		return s.ListComments(ctx, f.issue.ID, a)
	}}
	for _, first := range []int{1, 7, 100} {
		t.Run(fmt.Sprint(first), func(t *testing.T) {
			checkAll(t, users, users.collect(t, ctx, first, nil), n+1)
			checkAll(t, projects, projects.collect(t, ctx, first, nil), n)
			checkAll(t, issues, issues.collect(t, ctx, first, nil), n)
			checkAll(t, comments, comments.collect(t, ctx, first, nil), n)
		})
	}
}

// checkAll checks that rows are n rows in list order without repeats.
func checkAll[T any](t *testing.T, l lister[T], rows []T, n int) {
	t.Helper()
	if len(rows) != n {
		t.Fatalf("%d rows, want %d", len(rows), n)
	}
	l.checkOrder(t, rows)
}

// TestPaginationWhileInserting pages through each list while another
// goroutine inserts rows: every row that existed before comes exactly once.
func TestPaginationWhileInserting(t *testing.T) {
	t.Parallel()
	const n = 40
	f := newFixture(t, n)
	ctx, s := ctxT(t), f.e.s
	users := lister[store.User]{fetch: s.ListUsers, key: userKey}
	projects := lister[store.Project]{fetch: s.ListProjects, key: projectKey}
	issues := lister[store.Issue]{fetch: noFilter(s), key: issueKey, newest: true}
	webIssues := lister[store.Issue]{key: issueKey, newest: true, fetch: func(ctx context.Context, a store.PageArgs) (store.Page[store.Issue], error) {
		return s.ListIssues(ctx, store.IssueFilter{ProjectKey: ptr("WEB")}, a)
	}}
	comments := lister[store.Comment]{key: commentKey, fetch: func(ctx context.Context, a store.PageArgs) (store.Page[store.Comment], error) {
		return s.ListComments(ctx, f.issue.ID, a)
	}}

	t.Run("users", func(t *testing.T) {
		before := users.ids(users.collect(t, ctx, 100, nil))
		during := whileInserting(t, f.addUser, func(between func()) []uuid.UUID {
			rows := users.collect(t, ctx, 3, between)
			users.checkOrder(t, rows)
			return users.ids(rows)
		})
		checkOnce(t, before, during)
	})
	t.Run("projects", func(t *testing.T) {
		before := projects.ids(projects.collect(t, ctx, 100, nil))
		during := whileInserting(t, f.addProject, func(between func()) []uuid.UUID {
			rows := projects.collect(t, ctx, 3, between)
			projects.checkOrder(t, rows)
			return projects.ids(rows)
		})
		checkOnce(t, before, during)
	})
	for _, l := range []struct {
		name string
		l    lister[store.Issue]
	}{{"issues", issues}, {"project issues", webIssues}} {
		t.Run(l.name, func(t *testing.T) {
			before := l.l.ids(l.l.collect(t, ctx, 100, nil))
			during := whileInserting(t, f.addIssue, func(between func()) []uuid.UUID {
				rows := l.l.collect(t, ctx, 3, between)
				l.l.checkOrder(t, rows)
				return l.l.ids(rows)
			})
			checkOnce(t, before, during)
		})
	}
	t.Run("comments", func(t *testing.T) {
		before := comments.ids(comments.collect(t, ctx, 100, nil))
		during := whileInserting(t, f.addComment, func(between func()) []uuid.UUID {
			rows := comments.collect(t, ctx, 3, between)
			comments.checkOrder(t, rows)
			return comments.ids(rows)
		})
		checkOnce(t, before, during)
	})
}

// whileInserting runs read while a goroutine calls insert in a loop; read's
// between function waits until at least one more row was inserted.
func whileInserting(t *testing.T, insert func() error, read func(between func()) []uuid.UUID) []uuid.UUID {
	t.Helper()
	var inserted atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var insertErr error // written before failed is set, read after wg.Wait
	var failed, finished atomic.Bool
	// a bounded number of inserts: an oldest-first list grows at its end, so
	// an inserter faster than the reader (a loaded machine) must stop for
	// paging to end
	const maxInserts = 150
	wg.Go(func() {
		defer finished.Store(true)
		for range maxInserts {
			select {
			case <-stop:
				return
			default:
			}
			if err := insert(); err != nil {
				insertErr = err
				failed.Store(true)
				return
			}
			inserted.Add(1)
		}
	})
	between := func() {
		seen := inserted.Load()
		deadline := time.Now().Add(10 * time.Second)
		for inserted.Load() == seen && time.Now().Before(deadline) && !failed.Load() && !finished.Load() {
			time.Sleep(100 * time.Microsecond)
		}
	}
	got := read(between)
	close(stop)
	wg.Wait()
	if insertErr != nil {
		t.Fatalf("insert: %v", insertErr)
	}
	if inserted.Load() == 0 {
		t.Fatal("nothing was inserted while paging")
	}
	return got
}

// checkOnce fails unless every id of before is in during exactly once and
// no id of during repeats.
func checkOnce(t *testing.T, before, during []uuid.UUID) {
	t.Helper()
	seen := map[uuid.UUID]int{}
	for _, id := range during {
		seen[id]++
		if seen[id] > 1 {
			t.Fatalf("row %s read twice", id)
		}
	}
	for _, id := range before {
		if seen[id] != 1 {
			t.Fatalf("row %s read %d times, want once", id, seen[id])
		}
	}
}

func TestPageArgsErrors(t *testing.T) {
	t.Parallel()
	e, ctx := newEnv(t), ctxT(t)
	u := e.user(t, "u")
	e.project(t, "WEB")
	is := e.issue(t, "WEB", u.ID, "x")
	e.comment(t, "WEB-1", u.ID, "c")
	good, err := e.s.ListUsers(ctx, store.PageArgs{First: 1})
	if err != nil {
		t.Fatal(err)
	}
	cursor := good.Cursors[0]
	b64 := base64.RawURLEncoding.EncodeToString
	bad := []store.PageArgs{
		{First: 0}, {First: -1}, {First: 101}, {First: 1 << 40},
		{First: 10, After: "!"}, {First: 10, After: "abc"}, {First: 10, After: cursor + "A"}, {First: 10, After: cursor[:len(cursor)-1]},
		{First: 10, After: cursor + "="}, {First: 10, After: base64.URLEncoding.EncodeToString(make([]byte, 23)) /* padded, 32 characters */},
		{First: 10, After: base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb, 0xff, 0xbf}, 8))},
		{First: 10, After: b64(make([]byte, 23))}, {First: 10, After: b64(make([]byte, 25))},
		{First: 10, After: b64(bytes.Repeat([]byte{0x7f}, 24))}, // the year 294247
		{First: 10, After: b64(bytes.Repeat([]byte{0x80}, 24))}, // before year 1
		{First: 10, After: cursor[:16] + "\n" + cursor[16:]},
		{First: 10, After: " " + cursor},
	}
	for i, args := range bad {
		_, err1 := e.s.ListUsers(ctx, args)
		_, err2 := e.s.ListProjects(ctx, args)
		_, err3 := e.s.ListIssues(ctx, store.IssueFilter{}, args)
		_, err4 := e.s.ListComments(ctx, is.ID, args)
		for _, err := range []error{err1, err2, err3, err4} {
			if !errors.Is(err, store.ErrInvalidInput) {
				t.Errorf("bad args %d %+v: error = %v, want ErrInvalidInput", i, args, err)
			}
		}
	}
	// a well-formed cursor of no row still works: it is a position
	zero := b64(make([]byte, 24))
	p, err := e.s.ListUsers(ctx, store.PageArgs{First: 10, After: zero})
	if err != nil || len(p.Items) != 1 {
		t.Fatalf("after the epoch: %+v, %v", p, err)
	}
	p2, err := e.s.ListIssues(ctx, store.IssueFilter{}, store.PageArgs{First: 10, After: zero})
	if err != nil || len(p2.Items) != 0 || p2.TotalCount != 1 {
		t.Fatalf("issues older than the epoch: %+v, %v", p2, err)
	}
}
