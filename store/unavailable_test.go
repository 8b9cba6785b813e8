package store_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/tenantql/tenantql/store"
)

func TestUnavailable(t *testing.T) {
	t.Parallel()
	// a port nobody listens on: connections are refused
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	db, err := sqlx.Open("postgres", "postgres://postgres@"+addr+"/x?sslmode=disable&connect_timeout=5")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	s := store.New(db)
	ctx := ctxT(t)

	_, err = s.UserByID(ctx, uuid.New())
	wantErr(t, err, store.ErrUnavailable)
	_, err = s.ListIssues(ctx, store.IssueFilter{}, store.PageArgs{First: 10})
	wantErr(t, err, store.ErrUnavailable)
	_, err = s.CreateIssue(ctx, store.NewIssue{ProjectKey: "WEB", Title: "x", ReporterID: uuid.New()})
	wantErr(t, err, store.ErrUnavailable)

	// a deadline that runs out while connecting
	expired, cancel := context.WithTimeout(ctx, time.Nanosecond)
	defer cancel()
	time.Sleep(time.Millisecond)
	_, err = s.ProjectByKey(expired, "WEB")
	wantErr(t, err, store.ErrUnavailable)
}
