package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

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
}

// defaults are the command's starting values: gateway.Config's zero
// value, with the demo page and the admin address on.
func defaults() settings {
	return settings{
		Config:    gateway.Config{DemoPage: true, Admin: "127.0.0.1:9090"},
		App:       "echo",
		LogLevel:  "info",
		LogFormat: "text",
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
	case v.Kind() == reflect.Int && s.size:
		return formatSize(int(v.Int()))
	case v.Kind() == reflect.Int && s.zeroOff && v.Int() < 0:
		return 0
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

// sourceError is a bad value, with the setting and where it came from.
func sourceError(s *setting, from string, err error) error {
	return fmt.Errorf("config: %s: %v (%s)", s.name, err, from)
}

// loadFile applies a YAML file: a mapping of setting names to scalars, or
// sequences for lists. An unknown key is an error, with its line.
func loadFile(path string, byName map[string]*setting) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("config: %s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil // empty file
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("config: %s: want a mapping of settings", path)
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i], root.Content[i+1]
		from := fmt.Sprintf("%s line %d", path, key.Line)
		s := byName[key.Value]
		if s == nil {
			return fmt.Errorf("config: %s: unknown setting %q (%s line %d)", key.Value, key.Value, path, key.Line)
		}
		switch val.Kind {
		case yaml.ScalarNode:
			raw := val.Value
			if val.Tag == "!!null" {
				raw = ""
			}
			err = s.set(raw)
		case yaml.SequenceNode:
			var items []string
			for _, it := range val.Content {
				if it.Kind != yaml.ScalarNode {
					return sourceError(s, from, errors.New("a list of plain values expected"))
				}
				items = append(items, it.Value)
			}
			err = s.setList(items)
		default:
			err = errors.New("a plain value or a list expected")
		}
		if err != nil {
			return sourceError(s, from, err)
		}
	}
	return nil
}

// rawFlag records a flag's value; settings apply them after the file and
// the environment, in the order given.
type rawFlag struct {
	s    *setting
	def  string
	seen *[]flagValue
	val  string
}

type flagValue struct {
	s   *setting
	raw string
}

func (f *rawFlag) String() string {
	if f == nil {
		return ""
	}
	return f.def
}

func (f *rawFlag) Set(v string) error {
	*f.seen = append(*f.seen, flagValue{f.s, v})
	return nil
}

func (f *rawFlag) IsBoolFlag() bool { return f.s != nil && f.s.v.Kind() == reflect.Bool }

// options are the command's flags that are not settings.
type options struct {
	configFile  string
	printConfig bool
}

// load reads the configuration: defaults, then the file, the environment
// (os.Environ's form) and the flags. warnings lists WSGATE_ variables that
// name no setting.
func load(args []string, environ []string) (st settings, opts options, warnings []string, err error) {
	env := make(map[string]string)
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "WSGATE_") {
			env[k] = v
		}
	}
	st = defaults()
	list := fields(&st)
	byName := make(map[string]*setting, len(list))
	for _, s := range list {
		byName[s.name] = s
	}

	// Flags first, to find --config; their values apply last.
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	var seen []flagValue
	eff := effectiveDefaults()
	effByName := make(map[string]*setting)
	for _, s := range fields(&eff) {
		effByName[s.name] = s
	}
	for _, s := range list {
		fs.Var(&rawFlag{s: s, def: fmt.Sprint(effByName[s.name].format()), seen: &seen}, s.flag(), s.help)
	}
	fs.StringVar(&opts.configFile, "config", env["WSGATE_CONFIG"], "YAML configuration file (env WSGATE_CONFIG); environment and flags override it")
	fs.BoolVar(&opts.printConfig, "print-config", false, "print the effective configuration as YAML and exit")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: gateway [flags]\n\nEvery flag --name-x is also the YAML key name_x and the variable WSGATE_NAME_X;\n"+
			"a file (--config), then the environment, then flags, each overriding the last.\n\n")
		fmt.Fprintf(w, "  --config file\n    \tYAML configuration file (env WSGATE_CONFIG)\n  --print-config\n    \tprint the effective configuration as YAML and exit\n")
		for _, s := range list {
			e := effByName[s.name]
			fmt.Fprintf(w, "  --%s%s\n    \t%s", s.flag(), e.kind(), s.help)
			if d := fmt.Sprint(e.format()); d != "" && d != "[]" && d != "0" && d != "0s" && d != "false" {
				fmt.Fprintf(w, " (default %s)", d)
			}
			if s.secret {
				fmt.Fprintf(w, "; %s keeps it out of ps", s.env())
			}
			fmt.Fprintln(w)
		}
	}
	if err := fs.Parse(args); err != nil {
		return st, opts, nil, err
	}
	if fs.NArg() > 0 {
		return st, opts, nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	if opts.configFile != "" {
		if err := loadFile(opts.configFile, byName); err != nil {
			return st, opts, nil, err
		}
	}
	for k := range env {
		if k != "WSGATE_CONFIG" && byName[strings.ToLower(strings.TrimPrefix(k, "WSGATE_"))] == nil {
			warnings = append(warnings, k)
		}
	}
	slices.Sort(warnings)
	for _, s := range list {
		// Set even to "": WSGATE_ADMIN= turns the admin server off.
		if v, ok := env[s.env()]; ok {
			if err := s.set(v); err != nil {
				return st, opts, warnings, sourceError(s, "env "+s.env(), err)
			}
		}
	}
	for _, f := range seen {
		if err := f.s.set(f.raw); err != nil {
			return st, opts, warnings, sourceError(f.s, "flag --"+f.s.flag(), err)
		}
	}
	for _, s := range list {
		if s.secret && s.v.String() == redacted {
			return st, opts, warnings, fmt.Errorf("config: %s: %s is the placeholder --print-config writes: set the real value (%s or --%s)",
				s.name, redacted, s.env(), s.flag())
		}
	}
	return st, opts, warnings, nil
}

// effectiveDefaults returns the defaults as the server would fill them in,
// for --help.
func effectiveDefaults() settings {
	st := defaults()
	if c, err := st.Config.WithDefaults(); err == nil {
		st.Config = c
	}
	return st
}

// fieldError names the setting of a *gateway.ConfigError.
func fieldError(st *settings, err error) error {
	var ce *gateway.ConfigError
	if !errors.As(err, &ce) {
		return err
	}
	for _, s := range fields(st) {
		if s.field == ce.Field {
			return fmt.Errorf("config: %s: %s", s.name, ce.Msg)
		}
	}
	return err
}

// printConfig writes st as YAML, each setting under its help as a
// comment: the output is a valid configuration file, secrets redacted.
func printConfig(st *settings) ([]byte, error) {
	root := &yaml.Node{Kind: yaml.MappingNode}
	for _, s := range fields(st) {
		var val yaml.Node
		if err := val.Encode(s.format()); err != nil {
			return nil, err
		}
		if val.Kind == yaml.SequenceNode {
			val.Style = yaml.FlowStyle
		}
		root.Content = append(root.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Value: s.name, HeadComment: s.help},
			&val)
	}
	return yaml.Marshal(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}})
}
