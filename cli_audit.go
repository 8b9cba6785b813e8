package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// audit prints the last limit platform mutations, newest first.
func (a *app) audit(ctx context.Context, out io.Writer, limit int) error {
	entries, err := a.registry.Audit(ctx, limit)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tACTION\tTENANT\tOUTCOME\tCLIENT\tTOKEN\tREQUEST ID")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.At.Format(time.RFC3339), e.Action, dash(e.TenantSlug),
			e.Outcome, dash(e.ClientAddr), dash(e.TokenFingerprint), dash(e.RequestID))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
