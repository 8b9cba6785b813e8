package store_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tenantql/tenantql/store"
)

func TestCreateProject(t *testing.T) {
	t.Parallel()
	e, ctx := newEnv(t), ctxT(t)
	p, err := e.s.CreateProject(ctx, "WEB", "  Website ")
	if err != nil {
		t.Fatal(err)
	}
	if p.ID == uuid.Nil || p.Key != "WEB" || p.Name != "Website" {
		t.Fatalf("created %+v", p)
	}
	isUTC(t, "project", p.CreatedAt)
	got, err := e.s.ProjectByKey(ctx, "WEB")
	if err != nil || got != p {
		t.Fatalf("ProjectByKey = %+v, %v; want %+v", got, err, p)
	}
	_, err = e.s.CreateProject(ctx, "WEB", "Another website")
	wantErr(t, err, store.ErrConflict)

	for _, key := range []string{"API", "A1", "ABCDEFGHIJ", "X2Y3"} {
		if _, err := e.s.CreateProject(ctx, key, "ok"); err != nil {
			t.Errorf("CreateProject(%q): %v", key, err)
		}
	}
	for _, key := range []string{"", "A", "web", "Web", "1AB", "ABCDEFGHIJK", "WE B", "WE-B", " WEB", "WEB\x00", "ÄBC"} {
		_, err := e.s.CreateProject(ctx, key, "name")
		wantErr(t, err, store.ErrInvalidInput)
	}
	for _, name := range []string{"", " ", strings.Repeat("x", 101), "a\x00", "a\tb", "\xfe"} {
		_, err := e.s.CreateProject(ctx, "NEW", name)
		wantErr(t, err, store.ErrInvalidInput)
	}
	if n := e.count(t, "projects"); n != 5 {
		t.Fatalf("%d projects, want 5", n)
	}
}

func TestProjectLookups(t *testing.T) {
	t.Parallel()
	e, ctx := newEnv(t), ctxT(t)
	web, api, ops := e.project(t, "WEB"), e.project(t, "API"), e.project(t, "OPS")
	for _, key := range []string{"NOPE", "web", "", "W", "WEB\x00", strings.Repeat("A", 1000)} {
		_, err := e.s.ProjectByKey(ctx, key)
		wantErr(t, err, store.ErrNotFound)
	}
	got, err := e.s.ProjectsByIDs(ctx, []uuid.UUID{web.ID, ops.ID, uuid.New(), ops.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[web.ID] != web || got[ops.ID] != ops {
		t.Fatalf("ProjectsByIDs = %+v", got)
	}
	if _, ok := got[api.ID]; ok {
		t.Fatal("API was not asked for")
	}
	got, err = e.s.ProjectsByIDs(ctx, []uuid.UUID{})
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("ProjectsByIDs(empty) = %v, %v", got, err)
	}
}
