package stat

import (
	"reflect"
	"strings"
	"testing"
)

type inner struct {
	Up    bool  `metric:"inner_up,gauge" help:"up"`
	Count int64 `metric:"inner_count_total" help:"count"`
}

type snapshot struct {
	base
	Closes  map[string]int64 `metric:"closes_total,cause" help:"closes"`
	In      int64            `metric:"messages_total,direction=in" help:"messages"`
	Out     int64            `metric:"messages_total,direction=out"`
	PauseNs int64            `metric:"paused_seconds_total,scale=1e-9" help:"paused"`
	Inner   *inner
}

type base struct {
	HTTPRequests int64 `metric:"http_requests_total" help:"requests"`
}

func init() { Register[snapshot]() }

func TestSamplesAndJSON(t *testing.T) {
	v := snapshot{base{7}, map[string]int64{"peer": 2, "app": 1}, 3, 4, 2e9, &inner{true, 5}}
	want := map[string]float64{
		"http_requests_total{}": 7, "closes_total{app}": 1, "closes_total{peer}": 2,
		"messages_total{in}": 3, "messages_total{out}": 4, "paused_seconds_total{}": 2,
		"inner_up{}": 1, "inner_count_total{}": 5,
	}
	seen := map[string]float64{}
	Samples(v, func(s Sample) { seen[s.Family.Name+"{"+strings.Join(s.Labels, ",")+"}"] = s.Value })
	if !reflect.DeepEqual(seen, want) {
		t.Fatalf("samples %v, want %v", seen, want)
	}
	js := JSON(v)
	if js["http_requests"] != int64(7) || js["pause_ns"] != int64(2e9) || js["inner"].(map[string]any)["count"] != int64(5) {
		t.Fatalf("JSON %v", js)
	}
	var names []string
	for _, f := range Families(v) {
		names = append(names, f.Name)
	}
	if len(names) != 6 {
		t.Fatalf("families %v", names)
	}
	v.Inner = nil
	if _, ok := JSON(v)["inner"]; ok || len(Families(v)) != 4 {
		t.Fatal("a nil nested struct is left out")
	}
}

// A malformed declaration panics at registration.
func TestBadTags(t *testing.T) {
	for name, f := range map[string]func(){
		"no tag": func() { Register[struct{ A int64 }]() },
		"no help": func() {
			Register[struct {
				A int64 `metric:"a"`
			}]()
		},
		"label, no map": func() {
			Register[struct {
				A int64 `metric:"a,x" help:"h"`
			}]()
		},
		"kinds disagree": func() {
			Register[struct {
				A, B int64 `metric:"a,x=1" help:"h"`
				C    int64 `metric:"a,x=2,gauge"`
			}]()
		},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

func TestSnake(t *testing.T) {
	for in, want := range map[string]string{"BytesIn": "bytes_in", "HTTPRequests": "http_requests", "WSConns": "ws_conns", "MemoryConnVariableMax": "memory_conn_variable_max"} {
		if got := Snake(in); got != want {
			t.Errorf("Snake(%q) = %q, want %q", in, got, want)
		}
	}
}
