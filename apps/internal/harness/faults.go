package harness

import "syscall"

// Kill ends the process with SIGKILL, as a crash or the OOM killer would
// (no graceful shutdown), and waits until it is gone. The harness counts it
// as stopped on purpose (see Unexpected).
func (p *Proc) Kill() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Freeze stops the process with SIGSTOP: it keeps its sockets but answers
// nothing, as a process stuck in a long GC pause or on a frozen VM.
func (p *Proc) Freeze() error { return p.cmd.Process.Signal(syscall.SIGSTOP) }

// Thaw resumes a frozen process (SIGCONT).
func (p *Proc) Thaw() error { return p.cmd.Process.Signal(syscall.SIGCONT) }

// Unexpected reports whether the process ended without the harness or the
// test stopping it: a crash, or an exit nobody asked for.
func (p *Proc) Unexpected() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.Exited() && !p.stopped
}
