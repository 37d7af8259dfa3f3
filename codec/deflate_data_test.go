package codec

import (
	"math/rand/v2"
	"strconv"
)

// Deterministic payloads for the compression tests and benchmarks, built from
// a seeded generator so that every run and every machine measures the same
// bytes: JSON shaped like chat and notification traffic, English-like text
// and incompressible bytes.

// words is a vocabulary drawn with a Zipf distribution, which gives text the
// word frequencies, and so roughly the compressibility, of prose.
var words = []string{
	"the", "of", "and", "to", "a", "in", "is", "that", "for", "it", "as", "was",
	"with", "be", "by", "on", "not", "he", "this", "are", "or", "his", "from",
	"at", "which", "but", "have", "an", "had", "they", "you", "were", "their",
	"one", "all", "we", "can", "her", "has", "there", "been", "if", "more",
	"when", "will", "would", "who", "so", "no", "message", "server", "client",
	"connection", "gateway", "window", "compression", "latency", "network",
	"browser", "mobile", "payload", "subscriber", "channel", "event", "order",
	"price", "update", "status", "account", "session", "timeout", "buffer",
	"between", "through", "because", "another", "without", "against", "around",
	"something", "important", "different", "following", "possible", "general",
	"everyone", "yesterday", "tomorrow", "meeting", "deploy", "release", "fixed",
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)) }

// sentence appends about n bytes of English-like words to dst.
func sentence(dst []byte, r *rand.Rand, z *rand.Zipf, n int) []byte {
	start := len(dst)
	for len(dst)-start < n {
		if len(dst) > start {
			dst = append(dst, ' ')
		}
		dst = append(dst, words[z.Uint64()]...)
		if r.IntN(12) == 0 {
			dst = append(dst, '.')
		}
	}
	return dst
}

// textPayload returns size bytes of English-like text.
func textPayload(size int, seed uint64) []byte {
	r := newRand(seed)
	z := rand.NewZipf(r, 1.1, 2, uint64(len(words)-1))
	out := make([]byte, 0, size+16)
	for len(out) < size {
		out = sentence(out, r, z, 80)
		out = append(out, '\n')
	}
	return out[:size]
}

// jsonEvent appends one chat event as JSON, with a text of about textLen
// bytes.
func jsonEvent(dst []byte, r *rand.Rand, z *rand.Zipf, seq, textLen int) []byte {
	user := r.IntN(500)
	dst = append(dst, `{"type":"chat.message","id":"msg_`...)
	dst = strconv.AppendInt(dst, int64(100000+seq), 10)
	dst = append(dst, `","room":"room-`...)
	dst = strconv.AppendInt(dst, int64(r.IntN(40)), 10)
	dst = append(dst, `","ts":`...)
	dst = strconv.AppendInt(dst, 1717171717000+int64(seq)*137, 10)
	dst = append(dst, `,"user":{"id":"u_`...)
	dst = strconv.AppendInt(dst, int64(user), 10)
	dst = append(dst, `","name":"user`...)
	dst = strconv.AppendInt(dst, int64(user), 10)
	dst = append(dst, `","avatar":"https://cdn.example.com/avatars/`...)
	dst = strconv.AppendInt(dst, int64(user), 10)
	dst = append(dst, `.png","online":true},"text":"`...)
	dst = sentence(dst, r, z, textLen)
	dst = append(dst, `","mentions":["u_`...)
	dst = strconv.AppendInt(dst, int64(r.IntN(500)), 10)
	dst = append(dst, `"],"reactions":{"thumbs_up":`...)
	dst = strconv.AppendInt(dst, int64(r.IntN(20)), 10)
	dst = append(dst, `,"heart":`...)
	dst = strconv.AppendInt(dst, int64(r.IntN(9)), 10)
	return append(dst, `},"edited":false}`...)
}

// jsonPayload returns a JSON document of exactly size bytes (for size >=
// 512): an object holding an array of chat events, padded with spaces, which
// JSON allows between tokens.
func jsonPayload(size int, seed uint64) []byte {
	r := newRand(seed)
	z := rand.NewZipf(r, 1.1, 2, uint64(len(words)-1))
	out := append(make([]byte, 0, size+1024), `{"events":[`...)
	for seq := 0; ; seq++ {
		mark := len(out)
		if seq > 0 {
			out = append(out, ',')
		}
		out = jsonEvent(out, r, z, seq, 60+r.IntN(120))
		if len(out)+2 > size {
			out = out[:mark]
			break
		}
	}
	for len(out)+2 < size {
		out = append(out, ' ')
	}
	return append(out, "]}"...)
}

// jsonStream returns n distinct JSON messages of about size bytes each, as
// consecutive messages on one connection would be: the same shape, other
// values. Context takeover earns its memory on such streams.
func jsonStream(n, size int, seed uint64) [][]byte {
	r := newRand(seed)
	z := rand.NewZipf(r, 1.1, 2, uint64(len(words)-1))
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = jsonEvent(nil, r, z, i, max(size-330, 16))
	}
	return msgs
}

// randomPayload returns size incompressible bytes.
func randomPayload(size int, seed uint64) []byte {
	r := newRand(seed)
	out := make([]byte, size)
	for i := range out {
		out[i] = byte(r.Uint32())
	}
	return out
}

// corpus is the benchmark set the issue names.
var corpus = []struct {
	name string
	data []byte
}{
	{"json-1KiB", jsonPayload(1<<10, 1)},
	{"json-16KiB", jsonPayload(16<<10, 2)},
	{"text-1MiB", textPayload(1<<20, 3)},
	{"random-4KiB", randomPayload(4<<10, 4)},
}
