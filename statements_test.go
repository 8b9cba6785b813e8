package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/tenantql/tenantql/internal/pgtest"
)

// How the statements are counted: the test app reaches PostgreSQL through
// pgCounter, a TCP proxy that reads the frontend side of the wire protocol.
// Every statement a client runs is one simple Query message ('Q': BEGIN,
// COMMIT, queries without parameters) or one Execute message ('E': lib/pq
// sends Parse/Bind/Describe and then one Execute per parameterized query);
// the proxy counts both per database, from the startup message's database
// name. That is what PostgreSQL executes, with nothing to install
// (pg_stat_statements would need shared_preload_libraries) and no hook in
// the server: tenant pools, LISTEN connections and the control database all
// dial the proxy because the control URL does.

// pgCounter is a counting PostgreSQL proxy.
type pgCounter struct {
	ln     net.Listener
	target string // host:port of the real server

	mu     sync.Mutex
	counts map[string]int // statements per database
	parses map[string]int // Parse messages per database (a statement run by a prepared name sends none)
	conns  map[net.Conn]struct{}
}

// newPGCounter starts a proxy in front of the server of dbURL and returns
// it with dbURL rewritten to go through it (TLS off: the proxy must read
// the messages).
func newPGCounter(t testing.TB, dbURL string) (*pgCounter, string) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgCounter{ln: ln, target: u.Host, counts: map[string]int{}, parses: map[string]int{}, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(p.close)
	u.Host = ln.Addr().String()
	q := u.Query()
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	return p, u.String()
}

// statements returns the statements run so far on database db.
func (p *pgCounter) statements(db string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[db]
}

// parsed returns the Parse messages sent so far to database db.
func (p *pgCounter) parsed(db string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.parses[db]
}

func (p *pgCounter) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

func (p *pgCounter) track(c net.Conn, add bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
}

func (p *pgCounter) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(client)
	}
}

func (p *pgCounter) handle(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	p.track(client, true)
	p.track(server, true)
	defer func() {
		client.Close()
		server.Close()
		p.track(client, false)
		p.track(server, false)
	}()
	go func() {
		_, _ = io.Copy(client, server)
		client.Close()
	}()
	_ = p.frontend(bufio.NewReader(client), client, server)
}

// Startup packet codes of the PostgreSQL protocol.
const (
	pgProtocol3   = 196608
	pgSSLRequest  = 80877103
	pgGSSRequest  = 80877104
	pgCancelCode  = 80877102
	pgMaxStartup  = 10000
	pgMaxMessage  = 1 << 30
	pgStatementQ  = 'Q'
	pgStatementEx = 'E'
	pgParse       = 'P'
)

// frontend relays the client's messages to the server, counting statements.
func (p *pgCounter) frontend(in *bufio.Reader, client, server net.Conn) error {
	db := ""
	for db == "" { // startup phase: length-prefixed packets without a type byte
		var hdr [8]byte
		if _, err := io.ReadFull(in, hdr[:]); err != nil {
			return err
		}
		n := int(binary.BigEndian.Uint32(hdr[:4]))
		code := binary.BigEndian.Uint32(hdr[4:])
		if n < 8 || n > pgMaxStartup {
			return errors.New("bad startup packet")
		}
		body := make([]byte, n-8)
		if _, err := io.ReadFull(in, body); err != nil {
			return err
		}
		switch code {
		case pgSSLRequest, pgGSSRequest:
			if _, err := client.Write([]byte{'N'}); err != nil { // no encryption: keep it readable
				return err
			}
			continue
		case pgCancelCode:
			_, err := server.Write(append(hdr[:], body...))
			return err
		case pgProtocol3:
			params := strings.Split(string(body), "\x00")
			user := ""
			for i := 0; i+1 < len(params); i += 2 {
				switch params[i] {
				case "database":
					db = params[i+1]
				case "user":
					user = params[i+1]
				}
			}
			if db == "" {
				db = user
			}
		default:
			return fmt.Errorf("unknown startup code %d", code)
		}
		if _, err := server.Write(append(hdr[:], body...)); err != nil {
			return err
		}
	}
	for {
		var hdr [5]byte
		if _, err := io.ReadFull(in, hdr[:]); err != nil {
			return err
		}
		n := int(binary.BigEndian.Uint32(hdr[1:]))
		if n < 4 || n > pgMaxMessage {
			return errors.New("bad message length")
		}
		switch hdr[0] {
		case pgStatementQ, pgStatementEx:
			p.mu.Lock()
			p.counts[db]++
			p.mu.Unlock()
		case pgParse:
			p.mu.Lock()
			p.parses[db]++
			p.mu.Unlock()
		}
		if _, err := server.Write(hdr[:]); err != nil {
			return err
		}
		if _, err := io.CopyN(server, in, int64(n-4)); err != nil {
			return err
		}
	}
}

