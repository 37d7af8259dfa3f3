package main

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/gateway"
)

// One configuration from three sources, in increasing precedence: a YAML
// file (--config or WSGATE_CONFIG), the environment (WSGATE_LISTEN, ...)
// and flags (--listen, ...). Every setting is a field of settings tagged
// wsgate:"name": gateway.Config's own fields and the command's. The name is
// the YAML key; WSGATE_ and the name in upper case is the variable; -- and
// the name with dashes is the flag. A field added to gateway.Config needs
// only its tag (TestEveryFieldHasATag checks).

// settings is everything the command reads.
type settings struct {
	gateway.Config
	App       string `wsgate:"app" help:"built-in application without a backend: echo (each message back) or broadcast (each message to every client)"`
	LogLevel  string `wsgate:"log_level" help:"debug, info, warn or error; debug logs one line per connect and disconnect"`
	LogFormat string `wsgate:"log_format" help:"text or json"`
	// GoMemoryLimit sets the Go runtime's soft memory limit from
	// memory_budget (memory.go).
	GoMemoryLimit bool `wsgate:"go_memory_limit" help:"set the Go runtime's soft memory limit to the memory budget plus the runtime's base and the connections' fixed state (GOMEMLIMIT, if set, wins)"`
}

// defaults are the command's starting values: gateway.Config's zero
// value, with the demo page and the admin address on, and a memory budget
// of half the memory the process may use (memory.go).
func defaults() settings {
	return settings{
		Config:        gateway.Config{DemoPage: true, Admin: "127.0.0.1:9090", MemoryBudget: autoBudget},
		App:           "echo",
		LogLevel:      "info",
		LogFormat:     "text",
		GoMemoryLimit: true,
	}
}

// redacted replaces secrets in --print-config; a configuration that still
// has it once every source is read is refused, so a printed configuration
// cannot silently set a secret to it.
const redacted = "REDACTED"

// setting is one tagged field.
type setting struct {
	name    string // snake_case
	field   string // the Go field name, as in gateway.ConfigError
	help    string
	size    bool // a byte count with units
	secret  bool
	zeroOff bool // 0 or "off" disables: stored negative
	v       reflect.Value
}

func (s *setting) flag() string { return strings.ReplaceAll(s.name, "_", "-") }

// kind names the setting's value in --help.
func (s *setting) kind() string {
	switch {
	case s.v.Kind() == reflect.Bool:
		return ""
	case s.v.Type() == durationType:
		return " duration"
	case s.size:
		return " size"
	case s.v.Kind() == reflect.Int, s.v.Kind() == reflect.Float64:
		return " number"
	case s.v.Kind() == reflect.Slice:
		return " list"
	}
	return " string"
}
func (s *setting) env() string { return "WSGATE_" + strings.ToUpper(s.name) }

// fields returns the settings of st in declaration order, addressable.
func fields(st *settings) []*setting {
	var out []*setting
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			tag, ok := f.Tag.Lookup("wsgate")
			switch {
			case f.Anonymous && !ok:
				walk(v.Field(i))
				continue
			case tag == "-" || !f.IsExported():
				continue
			case !ok:
				panic("config: " + t.Name() + "." + f.Name + " has no wsgate tag")
			}
			name, opts, _ := strings.Cut(tag, ",")
			s := &setting{name: name, field: f.Name, help: f.Tag.Get("help"), v: v.Field(i)}
			for o := range strings.SplitSeq(opts, ",") {
				switch o {
				case "size":
					s.size = true
				case "secret":
					s.secret = true
				case "zero_off":
					s.zeroOff = true
				case "":
				default:
					panic("config: " + f.Name + ": unknown tag option " + o)
				}
			}
			out = append(out, s)
		}
	}
	walk(reflect.ValueOf(st).Elem())
	return out
}

var (
	durationType   = reflect.TypeFor[time.Duration]()
	slowPolicyType = reflect.TypeFor[gateway.SlowPolicy]()
)

// set parses raw into the setting.
func (s *setting) set(raw string) error {
	raw = strings.TrimSpace(raw)
	v := s.v
	off := strings.EqualFold(raw, "off")
	switch {
	case v.Type() == durationType:
		var d time.Duration
		if !off {
			var err error
			if d, err = time.ParseDuration(raw); err != nil {
				return fmt.Errorf("%q is not a duration such as 30s or 5m", raw)
			}
		}
		if s.zeroOff && d == 0 {
			d = -1
		}
		v.SetInt(int64(d))
	case v.Type() == slowPolicyType:
		switch raw {
		case "close":
			v.Set(reflect.ValueOf(gateway.SlowClose))
		case "drop":
			v.Set(reflect.ValueOf(gateway.SlowDrop))
		default:
			return fmt.Errorf("%q: want close or drop", raw)
		}
	case v.Kind() == reflect.String:
		v.SetString(raw)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("%q: want true or false", raw)
		}
		v.SetBool(b)
	case v.Kind() == reflect.Int:
		var n int
		var err error
		switch {
		case s.zeroOff && off:
		case s.size:
			n, err = gateway.ParseSize(raw)
		default:
			n, err = strconv.Atoi(raw)
			if err != nil {
				err = fmt.Errorf("%q is not a whole number", raw)
			}
		}
		if err != nil {
			return err
		}
		if s.zeroOff && n == 0 {
			n = -1
		}
		v.SetInt(int64(n))
	case v.Kind() == reflect.Float64:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", raw)
		}
		v.SetFloat(f)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		var list []string
		for item := range strings.SplitSeq(raw, ",") {
			if item = strings.TrimSpace(item); item != "" {
				list = append(list, item)
			}
		}
		v.Set(reflect.ValueOf(list))
	default:
		panic("config: " + s.field + ": unsupported type " + v.Type().String())
	}
	return nil
}

// setList sets a list setting from a YAML sequence.
func (s *setting) setList(items []string) error {
	if s.v.Kind() != reflect.Slice {
		return errors.New("is a single value, not a list")
	}
	var list []string // empty is nil, as from a flag
	for _, it := range items {
		if it = strings.TrimSpace(it); it != "" {
			list = append(list, it)
		}
	}
	s.v.Set(reflect.ValueOf(list))
	return nil
}

// format returns the setting's value as the text set would parse back.
func (s *setting) format() any {
	v := s.v
	switch {
	case s.secret && v.String() != "":
		return redacted
	case v.Type() == durationType:
		d := time.Duration(v.Int())
		if d < 0 || s.zeroOff && d == 0 {
			return "off"
		}
		return d.String()
	case v.Type() == slowPolicyType:
		if v.Interface() == gateway.SlowDrop {
			return "drop"
		}
		return "close"
	case v.Kind() == reflect.Int && s.zeroOff && v.Int() < 0:
		return 0
	case v.Kind() == reflect.Int && s.size:
		return formatSize(int(v.Int()))
	case v.Kind() == reflect.Slice:
		list := v.Interface().([]string)
		if list == nil {
			list = []string{}
		}
		return list
	}
	return v.Interface()
}

// formatSize writes n with the largest binary unit that divides it, or
// as a plain number.
func formatSize(n int) any {
	for _, u := range []struct {
		name string
		size int
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.Itoa(n/u.size) + u.name
		}
	}
	return n
}
