package tenancy

import (
	"context"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
)

// WithoutAdmission gives the request's place among its tenant's admitted
// requests to others while f runs, and takes it back afterwards. No
// connection is opened: Pools.DB only prepares the pool.
func TestWithoutAdmissionFreesThePlaceWhileItRuns(t *testing.T) {
	sealer, err := NewSealer("test-secret-key-0123456789-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPools(PoolOptions{ServerURL: "postgres://nobody@127.0.0.1:1/none", MaxConnsPerTenant: 1, AcquireTimeout: 100 * time.Millisecond}, sealer)
	if err != nil {
		t.Fatal(err)
	}
	defer p.CloseAll()
	id := uuid.New()
	name := DefaultNamePrefix + hex.EncodeToString(id[:])
	sealed, err := sealer.Seal([]byte("a password"), id[:])
	if err != nil {
		t.Fatal(err)
	}
	tn := &Tenant{ID: id, Slug: "adm", Status: StatusReady, DBName: name, RoleName: name, sealedPassword: sealed}
	if _, err := p.DB(tn); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	leave, err := p.Enter(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	target := &Target{Tenant: tn, adm: &admission{pools: p, id: id, leave: leave}}
	refused := func() bool {
		l, err := p.Enter(ctx, id)
		if err == nil {
			l()
			return false
		}
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Enter: %v, want ErrUnavailable", err)
		}
		return true
	}
	if !refused() {
		t.Fatal("a second request was admitted beside the first (cap 1)")
	}
	ran := false
	if err := target.WithoutAdmission(ctx, func() {
		ran = true
		if refused() {
			t.Error("while the first request hashes, another one of its tenant is refused")
		}
	}); err != nil {
		t.Fatal(err)
	}
	if !ran {
		t.Fatal("f did not run")
	}
	if !refused() {
		t.Fatal("after WithoutAdmission the request no longer holds its place")
	}
	target.adm.release()
	if refused() {
		t.Fatal("the place was not given back at the end of the request")
	}
}
