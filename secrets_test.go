package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// GraphQL answers are a user's data: no shared cache may keep them, and a
// cache keyed on the URL alone must not hand one caller's answer to another.
func TestGraphQLAnswersAreNotCached(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	ta.createTenant(t, "nocache", false)
	token := ta.login(t, "nocache")
	headers := map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + token,
		"Origin": "http://nocache.example.test"}
	for name, r := range map[string]gqlResponse{
		"POST":    ta.raw(t, "POST", tenantHost("nocache"), jsonBody(`{ viewer { email } }`, nil), headers),
		"GET":     ta.get(t, tenantHost("nocache"), map[string][]string{"query": {`{ viewer { email } }`}}, headers),
		"refused": ta.raw(t, "POST", tenantHost("nocache"), `[]`, headers),
	} {
		vary := strings.Join(r.Header.Values("Vary"), ",")
		if r.Header.Get("Cache-Control") != "no-store" || !strings.Contains(vary, "Authorization") || !strings.Contains(vary, "Origin") {
			t.Fatalf("%s: HTTP %d, Cache-Control %q, Vary %q", name, r.Status, r.Header.Get("Cache-Control"), vary)
		}
	}
}

// Outside development mode ADMIN_TOKEN needs 32 characters, and the
// configuration is logged with every credential of DATABASE_URL masked:
// the user's password and credential query parameters.
func TestAdminTokenLengthAndMaskedDatabaseURL(t *testing.T) {
	t.Parallel()
	env := func(kv ...string) func(string) string {
		m := map[string]string{"SECRET_KEY": strings.Repeat("k", 32)}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	if _, err := LoadConfig(env("DATABASE_URL", "postgres://x/y", "ADMIN_TOKEN", strings.Repeat("a", 31))); err == nil || !strings.Contains(err.Error(), "ADMIN_TOKEN") {
		t.Fatalf("a 31-character ADMIN_TOKEN: %v", err)
	}
	if _, err := LoadConfig(env("DATABASE_URL", "postgres://x/y", "ADMIN_TOKEN", strings.Repeat("a", 32))); err != nil {
		t.Fatal(err)
	}
	const url = "postgres://app:pw-user-1@db.internal:5432/tenantql?sslmode=verify-full&password=pw-query-2&sslpassword=pw-ssl-3&sslkey=%2Fkeys%2Fsecret-4.key"
	cfg, err := LoadConfig(env("DATABASE_URL", url, "ADMIN_TOKEN", "admin-token-that-is-long-enough-5"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "config", cfg)
	out := buf.String()
	for _, secret := range []string{"pw-user-1", "pw-query-2", "pw-ssl-3", "secret-4", "admin-token-that", strings.Repeat("k", 32)} {
		if strings.Contains(out, secret) {
			t.Fatalf("the logged configuration shows %q: %s", secret, out)
		}
	}
	if !strings.Contains(out, "db.internal:5432") || !strings.Contains(out, "sslmode=verify-full") {
		t.Fatalf("the logged configuration lost the non-secret parts: %s", out)
	}
}
