package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress shows how far a command over many tenants has come. On a
// terminal it is a bar redrawn in place, with each failure printed above
// it; elsewhere (a log, a pipe) it is one line per tenant, so that logs
// stay readable.
type progress struct {
	out   io.Writer
	total int
	done  int
	tty   bool
	began time.Time
	drawn time.Time // when the bar was last drawn
}

// barWidth is the number of cells of the bar.
const barWidth = 30

// redrawEvery limits how often the bar is redrawn.
const redrawEvery = 100 * time.Millisecond

func newProgress(out io.Writer, total int) *progress {
	return &progress{out: out, total: total, tty: isTerminal(out), began: time.Now()}
}

// isTerminal reports whether w is a character device such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// step counts one tenant done; line says what happened to it. On a
// terminal only failures keep their line.
func (p *progress) step(line string, failed bool) {
	p.done++
	if !p.tty {
		fmt.Fprintf(p.out, "[%d/%d] %s\n", p.done, p.total, line)
		return
	}
	if failed {
		fmt.Fprintf(p.out, "\r\033[K%s\n", line)
		p.drawn = time.Time{}
	}
	if p.done == p.total || time.Since(p.drawn) >= redrawEvery {
		p.draw()
	}
}

func (p *progress) draw() {
	filled := barWidth
	if p.total > 0 {
		filled = barWidth * p.done / p.total
	}
	fmt.Fprintf(p.out, "\r\033[K[%s%s] %d/%d %.1fs", strings.Repeat("#", filled), strings.Repeat(".", barWidth-filled),
		p.done, p.total, time.Since(p.began).Seconds())
	p.drawn = time.Now()
}

// finish ends the bar's line, so what follows starts on a line of its own.
func (p *progress) finish() {
	if p.tty && p.total > 0 {
		p.draw()
		fmt.Fprintln(p.out)
	}
}
