package tenancy

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/tenantql/tenantql/internal/pgtest"
)

// TestPresenceCountsReplicasAndFreesTheLockOnExit: two processes hold
// their presence at once and count each other; when one stops, the other
// counts one within seconds.
func TestPresenceCountsReplicasAndFreesTheLockOnExit(t *testing.T) {
	t.Parallel()
	control := openT(t, pgtest.NewControlDatabase(t))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	counts := make(chan int, 16)
	a := NewPresence(control, "a/"+uuid.NewString(), log)
	a.OnReplicas = func(n int) { counts <- n }
	b := NewPresence(control, "b/"+uuid.NewString(), log)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctxB, stopB := context.WithCancel(ctx)
	doneA, doneB := make(chan struct{}), make(chan struct{})
	go func() { defer close(doneA); a.Run(ctx) }()
	go func() { defer close(doneB); b.Run(ctxB) }()

	waitCount(t, counts, 2)
	if held, _ := a.Held(); !held {
		t.Fatal("a's presence is not held")
	}
	_, lostB := b.Held()
	stopB()
	<-doneB
	select {
	case <-lostB:
	default:
		t.Fatal("b stopped but its lost channel is open")
	}
	waitCount(t, counts, 1)
	cancel()
	<-doneA
}

func waitCount(t *testing.T, counts <-chan int, want int) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case n := <-counts:
			if n == want {
				return
			}
		case <-deadline:
			t.Fatalf("never counted %d replicas", want)
		}
	}
}

// TestClaimTakesOverOnlyTheDeadOwnersJobs: a job whose lease has not run
// out is taken over at once when its owner holds no presence (the process
// died), and left alone while its owner's presence is held, however long
// the lease.
func TestClaimTakesOverOnlyTheDeadOwnersJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	control := openT(t, pgtest.NewControlDatabase(t))
	if _, err := MigrateControl(ctx, control.DB); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	live := NewPresence(control, "live/"+uuid.NewString(), log)
	liveCtx, stopLive := context.WithCancel(ctx)
	defer stopLive()
	go live.Run(liveCtx)
	// the claiming process is alive too: what it claims stays its own
	p := NewProvisioner(control, nil, nil, nil, ProvisionerOptions{}, log)
	pCtx, stopP := context.WithCancel(ctx)
	defer stopP()
	go p.presence.Run(pCtx)
	waitHeld(t, live)
	waitHeld(t, p.presence)
	liveJob := insertLeasedJob(t, control, "live-owner", live.name)
	deadJob := insertLeasedJob(t, control, "dead-owner", "dead/"+uuid.NewString())

	j, ok, err := p.claim(ctx)
	if err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	if j.ID != deadJob || !j.Takeover || j.Attempts != 1 {
		t.Fatalf("claimed %v (takeover %v, attempts %d), want the dead owner's job %v taken over", j.ID, j.Takeover, j.Attempts, deadJob)
	}
	if j, ok, err := p.claim(ctx); err != nil || ok {
		t.Fatalf("claimed %v (live owner's job %v, dead owner's %v): %v %v", j.ID, liveJob, deadJob, ok, err)
	}
	stopLive() // the other owner dies; p lives on
	deadline := time.Now().Add(15 * time.Second)
	for {
		j, ok, err := p.claim(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if j.ID != liveJob {
				t.Fatalf("claimed %v, want %v", j.ID, liveJob)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stopped owner's job was never taken over")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitHeld(t *testing.T, p *Presence) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for held, _ := p.Held(); !held; held, _ = p.Held() {
		if time.Now().After(deadline) {
			t.Fatal("presence never held")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// insertLeasedJob adds a PROVISIONING tenant row leased by owner for an
// hour.
func insertLeasedJob(t *testing.T, control *sqlx.DB, slug, owner string) uuid.UUID {
	t.Helper()
	id := uuid.New()
	const q = `INSERT INTO tenants (id, slug, name, status, db_name, role_name, role_password, lease_owner, lease_expires_at)
		VALUES ($1, $2, $2, 'PROVISIONING', $3, $3, '\x00', $4, now() + interval '1 hour')`
	if _, err := control.Exec(q, id, slug, "x_"+slug, owner); err != nil {
		t.Fatal(err)
	}
	return id
}
