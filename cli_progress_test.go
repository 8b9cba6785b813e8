package main

import (
	"strings"
	"testing"
)

// On a terminal the progress is one bar redrawn in place, with failures
// kept on lines of their own; elsewhere it is a line per tenant.
func TestProgress(t *testing.T) {
	var out strings.Builder
	bar := &progress{out: &out, total: 4, tty: true}
	bar.step("a: ok", false)
	bar.step("b: FAILED: boom", true)
	bar.step("c: ok", false)
	bar.step("d: ok", false)
	bar.finish()
	got := out.String()
	if strings.Contains(got, "a: ok") || !strings.Contains(got, "\r\033[Kb: FAILED: boom\n") ||
		!strings.Contains(got, "\r\033[K[###############...............] 2/4 ") ||
		!strings.HasSuffix(strings.TrimRight(got, "0123456789.s\n"), "[##############################] 4/4 ") || strings.Count(got, "\n") != 2 {
		t.Fatalf("terminal progress %q", got)
	}

	out.Reset()
	plain := newProgress(&out, 2) // a strings.Builder is no terminal
	plain.step("a: ok", false)
	plain.step("b: FAILED: boom", true)
	plain.finish()
	if got := out.String(); got != "[1/2] a: ok\n[2/2] b: FAILED: boom\n" {
		t.Fatalf("plain progress %q", got)
	}
}
