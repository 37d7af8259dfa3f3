// Package stat turns a tagged snapshot struct (loop.Stats, gateway.Stats,
// cluster.Stats) into its two outputs: the JSON object of /v1/stats and the
// Prometheus samples of /metrics. The struct field is the one declaration
// of a figure; its tag says how /metrics shows it:
//
//	MessagesIn int64 `metric:"messages_total,direction=in" help:"WebSocket data messages, by direction."`
//	Closes map[string]int64 `metric:"closes_total,cause" help:"Closed connections by cause."`
//	ConnsOpen int64 `metric:"tcp_connections_open,gauge" help:"..."`
//
// The first word is the metric's name without the wsgate_ prefix; then,
// in any order: label=value (a fixed label, for fields that share a
// metric; several are allowed), label (a map field: one sample per key), gauge (a counter
// otherwise), scale=F (the sample is the value times F, e.g. 1e-9 for
// nanoseconds shown in seconds). The JSON name is the
// field's name in snake_case; embedded structs are flattened, and a
// pointer to a tagged struct becomes a nested object (left out when nil).
//
// stat never reads a counter itself and knows nothing of Prometheus: the
// caller turns a Sample into whatever it exports.
package stat

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// Family is one metric: its name (without the wsgate_ prefix), help, kind
// and label names.
type Family struct {
	Name   string
	Help   string
	Gauge  bool
	Labels []string // the label names: fixed labels first, then a map's key

	seen bool
}

// Sample is one value of a Family.
type Sample struct {
	Family *Family
	Labels []string // values, in the order of Family.Labels
	Value  float64
	// Field is the JSON path of the field it comes from ("closes",
	// "cluster.published"; a map's key is the last of Labels) and Scale what its
	// value was multiplied by, for the tests that check /v1/stats
	// against /metrics.
	Field string
	Scale float64
}

// field is one exported figure of a struct type.
type field struct {
	index  []int
	json   string
	family *Family
	labels []string // fixed label values
	scale  float64
	nested *layout // a pointer to a tagged struct
}

// layout is the parsed tags of a struct type.
type layout struct {
	fields   []field
	families []*Family
}

var layouts = map[reflect.Type]*layout{}

// Register parses the tags of struct type T, in a package's init (or a
// var declaration); it panics on a malformed tag, so a bad declaration
// fails every test at once.
func Register[T any]() { register(reflect.TypeFor[T]()) }

func register(t reflect.Type) *layout {
	if l, ok := layouts[t]; ok {
		return l
	}
	l := &layout{}
	byName := map[string]*Family{}
	l.walk(t, nil, byName)
	for _, f := range byName {
		if f.Help == "" {
			panic(fmt.Sprintf("stat: %v: metric %s has no help", t, f.Name))
		}
		l.families = append(l.families, f)
	}
	sort.Slice(l.families, func(i, j int) bool { return l.families[i].Name < l.families[j].Name })
	layouts[t] = l
	return l
}

func (l *layout) walk(t reflect.Type, index []int, byName map[string]*Family) {
	for i := range t.NumField() {
		sf := t.Field(i)
		idx := append(append([]int(nil), index...), i)
		if sf.Anonymous && sf.Type.Kind() == reflect.Struct {
			l.walk(sf.Type, idx, byName) // its exported fields are promoted
			continue
		}
		if !sf.IsExported() {
			continue
		}
		f := field{index: idx, json: Snake(sf.Name), scale: 1}
		if sf.Type.Kind() == reflect.Pointer && sf.Type.Elem().Kind() == reflect.Struct {
			f.nested = register(sf.Type.Elem())
			l.fields = append(l.fields, f)
			continue
		}
		tag, ok := sf.Tag.Lookup("metric")
		if !ok {
			panic(fmt.Sprintf("stat: %v.%s has no metric tag", t, sf.Name))
		}
		parts := strings.Split(tag, ",")
		fam := byName[parts[0]]
		if fam == nil {
			fam = &Family{Name: parts[0]}
			byName[parts[0]] = fam
		}
		var labels []string
		gauge := false
		for _, p := range parts[1:] {
			switch k, v, kv := strings.Cut(p, "="); {
			case p == "gauge":
				gauge = true
			case k == "scale" && kv:
				s, err := strconv.ParseFloat(v, 64)
				if err != nil {
					panic(fmt.Sprintf("stat: %v.%s: %v", t, sf.Name, err))
				}
				f.scale = s
			case kv:
				labels, f.labels = append(labels, k), append(f.labels, v)
			default:
				labels = append(labels, k)
				if sf.Type.Kind() != reflect.Map {
					panic(fmt.Sprintf("stat: %v.%s: label %q without a value on a field that is not a map", t, sf.Name, k))
				}
			}
		}
		if h := sf.Tag.Get("help"); h != "" {
			fam.Help = h
		}
		if !fam.seen {
			fam.Labels, fam.Gauge, fam.seen = labels, gauge, true
		} else if !sameLabels(fam.Labels, labels) || fam.Gauge != gauge {
			panic(fmt.Sprintf("stat: %v.%s: metric %s is declared with other labels or kind elsewhere", t, sf.Name, fam.Name))
		}
		f.family = fam
		l.fields = append(l.fields, f)
	}
}