// newCountedApp is newTestApp whose server reaches PostgreSQL through a
// pgCounter (as its own, non-superuser role), so that a test can tell
// how many statements ran on each tenant's database.
func newCountedApp(t testing.TB, env map[string]string) (*testApp, *pgCounter) {
	t.Helper()
	counter, proxied := newPGCounter(t, pgtest.NewControlDatabase(t))
	vars := map[string]string{"DATABASE_URL": proxied}
	for k, v := range env {
		vars[k] = v
	}
	return newTestApp(t, vars), counter
}

// tenantStatements returns the statements run so far on the database of
// the tenant with slug.
func (ta *testApp) tenantStatements(t testing.TB, counter *pgCounter, slug string) int {
	t.Helper()
	tn, err := ta.registry.Get(t.Context(), slug)
	if err != nil {
		t.Fatal(err)
	}
	return counter.statements(tn.DBName)
}

// nestedIssuesQuery is the query of the issue's statement-count check.
const nestedIssuesQuery = `query($n: Int!) { issues(first: $n) { totalCount edges { node { id key
	assignee { name } reporter { name } project { key }
	comments(first: 3) { totalCount edges { node { body author { name } } } } } } } }`

func TestNestedIssuesQueryRunsAConstantNumberOfStatements(t *testing.T) {
	t.Parallel()
	// With the user cache off: 1 viewer + 4 issue page (BEGIN, page with
	// its assignee and reporter joined in, count, COMMIT) + projects +
	// comments + comment authors = 8. An N+1 would cost at least n more.
	t.Run("user cache off", func(t *testing.T) {
		t.Parallel()
		checkStatementCounts(t, "0", 8, 8)
	})
	// With the cache on (the default), the owner's earlier requests have
	// cached every user: only the issue page, projects and comments remain.
	t.Run("user cache on", func(t *testing.T) {
		t.Parallel()
		checkStatementCounts(t, "60", 6, 6)
	})
}

// TestIssuesPageIsOneStatement pins the statements of the benchmark's
// query (bench/): the page with its assignees joined in, and the signed-in
// user unless the user cache holds it. The page runs as a statement its
// connection has prepared (no Parse message once the connection has run
// it), the user lookup does not. It also checks that the joined assignees
// are the right ones, unassigned issues included.
func TestIssuesPageIsOneStatement(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		cache string
		want  int
	}{{"0", 2}, {"60", 1}} {
		t.Run("USER_CACHE_SECONDS="+c.cache, func(t *testing.T) {
			t.Parallel()
			ta, counter := newCountedApp(t, map[string]string{"USER_CACHE_SECONDS": c.cache})
			ta.createTenant(t, "page", false)
			owner := ta.owner(t, "page")
			aliceID, _ := owner.newUser(t, "alice", "MEMBER")
			owner.createProject(t, "WEB", "Website")
			for i := range 6 {
				in := map[string]any{"projectKey": "WEB", "title": fmt.Sprintf("issue %d", i)}
				if i%2 == 0 {
					in["assigneeId"] = aliceID
				}
				owner.createIssue(t, in)
			}
			tn, err := ta.registry.Get(t.Context(), "page")
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{
				`{ issues(first: 20) { edges { node { id number title status assignee { id name } } } } }`,
				// the same selection through fragments: the join is found there too
				`{ issues(first: 20) { ...page } } fragment page on IssueConnection { edges { node { id number ...on Issue { title status assignee { id name } } } } }`,
			} {
				for range 3 { // fills the cache, when on, and prepares the page on the pool's connections
					owner.must(t, q, nil)
				}
				before, parsed := counter.statements(tn.DBName), counter.parsed(tn.DBName)
				r := owner.must(t, q, nil)
				if got := counter.statements(tn.DBName) - before; got != c.want {
					t.Errorf("%s: statements on the tenant database = %d, want %d", q, got, c.want)
				}
				if got := counter.parsed(tn.DBName) - parsed; got != c.want-1 {
					t.Errorf("%s: statements parsed = %d, want %d (all but the prepared page)", q, got, c.want-1)
				}
				issues := nodes(r, "issues")
				if len(issues) != 6 {
					t.Fatalf("want 6 issues: %s", r.Raw)
				}
				for _, is := range issues {
					n := int(is["number"].(float64))
					switch a, _ := is["assignee"].(map[string]any); {
					case n%2 == 1 && (a == nil || a["id"] != aliceID || a["name"] != "alice"):
						t.Errorf("issue %d: assignee %v, want alice (%s)", n, is["assignee"], aliceID)
					case n%2 == 0 && a != nil:
						t.Errorf("issue %d: assignee %v, want null", n, a)
					}
				}
			}
		})
	}
}

