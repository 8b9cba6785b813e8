package main

import (
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/tenantql/tenantql/pglocal"
	"github.com/tenantql/tenantql/store"
)

// baseline is the plain net/http handler the server is compared with: the
// store's SQL (ListIssues without the count, then UsersByIDs for the
// assignees the user cache does not hold, as the resolvers and their
// dataloader ran it before the server joined the assignees into a
// prepared page, issue 15) on the same tenant databases, with the same user
// cache (users remembered for userTTL, as USER_CACHE_SECONDS' default), and
// the same JSON, with none of GraphQL, routing, tokens or the connection
// budget: one small pool per tenant database, as the superuser.
type baseline struct {
	addr string
	srv  *http.Server
	dbs  []*sqlx.DB
}

const userTTL = 5 * time.Second

// userCache is the baseline's user cache: users by tenant host and id.
type userCache struct {
	mu    sync.Mutex
	users map[string]map[uuid.UUID]cachedUser
}

type cachedUser struct {
	user    store.User
	expires time.Time
}

// get returns the cached users of ids and the ids it does not hold.
func (c *userCache) get(host string, ids []uuid.UUID) (map[uuid.UUID]store.User, []uuid.UUID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	found, now := map[uuid.UUID]store.User{}, time.Now()
	var missing []uuid.UUID
	for _, id := range ids {
		if cu, ok := c.users[host][id]; ok && now.Before(cu.expires) {
			found[id] = cu.user
		} else {
			missing = append(missing, id)
		}
	}
	return found, missing
}

func (c *userCache) add(host string, users map[uuid.UUID]store.User) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.users[host] == nil {
		c.users[host] = map[uuid.UUID]cachedUser{}
	}
	for id, u := range users {
		c.users[host][id] = cachedUser{user: u, expires: time.Now().Add(userTTL)}
	}
}

type baseNode struct {
	ID       string    `json:"id"`
	Number   int       `json:"number"`
	Title    string    `json:"title"`
	Status   string    `json:"status"`
	Assignee *baseUser `json:"assignee"`
}

type baseUser struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type baseEdge struct {
	Node baseNode `json:"node"`
}

type baseAnswer struct {
	Data struct {
		Issues struct {
			Edges []baseEdge `json:"edges"`
		} `json:"issues"`
	} `json:"data"`
}

func startBaseline(cluster *pglocal.Cluster, ts []*tenant) (*baseline, error) {
	b := &baseline{}
	stores := map[string]*store.Store{}
	cache := &userCache{users: map[string]map[uuid.UUID]cachedUser{}}
	for _, t := range ts {
		// the server's tenant pools use binary_parameters too (one round
		// trip per query)
		db, err := sqlx.Open("postgres", cluster.URL(t.DBName)+"&binary_parameters=yes")
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(4)
		db.SetMaxIdleConns(4) // as many as may open: no connection churn
		b.dbs = append(b.dbs, db)
		stores[t.host] = store.New(db)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := strings.Cut(r.Host, ":")
		s := stores[host]
		if s == nil {
			http.NotFound(w, r)
			return
		}
		// the query asks for no totalCount, and the resolver then skips
		// the count (and the transaction around it)
		page, err := s.ListIssues(r.Context(), store.IssueFilter{}, store.PageArgs{First: 20, SkipCount: true})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		var ids []uuid.UUID
		for _, is := range page.Items {
			if is.AssigneeID != nil {
				ids = append(ids, *is.AssigneeID)
			}
		}
		users, missing := cache.get(host, ids)
		if len(missing) > 0 {
			loaded, err := s.UsersByIDs(r.Context(), missing)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			cache.add(host, loaded)
			maps.Copy(users, loaded)
		}
		var a baseAnswer
		a.Data.Issues.Edges = make([]baseEdge, len(page.Items))
		for i, is := range page.Items {
			n := baseNode{ID: is.ID.String(), Number: is.Number, Title: is.Title, Status: string(is.Status)}
			if is.AssigneeID != nil {
				if u, ok := users[*is.AssigneeID]; ok {
					n.Assignee = &baseUser{ID: u.ID.String(), Name: u.Name}
				}
			}
			a.Data.Issues.Edges[i].Node = n
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&a)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b.addr = l.Addr().String()
	b.srv = &http.Server{Handler: h}
	go func() { _ = b.srv.Serve(l) }()
	return b, nil
}

func (b *baseline) close() {
	_ = b.srv.Close()
	for _, db := range b.dbs {
		db.Close()
	}
}
