package cluster

import (
	"context"
	"errors"
)

// Method adapts a typed function (a method value of the real client, say)
// to a Handler: the first argument is decoded into Req (a call without
// arguments gets Req's zero value; extra arguments are ignored) and the
// result is encoded from Resp.
//
//	Methods: map[string]cluster.Handler{"getData": cluster.Method(rc.GetData)}
func Method[Req, Resp any](f func(ctx context.Context, req Req) (Resp, error)) Handler {
	return func(ctx context.Context, args Args) (any, error) {
		var req Req
		if args.Len() > 0 {
			if err := args.Decode(0, &req); err != nil {
				return nil, &Error{Op: "invoke", Kind: ErrProtocol, Err: err}
			}
		}
		return f(ctx, req)
	}
}

// Action adapts a typed function without result (typically the target of
// InvokeOneway).
func Action[Req any](f func(ctx context.Context, req Req) error) Handler {
	return Method(func(ctx context.Context, req Req) (struct{}, error) { return struct{}{}, f(ctx, req) })
}

// Call invokes method with args and decodes the result into a Resp.
//
//	n, err := cluster.Call[int](ctx, c, "add", 1, 2)
func Call[Resp any](ctx context.Context, c *Client, method string, args ...any) (Resp, error) {
	var out Resp
	res, err := c.Invoke(ctx, method, args...)
	if err != nil {
		return out, err
	}
	if err := res.Decode(&out); err != nil {
		return out, &Error{Op: "invoke", Channel: c.name, Method: method, Kind: ErrProtocol, Err: err}
	}
	return out, nil
}

// Bind returns a typed function that invokes method with one argument:
// the remote counterpart of Method.
//
//	getData := cluster.Bind[Query, Data](c, "getData")
//	d, err := getData(ctx, Query{ID: "x"})
func Bind[Req, Resp any](c *Client, method string) func(ctx context.Context, req Req) (Resp, error) {
	return func(ctx context.Context, req Req) (Resp, error) { return Call[Resp](ctx, c, method, req) }
}

// SubscribeTyped subscribes with a listener that receives values decoded
// into T. A value that does not decode into T is reported as an EventError
// (ErrProtocol) and not delivered.
func SubscribeTyped[T any](c *Client, reg any, fn func(T), opts ...SubscribeOption) (cancel func(), err error) {
	if fn == nil {
		return c.Subscribe(reg, nil, opts...)
	}
	return c.Subscribe(reg, func(v Value) {
		var x T
		if err := v.Decode(&x); err != nil {
			c.report(c.curNum(), c.Role(), &Error{Op: "deliver", Channel: c.name, Kind: ErrProtocol,
				Err: errors.Join(errors.New("value does not decode into the listener's type"), err)})
			return
		}
		fn(x)
	}, opts...)
}
