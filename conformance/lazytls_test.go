package conformance_test

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/tcp"
)

// lazyTLS is TLS over the tcp transport as crypto/tls does it by default:
// the server's half of the handshake runs on the accepted conn's first
// Read or Write. Its Dial therefore waits for the acceptor's I/O, which
// the transport contract forbids; the capability probe must say so.
type lazyTLS struct {
	transport.Transport
	server, client *tls.Config
}

func newLazyTLS(tb testing.TB) transport.Transport {
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lazy"}, DNSNames: []string{"lazy"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return lazyTLS{
		Transport: tcp.New(tcp.DefaultConfig()),
		server:    &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		client:    &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots, ServerName: "lazy"},
	}
}

func (tr lazyTLS) Name() string { return "lazy-tls" }

func (tr lazyTLS) Listen(ctx context.Context, addr string) (net.Listener, error) {
	l, err := tr.Transport.Listen(ctx, addr)
	if err != nil {
		return nil, err
	}
	return tls.NewListener(l, tr.server), nil // handshakes lazily
}

func (tr lazyTLS) Dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := tr.Transport.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(c, tr.client)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}