// TestIssuesPageReadsWhatIsSelected: a page read without the project
// key or the description (unselected: the statement reads neither) still
// answers every field it selects, and the key and description selected
// only through a fragment or an alias are read.
func TestIssuesPageReadsWhatIsSelected(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	ta.createTenant(t, "sel", false)
	owner := ta.owner(t, "sel")
	owner.createProject(t, "WEB", "Website")
	want := map[float64]string{}
	for i := 1; i <= 3; i++ {
		key := owner.createIssue(t, map[string]any{"projectKey": "WEB", "title": fmt.Sprint("issue ", i), "description": fmt.Sprint("about ", i)})
		want[float64(i)] = key
	}
	for _, c := range []struct{ query, key, description string }{
		{`{ issues(first: 5) { edges { node { number title project { key } } } } }`, "", ""},
		{`{ issues(first: 5) { edges { node { number title ...f } } } } fragment f on Issue { key description }`, "key", "description"},
		{`{ issues(first: 5) { edges { node { number title k: key d: description } } } }`, "k", "d"},
	} {
		issues := nodes(owner.must(t, c.query, nil), "issues")
		if len(issues) != 3 {
			t.Fatalf("%s: %d issues, want 3", c.query, len(issues))
		}
		for _, is := range issues {
			n := is["number"].(float64)
			if is["title"] != fmt.Sprint("issue ", n) {
				t.Errorf("%s: issue %v titled %v", c.query, n, is["title"])
			}
			if c.key == "" {
				if p, _ := is["project"].(map[string]any); p == nil || p["key"] != "WEB" {
					t.Errorf("%s: issue %v in project %v, want WEB", c.query, n, is["project"])
				}
				continue
			}
			if is[c.key] != want[n] || is[c.description] != fmt.Sprint("about ", n) {
				t.Errorf("%s: issue %v: key %v, description %v; want %s and about %v", c.query, n, is[c.key], is[c.description], want[n], n)
			}
		}
	}
}

// checkStatementCounts runs nestedIssuesQuery for several page sizes with
// USER_CACHE_SECONDS=cacheSeconds and wants between least and most
// statements on the tenant database for each.
func checkStatementCounts(t *testing.T, cacheSeconds string, least, most int) {
	ta, counter := newCountedApp(t, map[string]string{"USER_CACHE_SECONDS": cacheSeconds})
	ta.createTenant(t, "count", false)
	owner := ta.owner(t, "count")
	aliceID, _ := owner.newUser(t, "alice", "MEMBER")
	_, bob := owner.newUser(t, "bob", "MEMBER")
	_, carol := owner.newUser(t, "carol", "MEMBER")
	owner.createProject(t, "WEB", "Website")
	owner.createProject(t, "API", "API")
	// every issue: assigned to alice, reported by the owner, commented on
	// by bob and carol (authors the issue level did not load), in two
	// projects, so that each loader has work at every page size
	for i := range 30 {
		project := []string{"WEB", "API"}[i%2]
		key := owner.createIssue(t, map[string]any{"projectKey": project, "title": fmt.Sprintf("issue %d", i), "assigneeId": aliceID})
		for _, u := range []*tenantUser{bob, carol, bob, carol} {
			u.must(t, `mutation($k: String!) { addComment(issueKey: $k, body: "hi") { id } }`, map[string]any{"k": key})
		}
	}
	tn, err := ta.registry.Get(t.Context(), "count")
	if err != nil {
		t.Fatal(err)
	}

	// statements on the tenant database for one request; the least of
	// five runs, so that a batch split by a stalled goroutine on a loaded
	// machine cannot fail the test (an N+1 shows in every run)
	measure := func(n int) int {
		best := -1
		for range 5 {
			before := counter.statements(tn.DBName)
			r := owner.must(t, nestedIssuesQuery, map[string]any{"n": n})
			if got := len(nodes(r, "issues")); got != min(n, 30) {
				t.Fatalf("first %d gave %d issues", n, got)
			}
			for _, is := range nodes(r, "issues") {
				if field(is, "assignee", "name") != "alice" || field(is, "reporter", "name") != "Owner of count" ||
					len(nodes(gqlResponse{Data: is}, "comments")) != 3 || field(is, "comments", "totalCount") != 4.0 {
					t.Fatalf("issue %v: %v", is["key"], is)
				}
			}
			if c := counter.statements(tn.DBName) - before; best < 0 || c < best {
				best = c
			}
		}
		return best
	}
	counts := map[int]int{}
	for _, n := range []int{1, 5, 20, 100} {
		counts[n] = measure(n)
	}
	t.Logf("statements on the tenant database per request, by first: %v", counts)
	for n, c := range counts {
		if c < least || c > most {
			t.Fatalf("statements by first = %v: want %d to %d for every page size (first %d)", counts, least, most, n)
		}
	}
}
