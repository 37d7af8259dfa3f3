package cluster

import (
	"bytes"
	"testing"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	msg := appendData(nil, kindUser, 2, "ann.smith", []byte("hello"))
	if k, err := kindOf(msg); err != nil || k != kindUser {
		t.Fatalf("kind %q %v", k, err)
	}
	op, name, payload, err := parseData(msg)
	if err != nil || op != 2 || string(name) != "ann.smith" || string(payload) != "hello" {
		t.Fatalf("parseData: %d %q %q %v", op, name, payload, err)
	}
	d := Delivery{Connections: 300, Sent: 298, Slow: 1, Closed: 1}
	from, rest, err := parseFrom(appendCounts(nil, "gw-1-abcdefgh", d))
	if err != nil || from != "gw-1-abcdefgh" {
		t.Fatalf("parseFrom: %q %v", from, err)
	}
	if got, err := parseCounts(rest); err != nil || got != d {
		t.Fatalf("parseCounts: %+v %v", got, err)
	}
	_, rest, _ = parseFrom(appendAnswer(nil, "n", 404, []byte(`{"error":"x"}`)))
	if status, body, err := parseAnswer(rest); err != nil || status != 404 || string(body) != `{"error":"x"}` {
		t.Fatalf("parseAnswer: %d %q %v", status, body, err)
	}
	for _, bad := range [][]byte{nil, {1}, {2, 't'}, {1, 't', 1, 0, 9, 'a'}} {
		if _, err := kindOf(bad); err == nil {
			if _, _, _, err := parseData(bad); err == nil {
				t.Errorf("%v accepted", bad)
			}
		}
	}
}

// No input makes the parsers panic or read out of bounds, and what they
// return lies within the input.
func FuzzEnvelope(f *testing.F) {
	f.Add(appendData(nil, kindTopic, 1, "news", []byte("x")))
	f.Add(appendCounts(nil, "a-b", Delivery{Connections: 1}))
	f.Add(appendAnswer(nil, "a-b", 200, []byte("{}")))
	f.Add([]byte{1, 'd', 200})
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, name, payload, err := parseData(b); err == nil && len(name)+len(payload)+dataHeaderSize != len(b) {
			t.Fatalf("parseData lost bytes of %q", b)
		}
		if from, rest, err := parseFrom(b); err == nil {
			if len(from)+len(rest)+3 != len(b) || !bytes.HasSuffix(b, rest) {
				t.Fatalf("parseFrom of %q", b)
			}
			parseCounts(rest)
			parseAnswer(rest)
		}
	})
}
