package store

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
)

func TestValidEmail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want bool
	}{
		{"a@b.co", true},
		{"first.last+tag@sub.example.com", true},
		{"o'brien@example.ie", true},
		{"jürgen@beispiel.de", true},
		{"x@xn--bcher-kva.example", true},
		{"", false},
		{"a", false},
		{"@example.com", false},
		{"a@", false},
		{"a@b", false},
		{"a@@b.co", false},
		{"a@b@c.co", false},
		{"a b@c.co", false},
		{"a@b .co", false},
		{"a@.b.co", false},
		{"a@b.co.", false},
		{"a@b..co", false},
		{".a@b.co", false},
		{"a.@b.co", false},
		{"a..b@c.co", false},
		{"a@-b.co", false},
		{"a@b-.co", false},
		{"a\x00@b.co", false},
		{"a\n@b.co", false},
		{"\xff@b.co", false},
		{"\"a\"@b.co", false},
		{"a<b@c.co", false},
		{"a,b@c.co", false},
		{"a@[127.0.0.1]", false},
		{strings.Repeat("a", 65) + "@b.co", false},
		{"a@" + strings.Repeat("b", 64) + ".co", false},
		{strings.Repeat("a", 64) + "@" + strings.Repeat(strings.Repeat("b", 60)+".", 3) + "abcdef", true},
		{strings.Repeat("a", 64) + "@" + strings.Repeat(strings.Repeat("b", 60)+".", 3) + "abcdefg", false},
	}
	for _, tt := range tests {
		if got := validEmail(tt.in); got != tt.want {
			t.Errorf("validEmail(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestValidProjectKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want bool
	}{
		{"WE", true}, {"WEB", true}, {"A1", true}, {"ABCDEFGHIJ", true}, {"A123456789", true},
		{"", false}, {"W", false}, {"ABCDEFGHIJK", false}, {"1A", false}, {"web", false}, {"wEB", false},
		{"WEb", false}, {"WE-B", false}, {"WE_B", false}, {"WE B", false}, {"ÄB", false}, {"AÄ", false}, {"AB\x00", false},
	}
	for _, tt := range tests {
		if got := validProjectKey(tt.in); got != tt.want {
			t.Errorf("validProjectKey(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParseIssueKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		project string
		number  int
		ok      bool
	}{
		{"WEB-12", "WEB", 12, true},
		{"A1-1", "A1", 1, true},
		{"ABCDEFGHIJ-2147483647", "ABCDEFGHIJ", 2147483647, true},
		{"WEB-2147483648", "", 0, false},
		{"WEB-0", "", 0, false},
		{"WEB-012", "", 0, false},
		{"WEB-", "", 0, false},
		{"WEB", "", 0, false},
		{"-12", "", 0, false},
		{"WEB--12", "", 0, false},
		{"WEB-+12", "", 0, false},
		{"WEB-1e3", "", 0, false},
		{"WEB-12 ", "", 0, false},
		{"web-12", "", 0, false},
		{"W-12", "", 0, false},
		{"WEB-١٢", "", 0, false}, // Arabic-Indic digits
		{"", "", 0, false},
	}
	for _, tt := range tests {
		project, number, ok := parseIssueKey(tt.in)
		if project != tt.project || number != tt.number || ok != tt.ok {
			t.Errorf("parseIssueKey(%q) = %q, %d, %v; want %q, %d, %v", tt.in, project, number, ok, tt.project, tt.number, tt.ok)
		}
	}
}

func FuzzParseIssueKey(f *testing.F) {
	for _, s := range []string{"WEB-12", "A1-1", "WEB-0", "WEB-2147483648", "x-1-2", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		project, number, ok := parseIssueKey(s)
		if !ok {
			return
		}
		if !validProjectKey(project) || number < 1 || fmt.Sprintf("%s-%d", project, number) != s {
			t.Fatalf("parseIssueKey(%q) = %q, %d", s, project, number)
		}
	})
}

func TestCheckText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in         string
		min, max   int
		singleLine bool
		ok         bool
	}{
		{"abc", 1, 3, true, true},
		{"abcd", 1, 3, true, false},
		{"", 1, 3, true, false},
		{"", 0, 3, false, true},
		{"é", 1, 2, true, true},  // 2 bytes
		{"€", 1, 2, true, false}, // 3 bytes
		{"a\nb", 1, 10, false, true},
		{"a\nb", 1, 10, true, false},
		{"a\tb", 1, 10, true, false},
		{"a\x7fb", 1, 10, true, false},
		{"a\u0085b", 1, 10, true, false}, // NEL, a C1 control
		{"a\x00b", 1, 10, false, false},
		{"a\xffb", 1, 10, false, false},
		{"\xed\xa0\x80", 1, 10, false, false}, // a UTF-16 surrogate
	}
	for _, tt := range tests {
		err := checkText("field", tt.in, tt.min, tt.max, tt.singleLine)
		if (err == nil) != tt.ok || err != nil && !errors.Is(err, ErrInvalidInput) {
			t.Errorf("checkText(%q, %d, %d, %v) = %v, want ok %v", tt.in, tt.min, tt.max, tt.singleLine, err, tt.ok)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "invalid input: field must") {
			t.Errorf("message %q", err)
		}
	}
}

