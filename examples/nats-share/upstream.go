package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/nats-io/nats.go"
)

// The channel the workers share, and what crosses it.
const (
	channel     = "nats-share"
	tickSubject = "demo.ticks"
	// infoSubject is answered by the NATS server itself (JetStream's
	// account info), so the request/reply calls need no other client.
	infoSubject = "$JS.API.INFO"
)

// subscription is the registration of a Subscribe: a NATS subject.
type subscription struct {
	Subject string `json:"subject"`
}

// message is a NATS message as pushed to the subscribers.
type message struct {
	Subject string `json:"subject"`
	Data    []byte `json:"data"`
}

// request is the argument of the "request" method.
type request struct {
	Subject string `json:"subject"`
	Data    []byte `json:"data"`
}

// connName names the leader's NATS connection after its process, so the
// server's connection list shows who holds it.
func connName(pid int) string { return fmt.Sprintf("nats-share leader pid %d", pid) }

// natsFactory is the real client: one nats.go connection, built only by
// the leader (once per leadership term). What followers may use is what
// the Service declares:
//
//   - Subscribe / Unsubscribe: one NATS subscription per subject for the
//     whole host, whose messages the leader pushes to every subscriber;
//   - "request": nc.Request, a request/reply round trip through NATS;
//   - "send": nc.Publish, a one-off message. (cluster's own Publish is for
//     state that must survive a failover: it is sent again to every new
//     leader, which is not what a stream of messages wants.)
func natsFactory(url string) cluster.Factory {
	return func(ctx context.Context, emit cluster.Emit) (*cluster.Service, error) {
		nc, err := nats.Connect(url,
			nats.Name(connName(os.Getpid())),
			nats.Timeout(5*time.Second),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { emit("nats disconnected", err) }),
			nats.ReconnectHandler(func(*nats.Conn) { emit("nats reconnected", nil) }),
		)
		if err != nil {
			return nil, fmt.Errorf("connect to NATS at %s: %w", url, err)
		}
		var mu sync.Mutex
		subs := map[string]*nats.Subscription{}
		return &cluster.Service{
			Subscribe: func(reg cluster.Reg, push func(any)) error {
				var s subscription
				if err := reg.Decode(&s); err != nil {
					return err
				}
				sub, err := nc.Subscribe(s.Subject, func(m *nats.Msg) {
					push(message{Subject: m.Subject, Data: m.Data})
				})
				if err != nil {
					return fmt.Errorf("subscribe %q: %w", s.Subject, err)
				}
				mu.Lock()
				subs[reg.Key()] = sub
				mu.Unlock()
				// Make sure the server has the subscription before a
				// message is published after it by anyone.
				return nc.Flush()
			},
			Unsubscribe: func(reg cluster.Reg) error {
				mu.Lock()
				sub := subs[reg.Key()]
				delete(subs, reg.Key())
				mu.Unlock()
				if sub == nil {
					return nil
				}
				return sub.Unsubscribe()
			},
			Methods: map[string]cluster.Handler{
				"request": cluster.Method(func(ctx context.Context, r request) ([]byte, error) {
					m, err := nc.RequestWithContext(ctx, r.Subject, r.Data)
					if err != nil {
						return nil, fmt.Errorf("request %q: %w", r.Subject, err)
					}
					return m.Data, nil
				}),
				"send": cluster.Action(func(ctx context.Context, m message) error {
					if m.Subject == "" {
						return errors.New("send: empty subject")
					}
					if err := nc.Publish(m.Subject, m.Data); err != nil {
						return err
					}
					return nc.FlushWithContext(ctx)
				}),
			},
			Close: func(context.Context) error {
				nc.Close()
				return nil
			},
		}, nil
	}
}
