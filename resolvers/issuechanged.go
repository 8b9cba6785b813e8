package resolvers

import (
	"context"

	"github.com/tenantql/tenantql/graph/model"
	"github.com/tenantql/tenantql/store"
)

// issueChanged streams every issue of the project created or updated
// from now on, by this process or any other sharing the database, as the
// live hub delivers them. Returns NOT_FOUND for an unknown project key.
func (r *Resolver) issueChanged(ctx context.Context, projectKey string) (<-chan *model.Issue, error) {
	target, err := tenantTarget(ctx)
	if err != nil {
		return nil, err
	}
	p, err := store.New(target.DB).ProjectByKey(ctx, projectKey)
	if err != nil {
		return nil, err
	}
	sub, err := r.Live.Subscribe(ctx, target.Tenant, p.ID)
	if err != nil {
		return nil, err
	}
	out := make(chan *model.Issue)
	go func() {
		defer close(out)
		defer sub.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case is, ok := <-sub.Issues():
				if !ok {
					return
				}
				// the event's nested fields get loaders of their own, on
				// the tenant's pool as of now (it may have moved)
				db, err := target.CurrentDB()
				if err != nil {
					return // no longer served: the subscription ends
				}
				renewLoaders(ctx, db)
				select {
				case out <- issueModel(is):
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}
