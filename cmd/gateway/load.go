package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/wsgate/wsgate/gateway"
)

// Reading the sources (file, environment, flags) into settings, and
// printing them back.

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
