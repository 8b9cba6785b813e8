package resolvers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tenantql/tenantql/apierr"
	"github.com/tenantql/tenantql/auth"
	"github.com/tenantql/tenantql/edge"
	"github.com/tenantql/tenantql/graph/model"
	"github.com/tenantql/tenantql/store"
)

func userModel(u store.User) *model.User {
	return &model.User{ID: u.ID.String(), Email: u.Email, Name: u.Name, Role: model.UserRole(u.Role), CreatedAt: u.CreatedAt}
}

// organization describes the request's tenant.
func (r *Resolver) organization(ctx context.Context) (*model.Organization, error) {
	target, err := tenantTarget(ctx)
	if err != nil {
		return nil, err
	}
	return &model.Organization{Slug: target.Tenant.Slug, Name: target.Tenant.Name}, nil
}

// login checks a user's password and returns a token bound to this tenant.
// Unknown emails and wrong passwords get the same answer in the same time.
// Failures are counted per account and per client address (r.Logins):
// past a few, the next attempt must wait, doubling with each failure, and
// is refused with RATE_LIMITED and Retry-After before any password is
// checked.
func (r *Resolver) login(ctx context.Context, email, password string) (*model.AuthPayload, error) {
	target, err := tenantTarget(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkText("email", email, 254); err != nil {
		return nil, err
	}
	if err := checkText("password", password, 128); err != nil {
		return nil, err
	}
	queue := target.Tenant.ID.String()
	signedIn := false
	if r.Logins != nil {
		attempt, wait := r.Logins.Begin(queue, email, edge.AddressKey(sessionFrom(ctx).client))
		if wait > 0 {
			return nil, loginThrottled(ctx, wait)
		}
		defer func() { attempt.Done(signedIn) }()
	}
	wrong := apierr.New(apierr.Unauthenticated, "wrong email or password")
	u, err := store.New(target.DB).UserByEmail(ctx, strings.TrimSpace(email))
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalidInput) {
		// as long as a real check, so that timing does not tell
		if err := target.WithoutAdmission(ctx, func() { _ = r.Passwords.CheckNoUser(queue, password) }); err != nil {
			return nil, err
		}
		return nil, wrong
	}
	if err != nil {
		return nil, err
	}
	// the hash takes tens of milliseconds of CPU and no connection: the
	// tenant's other requests need not wait for it
	var checked error
	if err := target.WithoutAdmission(ctx, func() { checked = r.Passwords.Check(queue, u.PasswordHash, password) }); err != nil {
		return nil, err
	}
	if checked != nil {
		if errors.Is(checked, auth.ErrWrongPassword) {
			return nil, wrong
		}
		return nil, checked
	}
	token, err := r.Tokens.Issue(u.ID.String(), target.Tenant.ID.String(), u.TokenGeneration)
	if err != nil {
		return nil, err
	}
	signedIn = true
	return &model.AuthPayload{Token: token, User: userModel(u)}, nil
}

// loginThrottled is the answer to a login that must wait: RATE_LIMITED
// with extensions.retryAfter and, over HTTP, status 429 with Retry-After.
func loginThrottled(ctx context.Context, wait time.Duration) error {
	secs := max(1, int((wait+time.Second-1)/time.Second))
	if st, ok := ctx.Value(httpStateKey{}).(*httpState); ok {
		st.status, st.retryAfter = http.StatusTooManyRequests, strconv.Itoa(secs)
	}
	return &apierr.Error{Code: apierr.RateLimited, RetryAfter: secs, Message: fmt.Sprintf(
		"too many failed logins for this account or from this address: try again in %d s", secs)}
}

// viewerModel returns the signed-in user.
func (r *Resolver) viewerModel(ctx context.Context) (*model.User, error) {
	u, err := r.viewer(ctx)
	if err != nil {
		return nil, err
	}
	return userModel(u), nil
}
