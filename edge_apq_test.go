package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"testing"
)

func apqHash(query string) string {
	h := sha256.Sum256([]byte(query))
	return hex.EncodeToString(h[:])
}

func apqExtensions(query string) map[string]any {
	return map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": apqHash(query)}}
}

// apqPost posts hash only (withQuery false) or hash and query.
func (ta *testApp) apqPost(t testing.TB, host, token, query string, withQuery bool) gqlResponse {
	t.Helper()
	body := map[string]any{"extensions": apqExtensions(query)}
	if withQuery {
		body["query"] = query
	}
	b, _ := json.Marshal(body)
	h := map[string]string{"Content-Type": "application/json"}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	return ta.raw(t, "POST", host, string(b), h)
}

// apqGet sends the same over GET, as Apollo Client's useGETForHashedQueries does.
func (ta *testApp) apqGet(t testing.TB, host, query string, withQuery bool) gqlResponse {
	t.Helper()
	ext, _ := json.Marshal(apqExtensions(query))
	v := url.Values{"extensions": {string(ext)}}
	if withQuery {
		v.Set("query", query)
	}
	return ta.get(t, host, v, nil)
}

func wantNotFound(t testing.TB, what string, r gqlResponse) {
	t.Helper()
	if r.Status != 200 || r.Code() != "PERSISTED_QUERY_NOT_FOUND" || len(r.Errors) != 1 || r.Errors[0].Message != "PersistedQueryNotFound" {
		t.Errorf("%s: want 200 PERSISTED_QUERY_NOT_FOUND, got HTTP %d %s", what, r.Status, r.Raw)
	}
}

// TestAPQPerTenant: the Apollo automatic-persisted-queries handshake over
// POST and GET, with a cache of its own for each tenant.
func TestAPQPerTenant(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	ta.createRoutedTenant(t, "apqa")
	ta.createRoutedTenant(t, "apqb")
	const a, b = "apqa.example.test", "apqb.example.test"
	q := `query Org { organization { slug name } }`

	// POST: hash only → not found; hash + query → data; hash only → data
	wantNotFound(t, "POST hash only, first", ta.apqPost(t, a, "", q, false))
	r := mustOK(t, ta.apqPost(t, a, "", q, true))
	if field(r.Data, "organization", "slug") != "apqa" {
		t.Fatalf("hash + query: %s", r.Raw)
	}
	r = mustOK(t, ta.apqPost(t, a, "", q, false))
	if field(r.Data, "organization", "slug") != "apqa" {
		t.Fatalf("hash only, after: %s", r.Raw)
	}
	// GET finds what POST stored, and stores too
	mustOK(t, ta.apqGet(t, a, q, false))
	q2 := `query Org2 { organization { name } }`
	wantNotFound(t, "GET hash only, first", ta.apqGet(t, a, q2, false))
	mustOK(t, ta.apqGet(t, a, q2, true))
	mustOK(t, ta.apqGet(t, a, q2, false))

	// tenant B cannot use (or even detect) tenant A's hashes; the admin host neither
	wantNotFound(t, "B with A's hash", ta.apqPost(t, b, "", q, false))
	wantNotFound(t, "B with A's hash over GET", ta.apqGet(t, b, q2, false))
	wantNotFound(t, "admin host with A's hash", ta.apqPost(t, "example.test", testAdminToken, q, false))
	// B storing the same query does not answer for A's, and A's stays
	mustOK(t, ta.apqPost(t, b, "", q, true))
	mustOK(t, ta.apqPost(t, a, "", q, false))

	// a hash that does not match its query is refused and not stored
	bad, _ := json.Marshal(map[string]any{"query": q, "extensions": map[string]any{
		"persistedQuery": map[string]any{"version": 1, "sha256Hash": apqHash("{ __typename }")}}})
	if r := ta.raw(t, "POST", a, string(bad), map[string]string{"Content-Type": "application/json"}); len(r.Errors) == 0 || r.Data != nil {
		t.Errorf("mismatched hash: HTTP %d %s", r.Status, r.Raw)
	}
	wantNotFound(t, "mismatched hash not stored", ta.apqPost(t, a, "", "{ __typename }", false))

	// a mutation through APQ over POST runs; over GET it is refused
	tok := ta.login(t, "apqa")
	m := `mutation Login($e: String!, $p: String!) { login(email: $e, password: $p) { token } }`
	body, _ := json.Marshal(map[string]any{"query": m, "extensions": apqExtensions(m),
		"variables": map[string]any{"e": "owner@apqa.test", "p": "password-apqa"}})
	mustOK(t, ta.raw(t, "POST", a, string(body), map[string]string{"Content-Type": "application/json"}))
	ext, _ := json.Marshal(apqExtensions(m))
	r = ta.get(t, a, url.Values{"extensions": {string(ext)}, "variables": {`{"e":"owner@apqa.test","p":"password-apqa"}`}}, nil)
	wantRefused(t, "persisted mutation over GET", r, 405, "GRAPHQL_VALIDATION_FAILED", "not allowed over GET")

	// execution errors keep HTTP 200 and carry their code
	r = ta.apqPost(t, a, "", `{ viewer { email } }`, true)
	if r.Status != 200 || r.Code() != "UNAUTHENTICATED" {
		t.Errorf("execution error: HTTP %d %s", r.Status, r.Raw)
	}
	mustOK(t, ta.apqPost(t, a, tok, `{ viewer { email } }`, false))
}

