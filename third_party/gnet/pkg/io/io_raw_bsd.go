//go:build darwin || dragonfly || freebsd || netbsd || openbsd

// wsgate patch: on the BSDs the raw variants are the plain calls.

package io

import "golang.org/x/sys/unix"

// RawRead is unix.Read.
func RawRead(fd int, p []byte) (int, error) { return unix.Read(fd, p) }

// RawWrite is unix.Write.
func RawWrite(fd int, p []byte) (int, error) { return unix.Write(fd, p) }

// RawWritev is Writev.
func RawWritev(fd int, iov [][]byte) (int, error) { return Writev(fd, iov) }
