package protocol

import (
	"errors"
	"math"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestArgsFraming(t *testing.T) {
	var app []byte
	var err error
	for _, v := range []any{"abc", 42, map[string]any{"a": []any{1.5}}, nil, Raw("raw")} {
		app, err = AppendArg(app, JSON, v)
		require.NoError(t, err)
	}
	want := "\x00\x00\x00\x05\"abc\"" + "\x00\x00\x00\x0242" + "\x00\x00\x00\x0b{\"a\":[1.5]}" + "\x00\x00\x00\x04null" + "\x00\x00\x00\x03raw"
	assert.Equal(t, want, string(app))

	args, err := SplitArgs(app, 5)
	require.NoError(t, err)
	assert.Equal(t, []string{`"abc"`, `42`, `{"a":[1.5]}`, `null`, `raw`}, asStrings(args))
	for _, a := range args {
		assert.Equal(t, len(a), cap(a), "args cannot be appended into the next one")
	}

	rest := app
	for i := 0; i < 5; i++ {
		var arg []byte
		arg, rest, err = NextArg(rest)
		require.NoError(t, err)
		assert.Equal(t, string(args[i]), string(arg))
	}
	assert.Empty(t, rest)

	empty, err := SplitArgs(nil, 0)
	require.NoError(t, err)
	assert.Empty(t, empty)
}

func asStrings(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b)
	}
	return out
}

// binaryCodec writes bytes no JSON codec would: a NUL, bytes that look
// like a length prefix, 0xff, a lone quote, and nothing at all for "".
type binaryCodec struct{}

func (binaryCodec) Name() string { return "binary-test" }
func (binaryCodec) Append(dst []byte, v any) ([]byte, error) {
	return append(dst, v.(string)...), nil
}
func (binaryCodec) Decode(data []byte, v any) error {
	*v.(*string) = string(data)
	return nil
}

// TestArgsFramingBinary: the framing carries lengths, never codec text, so
// a binary codec's bytes (empty ones too) come back exactly.
func TestArgsFramingBinary(t *testing.T) {
	args := []string{"\x00\x00\x00\x07", "", "\xff\x00\"", "\x00", "\x00\x00\x00\x00\x00\x00\x00\x00"}
	var app []byte
	for _, a := range args {
		var err error
		app, err = AppendArg(app, binaryCodec{}, a)
		require.NoError(t, err)
	}
	got, err := SplitArgs(app, len(args))
	require.NoError(t, err)
	require.Len(t, got, len(args))
	for i, a := range args {
		var s string
		require.NoError(t, binaryCodec{}.Decode(got[i], &s))
		assert.Equal(t, a, s, "argument %d", i)
	}
	_, err = SplitArgs(app, len(args)-1)
	assert.ErrorIs(t, err, ErrArgs, "trailing argument")
}

func TestSplitArgsErrors(t *testing.T) {
	one := []byte("\x00\x00\x00\x02ab")
	for _, c := range []struct {
		name string
		app  []byte
		n    int
		says string
	}{
		{"negative", one, -1, "argLength -1"},
		{"more args than bytes allow", one, 2, "argLength 2 with an app object of 6 bytes"},
		{"huge argLength", one, math.MaxInt32, "argLength 2147483647"},
		{"data with no args", one, 0, "6 bytes left after the 0 arguments"},
		{"trailing bytes", append(one, 'x'), 1, "1 bytes left after the 1 arguments"},
		{"length past end", []byte("\x00\x00\x00\x09ab"), 1, "argument 1 of 1: protocol: malformed invoke arguments: argument length 9 exceeds the 2 bytes left"},
		{"length 4 GB", []byte("\xff\xff\xff\xffabcd"), 2, "argument 1 of 2"},
		{"second arg short", append(one, 0, 0, 0, 5, 'x'), 2, "argument 2 of 2"},
	} {
		_, err := SplitArgs(c.app, c.n)
		require.ErrorIs(t, err, ErrArgs, c.name)
		assert.Contains(t, err.Error(), c.says, c.name)
	}
	_, _, err := NextArg([]byte{0, 0})
	assert.ErrorIs(t, err, ErrArgs)
	assert.ErrorContains(t, err, "length prefix needs 4 bytes, 2 left")
}

type failCodec struct{}

func (failCodec) Name() string { return "fail" }
func (failCodec) Append(dst []byte, v any) ([]byte, error) {
	return append(dst, "partial"...), errors.New("cannot encode")
}
func (failCodec) Decode([]byte, any) error { return nil }

func TestAppendArgError(t *testing.T) {
	dst := []byte("keep")
	out, err := AppendArg(dst, failCodec{}, 1)
	assert.ErrorContains(t, err, "protocol: encode invoke argument (fail codec): cannot encode")
	assert.Equal(t, "keep", string(out))

	out, err = AppendArg(dst, JSON, make(chan int))
	assert.Error(t, err)
	assert.Equal(t, "keep", string(out))
}

func TestArgsAllocs(t *testing.T) {
	app, err := AppendArg(nil, JSON, Raw("x"))
	require.NoError(t, err)
	app, err = AppendArg(app, JSON, Raw("yz"))
	require.NoError(t, err)
	assert.Zero(t, testing.AllocsPerRun(100, func() {
		a, rest, _ := NextArg(app)
		b, _, _ := NextArg(rest)
		if len(a)+len(b) != 3 {
			t.Fatal("bad split")
		}
	}))
	buf := make([]byte, 0, 64)
	arg := any(Raw("abc"))
	assert.Zero(t, testing.AllocsPerRun(100, func() {
		buf, _ = AppendArg(buf[:0], JSON, arg)
	}), "AppendArg of a Raw into a reused buffer")
}

func TestIDs(t *testing.T) {
	var g IDs
	assert.Equal(t, []int64{1, 2, 3}, []int64{g.Next(), g.Next(), g.Next()})

	// Node: after the counter reaches 2^30-1 the next id is 1.
	g.n.Store(MaxID - 2)
	assert.Equal(t, []int64{MaxID - 1, MaxID, 1, 2}, []int64{g.Next(), g.Next(), g.Next(), g.Next()})
	assert.Equal(t, int64(1<<30-1), int64(MaxID))

	// Concurrent callers get distinct ids.
	var h IDs
	const workers, each = 8, 5000
	ids := make([][]int64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				ids[w] = append(ids[w], h.Next())
			}
		}()
	}
	wg.Wait()
	seen := map[int64]bool{}
	for _, l := range ids {
		for _, id := range l {
			require.False(t, seen[id], "id %d twice", id)
			require.True(t, id >= 1 && id <= MaxID)
			seen[id] = true
		}
	}
	assert.Len(t, seen, workers*each)
	assert.True(t, seen[1] && seen[workers*each], "ids are 1..n without gaps")
}
