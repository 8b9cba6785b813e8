package main

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/tenantql/tenantql/pglocal"
	"github.com/tenantql/tenantql/store"
)

// baseline is the plain net/http handler the server is compared with: the
// same SQL (the store's ListIssues without the count, then UsersByIDs for
// the assignees, as the resolvers and their dataloader run it; the server
// also loads the viewer) on the same tenant
// databases, the same JSON, with none of GraphQL, routing, tokens or the
// connection budget: one small pool per tenant database, as the superuser.
type baseline struct {
	addr string
	srv  *http.Server
	dbs  []*sqlx.DB
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
		users, err := s.UsersByIDs(r.Context(), ids)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
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
