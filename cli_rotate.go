package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/tenantql/tenantql/tenancy"
)

// rotateSecret re-seals every stored secret under SECRET_KEY (those that
// only SECRET_KEY_PREVIOUS opens) and prints how many. A secret no key
// opens fails the command, after the others are done.
func (a *app) rotateSecret(ctx context.Context, out io.Writer) error {
	rep, err := tenancy.ResealSecrets(ctx, a.control, a.sealer)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "tenant passwords: %d re-sealed, %d already under SECRET_KEY\n", rep.TenantsResealed, rep.TenantsCurrent)
	fmt.Fprintf(out, "database server URLs: %d re-sealed, %d already under SECRET_KEY\n", rep.ServersResealed, rep.ServersCurrent)
	if rep.OwnersResealed+rep.OwnersCurrent > 0 {
		fmt.Fprintf(out, "owner passwords of sign-ups in progress: %d re-sealed, %d already under SECRET_KEY\n", rep.OwnersResealed, rep.OwnersCurrent)
	}
	if len(rep.Unreadable) > 0 {
		return fmt.Errorf("%d secret(s) open with neither SECRET_KEY nor SECRET_KEY_PREVIOUS, left as they are: %s",
			len(rep.Unreadable), strings.Join(rep.Unreadable, ", "))
	}
	return nil
}
