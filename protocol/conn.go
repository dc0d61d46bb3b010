package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// Conn object kinds (the "type" field), as Node's cluster-client names
// them. See spec.md for who sends each and what answers it.
const (
	KindRegisterChannel    = "register_channel"     // F→L request: join a channel
	KindRegisterChannelRes = "register_channel_res" // L→F response: app object says success or error
	KindSubscribe          = "subscribe"            // F→L request, no response
	KindUnsubscribe        = "unSubscribe"          // F→L request, no response
	KindSubscribeResult    = "subscribe_result"     // L→F request: a pushed value
	KindSubscribeResultRes = "subscribe_result_res" // F→L response: push acknowledged
	KindInvoke             = "invoke"               // F→L request: call a method (no response when oneway)
	KindInvokeResult       = "invoke_result"        // L→F response: result or error
	KindHeartbeat          = "heartbeat"            // F→L request
	KindHeartbeatRes       = "heartbeat_res"        // L→F response
)

// Go-only kinds: extensions Node peers never send, sent only to a peer
// that showed it is Go (spec.md, section 7).
const (
	KindRegisterConfirm    = "register_confirm"     // F→L request: the follower's proof, after it checked the leader's
	KindRegisterConfirmRes = "register_confirm_res" // L→F response: admitted (app object {success:true}) or refused
	KindStatus             = "cluster_status"       // request from an observer: the leader's status, or a listing before registration
	KindStatusRes          = "cluster_status_res"   // L→F response: the status (app object always JSON)
	KindInvokeCancel       = "invoke_cancel"        // F→L request, no response: the caller of the invoke with this header id gave up
	KindLeaving            = "leaving"              // L→F request: the leader is closing and freed the address; elect the next one
	KindLeavingRes         = "leaving_res"          // F→L response: the follower sends nothing more on this connection
)

// ConnObject is a decoded conn object: the JSON that says what a packet is.
//
// Only the fields of its kind are meaningful; ParseConn fills a field only
// for the kinds that carry it (a "method" in a subscribe goes to Ext), and
// AppendConn writes only the fields of the kind. Every other member is an
// extension kept in Ext, so a conn object round-trips even when it comes
// from a newer peer.
//
// A ConnObject is a plain value; it holds no reference to the bytes it was
// parsed from.
type ConnObject struct {
	Type        string
	ChannelName string                     // register_channel
	Key         string                     // subscribe, unSubscribe, subscribe_result
	Reg         json.RawMessage            // subscribe, unSubscribe: the registration's JSON bytes as received
	Method      string                     // invoke
	ArgLength   int                        // invoke
	Oneway      bool                       // invoke
	Success     bool                       // invoke_result
	Ext         map[string]json.RawMessage // every other field (extensions; Go-only peers add auth fields here)
}

// connField identifies a typed field of ConnObject.
type connField uint8

const (
	fieldExt connField = iota
	fieldType
	fieldChannelName
	fieldKey
	fieldReg
	fieldMethod
	fieldArgLength
	fieldOneway
	fieldSuccess
)

// fieldOf says which typed field the member named name is for a conn
// object of kind kind (fieldExt: none, it is an extension).
func fieldOf(kind, name string) connField {
	if name == "type" {
		return fieldType
	}
	switch kind {
	case KindRegisterChannel:
		if name == "channelName" {
			return fieldChannelName
		}
	case KindSubscribe, KindUnsubscribe:
		switch name {
		case "key":
			return fieldKey
		case "reg":
			return fieldReg
		}
	case KindSubscribeResult:
		if name == "key" {
			return fieldKey
		}
	case KindInvoke:
		switch name {
		case "method":
			return fieldMethod
		case "argLength":
			return fieldArgLength
		case "oneway":
			return fieldOneway
		}
	case KindInvokeResult:
		if name == "success" {
			return fieldSuccess
		}
	}
	return fieldExt
}

