// Package resolvers turns GraphQL calls into tenancy and store calls, and
// maps every error to the contract's extensions.code in one presenter.
package resolvers

import (
	"log/slog"
	"time"

	"github.com/tenantql/tenantql/auth"
	"github.com/tenantql/tenantql/tenancy"
)

// Resolver is the root resolver; server.go sets its dependencies.
type Resolver struct {
	Registry    *tenancy.Registry
	Provisioner *tenancy.Provisioner
	Hosts       tenancy.Hosts
	Tokens      *auth.Tokens
	AdminToken  string
	Log         *slog.Logger
	// Pools opens the tenant databases; the issueChanged hub LISTENs
	// through their URLs and connection budget.
	Pools *tenancy.Pools
	// MaxIssueFeeds caps the tenants whose issue changes this process
	// follows at once (MAX_LISTEN_CONNECTIONS), one LISTEN connection
	// each, taken from the Pools' budget. A subscription that would need
	// one more is refused with SERVICE_UNAVAILABLE. Defaults to 16.
	MaxIssueFeeds int
	// UserTTL is how long a user, once read, is remembered
	// (USER_CACHE_SECONDS); 0 reads users on every request.
	UserTTL time.Duration

	issueHub issueHub  // one LISTEN connection per tenant with subscribers
	users    userCache // users, remembered for a few seconds
}
