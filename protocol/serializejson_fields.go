package protocol

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Struct fields as encoding/json sees them: the same names, the same
// selection (tags, "-", embedded structs promoted with Go's dominance
// rules), the same order. Computed once per type.

type sjField struct {
	name      string
	esc       []byte // name escaped for the STRINGS section
	index     []int  // path through embedded structs
	omitEmpty bool
	omitZero  bool
	isZero    func(reflect.Value) bool
}

type sjStruct struct {
	fields []sjField
	exact  map[string]int // name → field
	folded map[string]int // sjFold(name) → first field with it
}

var sjStructs sync.Map // reflect.Type → *sjStruct

func sjStructInfo(t reflect.Type) *sjStruct {
	if s, ok := sjStructs.Load(t); ok {
		return s.(*sjStruct)
	}
	fields := sjTypeFields(t)
	s := &sjStruct{
		fields: fields,
		exact:  make(map[string]int, len(fields)),
		folded: make(map[string]int, len(fields)),
	}
	for i := range fields {
		s.exact[fields[i].name] = i
		k := sjFold(nil, fields[i].name)
		if _, dup := s.folded[string(k)]; !dup {
			s.folded[string(k)] = i
		}
	}
	got, _ := sjStructs.LoadOrStore(t, s)
	return got.(*sjStruct)
}

// lookup finds the field for an object key: an exact name first, else a
// case-insensitive match (Unicode simple folding), like encoding/json.
func (s *sjStruct) lookup(key string) *sjField {
	if i, ok := s.exact[key]; ok {
		return &s.fields[i]
	}
	var buf [64]byte
	if i, ok := s.folded[string(sjFold(buf[:0], key))]; ok {
		return &s.fields[i]
	}
	return nil
}

// sjFold appends s with every rune replaced by the smallest rune of its
// case-folding orbit, so that two names fold equal exactly when
// strings.EqualFold says they are equal.
func sjFold(dst []byte, s string) []byte {
	for _, r := range s {
		if r < utf8.RuneSelf {
			if 'a' <= r && r <= 'z' {
				r -= 'a' - 'A'
			}
			dst = append(dst, byte(r))
			continue
		}
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		dst = utf8.AppendRune(dst, min)
	}
	return dst
}

// sjValidTag is encoding/json's rule for a usable name in a json tag.
func sjValidTag(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			return false
		}
	}
	return true
}

// sjTypeFields lists the fields encoding/json would use for struct type t.
// Embedded structs are walked breadth first; a name seen at several depths
// belongs to the shallowest; at one depth, the only tagged field wins, and
// otherwise the name is ambiguous and dropped.
func sjTypeFields(t reflect.Type) []sjField {
	type candidate struct {
		sjField
		depth  int
		tagged bool
	}
	type level struct {
		typ   reflect.Type
		index []int
		count int // how many times the type occurs at this depth
	}
	var found []candidate
	visited := map[reflect.Type]bool{}
	next := []level{{typ: t, count: 1}}
	for depth := 0; len(next) > 0; depth++ {
		current := next
		next = nil
		queued := map[reflect.Type]int{} // type → position in next
		for _, lv := range current {
			if visited[lv.typ] {
				continue
			}
			visited[lv.typ] = true
			for i := 0; i < lv.typ.NumField(); i++ {
				sf := lv.typ.Field(i)
				ft := sf.Type
				if ft.Name() == "" && ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if sf.Anonymous {
					if !sf.IsExported() && ft.Kind() != reflect.Struct {
						continue
					}
				} else if !sf.IsExported() {
					continue
				}
				tag := sf.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, opts, _ := strings.Cut(tag, ",")
				if !sjValidTag(name) {
					name = ""
				}
				index := append(slices.Clip(lv.index), i)
				if name == "" && sf.Anonymous && ft.Kind() == reflect.Struct {
					if pos, ok := queued[ft]; ok {
						next[pos].count++
					} else {
						queued[ft] = len(next)
						next = append(next, level{typ: ft, index: index, count: 1})
					}
					continue
				}
				c := candidate{depth: depth, tagged: name != ""}
				if name == "" {
					name = sf.Name
				}
				c.name = name
				c.esc = sjAppendEscaped(nil, name)
				c.index = index
				for opt := range strings.SplitSeq(opts, ",") {
					switch opt {
					case "omitempty":
						c.omitEmpty = true
					case "omitzero":
						c.omitZero = true
					}
				}
				c.isZero = sjZeroFunc(sf.Type)
				found = append(found, c)
				if lv.count > 1 {
					// The same struct embedded twice at one depth: its
					// fields collide with themselves and are dropped.
					found = append(found, c)
				}
			}
		}
	}
	// Keep the dominant field of each name.
	slices.SortStableFunc(found, func(a, b candidate) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		if a.depth != b.depth {
			return a.depth - b.depth
		}
		if a.tagged != b.tagged {
			if a.tagged {
				return -1
			}
			return 1
		}
		return 0
	})
	var fields []sjField
	for i := 0; i < len(found); {
		j := i + 1
		for j < len(found) && found[j].name == found[i].name {
			j++
		}
		group := found[i:j]
		i = j
		top := 1
		for top < len(group) && group[top].depth == group[0].depth {
			top++
		}
		switch {
		case top == 1:
		case group[0].tagged && !group[1].tagged:
		default:
			continue // ambiguous
		}
		fields = append(fields, group[0].sjField)
	}
	slices.SortFunc(fields, func(a, b sjField) int { return slices.Compare(a.index, b.index) })
	return fields
}

type sjZeroer interface{ IsZero() bool }

var sjZeroerType = reflect.TypeFor[sjZeroer]()

// sjZeroFunc is encoding/json's omitzero test for a field of type t: its
// IsZero method when it has one, else reflect's zero test.
func sjZeroFunc(t reflect.Type) func(reflect.Value) bool {
	switch {
	case t.Kind() == reflect.Interface && t.Implements(sjZeroerType):
		return func(v reflect.Value) bool {
			return v.IsNil() || (v.Elem().Kind() == reflect.Pointer && v.Elem().IsNil()) ||
				v.Interface().(sjZeroer).IsZero()
		}
	case t.Kind() == reflect.Pointer && t.Implements(sjZeroerType):
		return func(v reflect.Value) bool { return v.IsNil() || v.Interface().(sjZeroer).IsZero() }
	case t.Implements(sjZeroerType):
		return func(v reflect.Value) bool { return v.Interface().(sjZeroer).IsZero() }
	case reflect.PointerTo(t).Implements(sjZeroerType):
		return func(v reflect.Value) bool {
			if !v.CanAddr() {
				c := reflect.New(v.Type()).Elem()
				c.Set(v)
				v = c
			}
			return v.Addr().Interface().(sjZeroer).IsZero()
		}
	}
	return reflect.Value.IsZero
}

// sjFieldToRead follows index from struct v; ok is false when it passes
// through a nil embedded pointer (the field is then absent).
func sjFieldToRead(v reflect.Value, index []int) (reflect.Value, bool) {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Value{}, false
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v, true
}

// sjFieldToSet follows index from the settable struct v, allocating nil
// embedded pointers on the way.
func sjFieldToSet(v reflect.Value, index []int) (reflect.Value, error) {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				if !v.CanSet() {
					return reflect.Value{}, fmt.Errorf("%w: cannot set embedded pointer to unexported struct %s", ErrSerializeJSONType, v.Type().Elem())
				}
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v, nil
}