// AppendConn appends c as compact JSON, byte for byte as Node writes it:
// "type" first, then the fields of the kind in Node's order
// (register_channel: channelName; subscribe and unSubscribe: key, reg;
// subscribe_result: key; invoke: method, argLength, oneway; invoke_result:
// success), then the Ext members sorted by name. An unknown kind is written
// as type then Ext.
//
// Strings are escaped as JavaScript's JSON.stringify does (only '"', '\\'
// and control characters; '<', '>', '&', U+2028 and U+2029 stay raw; bytes
// that are not UTF-8 become U+FFFD). Reg and Ext values are JSON texts
// written verbatim: ParseConn and NormalizeJSON give compact ones; an empty
// Ext value is written as null, a nil Reg is left out (as JSON.stringify
// leaves out an undefined reg). Ext members named "type" or like a field
// of the kind are skipped: the typed field wins.
//
// AppendConn does not allocate when dst has room and c has no Ext.
func AppendConn(dst []byte, c *ConnObject) []byte {
	dst = append(dst, `{"type":`...)
	dst = appendJSString(dst, c.Type)
	switch c.Type {
	case KindRegisterChannel:
		dst = append(dst, `,"channelName":`...)
		dst = appendJSString(dst, c.ChannelName)
	case KindSubscribe, KindUnsubscribe:
		dst = append(dst, `,"key":`...)
		dst = appendJSString(dst, c.Key)
		if c.Reg != nil {
			dst = append(dst, `,"reg":`...)
			dst = appendRawJSON(dst, c.Reg)
		}
	case KindSubscribeResult:
		dst = append(dst, `,"key":`...)
		dst = appendJSString(dst, c.Key)
	case KindInvoke:
		dst = append(dst, `,"method":`...)
		dst = appendJSString(dst, c.Method)
		dst = append(dst, `,"argLength":`...)
		dst = strconv.AppendInt(dst, int64(c.ArgLength), 10)
		dst = append(dst, `,"oneway":`...)
		dst = strconv.AppendBool(dst, c.Oneway)
	case KindInvokeResult:
		dst = append(dst, `,"success":`...)
		dst = strconv.AppendBool(dst, c.Success)
	}
	if len(c.Ext) > 0 {
		names := make([]string, 0, len(c.Ext))
		for name := range c.Ext {
			if fieldOf(c.Type, name) == fieldExt {
				names = append(names, name)
			}
		}
		slices.Sort(names)
		for _, name := range names {
			dst = append(dst, ',')
			dst = appendJSString(dst, name)
			dst = append(dst, ':')
			dst = appendRawJSON(dst, c.Ext[name])
		}
	}
	return append(dst, '}')
}

func appendRawJSON(dst []byte, v json.RawMessage) []byte {
	if len(v) == 0 {
		return append(dst, "null"...)
	}
	return append(dst, v...)
}

// connMember is one member of a conn object as spans of the input.
type connMember struct {
	key, val   []byte // key literal (quotes included), value text
	off        int    // offset of val in the conn object
	keyComplex bool   // the key needs unquoting
	spaced     bool   // the value holds insignificant whitespace
}

// ParseConn decodes a conn object. Unknown kinds and unknown fields decode
// without error (unknown fields land in Ext); a repeated member keeps its
// last value, as JSON.parse does; a missing field is its zero value.
//
// The error wraps ErrConnObject when b is not a JSON object, has no string
// "type", or has a field of its kind with the wrong JSON type (a string
// field that is not a string, argLength that is not an integer in
// [0, 2^31-1], oneway or success that is not a boolean).
//
// The result does not alias b. Reg and Ext values are compact JSON
// (compacted if b was not), so AppendConn(ParseConn(x)) == x for every
// conn object Node writes.
func ParseConn(b []byte) (ConnObject, error) {
	var c ConnObject
	var stack [8]connMember
	members, err := scanConn(b, stack[:0])
	if err != nil {
		return c, fmt.Errorf("%w: %w", ErrConnObject, err)
	}
	typ := -1
	for k := range members {
		if members[k].isKey("type") {
			typ = k
		}
	}
	if typ < 0 {
		return c, fmt.Errorf("%w: no \"type\" in %s", ErrConnObject, snippet(b, 64))
	}
	if c.Type, err = members[typ].stringVal(); err != nil {
		return c, fmt.Errorf("%w: \"type\" %w", ErrConnObject, err)
	}

	var own []byte // one copy of b that Reg and Ext values share
	raw := func(m *connMember) json.RawMessage {
		if m.spaced {
			var buf bytes.Buffer
			_ = json.Compact(&buf, m.val) // m.val is checked JSON: Compact cannot fail
			return buf.Bytes()
		}
		if own == nil {
			own = slices.Clone(b)
		}
		end := m.off + len(m.val)
		return json.RawMessage(own[m.off:end:end])
	}
	// Last member wins, as with JSON.parse: walk backwards and skip what is
	// already set, so an overridden member is not even type-checked.
	var seen uint16 // bit per connField
	for k := len(members) - 1; k >= 0; k-- {
		m := &members[k]
		name, f := m.field(c.Type)
		if f != fieldExt {
			if seen&(1<<f) != 0 {
				continue
			}
			seen |= 1 << f
		} else if _, dup := c.Ext[name]; dup {
			continue
		}
		switch f {
		case fieldType:
		case fieldChannelName:
			c.ChannelName, err = m.stringVal()
		case fieldKey:
			c.Key, err = m.stringVal()
		case fieldMethod:
			c.Method, err = m.stringVal()
		case fieldReg:
			c.Reg = raw(m)
		case fieldArgLength:
			c.ArgLength, err = m.argLength()
		case fieldOneway:
			c.Oneway, err = m.boolVal()
		case fieldSuccess:
			c.Success, err = m.boolVal()
		default:
			if c.Ext == nil {
				c.Ext = make(map[string]json.RawMessage)
			}
			c.Ext[name] = raw(m)
		}
		if err != nil {
			return ConnObject{}, fmt.Errorf("%w: %s field %q %w", ErrConnObject, c.Type, name, err)
		}
	}
	return c, nil
}

