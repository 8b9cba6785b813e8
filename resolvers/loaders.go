package resolvers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/vikstrous/dataloadgen"

	"github.com/tenantql/tenantql/store"
	"github.com/tenantql/tenantql/tenancy"
)

// loaderWait is how long a dataloader collects keys before its batch query
// runs: gqlgen starts the sibling field resolvers of a list concurrently,
// so they all ask within microseconds of each other.
const loaderWait = 2 * time.Millisecond

// loaders batch and cache the lookups of one request (or of one
// subscription event) on one tenant's database: users (assignee, reporter,
// author), projects, and the first page of each issue's comments.
type loaders struct {
	tenantID uuid.UUID
	store    *store.Store
	users    *dataloadgen.Loader[uuid.UUID, store.User]
	projects *dataloadgen.Loader[uuid.UUID, store.Project]

	mu       sync.Mutex
	comments map[int]*dataloadgen.Loader[uuid.UUID, store.Page[store.Comment]] // by page size
}

func newLoaders(target *tenancy.Target, db *sqlx.DB) *loaders {
	s := store.New(db)
	return &loaders{
		tenantID: target.Tenant.ID,
		store:    s,
		users:    dataloadgen.NewMappedLoader(s.UsersByIDs, dataloadgen.WithWait(loaderWait)),
		projects: dataloadgen.NewMappedLoader(s.ProjectsByIDs, dataloadgen.WithWait(loaderWait)),
		comments: map[int]*dataloadgen.Loader[uuid.UUID, store.Page[store.Comment]]{},
	}
}

// firstComments returns the loader of the first `first` comments of issues.
func (l *loaders) firstComments(first int) *dataloadgen.Loader[uuid.UUID, store.Page[store.Comment]] {
	l.mu.Lock()
	defer l.mu.Unlock()
	cl, ok := l.comments[first]
	if !ok {
		cl = dataloadgen.NewMappedLoader(func(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]store.Page[store.Comment], error) {
			return l.store.CommentsForIssues(ctx, ids, first)
		}, dataloadgen.WithWait(loaderWait))
		l.comments[first] = cl
	}
	return cl
}

// user loads the user with id. Returns an error wrapping store.ErrNotFound
// if there is none.
func (l *loaders) user(ctx context.Context, id uuid.UUID) (store.User, error) {
	u, err := l.users.Load(ctx, id)
	if errors.Is(err, dataloadgen.ErrNotFound) {
		return store.User{}, fmt.Errorf("user %s: %w", id, store.ErrNotFound)
	}
	return u, err
}

// project loads the project with id. Returns an error wrapping
// store.ErrNotFound if there is none.
func (l *loaders) project(ctx context.Context, id uuid.UUID) (store.Project, error) {
	p, err := l.projects.Load(ctx, id)
	if errors.Is(err, dataloadgen.ErrNotFound) {
		return store.Project{}, fmt.Errorf("project %s: %w", id, store.ErrNotFound)
	}
	return p, err
}

// loaderScope holds the dataloaders of one request. They are built on
// first use, once the tenant is known; a subscription renews them before
// each event, so that no cache outlives the event it was filled for.
type loaderScope struct {
	cur atomic.Pointer[loaders]
	// db, when set, is the tenant database the loaders read instead of the
	// target's: a subscription's events read the tenant's current pool
	// (tenancy.Target.CurrentDB), which a move changes.
	db atomic.Pointer[sqlx.DB]
}

type loaderScopeKey struct{}

// LoaderMiddleware gives every request its own dataloader scope. Put it
// after the tenancy middleware; the loaders themselves are built on first
// use from the request's tenant database, so a cache never spans requests
// or tenants. On a websocket connection the scope is renewed per event.
func LoaderMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), loaderScopeKey{}, &loaderScope{})))
	})
}

// loadersFor returns the request's dataloaders on the request's tenant.
// Without LoaderMiddleware each call gets fresh ones: correct, not batched.
func loadersFor(ctx context.Context) (*loaders, error) {
	target, err := tenantTarget(ctx)
	if err != nil {
		return nil, err
	}
	scope, ok := ctx.Value(loaderScopeKey{}).(*loaderScope)
	if !ok {
		return newLoaders(target, target.DB), nil
	}
	for {
		cur := scope.cur.Load()
		if cur != nil && cur.tenantID == target.Tenant.ID {
			return cur, nil
		}
		db := target.DB
		if renewed := scope.db.Load(); renewed != nil {
			db = renewed
		}
		fresh := newLoaders(target, db)
		if scope.cur.CompareAndSwap(cur, fresh) {
			return fresh, nil
		}
	}
}

// renewLoaders drops the dataloaders of ctx's scope: the next lookup
// builds fresh ones, on db. A subscription calls it before handing out an
// event.
func renewLoaders(ctx context.Context, db *sqlx.DB) {
	if scope, ok := ctx.Value(loaderScopeKey{}).(*loaderScope); ok {
		scope.db.Store(db)
		scope.cur.Store(nil)
	}
}