// TestAPQCacheBounds: the caches of at most APQ_CACHE_TENANTS tenants are
// kept, each of at most APQ_CACHE_BYTES_PER_TENANT bytes, and one tenant
// filling its cache never evicts another's queries.
func TestAPQCacheBounds(t *testing.T) {
	t.Parallel()
	t.Run("tenants", func(t *testing.T) {
		t.Parallel()
		ta := newTestApp(t, map[string]string{"APQ_CACHE_TENANTS": "2"})
		for _, s := range []string{"apqx", "apqy", "apqz"} {
			ta.createRoutedTenant(t, s)
		}
		q := `{ organization { slug } }`
		mustOK(t, ta.apqPost(t, "apqx.example.test", "", q, true))
		mustOK(t, ta.apqPost(t, "apqy.example.test", "", q, true))
		mustOK(t, ta.apqPost(t, "apqx.example.test", "", q, false)) // x used more recently than y
		mustOK(t, ta.apqPost(t, "apqz.example.test", "", q, true))  // a third tenant: y's cache goes
		mustOK(t, ta.apqPost(t, "apqx.example.test", "", q, false))
		mustOK(t, ta.apqPost(t, "apqz.example.test", "", q, false))
		wantNotFound(t, "least recently used tenant", ta.apqPost(t, "apqy.example.test", "", q, false))
	})
	t.Run("bytes", func(t *testing.T) {
		t.Parallel()
		ta := newTestApp(t, map[string]string{"APQ_CACHE_BYTES_PER_TENANT": "300"})
		ta.createRoutedTenant(t, "apqp")
		ta.createRoutedTenant(t, "apqq")
		const p, qh = "apqp.example.test", "apqq.example.test"
		queries := []string{ // 64-byte hash + about 40 bytes each: two fit in 300 bytes, three do not
			`query One { organization { slug name } }`,
			`query Two { organization { name slug } }`,
			`query Three { organization { slug } }`,
		}
		mustOK(t, ta.apqPost(t, p, "", queries[0], true))
		// the other tenant filling its own cache changes nothing for p
		for i := range 20 {
			mustOK(t, ta.apqPost(t, qh, "", `query Q`+string(rune('A'+i))+` { organization { slug } }`, true))
		}
		mustOK(t, ta.apqPost(t, p, "", queries[0], false))
		mustOK(t, ta.apqPost(t, p, "", queries[1], true))
		mustOK(t, ta.apqPost(t, p, "", queries[2], true)) // over 300 bytes: the oldest goes
		wantNotFound(t, "oldest query of a full cache", ta.apqPost(t, p, "", queries[0], false))
		mustOK(t, ta.apqPost(t, p, "", queries[1], false))
		mustOK(t, ta.apqPost(t, p, "", queries[2], false))
	})
}