// scanConn splits a conn object into members, checking it is exactly one
// JSON object.
func scanConn(b []byte, members []connMember) ([]connMember, error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, syntaxErr(b, i, "a JSON object")
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			if i >= len(b) || b[i] != '"' {
				return nil, syntaxErr(b, i, "a string key")
			}
			end, complex, err := scanString(b, i)
			if err != nil {
				return nil, err
			}
			m := connMember{key: b[i:end], keyComplex: complex}
			i = skipSpace(b, end)
			if i >= len(b) || b[i] != ':' {
				return nil, syntaxErr(b, i, "':'")
			}
			i = skipSpace(b, i+1)
			var s scanner
			start := i
			if i, err = s.value(b, i, 1); err != nil {
				return nil, err
			}
			m.val, m.off, m.spaced = b[start:i], start, s.spaced
			members = append(members, m)
			i = skipSpace(b, i)
			if i < len(b) && b[i] == ',' {
				i = skipSpace(b, i+1)
				continue
			}
			if i < len(b) && b[i] == '}' {
				i++
				break
			}
			return nil, syntaxErr(b, i, "',' or '}'")
		}
	}
	if i = skipSpace(b, i); i != len(b) {
		return nil, syntaxErr(b, i, "end of conn object")
	}
	return members, nil
}

// isKey reports whether the member's name is name (no allocation for
// plain keys).
func (m *connMember) isKey(name string) bool {
	if !m.keyComplex {
		return string(m.key[1:len(m.key)-1]) == name
	}
	return unquote(m.key, true) == name
}

// field returns the member's name and the typed field it fills.
func (m *connMember) field(kind string) (string, connField) {
	if !m.keyComplex {
		// Match the known names without allocating; only extensions
		// need their name as a string.
		k := m.key[1 : len(m.key)-1]
		switch string(k) {
		case "type", "channelName", "key", "reg", "method", "argLength", "oneway", "success":
			if f := fieldOf(kind, string(k)); f != fieldExt {
				return knownName(f), f
			}
		}
	}
	name := unquote(m.key, m.keyComplex)
	return name, fieldOf(kind, name)
}

func knownName(f connField) string {
	return [...]string{"", "type", "channelName", "key", "reg", "method", "argLength", "oneway", "success"}[f]
}

// stringVal decodes the member's value as a string; the known kinds come
// back as the package's constants, without allocating.
func (m *connMember) stringVal() (string, error) {
	v := m.val
	if v[0] != '"' {
		return "", fmt.Errorf("is %s, want a string", jsonKind(v))
	}
	_, complex, _ := scanString(v, 0)
	if !complex {
		switch s := v[1 : len(v)-1]; string(s) {
		case KindRegisterChannel:
			return KindRegisterChannel, nil
		case KindRegisterChannelRes:
			return KindRegisterChannelRes, nil
		case KindSubscribe:
			return KindSubscribe, nil
		case KindUnsubscribe:
			return KindUnsubscribe, nil
		case KindSubscribeResult:
			return KindSubscribeResult, nil
		case KindSubscribeResultRes:
			return KindSubscribeResultRes, nil
		case KindInvoke:
			return KindInvoke, nil
		case KindInvokeResult:
			return KindInvokeResult, nil
		case KindHeartbeat:
			return KindHeartbeat, nil
		case KindHeartbeatRes:
			return KindHeartbeatRes, nil
		}
	}
	return unquote(v, complex), nil
}

func (m *connMember) boolVal() (bool, error) {
	switch string(m.val) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("is %s, want a boolean", jsonKind(m.val))
}

// argLength decodes the member's value as an argument count. JavaScript
// numbers have no integer type, so 3.0 and 3e0 are 3 as for Node.
func (m *connMember) argLength() (int, error) {
	v := m.val
	if c := v[0]; c != '-' && (c < '0' || c > '9') {
		return 0, fmt.Errorf("is %s, want a number", jsonKind(v))
	}
	if len(v) <= 9 { // the usual plain small integer, without ParseFloat
		n := 0
		for _, c := range v {
			if c < '0' || c > '9' {
				n = -1
				break
			}
			n = n*10 + int(c-'0')
		}
		if n >= 0 {
			return n, nil
		}
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || f < 0 || f > math.MaxInt32 || f != math.Trunc(f) {
		return 0, fmt.Errorf("is %s, want an integer in [0, %d]", snippet(v, 32), math.MaxInt32)
	}
	return int(f), nil
}

// jsonKind names the JSON type of a checked value, for error messages.
func jsonKind(v []byte) string {
	switch v[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}
