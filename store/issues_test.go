package store_test

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantql/tenantql/store"
)

func TestCreateIssue(t *testing.T) {
	t.Parallel()
	e, ctx := newEnv(t), ctxT(t)
	web := e.project(t, "WEB")
	rep, dev := e.user(t, "rep"), e.user(t, "dev")

	first, err := e.s.CreateIssue(ctx, store.NewIssue{ProjectKey: "WEB", Title: "  Fix login  ", ReporterID: rep.ID})
	if err != nil {
		t.Fatal(err)
	}
	if first.ID == uuid.Nil || first.ProjectID != web.ID || first.ProjectKey != "WEB" || first.Number != 1 ||
		first.Title != "Fix login" || first.Description != "" || first.Status != store.StatusTodo ||
		first.AssigneeID != nil || first.ReporterID != rep.ID || first.Key() != "WEB-1" {
		t.Fatalf("created %+v", first)
	}
	isUTC(t, "issue", first.CreatedAt, first.UpdatedAt)

	desc := "Steps:\n1. open\n\t2. click\n"
	second, err := e.s.CreateIssue(ctx, store.NewIssue{ProjectKey: "WEB", Title: "Crash", Description: desc,
		Status: store.StatusInProgress, AssigneeID: &dev.ID, ReporterID: rep.ID})
	if err != nil {
		t.Fatal(err)
	}
	if second.Number != 2 || second.Key() != "WEB-2" || second.Description != desc ||
		second.Status != store.StatusInProgress || second.AssigneeID == nil || *second.AssigneeID != dev.ID {
		t.Fatalf("created %+v", second)
	}
	got, err := e.s.IssueByKey(ctx, "WEB-2")
	if err != nil || !issueEqual(got, second) {
		t.Fatalf("IssueByKey = %+v, %v; want %+v", got, err, second)
	}
	got, err = e.s.IssueByID(ctx, second.ID)
	if err != nil || !issueEqual(got, second) {
		t.Fatalf("IssueByID = %+v, %v; want %+v", got, err, second)
	}
	_, err = e.s.IssueByID(ctx, uuid.New())
	wantErr(t, err, store.ErrNotFound)

	// numbers are per project
	e.project(t, "API")
	if is := e.issue(t, "API", rep.ID, "First API issue"); is.Key() != "API-1" {
		t.Fatalf("key %s, want API-1", is.Key())
	}

	// failures
	_, err = e.s.CreateIssue(ctx, store.NewIssue{ProjectKey: "NOPE", Title: "x", ReporterID: rep.ID})
	wantErr(t, err, store.ErrNotFound)
	_, err = e.s.CreateIssue(ctx, store.NewIssue{ProjectKey: "web", Title: "x", ReporterID: rep.ID})
	wantErr(t, err, store.ErrNotFound)
	unknown := uuid.New()
	_, err = e.s.CreateIssue(ctx, store.NewIssue{ProjectKey: "WEB", Title: "x", AssigneeID: &unknown, ReporterID: rep.ID})
	wantErr(t, err, store.ErrInvalidInput)
	_, err = e.s.CreateIssue(ctx, store.NewIssue{ProjectKey: "WEB", Title: "x", AssigneeID: &uuid.Nil, ReporterID: rep.ID})
	wantErr(t, err, store.ErrInvalidInput)
	_, err = e.s.CreateIssue(ctx, store.NewIssue{ProjectKey: "WEB", Title: "x", ReporterID: unknown})
	wantErr(t, err, store.ErrInvalidInput)
	_, err = e.s.CreateIssue(ctx, store.NewIssue{ProjectKey: "WEB", Title: "x"})
	wantErr(t, err, store.ErrInvalidInput)

	// failed creates leave no gap
	if is := e.issue(t, "WEB", rep.ID, "Third"); is.Number != 3 {
		t.Fatalf("number %d after failed creates, want 3", is.Number)
	}
}

