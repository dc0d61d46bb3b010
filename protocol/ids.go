package protocol

import "sync/atomic"

// MaxID is the largest request id: ids run 1 .. MaxID and wrap to 1, as
// Node's counter does (it stays below 2^30 so that the id always fits the
// JavaScript number Node turns the 8-byte field into).
const MaxID = 1<<30 - 1

// IDs generates request ids. The zero value is ready: its first id is 1.
//
// Concurrency: safe for concurrent use; Next is one atomic add.
type IDs struct {
	n atomic.Uint64 // ids handed out so far
}

// Next returns the next id in 1 .. MaxID, wrapping from MaxID to 1.
func (g *IDs) Next() int64 {
	return int64((g.n.Add(1)-1)%MaxID) + 1
}
