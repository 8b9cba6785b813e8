package store_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/tenantql/tenantql/store"
)

type seedCounts struct{ users, projects, issues, comments int }

func (e env) seedCounts(t *testing.T) seedCounts {
	return seedCounts{e.count(t, "users"), e.count(t, "projects"), e.count(t, "issues"), e.count(t, "comments")}
}

func TestSeedDemo(t *testing.T) {
	t.Parallel()
	e, ctx := newEnv(t), ctxT(t)
	owner, err := e.s.EnsureOwner(ctx, store.NewUser{Email: "olivia@acme.test", Name: "Olivia Owner", PasswordHash: "owner-hash"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.s.SeedDemo(ctx, owner.ID, "demo-hash"); err != nil {
		t.Fatal(err)
	}
	got := e.seedCounts(t)
	if got != (seedCounts{users: 5, projects: 2, issues: 40, comments: 60}) {
		t.Fatalf("counts after seeding: %+v", got)
	}
	if err := e.s.SeedDemo(ctx, owner.ID, "demo-hash"); err != nil {
		t.Fatal(err)
	}
	if again := e.seedCounts(t); again != got {
		t.Fatalf("counts after seeding twice: %+v, want %+v", again, got)
	}

	users, err := e.s.ListUsers(ctx, store.PageArgs{First: 100})
	if err != nil {
		t.Fatal(err)
	}
	roles := map[store.Role]int{}
	for _, u := range users.Items {
		roles[u.Role]++
		if u.ID == owner.ID {
			if u != owner {
				t.Fatalf("owner changed: %+v", u)
			}
			continue
		}
		if !strings.HasSuffix(u.Email, "@acme.test") || u.PasswordHash != "demo-hash" || u.Name == "" {
			t.Errorf("demo user %+v", u)
		}
		if byEmail, err := e.s.UserByEmail(ctx, u.Email); err != nil || byEmail != u {
			t.Errorf("UserByEmail(%q) = %+v, %v", u.Email, byEmail, err)
		}
	}
	if roles[store.RoleOwner] != 1 || roles[store.RoleAdmin] != 1 || roles[store.RoleMember] != 3 {
		t.Fatalf("roles %v", roles)
	}

	for _, key := range []string{"WEB", "API"} {
		if _, err := e.s.ProjectByKey(ctx, key); err != nil {
			t.Fatalf("project %s: %v", key, err)
		}
	}
	issues, err := e.s.ListIssues(ctx, store.IssueFilter{}, store.PageArgs{First: 100})
	if err != nil {
		t.Fatal(err)
	}
	statuses := map[store.IssueStatus]int{}
	assignees := map[uuid.UUID]bool{}
	numbers := map[string][]int{}
	var unassigned, commented int
	for _, is := range issues.Items {
		statuses[is.Status]++
		if is.AssigneeID == nil {
			unassigned++
		} else {
			assignees[*is.AssigneeID] = true
		}
		numbers[is.ProjectKey] = append(numbers[is.ProjectKey], is.Number)
		if is.Title == "" || is.Description == "" || is.UpdatedAt.Before(is.CreatedAt) {
			t.Errorf("issue %+v", is)
		}
		cs, err := e.s.ListComments(ctx, is.ID, store.PageArgs{First: 100})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs.Items {
			if !c.CreatedAt.After(is.CreatedAt) {
				t.Errorf("comment %+v older than its issue %s", c, is.Key())
			}
		}
		if cs.TotalCount > 0 {
			commented++
		}
	}
	if statuses[store.StatusTodo] == 0 || statuses[store.StatusInProgress] == 0 || statuses[store.StatusDone] == 0 {
		t.Fatalf("statuses %v", statuses)
	}
	if unassigned == 0 || len(assignees) < 4 || commented < 30 {
		t.Fatalf("%d unassigned, %d assignees, %d commented issues", unassigned, len(assignees), commented)
	}
	for key, ns := range numbers { // newest first: n, n-1, ..., 1
		for i, n := range ns {
			if n != len(ns)-i {
				t.Fatalf("%s numbers %v", key, ns)
			}
		}
		// the next issue continues the sequence
		is := e.issue(t, key, owner.ID, "after the demo")
		if is.Number != len(ns)+1 {
			t.Fatalf("%s: next number %d, want %d", key, is.Number, len(ns)+1)
		}
	}
}

func TestSeedDemoConcurrent(t *testing.T) {
	t.Parallel()
	e, ctx := newEnv(t), ctxT(t)
	owner, err := e.s.EnsureOwner(ctx, store.NewUser{Email: "owner@example.org", Name: "Owner", PasswordHash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = e.s.SeedDemo(ctx, owner.ID, "h") })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := e.seedCounts(t); got != (seedCounts{users: 5, projects: 2, issues: 40, comments: 60}) {
		t.Fatalf("counts: %+v", got)
	}
}

func TestSeedDemoErrors(t *testing.T) {
	t.Parallel()
	e, ctx := newEnv(t), ctxT(t)
	wantErr(t, e.s.SeedDemo(ctx, uuid.New(), "h"), store.ErrNotFound)
	owner := e.user(t, "owner")
	wantErr(t, e.s.SeedDemo(ctx, owner.ID, ""), store.ErrInvalidInput)
	if got := e.seedCounts(t); got != (seedCounts{users: 1}) {
		t.Fatalf("counts after failures: %+v", got)
	}
	// a project of the tenant's own means "already seeded"
	e.project(t, "MINE")
	if err := e.s.SeedDemo(ctx, owner.ID, "h"); err != nil {
		t.Fatal(err)
	}
	if got := e.seedCounts(t); got != (seedCounts{users: 1, projects: 1}) {
		t.Fatalf("counts: %+v", got)
	}
}
