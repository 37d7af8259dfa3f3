//go:build !linux

package codec

import "testing"

type cpuMeter struct{}

func startCPU(*testing.B) *cpuMeter { return &cpuMeter{} }
func (*cpuMeter) report(*testing.B) {}