// issueEqual compares issues, assignees by value.
func issueEqual(a, b store.Issue) bool {
	aa, ba := a.AssigneeID, b.AssigneeID
	a.AssigneeID, b.AssigneeID = nil, nil
	if (aa == nil) != (ba == nil) || aa != nil && *aa != *ba {
		return false
	}
	return a == b
}

func TestCreateIssueValidation(t *testing.T) {
	t.Parallel()
	e, ctx := newEnv(t), ctxT(t)
	e.project(t, "WEB")
	rep := e.user(t, "rep")
	tests := []struct {
		name   string
		change func(*store.NewIssue)
	}{
		{"empty title", func(n *store.NewIssue) { n.Title = "" }},
		{"blank title", func(n *store.NewIssue) { n.Title = " \t " }},
		{"long title", func(n *store.NewIssue) { n.Title = strings.Repeat("t", 201) }},
		{"long multibyte title", func(n *store.NewIssue) { n.Title = strings.Repeat("€", 67) }},
		{"newline title", func(n *store.NewIssue) { n.Title = "a\nb" }},
		{"NUL title", func(n *store.NewIssue) { n.Title = "a\x00" }},
		{"invalid UTF-8 title", func(n *store.NewIssue) { n.Title = "\xc3\x28" }},
		{"long description", func(n *store.NewIssue) { n.Description = strings.Repeat("d", 20001) }},
		{"NUL description", func(n *store.NewIssue) { n.Description = "a\x00b" }},
		{"invalid UTF-8 description", func(n *store.NewIssue) { n.Description = "\xff" }},
		{"unknown status", func(n *store.NewIssue) { n.Status = "CLOSED" }},
		{"lower-case status", func(n *store.NewIssue) { n.Status = "todo" }},
	}
	for _, tt := range tests {
		ni := store.NewIssue{ProjectKey: "WEB", Title: "ok", ReporterID: rep.ID}
		tt.change(&ni)
		_, err := e.s.CreateIssue(ctx, ni)
		if !strings.HasPrefix(errString(err), "invalid input: ") {
			t.Errorf("%s: error = %v, want ErrInvalidInput", tt.name, err)
		}
	}
	if n := e.count(t, "issues"); n != 0 {
		t.Fatalf("%d issues, want 0", n)
	}
	is, err := e.s.CreateIssue(ctx, store.NewIssue{ProjectKey: "WEB", Title: strings.Repeat("t", 200),
		Description: strings.Repeat("d", 20000), ReporterID: rep.ID})
	if err != nil || is.Number != 1 {
		t.Fatalf("limits: %+v, %v", is, err)
	}
}

func TestCreateIssueConcurrentNumbers(t *testing.T) {
	t.Parallel()
	e, ctx := newEnv(t), ctxT(t)
	e.project(t, "WEB")
	rep := e.user(t, "rep")
	const n = 50
	numbers := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			is, err := e.s.CreateIssue(ctx, store.NewIssue{ProjectKey: "WEB", Title: "concurrent", ReporterID: rep.ID})
			numbers[i], errs[i] = is.Number, err
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(numbers)
	for i, got := range numbers {
		if got != i+1 {
			t.Fatalf("numbers %v, want 1..%d", numbers, n)
		}
	}
	if is := e.issue(t, "WEB", rep.ID, "next"); is.Number != n+1 {
		t.Fatalf("next number %d, want %d", is.Number, n+1)
	}
}

func TestIssueByKeyNotFound(t *testing.T) {
	t.Parallel()
	e, ctx := newEnv(t), ctxT(t)
	e.project(t, "WEB")
	e.issue(t, "WEB", e.user(t, "rep").ID, "one")
	if _, err := e.s.IssueByKey(ctx, "WEB-1"); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"", "WEB", "WEB-", "-1", "WEB-0", "WEB-01", "WEB-2", "web-1", "WEB-1x",
		"WEB-+1", "WEB--1", "WEB-1 ", " WEB-1", "WEB-2147483648", "WEB-99999999999999999999", "API-1",
		"WEB_1", "WEB-1\x00", "W\xffB-1", "A-1"} {
		_, err := e.s.IssueByKey(ctx, key)
		wantErr(t, err, store.ErrNotFound)
	}
}

