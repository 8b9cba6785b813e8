package tenancy

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestNormalizeHost(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, host, port string }{
		{"acme.example.com", "acme.example.com", ""},
		{"ACME.Example.COM", "acme.example.com", ""},
		{"acme.example.com:8080", "acme.example.com", "8080"},
		{"acme.example.com.", "acme.example.com", ""},
		{"acme.example.com.:443", "acme.example.com", "443"},
		{"  acme.localhost:8080 ", "acme.localhost", "8080"},
		{"[::1]:8080", "::1", "8080"},
		{"", "", ""},
	}
	for _, c := range cases {
		h, p := NormalizeHost(c.in)
		if h != c.host || p != c.port {
			t.Errorf("NormalizeHost(%q) = %q, %q; want %q, %q", c.in, h, p, c.host, c.port)
		}
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	hosts := Hosts{BaseDomain: "example.com", AdminHost: "example.com"}
	cases := []struct {
		host  string
		kind  HostKind
		label string
	}{
		{"example.com", HostAdmin, ""},
		{"acme.example.com", HostSubdomain, "acme"},
		{"a.b.example.com", HostUnknown, ""},
		{".example.com", HostUnknown, ""},
		{"issues.acme.org", HostCustom, "issues.acme.org"},
		{"evil_host.example.com", HostUnknown, ""},
		{"acme.example.com\x00", HostUnknown, ""},
		{"", HostUnknown, ""},
		{"notexample.com", HostCustom, "notexample.com"},
		{strings.Repeat("a", 64) + ".example.com", HostUnknown, ""},
	}
	for _, c := range cases {
		kind, label := hosts.Classify(c.host)
		if kind != c.kind || label != c.label {
			t.Errorf("Classify(%q) = %v, %q; want %v, %q", c.host, kind, label, c.kind, c.label)
		}
	}
	custom := Hosts{BaseDomain: "example.com", AdminHost: "admin.example.com"}
	if kind, _ := custom.Classify("admin.example.com"); kind != HostAdmin {
		t.Errorf("custom admin host classified %v", kind)
	}
	if kind, _ := custom.Classify("example.com"); kind != HostCustom {
		t.Errorf("bare base domain with another admin host classified %v", kind)
	}
}

// FuzzHost checks that host parsing never panics and that what it accepts
// as a subdomain is one safe label.
func FuzzHost(f *testing.F) {
	for _, s := range []string{"acme.localhost:8080", "ACME.localhost.", "[::1]:80", "a.b.localhost", "x:y:z", "\x00.localhost"} {
		f.Add(s)
	}
	hosts := Hosts{BaseDomain: "localhost"}
	f.Fuzz(func(t *testing.T, in string) {
		h, _ := NormalizeHost(in)
		kind, label := hosts.Classify(h)
		if kind == HostSubdomain {
			if label == "" || strings.ContainsAny(label, ".:/\x00 ") || label != strings.ToLower(label) {
				t.Fatalf("unsafe subdomain label %q from %q", label, in)
			}
		}
	})
}

func TestValidateSlug(t *testing.T) {
	t.Parallel()
	good := []string{"acme", "acme-corp", "a1b", "x" + strings.Repeat("y", 38) + "z"}
	bad := []string{
		"", "ab", "Acme", "1acme", "-acme", "acme-", "acme--corp", "ac me", "acme.corp",
		"x" + strings.Repeat("y", 39) + "z", "admin", "www", "api",
		"acme'; DROP DATABASE x; --", "acme\x00", "acmé", `acme"`, "ａcme",
	}
	for _, s := range good {
		if err := ValidateSlug(s); err != nil {
			t.Errorf("ValidateSlug(%q) = %v, want ok", s, err)
		}
	}
	for _, s := range bad {
		if err := ValidateSlug(s); err == nil {
			t.Errorf("ValidateSlug(%q) accepted", s)
		}
	}
}

func TestSlugFromName(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"Acme":                 "acme",
		"Acme Corp.":           "acme-corp",
		"  Café  Olé  ":        "cafe-ole",
		"42 Widgets":           "widgets",
		"Ünïcode & Sons, Ltd.": "unicode-sons-ltd",
		"日本":                   "",
	}
	for in, want := range cases {
		if got := SlugFromName(in); got != want {
			t.Errorf("SlugFromName(%q) = %q, want %q", in, got, want)
		}
	}
	long := SlugFromName(strings.Repeat("word ", 30))
	if len(long) > 40 || ValidateSlug(long) != nil {
		t.Errorf("long name gave %q", long)
	}
}

func TestNamingRefusesForeignIdentifiers(t *testing.T) {
	t.Parallel()
	n, err := newNaming("")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"postgres", "tenant_", `tenant_00000000000000000000000000000000"; DROP`, "other_00000000000000000000000000000000"} {
		if _, err := n.quote(bad); err == nil {
			t.Errorf("quote(%q) accepted", bad)
		}
	}
	if q, err := n.quote("tenant_0123456789abcdef0123456789abcdef"); err != nil || q != `"tenant_0123456789abcdef0123456789abcdef"` {
		t.Errorf("quote = %q, %v", q, err)
	}
	if _, err := newNaming("Bad-Prefix"); err == nil {
		t.Error("bad prefix accepted")
	}
}

func TestRouteTableKeepsTheNewerTenant(t *testing.T) {
	t.Parallel()
	rt := newRouteTable()
	id := uuid.New()
	now := time.Now()
	rt.put(id, &Tenant{ID: id, Slug: "race", Status: StatusReady, UpdatedAt: now})
	rt.put(id, &Tenant{ID: id, Slug: "race", Status: StatusSuspended, UpdatedAt: now.Add(-time.Millisecond)})
	if got := rt.byID[id].Status; got != StatusReady {
		t.Fatalf("a stale read replaced the newer tenant: status %s", got)
	}
	rt.put(id, &Tenant{ID: id, Slug: "race", Status: StatusSuspended, UpdatedAt: now.Add(time.Millisecond)})
	if got := rt.bySlug["race"].Status; got != StatusSuspended {
		t.Fatalf("a newer read was ignored: status %s", got)
	}
	rt.put(id, nil)
	if rt.byID[id] != nil || rt.bySlug["race"] != nil {
		t.Fatal("removal ignored")
	}
}
