package edge

import (
	"context"
	"sync"
)

// wsDrain lets shutdown close the open websocket connections and wait for
// them. http.Server.Shutdown neither closes nor waits for hijacked
// connections, so without it a stopping server would drop its
// subscriptions without a close frame. Each connection's handler runs
// with a context that closing cancels; gqlgen then sends a close frame
// (1000) and the handler returns, and clients reconnect (to another
// replica, behind a load balancer).
type wsDrain struct {
	mu      sync.Mutex
	stopCtx context.Context
	stop    context.CancelFunc
	open    sync.WaitGroup
}

func newWSDrain() *wsDrain {
	d := &wsDrain{}
	d.stopCtx, d.stop = context.WithCancel(context.Background())
	return d
}

// enter registers a connection about to be served and returns its
// context (ended by closing or by parent) and the function to call when
// it is done; ok is false once closing has begun.
func (d *wsDrain) enter(parent context.Context) (ctx context.Context, done func(), ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopCtx.Err() != nil {
		return nil, nil, false
	}
	d.open.Add(1)
	ctx, cancel := context.WithCancel(parent)
	unhook := context.AfterFunc(d.stopCtx, cancel)
	return ctx, func() {
		unhook()
		cancel()
		d.open.Done()
	}, true
}

// closeAll ends every open connection, refuses new ones, and waits until
// their handlers have returned or ctx ends.
func (d *wsDrain) closeAll(ctx context.Context) error {
	d.mu.Lock()
	d.stop()
	d.mu.Unlock()
	finished := make(chan struct{})
	go func() {
		d.open.Wait()
		close(finished)
	}()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
