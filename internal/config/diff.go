package config

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// Change is one difference between two settings. Field is the path in the
// document, with list items keyed by name (`storages[nas].bwlimit`); Old and
// New are the values as text, "" when absent. A secret shows as its String
// (Redacted for a literal), so a Change says that a password changed but
// never what it was or became.
type Change struct {
	Field string `json:"field"`
	Old   string `json:"old"`
	New   string `json:"new"`
}

// String renders the change for a history list: `storages[nas].bwlimit: "20Mbit" → "50Mbit"`.
func (c Change) String() string {
	return fmt.Sprintf("%s: %s → %s", c.Field, quoteOrNone(c.Old), quoteOrNone(c.New))
}

func quoteOrNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return strconv.Quote(s)
}

// Diff lists what differs from old to new, field by field, in document order.
// Items of a list whose type has a Name field (storages) are matched by name,
// so reordering them is no change; an added or removed item is one Change on
// `list[name]` whose New or Old is the whole item, secrets redacted. Both
// settings are expected to have passed Validate (names unique).
//
// Diff walks the types by reflection so that fields added to the document
// later are compared without touching this code.
func Diff(old, new Settings) []Change {
	var d differ
	d.value("", reflect.ValueOf(old), reflect.ValueOf(new))
	return d.changes
}

type differ struct{ changes []Change }

var stringerType = reflect.TypeFor[fmt.Stringer]()

func (d *differ) value(path string, a, b reflect.Value) {
	switch {
	case a.Kind() == reflect.Struct && !a.Type().Implements(stringerType):
		for i := range a.NumField() {
			f := a.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			d.value(join(path, fieldName(f)), a.Field(i), b.Field(i))
		}
	case a.Kind() == reflect.Slice && a.Type().Elem().Kind() == reflect.Struct:
		d.list(path, a, b)
	default:
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			d.changes = append(d.changes, Change{Field: path, Old: text(a), New: text(b)})
		}
	}
}

// list compares items by name when they have one and by position otherwise.
func (d *differ) list(path string, a, b reflect.Value) {
	key := func(v reflect.Value, i int) string {
		if n := v.Index(i).FieldByName("Name"); n.IsValid() && n.Kind() == reflect.String {
			return n.String()
		}
		return strconv.Itoa(i)
	}
	index := func(v reflect.Value) map[string]int {
		m := make(map[string]int, v.Len())
		for i := range v.Len() {
			if _, dup := m[key(v, i)]; !dup {
				m[key(v, i)] = i
			}
		}
		return m
	}
	inA, inB := index(a), index(b)
	for i := range a.Len() {
		k := key(a, i)
		if inA[k] != i {
			continue
		}
		item := fmt.Sprintf("%s[%s]", path, k)
		if j, ok := inB[k]; ok {
			d.value(item, a.Index(i), b.Index(j))
		} else {
			d.changes = append(d.changes, Change{Field: item, Old: text(a.Index(i))})
		}
	}
	for j := range b.Len() {
		k := key(b, j)
		if _, ok := inA[k]; !ok && inB[k] == j {
			d.changes = append(d.changes, Change{Field: fmt.Sprintf("%s[%s]", path, k), New: text(b.Index(j))})
		}
	}
}

// text renders a value for a Change: strings as they are, Stringers (Secret)
// through String, anything else as compact JSON, whose marshalling redacts
// secrets.
func text(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case string:
		return x
	case fmt.Stringer:
		return x.String()
	}
	if v.Kind() == reflect.Bool || v.Kind() >= reflect.Int && v.Kind() <= reflect.Float64 {
		return fmt.Sprint(v.Interface())
	}
	if v.IsZero() {
		return ""
	}
	b, err := json.Marshal(v.Interface())
	if err != nil {
		return fmt.Sprintf("(%s)", v.Type())
	}
	return string(b)
}

// fieldName is the field's key in the document.
func fieldName(f reflect.StructField) string {
	if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name != "" && name != "-" {
		return name
	}
	return strings.ToLower(f.Name)
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