func TestUpdateIssue(t *testing.T) {
	t.Parallel()
	e, ctx := newEnv(t), ctxT(t)
	e.project(t, "WEB")
	rep, dev := e.user(t, "rep"), e.user(t, "dev")
	orig := e.issue(t, "WEB", rep.ID, "Original")

	// an empty patch changes nothing
	same, err := e.s.UpdateIssue(ctx, "WEB-1", store.IssuePatch{})
	if err != nil || !issueEqual(same, orig) {
		t.Fatalf("empty patch: %+v, %v; want %+v", same, err, orig)
	}

	time.Sleep(2 * time.Millisecond)
	up, err := e.s.UpdateIssue(ctx, "WEB-1", store.IssuePatch{Title: ptr(" New title "),
		Description: ptr("More\ndetail"), Status: ptr(store.StatusDone), AssigneeID: &dev.ID})
	if err != nil {
		t.Fatal(err)
	}
	if up.ID != orig.ID || up.Key() != "WEB-1" || up.Title != "New title" || up.Description != "More\ndetail" ||
		up.Status != store.StatusDone || up.AssigneeID == nil || *up.AssigneeID != dev.ID ||
		up.ReporterID != rep.ID || !up.CreatedAt.Equal(orig.CreatedAt) || !up.UpdatedAt.After(orig.UpdatedAt) {
		t.Fatalf("updated %+v (was %+v)", up, orig)
	}
	isUTC(t, "updated issue", up.CreatedAt, up.UpdatedAt)
	if got, _ := e.s.IssueByKey(ctx, "WEB-1"); !issueEqual(got, up) {
		t.Fatalf("stored %+v, want %+v", got, up)
	}

	// one field at a time leaves the others
	only, err := e.s.UpdateIssue(ctx, "WEB-1", store.IssuePatch{Status: ptr(store.StatusInProgress)})
	if err != nil || only.Title != "New title" || only.Status != store.StatusInProgress || only.AssigneeID == nil {
		t.Fatalf("status only: %+v, %v", only, err)
	}
	cleared, err := e.s.UpdateIssue(ctx, "WEB-1", store.IssuePatch{ClearAssignee: true})
	if err != nil || cleared.AssigneeID != nil || cleared.Status != store.StatusInProgress {
		t.Fatalf("clear assignee: %+v, %v", cleared, err)
	}
	empty, err := e.s.UpdateIssue(ctx, "WEB-1", store.IssuePatch{Description: ptr("")})
	if err != nil || empty.Description != "" || empty.Title != "New title" {
		t.Fatalf("empty description: %+v, %v", empty, err)
	}

	// failures
	unknown := uuid.New()
	for _, p := range []store.IssuePatch{
		{Title: ptr("")}, {Title: ptr(strings.Repeat("t", 201))}, {Title: ptr("a\x00")}, {Title: ptr("a\nb")},
		{Description: ptr(strings.Repeat("d", 20001))}, {Description: ptr("\x00")},
		{Status: ptr(store.IssueStatus("OPEN"))}, {AssigneeID: &unknown}, {AssigneeID: &uuid.Nil},
		{AssigneeID: &dev.ID, ClearAssignee: true},
	} {
		_, err := e.s.UpdateIssue(ctx, "WEB-1", p)
		wantErr(t, err, store.ErrInvalidInput)
	}
	for _, key := range []string{"WEB-2", "API-1", "nope", ""} {
		_, err := e.s.UpdateIssue(ctx, key, store.IssuePatch{Title: ptr("x")})
		wantErr(t, err, store.ErrNotFound)
		_, err = e.s.UpdateIssue(ctx, key, store.IssuePatch{})
		wantErr(t, err, store.ErrNotFound)
	}
	if got, _ := e.s.IssueByKey(ctx, "WEB-1"); !issueEqual(got, empty) {
		t.Fatalf("failed updates changed the issue: %+v, want %+v", got, empty)
	}
}

