package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wsgate/wsgate/internal/natstest"
)

var tokenCases = []struct {
	name, want string
}{
	{"news", "news"},
	{"user-42_x", "user-42_x"},
	{strings.Repeat("a", 64), strings.Repeat("a", 64)},
	{strings.Repeat("a", 65), "~b" + strings.Repeat("YWFh", 21) + "YWE"},
	{"room.1", "~bcm9vbS4x"},
	{"*", "~bKg"},
	{">", "~bPg"},
	{"a b", "~bYSBi"},
	{"~bcm9vbS4x", "~bfmJjbTl2YlM0eA"}, // a plain-looking name starting with ~ is encoded
	{"", "~b"},
	{"ü", "~bw7w"},
}

func TestToken(t *testing.T) {
	for _, tc := range tokenCases {
		if got := Token(tc.name); got != tc.want {
			t.Errorf("Token(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
	long := Token(strings.Repeat("x", 181))
	if !strings.HasPrefix(long, "~h") || len(long) != 2+43 {
		t.Errorf("long name: %q", long)
	}
	if Token(strings.Repeat("x", 181)) == Token(strings.Repeat("x", 182)) {
		t.Error("two long names share a token")
	}
	seen := map[string]string{}
	for _, tc := range tokenCases {
		tok := Token(tc.name)
		if other, ok := seen[tok]; ok {
			t.Errorf("%q and %q share token %q", tc.name, other, tok)
		}
		seen[tok] = tc.name
		if strings.ContainsAny(tok, ". \t\r\n*>") {
			t.Errorf("Token(%q) = %q is not a literal subject token", tc.name, tok)
		}
	}
}

// Every encoded name makes a subject a real NATS server routes to an
// exact subscription of it, and to nothing else.
func TestTokenOnNATS(t *testing.T) {
	srv := natstest.Start(t)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	names := []string{"news", "room.1", "*", ">", "a b", "tab\there", "ü", strings.Repeat("long.", 100)}
	subs := map[string]*nats.Subscription{}
	for _, name := range names {
		s, err := nc.SubscribeSync("wsgate.t." + Token(name))
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		subs[name] = s
	}
	for _, name := range names {
		if err := nc.Publish("wsgate.t."+Token(name), []byte(name)); err != nil {
			t.Fatalf("%q: %v", name, err)
		}
	}
	for _, name := range names {
		m, err := subs[name].NextMsg(5 * time.Second)
		if err != nil || string(m.Data) != name {
			t.Fatalf("%q: got %v %v", name, m, err)
		}
		if m, err := subs[name].NextMsg(10 * time.Millisecond); err == nil {
			t.Fatalf("%q: also received %q", name, m.Data)
		}
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"a", "gw-1", "prod_eu", strings.Repeat("z", 64)} {
		if err := CheckName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a.b", "a b", "*", ">", strings.Repeat("z", 65), "ü"} {
		if err := CheckName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if id := DefaultNodeID(); CheckName(id) != nil {
		t.Errorf("DefaultNodeID %q is not a valid name", id)
	}
}

func TestConnID(t *testing.T) {
	a, b := nodeName("gw-1"), nodeName("gw-1")
	if a == b {
		t.Fatalf("two boots of gw-1 are both %q", a)
	}
	if !strings.HasPrefix(a, "gw-1-") || len(a) != len("gw-1-")+8 || CheckName(a) != nil {
		t.Fatalf("node name %q", a)
	}
	id := ConnID(a, 1099511627777)
	node, local, err := SplitConnID(id)
	if err != nil || node != a || local != 1099511627777 {
		t.Fatalf("SplitConnID(%q) = %q %d %v", id, node, local, err)
	}
	for _, bad := range []string{"", "123", "-1", "gw-", "gw-x", "gw.1-2", "a-+1", "a-18446744073709551616", strings.Repeat("a", 80) + "-1"} {
		if _, _, err := SplitConnID(bad); err == nil {
			t.Errorf("SplitConnID(%q) accepted", bad)
		}
	}
}
