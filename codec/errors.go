package codec

import (
	"errors"
	"strconv"

	"github.com/gobwas/ws"
)

// CloseError is a reason to fail a WebSocket connection: the status code to
// put in the close frame (RFC 6455 §7.4.1) and a short reason. The errors the
// codec returns on the per-frame path are preallocated *CloseError values, so
// returning one allocates nothing.
type CloseError struct {
	Code   ws.StatusCode
	Reason string
}

func (e *CloseError) Error() string {
	return "codec: " + e.Reason + " (close " + strconv.Itoa(int(e.Code)) + ")"
}

// CloseCode returns the close status carried by err, or 0 if err carries none.
func CloseCode(err error) ws.StatusCode {
	// errors.AsType, unlike errors.As, does not move its target to the heap.
	if ce, ok := errors.AsType[*CloseError](err); ok {
		return ce.Code
	}
	return 0
}

// Frame-level protocol errors (RFC 6455 §5.2, §5.4, §5.5).
var (
	ErrReservedBits           = &CloseError{ws.StatusProtocolError, "reserved bits set without a negotiated extension"}
	ErrReservedOpcode         = &CloseError{ws.StatusProtocolError, "reserved opcode"}
	ErrControlFragmented      = &CloseError{ws.StatusProtocolError, "fragmented control frame"}
	ErrControlTooLong         = &CloseError{ws.StatusProtocolError, "control frame payload over 125 bytes"}
	ErrLengthOverflow         = &CloseError{ws.StatusProtocolError, "64-bit payload length with the most significant bit set"}
	ErrLengthNotMinimal       = &CloseError{ws.StatusProtocolError, "payload length not in its minimal encoding"}
	ErrUnmasked               = &CloseError{ws.StatusProtocolError, "unmasked client frame"}
	ErrMasked                 = &CloseError{ws.StatusProtocolError, "masked server frame"}
	ErrContinuationUnexpected = &CloseError{ws.StatusProtocolError, "continuation frame without a message in progress"}
	ErrContinuationExpected   = &CloseError{ws.StatusProtocolError, "new data frame while a fragmented message is in progress"}
	ErrBadClosePayload        = &CloseError{ws.StatusProtocolError, "close payload of one byte"}
	ErrBadCloseCode           = &CloseError{ws.StatusProtocolError, "invalid close code"}
	ErrInvalidUTF8            = &CloseError{ws.StatusInvalidFramePayloadData, "invalid UTF-8 in text message"}
	ErrCloseReasonUTF8        = &CloseError{ws.StatusInvalidFramePayloadData, "invalid UTF-8 in close reason"}
	ErrMessageTooBig          = &CloseError{ws.StatusMessageTooBig, "message too big"}
)

// permessage-deflate errors (RFC 7692 §6.1, §6.2). Data that does not
// inflate gets 1007, as node's ws sends: the payload is not consistent with
// the message's framing.
var (
	ErrCompressedControl      = &CloseError{ws.StatusProtocolError, "RSV1 on a control frame"}
	ErrCompressedContinuation = &CloseError{ws.StatusProtocolError, "RSV1 on a continuation frame"}
	ErrCompressedData         = &CloseError{ws.StatusInvalidFramePayloadData, "invalid compressed data"}
)