func TestDeleteIssue(t *testing.T) {
	t.Parallel()
	e, ctx := newEnv(t), ctxT(t)
	e.project(t, "WEB")
	rep := e.user(t, "rep")
	e.issue(t, "WEB", rep.ID, "one")
	two := e.issue(t, "WEB", rep.ID, "two")
	e.comment(t, "WEB-1", rep.ID, "a comment")

	if err := e.s.DeleteIssue(ctx, "WEB-1"); err != nil {
		t.Fatal(err)
	}
	_, err := e.s.IssueByKey(ctx, "WEB-1")
	wantErr(t, err, store.ErrNotFound)
	if n := e.count(t, "comments"); n != 0 {
		t.Fatalf("%d comments left, want 0", n)
	}
	if _, err := e.s.IssueByKey(ctx, "WEB-2"); err != nil {
		t.Fatalf("WEB-2: %v", err)
	}
	for _, key := range []string{"WEB-1", "WEB-3", "API-1", "garbage", ""} {
		wantErr(t, e.s.DeleteIssue(ctx, key), store.ErrNotFound)
	}
	// numbers are not reused
	if is := e.issue(t, "WEB", rep.ID, "three"); is.Number != 3 {
		t.Fatalf("number %d, want 3", is.Number)
	}
	_ = two
}

