package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"
)

// A login's password hash runs outside its tenant's admission: with one
// request of the tenant admitted at a time, another request is answered
// from the tenant's database while a login is still hashing. The slow
// hash is injected as data: the user's stored argon2id hash asks for 150
// passes instead of 2 (seconds of CPU instead of milliseconds), and the
// password does not match, so the login ends UNAUTHENTICATED after the
// whole computation. Nothing here depends on how fast the machine is:
// the other request must be answered before the login, and a login that
// kept its place while hashing would make it wait for the hash (or give
// up with SERVICE_UNAVAILABLE after the admission wait).
func TestLoginHashesOutsideTheTenantsAdmission(t *testing.T) {
	t.Parallel()
	// one admitted request per tenant: a login holding its place while
	// hashing blocks every other request of the tenant
	ta, counter := newCountedApp(t, map[string]string{"MAX_DB_CONNECTIONS_PER_TENANT": "1"})
	ta.createTenant(t, "hashy", false)
	owner := ta.owner(t, "hashy")
	owner.newUser(t, "slow", "MEMBER")
	_, db := ta.superuserDB(t, "hashy")
	salt, key := make([]byte, 16), make([]byte, 32)
	_, _ = rand.Read(salt)
	_, _ = rand.Read(key)
	b64 := base64.RawStdEncoding
	slowHash := fmt.Sprintf("$argon2id$v=19$m=19456,t=150,p=1$%s$%s", b64.EncodeToString(salt), b64.EncodeToString(key))
	if res, err := db.Exec(`UPDATE users SET password_hash = $1 WHERE name = 'slow'`, slowHash); err != nil {
		t.Fatal(err)
	} else if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("updated %d users", n)
	}
	var email string
	if err := db.Get(&email, `SELECT email FROM users WHERE name = 'slow'`); err != nil {
		t.Fatal(err)
	}

	// the login: its user lookup is the next statement on the tenant's
	// database, then it hashes
	before := ta.tenantStatements(t, counter, "hashy")
	began := time.Now()
	loginDone := make(chan string, 1)
	go func() {
		// (not ta.do: it may call t.Fatal, which only the test's goroutine may)
		r, err := ta.client().Post(context.Background(), tenantHost("hashy"), "",
			`mutation($e: String!) { login(email: $e, password: "not the password") { token } }`, map[string]any{"e": email})
		if err != nil {
			loginDone <- err.Error()
			return
		}
		loginDone <- fmt.Sprintf("HTTP %d %s", r.Status, r.Raw)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for ta.tenantStatements(t, counter, "hashy") == before {
		if time.Now().After(deadline) {
			t.Fatal("the login never read its user")
		}
		time.Sleep(time.Millisecond)
	}

	// another request of the tenant, from its database, meanwhile
	r := owner.do(t, `{ users(first: 10) { totalCount } }`, nil)
	select {
	case l := <-loginDone:
		t.Fatalf("the login (%s) was answered before the other request (HTTP %d %s): it held the tenant's admission while hashing",
			l, r.Status, r.Raw)
	default:
	}
	if r.Status != 200 || len(r.Errors) > 0 || field(r.Data, "users", "totalCount") != 2.0 {
		t.Fatalf("a request while the login hashed: HTTP %d %s", r.Status, r.Raw)
	}
	answered := time.Since(began)
	if l := <-loginDone; !strings.HasPrefix(l, "HTTP 200 ") || !strings.Contains(l, `"code":"UNAUTHENTICATED"`) {
		t.Fatalf("the slow login: %s, want UNAUTHENTICATED after hashing", l)
	}
	t.Logf("the other request answered %s after the login began, the login after %s",
		answered.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}
