package cluster

// CloseListenerForTest closes the listener of the channel c leads, from
// under it, as Node's test "server close" does (CC-017). It reports false
// if c does not lead.
func CloseListenerForTest(c *Client) bool {
	c.mu.Lock()
	li, ok := c.cur.inner.(*localInner)
	c.mu.Unlock()
	if !ok || li.lt == nil {
		return false
	}
	li.lt.srv.ln.Close()
	return true
}
