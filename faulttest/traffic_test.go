package faulttest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// outcome tallies the answers a load generator got.
type outcome struct {
	mu      sync.Mutex
	byCode  map[string]int // "ok" for data without errors
	bad     []string       // answers the test does not accept, for the failure message
	latency []time.Duration
}

func newOutcome() *outcome { return &outcome{byCode: map[string]int{}} }

func (o *outcome) add(key string, d time.Duration, bad string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.byCode[key]++
	o.latency = append(o.latency, d)
	if bad != "" && len(o.bad) < 10 {
		o.bad = append(o.bad, bad)
	}
}

// count returns the answers recorded under key.
func (o *outcome) count(key string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.byCode[key]
}

func (o *outcome) total() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, c := range o.byCode {
		n += c
	}
	return n
}

// percentile returns the p-th percentile of the latencies recorded.
func (o *outcome) percentile(p float64) time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.latency) == 0 {
		return 0
	}
	l := slices.Clone(o.latency)
	slices.Sort(l)
	return l[min(len(l)-1, int(float64(len(l))*p))]
}

// TestDeleteUnderTraffic deletes a tenant while 100 requests are in
// flight on it: every request is answered with data or TENANT_NOT_FOUND
// (never a 500, INTERNAL_SERVER_ERROR or SERVICE_UNAVAILABLE), then the
// tenant is gone with no orphan, and another tenant's requests keep
// working at their usual latency. Every request reads the tenant's
// database (markerQuery's users), which PostgreSQL's own counts confirm.
func TestDeleteUnderTraffic(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, nil)
	s := d.start(t, nil)
	s.createReady(t, "victim")
	s.createReady(t, "bystander")
	victimToken, bystanderToken := s.login(t, "victim"), s.login(t, "bystander")
	victimDB, _ := d.tenantNames(t, "victim")
	bystanderDB, _ := d.tenantNames(t, "bystander")
	commitsBefore := d.commitsOf(t, []string{victimDB, bystanderDB})

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	victim, bystander := newOutcome(), newOutcome()
	var deleting atomic.Bool
	bystanderDuring := newOutcome()
	var warm sync.WaitGroup
	var wg sync.WaitGroup
	const inFlight = 100
	warm.Add(inFlight)
	for range inFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				if n == 3 {
					warm.Done()
				}
				r, err := s.gql(ctx, tenantHost("victim"), victimToken, markerQuery, nil)
				switch {
				case ctx.Err() != nil:
					if n < 3 {
						warm.Done()
					}
					return
				case err != nil:
					victim.add("transport", 0, err.Error())
				case r.OK():
					bad := ""
					if merr := checkMarker("victim", r); merr != nil {
						bad = merr.Error()
					}
					victim.add("ok", r.Latency, bad)
				case allCodes(r, "TENANT_NOT_FOUND") && (r.Status == 404 || r.Status == 200):
					victim.add("TENANT_NOT_FOUND", r.Latency, "")
				default:
					victim.add(fmt.Sprintf("HTTP %d %v", r.Status, r.Codes()), r.Latency, r.Raw)
				}
			}
		}()
	}
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				r, err := s.gql(ctx, tenantHost("bystander"), bystanderToken, markerQuery, nil)
				if ctx.Err() != nil {
					return
				}
				out := bystander
				if deleting.Load() {
					out = bystanderDuring
				}
				switch {
				case err != nil:
					out.add("transport", 0, err.Error())
				case !r.OK():
					out.add(fmt.Sprintf("HTTP %d %v", r.Status, r.Codes()), r.Latency, r.Raw)
				case checkMarker("bystander", r) != nil || field(r.Data, "viewer", "email") != ownerEmail("bystander"):
					out.add("wrong tenant", r.Latency, r.Raw)
				default:
					out.add("ok", r.Latency, "")
				}
			}
		}()
	}

	warm.Wait() // every victim worker has had three answers
	// the answers so far came from the victim's database, and its pool
	// holds connections there as the delete begins
	d.waitCommits(t, "victim before the delete", []string{victimDB}, commitsBefore, int64(victim.count("ok")))
	var sessions int
	if err := d.admin.Get(&sessions, `SELECT count(*) FROM pg_stat_activity WHERE datname = $1`, victimDB); err != nil || sessions == 0 {
		t.Fatalf("the victim's database has %d sessions under load (%v)", sessions, err)
	}
	deleting.Store(true)
	began := time.Now()
	s.mustPlatform(t, "deleteTenant", "victim")
	s.waitStatus(t, "victim", "GONE", 30*time.Second)
	took := time.Since(began)
	time.Sleep(300 * time.Millisecond) // and a little traffic on the gone host
	deleting.Store(false)
	stop()
	wg.Wait()

	t.Logf("victim: %d answers %v; delete took %s", victim.total(), victim.byCode, took.Round(time.Millisecond))
	t.Logf("bystander: before p50 %s p99 %s (%d); during delete p50 %s p99 %s max %s (%d)",
		bystander.percentile(.5), bystander.percentile(.99), bystander.total(),
		bystanderDuring.percentile(.5), bystanderDuring.percentile(.99), bystanderDuring.percentile(1), bystanderDuring.total())
	if len(victim.bad) > 0 || len(victim.byCode) > 2 {
		t.Errorf("victim got answers other than data or TENANT_NOT_FOUND: %v\n%v", victim.byCode, victim.bad)
	}
	if victim.byCode["TENANT_NOT_FOUND"] == 0 || victim.byCode["ok"] == 0 {
		t.Errorf("victim answers %v: want both data and TENANT_NOT_FOUND", victim.byCode)
	}
	for _, o := range []*outcome{bystander, bystanderDuring} {
		if len(o.byCode) != 1 || o.byCode["ok"] == 0 {
			t.Errorf("bystander answers %v: %v", o.byCode, o.bad)
		}
	}
	if p := bystanderDuring.percentile(.99); p > 2*time.Second {
		t.Errorf("bystander p99 during the delete is %s", p)
	}
	d.waitCommits(t, "bystander", []string{bystanderDB}, commitsBefore, int64(bystander.count("ok")+bystanderDuring.count("ok")))
	if dbs, roles := d.objects(t); len(dbs) != 1 || len(roles) != 1 {
		t.Errorf("after the delete: databases %v, roles %v (want only the bystander's)", dbs, roles)
	}
	d.mustDoctorClean(t)
}

// allCodes reports whether r has errors and every one has code.
func allCodes(r response, code string) bool {
	if len(r.Errors) == 0 {
		return false
	}
	for _, c := range r.Codes() {
		if c != code {
			return false
		}
	}
	return true
}
