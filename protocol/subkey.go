package protocol

import "encoding/json"

// SubscriptionKeyPrefix starts every subscription key (Node's
// "$$inner$$__").
const SubscriptionKeyPrefix = "$$inner$$__"

// SubscriptionKey returns the key of the registration reg as Node computes
// it: SubscriptionKeyPrefix + JSON.stringify(reg). A reg received from a
// Node peer is already in that form and is used as is; any other JSON
// (say json.Marshal output, with sorted keys, \u003c escapes or 1.0) is
// first re-encoded as Node would (see NormalizeJSON), so Go and Node
// processes of one cluster agree on every key.
//
// A reg that is not valid JSON cannot come from Node (nor pass ParseConn);
// its key is the prefix plus its bytes unchanged.
func SubscriptionKey(reg json.RawMessage) string {
	buf := make([]byte, 0, len(SubscriptionKeyPrefix)+len(reg))
	buf = append(buf, SubscriptionKeyPrefix...)
	out, err := NormalizeJSON(buf, reg)
	if err != nil {
		return SubscriptionKeyPrefix + string(reg)
	}
	return string(out)
}
