package link

import "sync"

// Serial runs functions one at a time, in order, on a goroutine that
// exists only while there is work (a follower's one-way calls run in the
// order they arrived, without blocking the reader for long: the reader
// runs one itself when nothing else waits, see claim). The zero value is
// ready to use.
//
// Concurrency: safe for concurrent use; its lock is a leaf.
type Serial struct {
	mu      sync.Mutex
	q       []func()
	running bool
	wg      sync.WaitGroup
}

// claim reports whether nothing runs or waits; the caller then runs its
// function itself and calls run afterwards, as the goroutine would.
func (s *Serial) claim() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running || len(s.q) > 0 {
		return false
	}
	s.running = true
	s.wg.Add(1)
	return true
}

// Do runs f after every function given before it.
func (s *Serial) Do(f func()) {
	s.mu.Lock()
	s.q = append(s.q, f)
	if !s.running {
		s.running = true
		s.wg.Add(1)
		go s.run()
	}
	s.mu.Unlock()
}

func (s *Serial) run() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		if len(s.q) == 0 {
			s.running = false
			s.mu.Unlock()
			return
		}
		f := s.q[0]
		s.q[0] = nil
		s.q = s.q[1:]
		s.mu.Unlock()
		f()
	}
}

// Wait waits until nothing runs.
func (s *Serial) Wait() { s.wg.Wait() }

// Len returns the number of functions waiting.
func (s *Serial) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.q)
}

// Busy reports whether a function runs or waits.
func (s *Serial) Busy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running || len(s.q) > 0
}

// Drop forgets the functions still waiting (their caller left); one that
// runs goes on.
func (s *Serial) Drop() {
	s.mu.Lock()
	clear(s.q)
	s.q = s.q[:0]
	s.mu.Unlock()
}
