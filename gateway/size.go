package gateway

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseSize parses a byte size: a plain number of bytes ("1048576") or a
// number with a binary unit: B, KiB, MiB, GiB (also K/KB, M/MB, G/GB, read
// as binary units, case-insensitive).
func ParseSize(s string) (int, error) {
	t := strings.TrimSpace(s)
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') {
		i--
	}
	num, unit := strings.TrimSpace(t[:i]), strings.ToLower(strings.TrimSpace(t[i:]))
	var mult int64
	switch unit {
	case "", "b":
		mult = 1
	case "k", "kb", "kib":
		mult = 1 << 10
	case "m", "mb", "mib":
		mult = 1 << 20
	case "g", "gb", "gib":
		mult = 1 << 30
	default:
		return 0, fmt.Errorf("gateway: size %q: unknown unit %q (use B, KiB, MiB or GiB)", s, t[i:])
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("gateway: size %q is not a non-negative number of bytes", s)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("gateway: size %q is too large", s)
	}
	return int(n * mult), nil
}
