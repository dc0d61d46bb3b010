//go:build !unix

package link

import "net"

// directWriter returns nil: outside unix every frame goes through the
// wire's writer goroutine.
func directWriter(net.Conn) (write func([]byte) (int, error), writev func(a, b []byte) (int, error)) {
	return nil, nil
}
