package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2"

	"github.com/tenantql/tenantql/graph"
	"github.com/tenantql/tenantql/tenancy"
)

// readmeStep is one thing the README's walk-through has the reader do, in
// order: open a host, or send an operation there.
type readmeStep struct {
	host   string // "open" steps: the host opened, as written
	op     string // operations: the GraphQL text
	inline bool   // the operation is quoted in the prose, not in a block
}

var (
	readmeLink   = regexp.MustCompile("<http://([^/>]+)/>")
	readmeInline = regexp.MustCompile("`([^`]+)`")
)

// readmeWalkthrough returns the steps of README.md's "A walk-through in
// Playground", in the order the reader meets them: links opened, the
// operations of each ```graphql block (one per line, or a multi-line
// one), and the operations quoted inline in the prose.
func readmeWalkthrough(t *testing.T) []readmeStep {
	t.Helper()
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n## A walk-through in Playground\n")
	if !ok {
		t.Fatal("README.md has no walk-through section")
	}
	section, _, _ = strings.Cut(section, "\n## ")

	var steps []readmeStep
	inBlock := false
	for _, line := range strings.Split(section, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "```graphql":
			inBlock = true
		case inBlock && trimmed == "```":
			inBlock = false
		case inBlock:
			// A line at the block's left edge that opens an operation starts
			// a new one; anything else continues the last.
			rest := strings.TrimLeft(line, " ")
			if len(line)-len(rest) <= 3 && (strings.HasPrefix(rest, "{") || strings.HasPrefix(rest, "mutation") ||
				strings.HasPrefix(rest, "query") || strings.HasPrefix(rest, "subscription")) {
				steps = append(steps, readmeStep{op: rest})
			} else {
				steps[len(steps)-1].op += "\n" + line
			}
		default:
			for _, m := range readmeLink.FindAllStringSubmatch(line, -1) {
				steps = append(steps, readmeStep{host: m[1]})
			}
			for _, m := range readmeInline.FindAllStringSubmatch(line, -1) {
				code := m[1]
				if (strings.HasPrefix(code, "{ ") || strings.HasPrefix(code, "subscription ")) && strings.Contains(code, "(") {
					steps = append(steps, readmeStep{op: code, inline: true})
				}
			}
		}
	}
	return steps
}

// argument returns the value of the first `name: "value"` argument in op.
func argument(op, name string) string {
	m := regexp.MustCompile(`\b` + name + `: "([^"]*)"`).FindStringSubmatch(op)
	if m == nil {
		return ""
	}
	return m[1]
}

// The README's walk-through, run as written, in order, against the real
// handler: every operation succeeds, and each one does what the text
// says (the issue updated is the one just created, the listing shows it).
// The operations are read from README.md, so the two cannot drift apart.
func TestReadmeWalkthrough(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, map[string]string{"BASE_DOMAIN": "localhost"})
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()

	steps := readmeWalkthrough(t)
	var host, token, slug string
	created := map[string]bool{} // issue keys created by the walk-through
	ran := 0
	for _, s := range steps {
		if s.host != "" {
			host = s.host
			token = ""
			if name, _ := tenancy.NormalizeHost(host); name == ta.hosts.AdminHost {
				token = testAdminToken // the admin host: step 1's Headers tab
			}
			continue
		}
		if host == "" {
			t.Fatalf("operation before any host is opened: %s", s.op)
		}
		if _, errs := gqlparser.LoadQuery(schema, s.op); errs != nil {
			t.Fatalf("README operation does not validate against the schema: %v\n%s", errs, s.op)
		}
		ran++
		if strings.HasPrefix(s.op, "subscription") {
			continue // validated: the tenant's subscriptions have tests of their own
		}
		if s.inline && strings.Contains(s.op, "tenant(slug:") {
			// "or query { tenant(slug: ...) { status ... } }": until READY
			for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				r := mustOK(t, ta.do(t, host, token, s.op, nil))
				if st := field(r.Data, "tenant", "status"); st == "READY" {
					break
				} else if st == "FAILED" || time.Now().After(deadline) {
					t.Fatalf("%s: %s", s.op, r.Raw)
				}
			}
			// READY is in the control database a moment before it is routed.
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				if _, err := ta.registry.Route(ta.hosts, slug+".localhost"); err == nil {
					break
				} else if time.Now().After(deadline) {
					t.Fatalf("%s is READY but not routed: %v", slug, err)
				}
			}
			continue
		}
		r := ta.do(t, host, token, s.op, nil)
		if r.Status != 200 || len(r.Errors) > 0 || r.Data == nil {
			t.Fatalf("on %s, as the README says:\n%s\nanswered HTTP %d: %s", host, s.op, r.Status, r.Raw)
		}
		switch {
		case strings.Contains(s.op, "createTenant("):
			slug, _ = field(r.Data, "createTenant", "tenant", "slug").(string)
			if st := field(r.Data, "createTenant", "tenant", "status"); st != "PROVISIONING" {
				t.Errorf("createTenant answered %v; the README says PROVISIONING", st)
			}
		case strings.Contains(s.op, "login("):
			token, _ = field(r.Data, "login", "token").(string)
		case strings.Contains(s.op, "viewer"):
			if role := field(r.Data, "viewer", "role"); role != "OWNER" {
				t.Errorf("viewer role %v, want the owner created in step 2", role)
			}
		case strings.Contains(s.op, "createProject("):
			if got, want := field(r.Data, "createProject", "key"), argument(s.op, "key"); got != want {
				t.Errorf("createProject answered key %v, want %s", got, want)
			}
		case strings.Contains(s.op, "createIssue("):
			key, _ := field(r.Data, "createIssue", "key").(string)
			if !strings.HasPrefix(key, argument(s.op, "projectKey")+"-") {
				t.Errorf("createIssue answered key %q in another project", key)
			}
			created[key] = true
		case strings.Contains(s.op, "updateIssue("):
			key := argument(s.op, "key")
			if !created[key] {
				t.Errorf("updateIssue edits %s, which the walk-through did not create (it created %v)", key, created)
			}
			want := regexp.MustCompile(`status: (\w+)`).FindStringSubmatch(s.op)[1]
			if st := field(r.Data, "updateIssue", "status"); st != want {
				t.Errorf("updateIssue answered status %v, want %s", st, want)
			}
		case strings.Contains(s.op, "issues("):
			edges, _ := field(r.Data, "issues", "edges").([]any)
			listed := map[string]bool{}
			for _, e := range edges {
				key, _ := field(e, "node", "key").(string)
				listed[key] = true
			}
			for key := range created {
				if !listed[key] {
					t.Errorf("the listing does not show %s, created above: %s", key, r.Raw)
				}
			}
		}
	}
	if ran < 10 || slug == "" || len(created) == 0 {
		t.Fatalf("read only %d operations from the README (slug %q, issues created %v): did its layout change?", ran, slug, created)
	}
}
