package main

import (
	"fmt"
	"slices"
	"sync"
	"testing"
)

// pageAll follows a connection at path page by page (first n) and returns
// the values of key of its nodes, checking totalCount, the cursors and
// hasNextPage on the way. query takes $n and $after.
func pageAll(t *testing.T, u *tenantUser, query string, n int, key string, path ...string) (got []string, total float64) {
	t.Helper()
	var after any
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("paging does not end")
		}
		r := u.must(t, query, map[string]any{"n": n, "after": after})
		conn := field(r.Data, path...).(map[string]any)
		edges := conn["edges"].([]any)
		if len(edges) > n {
			t.Fatalf("page of %d edges for first %d", len(edges), n)
		}
		for _, e := range edges {
			got = append(got, fmt.Sprint(field(e, "node", key)))
		}
		total = conn["totalCount"].(float64)
		if field(conn, "pageInfo", "hasNextPage") != true {
			if len(edges) > 0 && field(conn, "pageInfo", "endCursor") != field(edges[len(edges)-1], "cursor") {
				t.Fatalf("endCursor is not the last edge's cursor: %v", conn)
			}
			return got, total
		}
		if len(edges) != n {
			t.Fatalf("hasNextPage with a short page: %v", conn)
		}
		after = field(conn, "pageInfo", "endCursor")
		if after != field(edges[len(edges)-1], "cursor") {
			t.Fatalf("endCursor is not the last edge's cursor: %v", conn)
		}
	}
}

func TestTenantPagination(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	ta.createTenant(t, "pages", false)
	owner := ta.owner(t, "pages")
	var users []string
	for i := range 6 {
		id, _ := owner.newUser(t, fmt.Sprintf("user%d", i), "MEMBER")
		users = append(users, id)
	}
	var projects []string
	for i := range 5 {
		key := fmt.Sprintf("P%d", i)
		owner.createProject(t, key, "Project "+key)
		projects = append(projects, key)
	}
	var issues []string // in creation order
	for i := range 23 {
		issues = append(issues, owner.createIssue(t, map[string]any{
			"projectKey": projects[i%2], "title": fmt.Sprintf("issue %d", i), "status": []string{"TODO", "DONE"}[i%2],
		}))
	}
	var comments []string
	for i := range 12 {
		body := fmt.Sprintf("comment %02d", i)
		owner.must(t, `mutation($b: String!) { addComment(issueKey: "P0-1", body: $b) { id } }`, map[string]any{"b": body})
		comments = append(comments, body)
	}
	newestFirst := slices.Clone(issues)
	slices.Reverse(newestFirst)
	filter := func(keep func(i int) bool) []string {
		var out []string
		for i := len(issues) - 1; i >= 0; i-- {
			if keep(i) {
				out = append(out, issues[i])
			}
		}
		return out
	}

	cases := []struct {
		name, query, key string
		path             []string
		want             []string
	}{
		{"users, oldest first", `query($n: Int, $after: String) { users(first: $n, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id } } } }`,
			"id", []string{"users"}, nil},
		{"projects, oldest first", `query($n: Int, $after: String) { projects(first: $n, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { key } } } }`,
			"key", []string{"projects"}, projects},
		{"issues, newest first", `query($n: Int, $after: String) { issues(first: $n, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { key } } } }`,
			"key", []string{"issues"}, newestFirst},
		{"issues of a status", `query($n: Int, $after: String) { issues(first: $n, after: $after, filter: {status: DONE}) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { key } } } }`,
			"key", []string{"issues"}, filter(func(i int) bool { return i%2 == 1 })},
		{"issues of a project", `query($n: Int, $after: String) { project(key: "P0") { issues(first: $n, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { key } } } } }`,
			"key", []string{"project", "issues"}, filter(func(i int) bool { return i%2 == 0 })},
		{"comments, oldest first", `query($n: Int, $after: String) { issue(key: "P0-1") { comments(first: $n, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { body } } } } }`,
			"body", []string{"issue", "comments"}, comments},
	}
	for _, c := range cases {
		for _, n := range []int{1, 2, 5, 7, 100} {
			got, total := pageAll(t, owner, c.query, n, c.key, c.path...)
			want := c.want
			if want == nil { // users: the owner, then those created here
				if len(got) != len(users)+1 || !slices.Equal(got[1:], users) {
					t.Errorf("%s by %d: %v", c.name, n, got)
				}
				continue
			}
			if !slices.Equal(got, want) || int(total) != len(want) {
				t.Errorf("%s by %d: got %v (total %v), want %v", c.name, n, got, total, want)
			}
		}
	}

	// an empty page has no endCursor
	r := owner.must(t, `{ issues(filter: {projectKey: "P4"}) { totalCount pageInfo { hasNextPage endCursor } edges { cursor } } }`, nil)
	if field(r.Data, "issues", "pageInfo", "endCursor") != nil || field(r.Data, "issues", "pageInfo", "hasNextPage") != false {
		t.Fatalf("empty page = %s", r.Raw)
	}
}

func TestIssuesPagingWhileIssuesAreAdded(t *testing.T) {
	t.Parallel()
	// the writers below are this test's load, not abuse: no rate limit
	ta := newTestApp(t, map[string]string{"RATE_LIMIT_RPS": "0"})
	ta.createTenant(t, "busy", false)
	owner := ta.owner(t, "busy")
	owner.createProject(t, "WEB", "Website")
	before := map[string]bool{}
	for i := range 40 {
		before[owner.createIssue(t, map[string]any{"projectKey": "WEB", "title": fmt.Sprintf("before %d", i)})] = true
	}

	// writers keep adding issues (and comments) while a reader pages
	stop := make(chan struct{})
	var wg sync.WaitGroup
	added := make(chan string, 1000)
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// bounded, so that added (capacity 1000) never fills up
			for i := range 300 {
				select {
				case <-stop:
					return
				default:
				}
				r := owner.do(t, `mutation($t: String!) { createIssue(input: {projectKey: "WEB", title: $t}) { key } }`,
					map[string]any{"t": fmt.Sprintf("during %d/%d", w, i)})
				if k, ok := field(r.Data, "createIssue", "key").(string); ok {
					added <- k
				}
			}
		}()
	}
	var got []string
	for _, n := range []int{3, 10} {
		got, _ = pageAll(t, owner, `query($n: Int, $after: String) { issues(first: $n, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { key } } } }`,
			n, "key", "issues")
		seen := map[string]int{}
		for _, k := range got {
			seen[k]++
		}
		for k, c := range seen {
			if c != 1 {
				t.Errorf("first %d: %s seen %d times", n, k, c)
			}
		}
		for k := range before {
			if seen[k] != 1 {
				t.Errorf("first %d: %s, there before paging started, seen %d times", n, k, seen[k])
			}
		}
	}
	close(stop)
	wg.Wait()
	close(added)
	if len(added) == 0 {
		t.Fatal("no issue was added while paging")
	}
	// and once the writers stopped, one more walk sees every issue once
	var all []string
	for k := range added {
		all = append(all, k)
	}
	got, total := pageAll(t, owner, `query($n: Int, $after: String) { issues(first: $n, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { key } } } }`,
		7, "key", "issues")
	if int(total) != len(before)+len(all) || len(got) != int(total) {
		t.Fatalf("after the writers: %d issues paged, totalCount %v, want %d", len(got), total, len(before)+len(all))
	}
	slices.Sort(got)
	if len(slices.Compact(slices.Clone(got))) != len(got) {
		t.Fatalf("duplicates after the writers: %v", got)
	}
}
