package cluster

import (
	"bytes"
	"testing"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	id := MsgID{Origin: 0xfeedface12345678, Seq: 1<<40 + 7}
	msg := appendData(nil, kindUser, 2, id, "ann.smith", []byte("hello"))
	if k, err := kindOf(msg); err != nil || k != kindUser {
		t.Fatalf("kind %q %v", k, err)
	}
	op, got, name, payload, err := parseData(msg)
	if err != nil || op != 2 || got != id || string(name) != "ann.smith" || string(payload) != "hello" {
		t.Fatalf("parseData: %d %+v %q %q %v", op, got, name, payload, err)
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
	for _, bad := range [][]byte{nil, {2}, {3, 't'}, {2, 't', 1, 0, 9, 'a'}, append(msg[:19:19], 0, 10, 'a')} {
		if _, err := kindOf(bad); err == nil {
			if _, _, _, _, err := parseData(bad); err == nil {
				t.Errorf("%v accepted", bad)
			}
		}
	}
}

// No input makes the parsers panic or read out of bounds, and what they
// return lies within the input.
func FuzzEnvelope(f *testing.F) {
	f.Add(appendData(nil, kindTopic, 1, MsgID{Origin: 1, Seq: 2}, "news", []byte("x")))
	f.Add(appendCounts(nil, "a-b", Delivery{Connections: 1}))
	f.Add(appendAnswer(nil, "a-b", 200, []byte("{}")))
	f.Add([]byte{2, 'd', 200})
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, _, name, payload, err := parseData(b); err == nil && len(name)+len(payload)+dataHeaderSize != len(b) {
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
