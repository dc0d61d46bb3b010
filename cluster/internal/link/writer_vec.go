//go:build darwin || linux || openbsd

package link

import "golang.org/x/sys/unix"

// vectored returns the socket's writev, which never blocks either.
func (sw *socketWriter) vectored() func(a, b []byte) (int, error) {
	sw.dov = sw.writev
	return sw.Writev
}

func (sw *socketWriter) writev(fd uintptr) bool {
	for {
		sw.n, sw.err = unix.Writev(int(fd), sw.iov[:])
		if sw.err != unix.EINTR {
			return true // done, even on EAGAIN: never wait for the socket
		}
	}
}

// Writev writes a and then b, what the socket takes at once, in one
// system call, and reports how much of the two it took.
func (sw *socketWriter) Writev(a, b []byte) (int, error) {
	sw.iov = [2][]byte{a, b}
	err := sw.rc.Write(sw.dov)
	sw.iov = [2][]byte{}
	return sw.result(err)
}
