package resolvers

import (
	"context"
	"errors"
	"unicode/utf8"

	"github.com/tenantql/tenantql/apierr"
	"github.com/tenantql/tenantql/auth"
	"github.com/tenantql/tenantql/graph/model"
	"github.com/tenantql/tenantql/store"
	"github.com/tenantql/tenantql/tenancy"
)

// logout revokes every token of the signed-in user: the user's token
// generation moves on, and every process forgets the cached user at once.
func (r *Resolver) logout(ctx context.Context) (bool, error) {
	target, u, err := r.signedIn(ctx)
	if err != nil {
		return false, err
	}
	if _, err := store.New(target.DB).RevokeTokens(ctx, u.ID); err != nil {
		return false, err
	}
	r.announceRevoked(ctx, target, u)
	return true, nil
}

// changePassword checks the current password, stores the new one and
// returns a token of the new generation: every other token of the user
// stops working, on every process.
func (r *Resolver) changePassword(ctx context.Context, current, newPassword string) (*model.AuthPayload, error) {
	target, viewer, err := r.signedIn(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkText("current", current, 128); err != nil {
		return nil, err
	}
	if err := checkText("new", newPassword, 128); err != nil {
		return nil, err
	}
	if utf8.RuneCountInString(newPassword) < 8 {
		return nil, badInput("new must be at least 8 characters")
	}
	st := store.New(target.DB)
	u, err := st.UserByID(ctx, viewer.ID) // the cached user has no hash
	if errors.Is(err, store.ErrNotFound) {
		return nil, apierr.New(apierr.Unauthenticated, "the signed-in user no longer exists")
	}
	if err != nil {
		return nil, err
	}
	var checked error
	if err := target.WithoutAdmission(ctx, func() { checked = r.Passwords.Check(target.Tenant.ID.String(), u.PasswordHash, current) }); err != nil {
		return nil, err
	}
	if errors.Is(checked, auth.ErrWrongPassword) {
		return nil, badInput("current is not the user's password")
	}
	if checked != nil {
		return nil, checked
	}
	var hash string
	if err := target.WithoutAdmission(ctx, func() { hash, checked = r.Passwords.Hash(target.Tenant.ID.String(), newPassword) }); err != nil {
		return nil, err
	}
	if checked != nil {
		return nil, checked
	}
	u, err = st.SetPassword(ctx, u.ID, hash)
	if err != nil {
		return nil, err
	}
	r.announceRevoked(ctx, target, u)
	token, err := r.Tokens.Issue(u.ID.String(), target.Tenant.ID.String(), u.TokenGeneration)
	if err != nil {
		return nil, err
	}
	return &model.AuthPayload{Token: token, User: userModel(u)}, nil
}

// signedIn returns the request's tenant and its signed-in user.
func (r *Resolver) signedIn(ctx context.Context) (*tenancy.Target, store.User, error) {
	target, err := tenantTarget(ctx)
	if err != nil {
		return nil, store.User{}, err
	}
	u, err := r.viewer(ctx)
	return target, u, err
}

// announceRevoked makes every process forget u (this one at once). The
// revocation is committed already: when the control database cannot pass
// the news on, other processes see it within the user cache's time to
// live, and the failure is only logged.
func (r *Resolver) announceRevoked(ctx context.Context, target *tenancy.Target, u store.User) {
	if err := r.Registry.AnnounceRevoked(context.WithoutCancel(ctx), target.Tenant.ID, u.ID); err != nil {
		r.Log.Warn("announce revoked tokens; other processes follow within USER_CACHE_SECONDS",
			"tenant", target.Tenant.Slug, "err", err)
	}
}