func TestListIssuesFilters(t *testing.T) {
	t.Parallel()
	e, ctx := newEnv(t), ctxT(t)
	web, api := e.project(t, "WEB"), e.project(t, "API")
	e.project(t, "EMPTY")
	ann, bob := e.user(t, "ann"), e.user(t, "bob")

	type spec struct {
		project  string
		status   store.IssueStatus
		assignee *uuid.UUID
	}
	specs := []spec{
		{"WEB", store.StatusTodo, nil}, {"WEB", store.StatusTodo, &ann.ID}, {"WEB", store.StatusDone, &bob.ID},
		{"API", store.StatusInProgress, &ann.ID}, {"WEB", store.StatusInProgress, nil}, {"API", store.StatusTodo, &bob.ID},
		{"API", store.StatusDone, &ann.ID}, {"WEB", store.StatusDone, &ann.ID},
	}
	var all []store.Issue
	for _, sp := range specs {
		is, err := e.s.CreateIssue(ctx, store.NewIssue{ProjectKey: sp.project, Title: "t", Status: sp.status,
			AssigneeID: sp.assignee, ReporterID: bob.ID})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, is)
	}
	match := func(f func(store.Issue) bool) []uuid.UUID {
		var ids []uuid.UUID
		for i := len(all) - 1; i >= 0; i-- { // newest first
			if f(all[i]) {
				ids = append(ids, all[i].ID)
			}
		}
		return ids
	}
	assignedTo := func(is store.Issue, u uuid.UUID) bool { return is.AssigneeID != nil && *is.AssigneeID == u }
	tests := []struct {
		name   string
		filter store.IssueFilter
		want   []uuid.UUID
	}{
		{"none", store.IssueFilter{}, match(func(store.Issue) bool { return true })},
		{"project key", store.IssueFilter{ProjectKey: ptr("WEB")},
			match(func(is store.Issue) bool { return is.ProjectKey == "WEB" })},
		{"project id", store.IssueFilter{ProjectID: &api.ID},
			match(func(is store.Issue) bool { return is.ProjectID == api.ID })},
		{"key and id agree", store.IssueFilter{ProjectKey: ptr("WEB"), ProjectID: &web.ID},
			match(func(is store.Issue) bool { return is.ProjectID == web.ID })},
		{"key and id disagree", store.IssueFilter{ProjectKey: ptr("WEB"), ProjectID: &api.ID}, nil},
		{"status", store.IssueFilter{Status: ptr(store.StatusDone)},
			match(func(is store.Issue) bool { return is.Status == store.StatusDone })},
		{"assignee", store.IssueFilter{AssigneeID: &ann.ID},
			match(func(is store.Issue) bool { return assignedTo(is, ann.ID) })},
		{"all three", store.IssueFilter{ProjectKey: ptr("WEB"), Status: ptr(store.StatusDone), AssigneeID: &ann.ID},
			match(func(is store.Issue) bool {
				return is.ProjectKey == "WEB" && is.Status == store.StatusDone && assignedTo(is, ann.ID)
			})},
		{"project without issues", store.IssueFilter{ProjectKey: ptr("EMPTY")}, nil},
		{"unknown project key", store.IssueFilter{ProjectKey: ptr("NOPE")}, nil},
		{"malformed project key", store.IssueFilter{ProjectKey: ptr("no\x00pe")}, nil},
		{"unknown project id", store.IssueFilter{ProjectID: ptr(uuid.New())}, nil},
		{"unknown assignee", store.IssueFilter{AssigneeID: ptr(uuid.New())}, nil},
	}
	for _, tt := range tests {
		p, err := e.s.ListIssues(ctx, tt.filter, store.PageArgs{First: 100})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var got []uuid.UUID
		for _, is := range p.Items {
			got = append(got, is.ID)
			isUTC(t, tt.name, is.CreatedAt, is.UpdatedAt)
		}
		if !slices.Equal(got, tt.want) || p.TotalCount != len(tt.want) || p.HasNextPage || len(p.Cursors) != len(p.Items) {
			t.Errorf("%s: got %v (total %d, next %v), want %v", tt.name, got, p.TotalCount, p.HasNextPage, tt.want)
		}
		if p.Items == nil {
			t.Errorf("%s: nil Items", tt.name)
		}
	}
	// TotalCount counts every match, not only the page
	p, err := e.s.ListIssues(ctx, store.IssueFilter{ProjectKey: ptr("WEB")}, store.PageArgs{First: 2})
	if err != nil || len(p.Items) != 2 || p.TotalCount != 5 || !p.HasNextPage {
		t.Fatalf("first 2 of WEB: %d items, total %d, next %v, %v", len(p.Items), p.TotalCount, p.HasNextPage, err)
	}
	// SkipCount gives the same page without counting
	skip, err := e.s.ListIssues(ctx, store.IssueFilter{ProjectKey: ptr("WEB")}, store.PageArgs{First: 2, SkipCount: true})
	if err != nil || len(skip.Items) != 2 || skip.TotalCount != 0 || !skip.HasNextPage ||
		skip.Items[0].ID != p.Items[0].ID || skip.Items[1].ID != p.Items[1].ID || skip.Cursors[1] != p.Cursors[1] {
		t.Fatalf("SkipCount page differs: %+v, %v", skip, err)
	}
	_, err = e.s.ListIssues(ctx, store.IssueFilter{Status: ptr(store.IssueStatus("NEW"))}, store.PageArgs{First: 10})
	wantErr(t, err, store.ErrInvalidInput)
	_, err = e.s.ListIssues(ctx, store.IssueFilter{ProjectKey: ptr("NOPE")}, store.PageArgs{First: 0})
	wantErr(t, err, store.ErrInvalidInput)
}

