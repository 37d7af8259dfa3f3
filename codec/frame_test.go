package codec

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/gobwas/ws"
)

// frameCase is one row of the table shared by the encoder and decoder tests.
type frameCase struct {
	name string
	raw  []byte // the header on the wire
	role Role
	rsv  byte // reserved bits allowed by a negotiated extension

	// h is what ParseHeader returns on success and, unless noEncode, what
	// PutHeader encodes to raw (error cases included: tests build bad
	// frames with it).
	h        ws.Header
	noEncode bool // raw is not PutHeader's encoding: non-minimal or overflowing lengths

	err   error
	errAt int // shortest prefix that reports err; 0 means 2, the first two bytes
}

var mask = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// m appends the test masking key to header bytes.
func m(b ...byte) []byte { return append(b, mask[:]...) }

// frameCases returns the shared table. Bits are written out: FIN RSV1 RSV2
// RSV3 opcode in the first byte, MASK and the 7-bit length in the second.
func frameCases() []frameCase {
	cs := []frameCase{
		{
			name: "text len 0 masked",
			raw:  m(0b1000_0001, 0b1000_0000),
			h:    ws.Header{Fin: true, OpCode: ws.OpText, Masked: true, Mask: mask},
		},
		{
			name: "text len 5 unmasked client",
			raw:  []byte{0b1000_0001, 0b0000_0101},
			role: RoleClient,
			h:    ws.Header{Fin: true, OpCode: ws.OpText, Length: 5},
		},
		{
			name: "binary len 125",
			raw:  m(0b1000_0010, 0b1111_1101),
			h:    ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 125, Masked: true, Mask: mask},
		},
		{
			name: "binary len 126 uses 16-bit form",
			raw:  m(0b1000_0010, 0b1111_1110, 0x00, 0x7e),
			h:    ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 126, Masked: true, Mask: mask},
		},
		{
			name: "binary len 127 uses 16-bit form",
			raw:  m(0b1000_0010, 0b1111_1110, 0x00, 0x7f),
			h:    ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 127, Masked: true, Mask: mask},
		},
		{
			name: "binary len 65535",
			raw:  m(0b1000_0010, 0b1111_1110, 0xff, 0xff),
			h:    ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 65535, Masked: true, Mask: mask},
		},
		{
			name: "binary len 65536 uses 64-bit form",
			raw:  m(0b1000_0010, 0b1111_1111, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00),
			h:    ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 65536, Masked: true, Mask: mask},
		},
		{
			name: "binary len 2^63-1",
			raw:  m(0b1000_0010, 0b1111_1111, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
			h:    ws.Header{Fin: true, OpCode: ws.OpBinary, Length: math.MaxInt64, Masked: true, Mask: mask},
		},
		{
			name: "binary len 2^63-1 unmasked client",
			raw:  []byte{0b1000_0010, 0b0111_1111, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
			role: RoleClient,
			h:    ws.Header{Fin: true, OpCode: ws.OpBinary, Length: math.MaxInt64},
		},
		{
			name: "text first fragment",
			raw:  m(0b0000_0001, 0b1000_0011),
			h:    ws.Header{OpCode: ws.OpText, Length: 3, Masked: true, Mask: mask},
		},
		{
			name: "continuation not final",
			raw:  m(0b0000_0000, 0b1000_0011),
			h:    ws.Header{OpCode: ws.OpContinuation, Length: 3, Masked: true, Mask: mask},
		},
		{
			name: "continuation final",
			raw:  m(0b1000_0000, 0b1000_0000),
			h:    ws.Header{Fin: true, OpCode: ws.OpContinuation, Masked: true, Mask: mask},
		},
		{
			name: "close len 2",
			raw:  m(0b1000_1000, 0b1000_0010),
			h:    ws.Header{Fin: true, OpCode: ws.OpClose, Length: 2, Masked: true, Mask: mask},
		},
		{
			name: "ping len 125",
			raw:  m(0b1000_1001, 0b1111_1101),
			h:    ws.Header{Fin: true, OpCode: ws.OpPing, Length: 125, Masked: true, Mask: mask},
		},
		{
			name: "pong len 0 client",
			raw:  []byte{0b1000_1010, 0b0000_0000},
			role: RoleClient,
			h:    ws.Header{Fin: true, OpCode: ws.OpPong},
		},
		{
			name: "rsv1 allowed",
			raw:  m(0b1100_0001, 0b1000_0001),
			rsv:  Rsv1,
			h:    ws.Header{Fin: true, Rsv: Rsv1, OpCode: ws.OpText, Length: 1, Masked: true, Mask: mask},
		},
		{
			name: "all rsv allowed",
			raw:  m(0b1111_0010, 0b1000_0001),
			rsv:  Rsv1 | Rsv2 | Rsv3,
			h:    ws.Header{Fin: true, Rsv: Rsv1 | Rsv2 | Rsv3, OpCode: ws.OpBinary, Length: 1, Masked: true, Mask: mask},
		},

		// Protocol errors (RFC 6455 §5.2, §5.5).
		{
			name: "rsv1 not negotiated",
			raw:  m(0b1100_0001, 0b1000_0001),
			h:    ws.Header{Fin: true, Rsv: Rsv1, OpCode: ws.OpText, Length: 1, Masked: true, Mask: mask},
			err:  ErrReservedBits,
		},
		{
			name: "rsv2 with only rsv1 allowed",
			raw:  m(0b1010_0001, 0b1000_0001),
			rsv:  Rsv1,
			h:    ws.Header{Fin: true, Rsv: Rsv2, OpCode: ws.OpText, Length: 1, Masked: true, Mask: mask},
			err:  ErrReservedBits,
		},
		{
			name: "rsv3 with only rsv1 allowed",
			raw:  m(0b1001_0001, 0b1000_0001),
			rsv:  Rsv1,
			h:    ws.Header{Fin: true, Rsv: Rsv3, OpCode: ws.OpText, Length: 1, Masked: true, Mask: mask},
			err:  ErrReservedBits,
		},
		{
			name: "fragmented ping",
			raw:  m(0b0000_1001, 0b1000_0000),
			h:    ws.Header{OpCode: ws.OpPing, Masked: true, Mask: mask},
			err:  ErrControlFragmented,
		},
		{
			name: "fragmented close",
			raw:  m(0b0000_1000, 0b1000_0000),
			h:    ws.Header{OpCode: ws.OpClose, Masked: true, Mask: mask},
			err:  ErrControlFragmented,
		},
		{
			name: "ping len 126 in 16-bit form",
			raw:  m(0b1000_1001, 0b1111_1110, 0x00, 0x7e),
			h:    ws.Header{Fin: true, OpCode: ws.OpPing, Length: 126, Masked: true, Mask: mask},
			err:  ErrControlTooLong,
		},
		{
			name: "close len 65536 in 64-bit form",
			raw:  m(0b1000_1000, 0b1111_1111, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00),
			h:    ws.Header{Fin: true, OpCode: ws.OpClose, Length: 65536, Masked: true, Mask: mask},
			err:  ErrControlTooLong,
		},
		{
			name:     "pong len 125 in 16-bit form",
			raw:      m(0b1000_1010, 0b1111_1110, 0x00, 0x7d),
			noEncode: true,
			err:      ErrControlTooLong,
		},
		{
			name:     "64-bit length with MSB set",
			raw:      m(0b1000_0010, 0b1111_1111, 0x80, 0, 0, 0, 0, 0, 0, 0),
			noEncode: true,
			err:      ErrLengthOverflow,
			errAt:    10,
		},
		{
			name:     "64-bit length all ones",
			raw:      []byte{0b1000_0010, 0b0111_1111, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
			role:     RoleClient,
			noEncode: true,
			err:      ErrLengthOverflow,
			errAt:    10,
		},
		{
			name:     "16-bit length 0",
			raw:      m(0b1000_0010, 0b1111_1110, 0x00, 0x00),
			noEncode: true,
			err:      ErrLengthNotMinimal,
			errAt:    4,
		},
		{
			name:     "16-bit length 125",
			raw:      m(0b1000_0010, 0b1111_1110, 0x00, 0x7d),
			noEncode: true,
			err:      ErrLengthNotMinimal,
			errAt:    4,
		},
		{
			name:     "64-bit length 126",
			raw:      m(0b1000_0010, 0b1111_1111, 0, 0, 0, 0, 0, 0, 0x00, 0x7e),
			noEncode: true,
			err:      ErrLengthNotMinimal,
			errAt:    10,
		},
		{
			name:     "64-bit length 65535",
			raw:      m(0b1000_0010, 0b1111_1111, 0, 0, 0, 0, 0, 0, 0xff, 0xff),
			noEncode: true,
			err:      ErrLengthNotMinimal,
			errAt:    10,
		},
		{
			name: "unmasked in server role",
			raw:  []byte{0b1000_0001, 0b0000_0101},
			h:    ws.Header{Fin: true, OpCode: ws.OpText, Length: 5},
			err:  ErrUnmasked,
		},
		{
			name: "masked in client role",
			raw:  m(0b1000_0001, 0b1000_0101),
			role: RoleClient,
			h:    ws.Header{Fin: true, OpCode: ws.OpText, Length: 5, Masked: true, Mask: mask},
			err:  ErrMasked,
		},
	}
	// Reserved opcodes: 0x3-0x7 for data frames, 0xB-0xF for control frames.
	for _, op := range []byte{0x3, 0x4, 0x5, 0x6, 0x7, 0xb, 0xc, 0xd, 0xe, 0xf} {
		cs = append(cs, frameCase{
			name: fmt.Sprintf("reserved opcode %#x", op),
			raw:  m(0b1000_0000|op, 0b1000_0000),
			h:    ws.Header{Fin: true, OpCode: ws.OpCode(op), Masked: true, Mask: mask},
			err:  ErrReservedOpcode,
		})
	}
	return cs
}

func TestParseHeader(t *testing.T) {
	for _, tc := range frameCases() {
		t.Run(tc.name, func(t *testing.T) {
			// Payload bytes after the header must not change the result.
			in := append(append([]byte(nil), tc.raw...), 0xaa, 0xbb)
			h, n, err := ParseHeader(in, tc.role, tc.rsv)
			if tc.err != nil {
				if !errors.Is(err, tc.err) || n != 0 {
					t.Fatalf("ParseHeader = n %d, err %v; want n 0, err %v", n, err, tc.err)
				}
				return
			}
			if err != nil || n != len(tc.raw) {
				t.Fatalf("ParseHeader = n %d, err %v; want n %d, nil", n, err, len(tc.raw))
			}
			if h != tc.h {
				t.Fatalf("ParseHeader header = %+v; want %+v", h, tc.h)
			}
		})
	}
}

// TestParseHeaderPrefixes feeds every prefix of each header: a valid header
// needs more bytes until it is whole (n == 0, nil error); an invalid one
// needs more bytes until the prefix holds the offending field, and fails
// from then on.
func TestParseHeaderPrefixes(t *testing.T) {
	for _, tc := range frameCases() {
		t.Run(tc.name, func(t *testing.T) {
			errAt := len(tc.raw) + 1
			if tc.err != nil {
				errAt = max(tc.errAt, 2)
			}
			for k := 0; k < len(tc.raw); k++ {
				_, n, err := ParseHeader(tc.raw[:k], tc.role, tc.rsv)
				switch {
				case k < errAt && (n != 0 || err != nil):
					t.Fatalf("prefix %d: n %d, err %v; want 0, nil", k, n, err)
				case k >= errAt && (n != 0 || !errors.Is(err, tc.err)):
					t.Fatalf("prefix %d: n %d, err %v; want 0, %v", k, n, err, tc.err)
				}
			}
		})
	}
}

func TestPutHeader(t *testing.T) {
	for _, tc := range frameCases() {
		if tc.noEncode {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			var b [MaxHeaderSize]byte
			n := PutHeader(b[:], tc.h)
			if !bytes.Equal(b[:n], tc.raw) {
				t.Fatalf("PutHeader = %08b; want %08b", b[:n], tc.raw)
			}
			if got := AppendHeader([]byte{0xee}, tc.h); !bytes.Equal(got[1:], tc.raw) || got[0] != 0xee {
				t.Fatalf("AppendHeader = %08b; want ee + %08b", got, tc.raw)
			}
			if got := HeaderSize(tc.h); got != len(tc.raw) {
				t.Fatalf("HeaderSize = %d; want %d", got, len(tc.raw))
			}
		})
	}
}

