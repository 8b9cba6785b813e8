package store_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tenantql/tenantql/store"
)

func TestAddComment(t *testing.T) {
	t.Parallel()
	e, ctx := newEnv(t), ctxT(t)
	e.project(t, "WEB")
	rep, dev := e.user(t, "rep"), e.user(t, "dev")
	is := e.issue(t, "WEB", rep.ID, "discuss")

	body := "  Looks good to me.\n\nShip it!  "
	c, err := e.s.AddComment(ctx, "WEB-1", dev.ID, body)
	if err != nil {
		t.Fatal(err)
	}
	if c.ID == uuid.Nil || c.IssueID != is.ID || c.AuthorID != dev.ID || c.Body != body {
		t.Fatalf("added %+v", c)
	}
	isUTC(t, "comment", c.CreatedAt)

	for _, key := range []string{"WEB-2", "API-1", "", "WEB-01", "x\x00"} {
		_, err := e.s.AddComment(ctx, key, dev.ID, "hello")
		wantErr(t, err, store.ErrNotFound)
	}
	_, err = e.s.AddComment(ctx, "WEB-1", uuid.New(), "hello")
	wantErr(t, err, store.ErrInvalidInput)
	_, err = e.s.AddComment(ctx, "WEB-1", uuid.Nil, "hello")
	wantErr(t, err, store.ErrInvalidInput)
	for _, bad := range []string{"", " \n\t ", strings.Repeat("b", 10001), "a\x00b", "\xff\xfe"} {
		_, err := e.s.AddComment(ctx, "WEB-1", dev.ID, bad)
		wantErr(t, err, store.ErrInvalidInput)
	}
	if _, err := e.s.AddComment(ctx, "WEB-1", dev.ID, strings.Repeat("b", 10000)); err != nil {
		t.Fatalf("10000-byte body: %v", err)
	}
	if n := e.count(t, "comments"); n != 2 {
		t.Fatalf("%d comments, want 2", n)
	}

	p, err := e.s.ListComments(ctx, is.ID, store.PageArgs{First: 10})
	if err != nil || len(p.Items) != 2 || p.Items[0] != c || p.TotalCount != 2 || p.HasNextPage {
		t.Fatalf("ListComments = %+v, %v", p, err)
	}
	p, err = e.s.ListComments(ctx, uuid.New(), store.PageArgs{First: 10})
	if err != nil || len(p.Items) != 0 || p.TotalCount != 0 || p.HasNextPage {
		t.Fatalf("ListComments(unknown) = %+v, %v", p, err)
	}
}

func TestCommentsForIssues(t *testing.T) {
	t.Parallel()
	e, ctx := newEnv(t), ctxT(t)
	e.project(t, "WEB")
	a, b := e.user(t, "a"), e.user(t, "b")
	counts := []int{0, 1, 3, 10, 11, 25}
	var ids []uuid.UUID
	for i, n := range counts {
		is := e.issue(t, "WEB", a.ID, fmt.Sprintf("issue %d", i))
		ids = append(ids, is.ID)
		for j := range n {
			author := a.ID
			if j%2 == 1 {
				author = b.ID
			}
			e.comment(t, is.Key(), author, fmt.Sprintf("comment %d on %s", j, is.Key()))
		}
	}
	unknown := uuid.New()
	asked := append([]uuid.UUID{unknown, ids[3]}, ids...) // with an unknown id and a duplicate
	for _, first := range []int{1, 3, 10, 100} {
		got, err := e.s.CommentsForIssues(ctx, asked, first)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(ids)+1 {
			t.Fatalf("first %d: %d entries, want %d", first, len(got), len(ids)+1)
		}
		for i, id := range append([]uuid.UUID{unknown}, ids...) {
			want, err := e.s.ListComments(ctx, id, store.PageArgs{First: first})
			if err != nil {
				t.Fatal(err)
			}
			page, ok := got[id]
			if !ok || !reflect.DeepEqual(page, want) {
				t.Fatalf("first %d, issue %d: CommentsForIssues gives %+v, ListComments %+v", first, i, page, want)
			}
			if want.HasNextPage { // the cursors continue with ListComments
				next, err := e.s.ListComments(ctx, id, store.PageArgs{First: 100, After: page.Cursors[len(page.Cursors)-1]})
				if err != nil || len(next.Items)+len(page.Items) != want.TotalCount {
					t.Fatalf("continuing: %d more items, %v", len(next.Items), err)
				}
			}
		}
	}
	got, err := e.s.CommentsForIssues(ctx, nil, 10)
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("CommentsForIssues(nil) = %v, %v", got, err)
	}
	for _, first := range []int{0, -1, 101} {
		_, err := e.s.CommentsForIssues(ctx, ids, first)
		wantErr(t, err, store.ErrInvalidInput)
	}
}