func TestCheckBody(t *testing.T) {
	t.Parallel()
	for in, ok := range map[string]bool{
		"ok": true, " x ": true, "line\nline": true, strings.Repeat("b", 10000): true,
		"": false, " ": false, "\n\t": false, strings.Repeat("b", 10001): false, "\x00": false,
	} {
		if err := checkBody(in); (err == nil) != ok {
			t.Errorf("checkBody(%.20q) = %v, want ok %v", in, err, ok)
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	for _, at := range []time.Time{
		time.Date(2024, 2, 29, 23, 59, 59, 999999000, time.UTC),
		time.Unix(0, 0),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC),
	} {
		id := uuid.New()
		c := encodeCursor(at, id)
		ks, err := decodeCursor(c)
		if err != nil || !ks.set || !ks.createdAt.Equal(at) || ks.createdAt.Location() != time.UTC || ks.id != id {
			t.Fatalf("decode(encode(%v, %s)) = %+v, %v", at, id, ks, err)
		}
	}
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(time.Now(), uuid.New()))
	f.Add("")
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		ks, err := decodeCursor(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("error %v is not ErrInvalidInput", err)
			}
			return
		}
		if again := encodeCursor(ks.createdAt, ks.id); again != s {
			t.Fatalf("cursor %q decodes to %+v, which encodes to %q", s, ks, again)
		}
	})
}

// TestDBErrorWrapsUnavailable: the store's wrapper keeps the driver error
// and marks outages with ErrUnavailable (the rules: pgerr's tests).
func TestDBErrorWrapsUnavailable(t *testing.T) {
	t.Parallel()
	down := &pq.Error{Code: "57P01"}
	if err := dbError("op", down); !errors.Is(err, ErrUnavailable) || !errors.Is(err, down) || !strings.HasPrefix(err.Error(), "store: op: ") {
		t.Errorf("dbError(57P01) = %v", err)
	}
	dup := &pq.Error{Code: "23505"}
	if err := dbError("op", dup); errors.Is(err, ErrUnavailable) || !errors.Is(err, dup) {
		t.Errorf("dbError(23505) = %v", err)
	}
	if dbError("op", nil) != nil {
		t.Error("dbError(nil) is not nil")
	}
}

func TestPrintable(t *testing.T) {
	t.Parallel()
	if got := printable("short"); got != "short" {
		t.Errorf("printable(short) = %q", got)
	}
	long := strings.Repeat("é", 30) // 60 bytes
	if got := printable(long); got != strings.Repeat("é", 20)+"…" {
		t.Errorf("printable(long) = %q", got)
	}
}
