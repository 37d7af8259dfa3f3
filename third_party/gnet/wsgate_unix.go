// Copyright (c) 2026 The wsgate Authors. Licensed under the Apache License,
// Version 2.0, as the rest of this copy of gnet. See PATCH.md.

//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package gnet

import (
	"errors"
	"net"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	errorx "github.com/panjf2000/gnet/v2/pkg/errors"
	"github.com/panjf2000/gnet/v2/pkg/netpoll"
	"github.com/panjf2000/gnet/v2/pkg/queue"
)

// This file is the wsgate patch of gnet v2.10.0 (see PATCH.md): pausing the
// reads of one connection, stopping an engine's accepts while it keeps
// serving the connections it has, and holding a connection in one word.

// PauseRead stops reading from the connection until ResumeRead: its read
// interest is taken out of the poller, so the kernel's receive buffer fills
// and TCP flow control slows the peer down. Bytes already read stay in the
// inbound buffer, and OnTraffic is not called for the connection while it is
// paused. The write paths keep the pause (netpoll.PollAttachment.ReadPaused);
// the poller still reports errors and hangups, which close the connection
// as before. Call it on the connection's event loop. Edge-triggered I/O and
// datagram connections are not supported (errors.ErrUnsupportedOp).
func (c *conn) PauseRead() error {
	return c.setReadPaused(true)
}

// ResumeRead undoes PauseRead. Bytes that were already in the inbound buffer
// raise no new OnTraffic: the caller handles them itself (or calls Wake).
func (c *conn) ResumeRead() error {
	return c.setReadPaused(false)
}

// ReadPaused reports whether the connection's reads are paused.
func (c *conn) ReadPaused() bool {
	return c.pollAttachment.ReadPaused
}

func (c *conn) setReadPaused(paused bool) error {
	if c.isDatagram || c.loop.engine.opts.EdgeTriggeredIO {
		return errorx.ErrUnsupportedOp
	}
	if !c.opened {
		return net.ErrClosed
	}
	if c.pollAttachment.ReadPaused == paused {
		return nil
	}
	err := c.loop.poller.SetReadPaused(&c.pollAttachment, paused, !c.outboundBuffer.IsEmpty())
	if err != nil {
		c.pollAttachment.ReadPaused = !paused // the poller did not change
	}
	return err
}

// StopAccepting stops accepting new connections on every listener of the
// engine, for a graceful drain: each listener is taken out of its poller and
// shut down with shutdown(2). On Linux that also takes it out of its
// SO_REUSEPORT group, so the kernel hands new connections to the other
// sockets of the group (another process on the same port); without one,
// new connections are refused. Connections already accepted are served as
// before. It returns once every listener is shut down, or with the errors
// met. Called from OnBoot, it would wait for itself.
func (e Engine) StopAccepting() error {
	if err := e.Validate(); err != nil {
		return err
	}
	eng := e.eng
	// The engine's loops are set up after OnBoot: wait for them.
	<-eng.booted
	if eng.isShutdown() {
		return errorx.ErrEngineInShutdown
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	// On the loop that polls the listeners, so that no accept of theirs
	// can run once they are shut down (it would fail and stop the loop).
	stop := func(p *netpoll.Poller, lns map[int]*listener) {
		wg.Add(1)
		err := p.Trigger(queue.HighPriority, func(any) error {
			defer wg.Done()
			for _, ln := range lns {
				if ln.fd < 0 || ln.network == "udp" || ln.network == "udp4" || ln.network == "udp6" {
					continue
				}
				_ = p.Delete(ln.fd) // ENOENT if stopped before
				if err := unix.Shutdown(ln.fd, unix.SHUT_RD); err != nil && err != unix.ENOTCONN {
					fail(err)
				}
			}
			return nil
		}, nil)
		if err != nil {
			wg.Done()
			fail(err)
		}
	}
	if eng.ingress != nil {
		stop(eng.ingress.poller, eng.listeners)
	} else {
		eng.eventLoops.iterate(func(_ int, el *eventloop) bool {
			stop(el.poller, el.listeners)
			return true
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ReadGate is an optional interface of an EventHandler. When the handler
// implements it, AllowRead is asked before each read(2) of a connection;
// if it answers false, the read is not made and the connection's event is
// done. The handler should then pause the connection (PauseRead) in
// AllowRead, or a level-triggered poller reports it again at once. It runs
// on the connection's event loop.
//
// wsgate uses it to stop reading before memory it cannot spare arrives
// (its memory budget), rather than after: with one read buffer per event
// loop, each read may bring up to that buffer's size.
type ReadGate interface {
	AllowRead(c Conn) bool
}

// ConnPointer returns c as one pointer, for a caller that keeps a
// connection for each of very many clients and cannot spare an interface's
// two words; ConnAt turns it back into the Conn. It returns nil if c is nil
// or not one of gnet's own connections (a test's fake, say). The pointer
// keeps the connection alive as the Conn would.
func ConnPointer(c Conn) unsafe.Pointer {
	if cc, ok := c.(*conn); ok && cc != nil {
		return unsafe.Pointer(cc)
	}
	return nil
}

// ConnAt returns the Conn that ConnPointer returned p for, or nil if p is
// nil. p must come from ConnPointer. It allocates nothing: a pointer fits
// in an interface as it is.
func ConnAt(p unsafe.Pointer) Conn {
	if p == nil {
		return nil
	}
	return (*conn)(p)
}