func sameLabels(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func layoutOf(v reflect.Value) *layout {
	l, ok := layouts[v.Type()]
	if !ok {
		panic(fmt.Sprintf("stat: %v is not registered", v.Type()))
	}
	return l
}

// Families returns the metrics of v, a registered struct, in name order;
// those of a nil nested pointer are left out.
func Families(v any) []*Family {
	rv := reflect.ValueOf(v)
	l := layoutOf(rv)
	out := append([]*Family(nil), l.families...)
	for _, f := range l.fields {
		if f.nested != nil && !rv.FieldByIndex(f.index).IsNil() {
			out = append(out, f.nested.families...)
		}
	}
	return out
}

// Samples calls fn with each sample of v, a registered struct.
func Samples(v any, fn func(Sample)) { samples(reflect.ValueOf(v), "", fn) }

func samples(rv reflect.Value, prefix string, fn func(Sample)) {
	for _, f := range layoutOf(rv).fields {
		fv := rv.FieldByIndex(f.index)
		path := prefix + f.json
		switch {
		case f.nested != nil:
			if !fv.IsNil() {
				samples(fv.Elem(), path+".", fn)
			}
		case fv.Kind() == reflect.Map:
			keys := fv.MapKeys()
			sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
			for _, k := range keys {
				fn(Sample{Family: f.family, Labels: append(append([]string(nil), f.labels...), k.String()), Value: number(fv.MapIndex(k)) * f.scale, Field: path, Scale: f.scale})
			}
		default:
			s := Sample{Family: f.family, Value: number(fv) * f.scale, Field: path, Scale: f.scale}
			if len(f.labels) > 0 {
				s.Labels = f.labels
			}
			fn(s)
		}
	}
}

func number(v reflect.Value) float64 {
	switch v.Kind() {
	case reflect.Bool:
		if v.Bool() {
			return 1
		}
		return 0
	case reflect.Int, reflect.Int64, reflect.Int32:
		return float64(v.Int())
	case reflect.Uint, reflect.Uint64, reflect.Uint32:
		return float64(v.Uint())
	case reflect.Float64:
		return v.Float()
	}
	panic("stat: not a number: " + v.Type().String())
}

// JSON returns v, a registered struct, as the object /v1/stats serves:
// snake_case names, embedded structs flattened, nested ones as objects.
func JSON(v any) map[string]any { return jsonOf(reflect.ValueOf(v)) }

func jsonOf(rv reflect.Value) map[string]any {
	l := layoutOf(rv)
	out := make(map[string]any, len(l.fields))
	for _, f := range l.fields {
		fv := rv.FieldByIndex(f.index)
		switch {
		case f.nested != nil:
			if !fv.IsNil() {
				out[f.json] = jsonOf(fv.Elem())
			}
		default:
			out[f.json] = fv.Interface()
		}
	}
	return out
}

// Snake turns a Go name into snake_case: "BytesIn" → "bytes_in",
// "HTTPRequests" → "http_requests".
func Snake(s string) string {
	r := []rune(s)
	var b []rune
	for i, c := range r {
		if unicode.IsUpper(c) {
			if i > 0 && (unicode.IsLower(r[i-1]) || i+1 < len(r) && unicode.IsLower(r[i+1]) && unicode.IsUpper(r[i-1])) {
				b = append(b, '_')
			}
			c = unicode.ToLower(c)
		}
		b = append(b, c)
	}
	return string(b)
}
