package transport

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// ContextError makes the error of a Dial (or of a handshake run within
// ctx) match ctx's error when ctx caused it, as Dial's contract asks:
// ctx ended, or ctx has a deadline and the error is the socket's own
// timeout. Go's connect waits with ctx's deadline set on the socket too,
// and when that fires a moment before ctx's timer, the error is
// os.ErrDeadlineExceeded ("i/o timeout") while ctx.Err() is still nil:
// that error does not match context.DeadlineExceeded. Other errors are
// returned as they are.
func ContextError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(err, cerr) {
			return err
		}
		return fmt.Errorf("%w: %w", cerr, err)
	}
	if _, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	return err
}
