//go:build !unix

package main

// terminate asks worker p to stop. Without SIGTERM (Windows), closing its
// stdin has the same effect: it closes its Client gracefully and exits.
func terminate(p *proc) error { return p.stdin.Close() }
