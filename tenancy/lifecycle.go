package tenancy

import "fmt"

// lifecycle names one tenant operation and its steps, in order. Each step
// is followed by a boundary "<op>.after-<step>", and every operation starts
// with "<op>.start". This table is the only list of boundaries: failpoints
// name them, the fault tests iterate Boundaries, and crossing a boundary
// missing here is an error, so a new step cannot be left out of either.
type lifecycle struct {
	op    string
	steps []string
}

var lifecycles = []lifecycle{
	{"create", []string{"spare", "role", "database", "privileges", "migrate", "owner"}},
	{"delete", []string{"database", "role"}},
	{"suspend", []string{"status"}},
	{"resume", []string{"status"}},
	// deleteTenant without purge: the tenant becomes DELETED (Registry)…
	{"retire", []string{"status"}},
	// …then unreachable (Provisioner), until restored or purged
	{"lock", []string{"role", "database"}},
	// restoreTenant: DELETED to PROVISIONING (Registry); the create steps
	// then make it reachable again
	{"restore", []string{"status"}},
	// moveTenant: MOVING (Registry), then a copy on the new server is
	// built and filled, the tenant switched to it, the old copy dropped
	// (Provisioner, move.go)…
	{"move", []string{"role", "database", "privileges", "migrate", "freeze", "copy", "switch", "cleanup"}},
	// …or, when that failed before the switch, undone
	{"unmove", []string{"drop", "thaw"}},
}

// Boundaries returns the name of every step boundary of the tenant
// lifecycle, in order: "create.start", "create.after-role", …,
// "delete.start", …, "suspend.start", "suspend.after-status",
// "resume.start", "resume.after-status". A Failpoint is called with these
// names. create, delete, lock, move and unmove run in the provisioner; suspend, resume,
// retire and restore run synchronously in the Registry call.
func Boundaries() []string {
	var out []string
	for _, l := range lifecycles {
		out = append(out, l.op+".start")
		for _, s := range l.steps {
			out = append(out, l.op+".after-"+s)
		}
	}
	return out
}

// stepsOf returns the steps of operation op.
func stepsOf(op string) []string {
	for _, l := range lifecycles {
		if l.op == op {
			return l.steps
		}
	}
	return nil
}

// knownBoundary reports whether name is in Boundaries.
func knownBoundary(name string) bool {
	for _, b := range Boundaries() {
		if b == name {
			return true
		}
	}
	return false
}

// Failpoint is called at every step boundary with its name (see
// Boundaries). A non-nil error fails the step there; the function may also
// end the process. Tests use it to inject faults; it is nil in normal
// operation.
type Failpoint func(boundary string) error

// check calls f at boundary. It returns an error when boundary is not in
// the lifecycle table (a programming error every test run catches) or
// when f injects a fault.
func (f Failpoint) check(boundary string) error {
	if !knownBoundary(boundary) {
		return fmt.Errorf("tenancy: boundary %q is missing from the lifecycle table", boundary)
	}
	if f == nil {
		return nil
	}
	if err := f(boundary); err != nil {
		return &stepError{step: boundary, err: fmt.Errorf("failpoint: %w", err)}
	}
	return nil
}