// TestListIssuesEveryStatement pages (two at a time) through every
// combination of filters, with and without the assignee and the reporter
// joined in, with and without the project key and the description: each
// is a statement of its own (pageStatement), and each must give the
// issues that match, newest first, with the right users, and the columns
// asked for.
func TestListIssuesEveryStatement(t *testing.T) {
	t.Parallel()
	e, ctx := newEnv(t), ctxT(t)
	web, _ := e.project(t, "WEB"), e.project(t, "API")
	ann, bob := e.user(t, "ann"), e.user(t, "bob")
	users := map[uuid.UUID]store.User{ann.ID: ann, bob.ID: bob}
	for id, u := range users {
		u.PasswordHash = "" // never joined in
		users[id] = u
	}
	var all []store.Issue
	for i := range 12 {
		assignee := []*uuid.UUID{&ann.ID, &bob.ID, nil}[i%3]
		reporter := []uuid.UUID{bob.ID, ann.ID}[i%2]
		is, err := e.s.CreateIssue(ctx, store.NewIssue{ProjectKey: []string{"WEB", "API"}[i/2%2], Title: "t", Description: "about " + strconv.Itoa(i),
			Status: []store.IssueStatus{store.StatusTodo, store.StatusDone}[i/4%2], AssigneeID: assignee, ReporterID: reporter})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, is)
	}
	created := map[uuid.UUID]store.Issue{}
	for _, is := range all {
		created[is.ID] = is
	}
	for mask := range 1 << 8 {
		var f store.IssueFilter
		if mask&1 != 0 {
			f.ProjectID = &web.ID
		}
		if mask&2 != 0 {
			f.ProjectKey = ptr("WEB")
		}
		if mask&4 != 0 {
			f.Status = ptr(store.StatusDone)
		}
		if mask&8 != 0 {
			f.AssigneeID = &ann.ID
		}
		joinA, joinR := mask&16 != 0, mask&32 != 0
		skipKey, skipDesc := mask&64 != 0, mask&128 != 0
		var want, got []uuid.UUID
		for i := len(all) - 1; i >= 0; i-- {
			is := all[i]
			if (f.ProjectID == nil || is.ProjectID == web.ID) && (f.ProjectKey == nil || is.ProjectKey == "WEB") &&
				(f.Status == nil || is.Status == store.StatusDone) &&
				(f.AssigneeID == nil || is.AssigneeID != nil && *is.AssigneeID == ann.ID) {
				want = append(want, is.ID)
			}
		}
		args := store.PageArgs{First: 2, JoinAssignee: joinA, JoinReporter: joinR, SkipProjectKey: skipKey, SkipDescription: skipDesc}
		for pages := 0; ; pages++ {
			p, err := e.s.ListIssues(ctx, f, args)
			if err != nil {
				t.Fatalf("filter %+v, page %d: %v", f, pages, err)
			}
			for _, is := range p.Items {
				got = append(got, is.ID)
				switch {
				case !joinA && is.Assignee != nil, !joinR && is.Reporter != nil:
					t.Fatalf("users joined unasked: %+v", is)
				case joinA && (is.AssigneeID == nil) != (is.Assignee == nil):
					t.Fatalf("issue %s: assignee id %v, joined %v", is.ID, is.AssigneeID, is.Assignee)
				case joinA && is.Assignee != nil && (*is.Assignee != users[*is.AssigneeID]):
					t.Fatalf("issue %s: joined assignee %+v, want %+v", is.ID, *is.Assignee, users[*is.AssigneeID])
				case joinR && (is.Reporter == nil || is.Reporter.ID != is.ReporterID || is.Reporter.Name != users[is.ReporterID].Name):
					t.Fatalf("issue %s: joined reporter %+v, want %s", is.ID, is.Reporter, is.ReporterID)
				case skipKey && is.ProjectKey != "", !skipKey && is.ProjectKey != created[is.ID].ProjectKey:
					t.Fatalf("issue %s (skip key %v): project key %q, created in %q", is.ID, skipKey, is.ProjectKey, created[is.ID].ProjectKey)
				case skipDesc && is.Description != "", !skipDesc && is.Description != created[is.ID].Description:
					t.Fatalf("issue %s (skip description %v): description %q, created with %q", is.ID, skipDesc, is.Description, created[is.ID].Description)
				case is.Number != created[is.ID].Number || is.Title != created[is.ID].Title || is.Status != created[is.ID].Status:
					t.Fatalf("issue %s: read %+v, created %+v", is.ID, is, created[is.ID])
				}
			}
			if !p.HasNextPage || pages > len(all) {
				break
			}
			args.After = p.Cursors[len(p.Cursors)-1]
		}
		if !slices.Equal(got, want) {
			t.Errorf("filter %+v (joins %v %v, skips %v %v): got %v, want %v", f, joinA, joinR, skipKey, skipDesc, got, want)
		}
	}
}
