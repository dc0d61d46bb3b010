//go:build unix && !(darwin || linux || openbsd)

package link

// vectored returns nil where golang.org/x/sys/unix has no Writev: a
// frame is then copied into the wire's buffer and written with write.
func (sw *socketWriter) vectored() func(a, b []byte) (int, error) { return nil }
