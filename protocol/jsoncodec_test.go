package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type marshalingError struct{}

func (marshalingError) Error() string                { return "marshaling error" }
func (marshalingError) MarshalJSON() ([]byte, error) { return []byte(`"custom"`), nil }

func TestJSONCodecAppend(t *testing.T) {
	assert.Equal(t, "json", JSON.Name())
	for _, c := range []struct {
		v    any
		want string
	}{
		{nil, `null`},
		{Undefined, `null`},
		{[]any{1, Undefined}, `[1,null]`},
		{"<a&b>", `"<a&b>"`},
		{map[string]any{"b": 1, "a": []byte{1, 2}}, `{"a":"AQI=","b":1}`},
		{Raw(`{"pre":"encoded"}`), `{"pre":"encoded"}`},
		{errors.New("boom"), `{"name":"Error","message":"boom"}`},
		{fmt.Errorf("wrapped: %w", &RemoteError{Name: "TypeError", Message: "bad", Code: "E_BAD", Stack: "at x"}),
			`{"name":"TypeError","message":"bad","code":"E_BAD","stack":"at x"}`},
		{marshalingError{}, `"custom"`},
		{(*RemoteError)(nil), `null`},
		{struct {
			A int `json:"a,omitempty"`
			B string
		}{B: "x"}, `{"B":"x"}`},
	} {
		out, err := JSON.Append([]byte("~"), c.v)
		require.NoError(t, err)
		assert.Equal(t, "~"+c.want, string(out), "%#v", c.v)
	}
	out, err := JSON.Append([]byte("~"), func() {})
	assert.ErrorContains(t, err, "protocol: json codec")
	assert.Equal(t, "~", string(out))
}

func TestJSONCodecDecode(t *testing.T) {
	var v any
	require.NoError(t, JSON.Decode([]byte(`{"n":1,"s":"x","l":[true,null]}`), &v))
	assert.Equal(t, map[string]any{"n": 1.0, "s": "x", "l": []any{true, nil}}, v)

	v = "not reset"
	require.NoError(t, JSON.Decode(nil, &v), "an absent app object is null")
	assert.Nil(t, v)

	src := []byte(`[1, 2]`)
	var raw Raw
	require.NoError(t, JSON.Decode(src, &raw))
	src[1] = 'X'
	assert.Equal(t, `[1, 2]`, string(raw), "Raw is a copy")

	var re RemoteError
	require.NoError(t, JSON.Decode([]byte(`{"name":"E","message":"m","code":"C","stack":"s"}`), &re))
	assert.Equal(t, RemoteError{Name: "E", Message: "m", Code: "C", Stack: "s"}, re)

	var err error
	require.NoError(t, JSON.Decode([]byte(`{"message":"m"}`), &err))
	var got *RemoteError
	require.ErrorAs(t, err, &got)
	assert.Equal(t, "Error: m", err.Error())
	require.NoError(t, JSON.Decode([]byte(`null`), &err))
	assert.NoError(t, err)

	// A Go error survives the trip as a RemoteError.
	enc, encErr := JSON.Append(nil, &RemoteError{Name: "RangeError", Message: "too big", Code: "E_RANGE"})
	require.NoError(t, encErr)
	require.NoError(t, JSON.Decode(enc, &err))
	assert.Equal(t, "RangeError: too big (code E_RANGE)", err.Error())

	var n int
	decErr := JSON.Decode([]byte(`{`), &n)
	var syn *json.SyntaxError
	assert.ErrorAs(t, decErr, &syn)
	assert.ErrorContains(t, decErr, "protocol: json codec: decode into *int")
}