// TestParseHeaderMatchesGobwas reads each valid header with gobwas/ws as an
// independent decoder.
func TestParseHeaderMatchesGobwas(t *testing.T) {
	for _, tc := range frameCases() {
		if tc.err != nil {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			h, err := ws.ReadHeader(bytes.NewReader(tc.raw))
			if err != nil || h != tc.h {
				t.Fatalf("ws.ReadHeader = %+v, %v; want %+v", h, err, tc.h)
			}
		})
	}
}

func TestAppendFrame(t *testing.T) {
	for _, size := range []int{0, 1, 125, 126, 65535, 65536} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			payload := bytes.Repeat([]byte("xyz"), size/3+1)[:size]
			keep := append([]byte(nil), payload...)

			frame := AppendFrame([]byte("prefix"), ws.OpBinary, true, payload)
			h, n, err := ParseHeader(frame[6:], RoleClient, 0)
			if err != nil || n == 0 || h.Length != int64(size) || !h.Fin || h.OpCode != ws.OpBinary {
				t.Fatalf("AppendFrame: ParseHeader = %+v, %d, %v", h, n, err)
			}
			if !bytes.Equal(frame[6+n:], payload) {
				t.Fatal("AppendFrame payload differs")
			}

			key := [4]byte{1, 2, 3, 4}
			frame = AppendFrameMasked(nil, ws.OpText, false, payload, key)
			h, n, err = ParseHeader(frame, RoleServer, 0)
			if err != nil || n == 0 || h.Length != int64(size) || h.Fin || h.Mask != key {
				t.Fatalf("AppendFrameMasked: ParseHeader = %+v, %d, %v", h, n, err)
			}
			Cipher(frame[n:], h.Mask, 0)
			if !bytes.Equal(frame[n:], payload) {
				t.Fatal("AppendFrameMasked payload does not unmask to the input")
			}
			if !bytes.Equal(payload, keep) {
				t.Fatal("AppendFrameMasked modified its payload argument")
			}
		})
	}
}
