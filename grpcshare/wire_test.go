package grpcshare

import (
	"reflect"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"
)

// The envelopes round-trip, whatever their fields hold (binary metadata,
// empty values, several values per key).
func TestEnvelopeRoundTrip(t *testing.T) {
	req := request{method: "/p.S/M", msg: []byte{0, 1, 2}, md: metadata.MD{"a": {"1", "2"}, "b-bin": {"\x00\xff"}, "e": {""}},
		timeout: time.Second, ready: 1, subtype: "json", comp: "gzip", id: 1 << 60, max: 64, hold: 5 * time.Second, idle: time.Minute, client: true}
	var got request
	if err := got.unmarshal(req.marshal()); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, req) {
		t.Errorf("request %+v, want %+v", got, req)
	}
	resp := response{msgs: [][]byte{{1}, {}, {2, 3}}, header: metadata.MD{"h": {"x"}}, hasHeader: true,
		trailer: metadata.MD{"t-bin": {"\x01"}}, done: true, status: []byte{8, 3}, id: 7, peer: "127.0.0.1:1", network: "tcp", eof: true}
	var gotResp response
	if err := gotResp.unmarshal(resp.marshal()); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotResp, resp) {
		t.Errorf("response %+v, want %+v", gotResp, resp)
	}
	// A bare OK end (empty status) is still an end.
	var ok response
	if err := ok.unmarshal((&response{done: true, status: []byte{}}).marshal()); err != nil || !ok.done {
		t.Errorf("bare OK end: done %v, %v", ok.done, err)
	}
}

// Whatever a peer sends, decoding returns an error or an envelope, never
// a panic; what decodes encodes and decodes again to the same.
func FuzzEnvelope(f *testing.F) {
	f.Add((&request{method: "/p.S/M", msg: []byte("x"), md: metadata.MD{"k": {"v"}}}).marshal())
	f.Add((&response{msgs: [][]byte{[]byte("m")}, done: true, status: []byte{8, 5}}).marshal())
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{0x1a, 0x02, 0x0a})
	f.Fuzz(func(t *testing.T, b []byte) {
		var req request
		if req.unmarshal(b) == nil {
			var again request
			if err := again.unmarshal(req.marshal()); err != nil {
				t.Fatalf("re-decoding a request: %v", err)
			}
		}
		var resp response
		if resp.unmarshal(b) == nil {
			var again response
			if err := again.unmarshal(resp.marshal()); err != nil {
				t.Fatalf("re-decoding a response: %v", err)
			}
		}
	})
}
