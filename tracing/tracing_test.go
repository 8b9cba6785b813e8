package tracing

import (
	"strings"
	"testing"
)

func TestStatementDropsLiterals(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`SELECT id FROM tenants WHERE slug = $1`, `SELECT id FROM tenants WHERE slug = $1`},
		{`CREATE ROLE "t_1" WITH LOGIN PASSWORD 'SCRAM-SHA-256$4096:c2FsdA==$a:b'`, `CREATE ROLE "t_1" WITH LOGIN PASSWORD '?'`},
		{`ALTER ROLE x SET statement_timeout = '30s'`, `ALTER ROLE x SET statement_timeout = '?'`},
		{`SELECT 'it''s', 'two'`, `SELECT '?', '?'`},
		{`SELECT E'a\'b', 1`, `SELECT E'?', 1`},
		{`SELECT 'a\', 2`, `SELECT '?', 2`}, // standard strings: the backslash is text
		{`DO $$ BEGIN RAISE 'x'; END $$`, `DO '?'`},
		{`SELECT $fn$ body $fn$, $1, $2`, `SELECT '?', $1, $2`},
		{`SELECT "we'ird" FROM t`, `SELECT "we'ird" FROM t`},
		{`SELECT 'unterminated`, `SELECT '?'`},
		{`SELECT $1::text || 'x'`, `SELECT $1::text || '?'`},
		{`SELECT price$ FROM t`, `SELECT price$ FROM t`},
	} {
		if got := Statement(tc.in); got != tc.want {
			t.Errorf("Statement(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzStatement: whatever the text, no quoted literal survives: every
// quote left belongs to a '?' or to a "quoted identifier".
func FuzzStatement(f *testing.F) {
	f.Add(`CREATE ROLE r PASSWORD 'secret'`)
	f.Add(`SELECT E'\'', $q$x$q$, "a'b"`)
	f.Fuzz(func(t *testing.T, q string) {
		out := Statement(q)
		rest := out
		for {
			i := strings.IndexAny(rest, `'"`)
			if i < 0 {
				break
			}
			if rest[i] == '"' {
				j := strings.IndexByte(rest[i+1:], '"')
				if j < 0 {
					return // an unterminated identifier runs to the end
				}
				rest = rest[i+j+2:]
				continue
			}
			if !strings.HasPrefix(rest[i:], "'?'") {
				t.Fatalf("Statement(%q) = %q keeps a literal", q, out)
			}
			rest = rest[i+3:]
		}
	})
}
