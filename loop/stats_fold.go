package loop

import (
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"unsafe"
)

// The fold of counters into Stats, planned once from the stat tags of
// counters (stats.go) so that a new counter needs no line here. A bad tag
// panics at init: every test fails at once.

// foldStep adds one counters field to one Stats field.
type foldStep struct {
	src  uintptr // offset of the atomic (or array of atomics) in counters
	n    int     // array length; 0 for one atomic
	dst  uintptr // offset of the int64 (or map[string]int64) in Stats
	max  bool    // keep the largest instead of the sum
	keys func(int) (string, bool)
}

var foldPlan = planFold()

func planFold() []foldStep {
	ct, st := reflect.TypeFor[counters](), reflect.TypeFor[Stats]()
	atomicT := reflect.TypeFor[atomic.Int64]()
	var plan []foldStep
	for i := range ct.NumField() {
		f := ct.Field(i)
		if f.Name == "_" {
			continue
		}
		tag, ok := f.Tag.Lookup("stat")
		if !ok {
			panic(fmt.Sprintf("loop: counters.%s has no stat tag", f.Name))
		}
		name, opt, _ := strings.Cut(tag, ",")
		d, ok := st.FieldByName(name)
		if !ok {
			panic(fmt.Sprintf("loop: counters.%s folds into Stats.%s, which does not exist", f.Name, name))
		}
		step := foldStep{src: f.Offset, dst: d.Offset, max: opt == "max"}
		switch {
		case f.Type == atomicT && d.Type.Kind() == reflect.Int64:
		case f.Type.Kind() == reflect.Array && f.Type.Elem() == atomicT && d.Type == reflect.TypeFor[map[string]int64]():
			step.n = f.Type.Len()
			if step.keys = statKeys[name]; step.keys == nil {
				panic(fmt.Sprintf("loop: Stats.%s has no entry in statKeys", name))
			}
		default:
			panic(fmt.Sprintf("loop: counters.%s (%v) cannot fold into Stats.%s (%v)", f.Name, f.Type, name, d.Type))
		}
		plan = append(plan, step)
	}
	return plan
}

// fold adds c into st.
func fold(st *Stats, c *counters) {
	src, dst := unsafe.Pointer(c), unsafe.Pointer(st)
	for _, p := range foldPlan {
		if p.n == 0 {
			v := (*atomic.Int64)(unsafe.Add(src, p.src)).Load()
			d := (*int64)(unsafe.Add(dst, p.dst))
			if p.max {
				*d = max(*d, v)
			} else {
				*d += v
			}
			continue
		}
		m := (*map[string]int64)(unsafe.Add(dst, p.dst))
		if *m == nil {
			*m = make(map[string]int64, p.n)
		}
		arr := unsafe.Add(src, p.src)
		for i := range p.n {
			if k, ok := p.keys(i); ok {
				(*m)[k] += (*atomic.Int64)(unsafe.Add(arr, uintptr(i)*unsafe.Sizeof(atomic.Int64{}))).Load()
			}
		}
	}
}
