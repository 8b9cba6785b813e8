// Package resolvers turns GraphQL calls into tenancy and store calls, and
// maps every error to the contract's extensions.code in one presenter.
package resolvers

import (
	"log/slog"
	"time"

	"github.com/tenantql/tenantql/auth"
	"github.com/tenantql/tenantql/live"
	"github.com/tenantql/tenantql/tenancy"
	"github.com/tenantql/tenantql/usage"
)

// Resolver is the root resolver; server.go sets its dependencies.
type Resolver struct {
	Registry    *tenancy.Registry
	Provisioner *tenancy.Provisioner
	Servers     *tenancy.Servers // the fleet of database servers
	Hosts       tenancy.Hosts
	Tokens      *auth.Tokens
	AdminToken  string
	Log         *slog.Logger
	// Passwords hashes and checks user passwords (one per process: it
	// bounds the argon2id computations running at once).
	Passwords *auth.Passwords
	// Logins counts failed logins per account and per client address and
	// spaces further attempts (nil: not counted).
	Logins *auth.LoginThrottle
	// Live follows the tenants' issue changes for issueChanged.
	Live *live.Hub
	// UsageOf reads each tenant's usage (Tenant.usage).
	UsageOf *usage.Recorder
	// UserTTL is how long a user, once read, is remembered
	// (USER_CACHE_SECONDS); 0 reads users on every request.
	UserTTL time.Duration

	users userCache // users, remembered for a few seconds
}
