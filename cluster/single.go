package cluster

import (
	"context"
	"log/slog"
	"sync"
)

// singles is the process's table of single-mode real clients: one per
// name, shared by every single-mode Client of that name and closed with
// the last of them; it binds no address. The first Client of a name
// decides its factory and options (codec, broadcast).
var singles = singleTable{m: make(map[string]*singleEntry)}

type singleTable struct {
	mu sync.Mutex
	m  map[string]*singleEntry
}

type singleEntry struct {
	h    *host
	refs int
}

// acquire returns the shared host of c's name, starting it if c is the
// first user.
func (st *singleTable) acquire(c *Client) *host {
	st.mu.Lock()
	defer st.mu.Unlock()
	e := st.m[c.name]
	if e == nil {
		log := c.log.With(slog.String("role", RoleSingle.String()))
		e = &singleEntry{h: newHost(c.name, &c.cfg, log)}
		st.m[c.name] = e
		e.h.start(c.factory)
	}
	e.refs++
	e.h.attach(c)
	return e.h
}

// release drops c's reference; the last one closes the real client.
func (st *singleTable) release(c *Client, h *host, ctx context.Context) error {
	h.detach(c)
	st.mu.Lock()
	e := st.m[c.name]
	if e == nil || e.h != h {
		st.mu.Unlock()
		return nil
	}
	e.refs--
	last := e.refs == 0
	if last {
		delete(st.m, c.name)
	}
	st.mu.Unlock()
	if !last {
		return nil
	}
	c.log.Debug("single-mode real client closed", slog.String("role", RoleSingle.String()))
	return h.close(ctx)
}
