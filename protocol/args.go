package protocol

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Invoke arguments travel in the app object of an invoke packet, framed as
// Node frames them: for each argument a 4-byte big-endian length, then the
// argument's codec bytes. The conn object's argLength says how many there
// are; with none the app object is absent.

// AppendArg encodes v with c and appends it to dst as one framed invoke
// argument. The length is written in place after encoding, so the codec's
// bytes are never copied. On error dst is returned unchanged (truncated to
// its original length).
func AppendArg(dst []byte, c Codec, v any) ([]byte, error) {
	start := len(dst)
	out, err := c.Append(append(dst, 0, 0, 0, 0), v)
	if err != nil {
		return dst[:start], fmt.Errorf("protocol: encode invoke argument (%s codec): %w", c.Name(), err)
	}
	n := len(out) - start - 4
	if n > math.MaxInt32 {
		return out[:start], fmt.Errorf("%w: invoke argument of %d bytes does not fit its 4-byte length", ErrTooLarge, n)
	}
	binary.BigEndian.PutUint32(out[start:], uint32(n))
	return out, nil
}

// NextArg splits the first framed argument off app: arg is its codec bytes
// and rest what follows. It allocates nothing; arg aliases app.
//
//	for i := 0; i < c.ArgLength; i++ {
//		arg, app, err = protocol.NextArg(app)
//		...
//	}
//	// then len(app) must be 0
func NextArg(app []byte) (arg, rest []byte, err error) {
	if len(app) < 4 {
		return nil, app, fmt.Errorf("%w: length prefix needs 4 bytes, %d left", ErrArgs, len(app))
	}
	n := binary.BigEndian.Uint32(app)
	if uint64(n) > uint64(len(app)-4) {
		return nil, app, fmt.Errorf("%w: argument length %d exceeds the %d bytes left", ErrArgs, n, len(app)-4)
	}
	end := 4 + int(n)
	return app[4:end:end], app[end:], nil
}

// SplitArgs splits an invoke's app object into exactly n arguments (n is
// the conn object's argLength). The arguments alias app. The error wraps
// ErrArgs when the framing does not give exactly n arguments that use all
// of app: a length past the end, missing arguments, trailing bytes, or
// data when n is 0. Its single allocation is the result slice, and only
// after n has been checked against len(app).
func SplitArgs(app []byte, n int) ([][]byte, error) {
	if n < 0 || n > len(app)/4 {
		return nil, fmt.Errorf("%w: argLength %d with an app object of %d bytes (each argument takes at least 4)", ErrArgs, n, len(app))
	}
	args := make([][]byte, n)
	for i := range args {
		var err error
		if args[i], app, err = NextArg(app); err != nil {
			return nil, fmt.Errorf("argument %d of %d: %w", i+1, n, err)
		}
	}
	if len(app) != 0 {
		return nil, fmt.Errorf("%w: %d bytes left after the %d arguments of argLength", ErrArgs, len(app), n)
	}
	return args, nil
}
