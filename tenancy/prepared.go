package tenancy

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/lib/pq"
)

// Prepared statements, kept per connection. lib/pq runs a query with
// arguments as an unnamed statement: PostgreSQL parses, analyses and
// plans it on every run. For the few statements of the request path that
// PoolOptions.Prepared accepts, a tenant connection instead prepares the
// statement (named) the first time it runs it and executes it by name
// afterwards; PostgreSQL then skips the parse and, once it settles on a
// generic plan, the planning. On the bench's page of issues that cut
// PostgreSQL's CPU per statement by about three quarters (docs/performance.md).
// The statements live and die with their connection: nothing to
// invalidate when a pool closes. A connection keeps at most
// maxPreparedPerConn of them, the least recently run closed first: each
// costs its backend memory (the plan), and the store may accept many
// texts (one per filter combination and page size).

// preparedConnector makes lib/pq's connections keep the statements that
// prepared accepts prepared.
type preparedConnector struct {
	driver.Connector
	prepared func(query string) bool
}

func (c preparedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	pc, ok := conn.(pqConn)
	if !ok { // not lib/pq's connection: run everything as it comes
		return conn, nil
	}
	stmts, err := simplelru.NewLRU(maxPreparedPerConn, func(_ string, st driver.Stmt) {
		// a failure means the connection is gone: its next use says so
		_ = st.Close()
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("prepared statements of a connection: %w", err)
	}
	return &preparedConn{pqConn: pc, prepared: c.prepared, stmts: stmts}, nil
}

// maxPreparedPerConn bounds the statements one connection keeps prepared:
// more than the request path's usual few (a page per filter and page size
// in use), few enough that a client asking for every page size cannot
// grow a backend's plan cache without bound.
const maxPreparedPerConn = 32

// pqConn is what lib/pq's connection implements and database/sql uses;
// preparedConn passes it all on.
type pqConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
	driver.NamedValueChecker
}

// preparedConn is one connection and its prepared statements. database/sql
// hands a connection to one goroutine at a time, so stmts needs no lock.
type preparedConn struct {
	pqConn
	prepared func(query string) bool
	stmts    *simplelru.LRU[string, driver.Stmt]
}

func (c *preparedConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if !c.prepared(query) {
		return c.pqConn.QueryContext(ctx, query, args)
	}
	rows, err := c.queryPrepared(ctx, query, args)
	if err != nil && staleStatement(err) {
		// the server no longer knows it, or its result changed shape (a
		// migration): prepare it again, once (within a transaction the
		// failure has aborted it, and the retry says so)
		c.stmts.Remove(query)
		rows, err = c.queryPrepared(ctx, query, args)
	}
	return rows, err
}

func (c *preparedConn) queryPrepared(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	st, ok := c.stmts.Get(query)
	if !ok {
		var err error
		if st, err = c.pqConn.PrepareContext(ctx, query); err != nil {
			return nil, err
		}
		c.stmts.Add(query, st) // may close the least recently run
	}
	return st.(driver.StmtQueryContext).QueryContext(ctx, args)
}

// staleStatement reports whether err says a prepared statement cannot be
// run again as it is: 26000 (no such prepared statement), 0A000 (cached
// plan must not change result type).
func staleStatement(err error) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && (pqErr.Code == "26000" || pqErr.Code == "0A000")
}
