package gst

import (
	"bufio"
	"encoding/gob"
	"errors"
	"fmt"
	"github.com/kurento-go/kms/internal/sockbuf"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	wp "github.com/kurento-go/kms/gst/workerproto"
	"golang.org/x/sys/unix"
)

type request = wp.Request

const opHasElement = wp.OpHasElement

// workerEnv marks a process started as a worker: "CTLFD,MEDIAFD,DATALIMIT".
const workerEnv = "KMS_GST_WORKER"

// Timeouts: a worker that does not greet or answer in time is killed as unresponsive.
const (
	helloTimeout = 30 * time.Second
	callTimeout  = 30 * time.Second
)

// mediaBuffer is the socket buffer asked for on the media socket (root may get it past wmem_max).
const mediaBuffer = 4 << 20

// worker is the server's side of one worker process.
type worker struct {
	pid     int
	cmd     *exec.Cmd
	version string
	started time.Time
	limits  limits

	ctl   *net.UnixConn
	enc   *gob.Encoder
	encMu sync.Mutex
	media *net.UnixConn
	raw   syscall.RawConn

	mu      sync.Mutex
	nextID  uint64
	handles uint32
	pending map[uint64]chan wp.Reply
	pipes   map[uint32]*Pipeline
	sinks   map[uint32]*sink
	dead    *Error // set once the process is gone unexpectedly
	gone    bool   // the process is gone (for any reason)

	stopping   atomic.Bool            // an orderly stop: its end is no crash
	killReason atomic.Pointer[string] // set before the supervisor kills it
	allocFail  atomic.Bool            // its stderr reported a failed allocation

	events  eventQueue
	readers sync.WaitGroup // control and media readers
	done    chan struct{}  // closed once the process is reaped and everything failed over
}

// spawn starts a worker process and waits for its greeting.
func spawn(lim limits) (*worker, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ctlPair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	mediaPair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		unix.Close(ctlPair[0])
		unix.Close(ctlPair[1])
		return nil, err
	}
	for _, fd := range mediaPair {
		sockbuf.SetFD(fd, mediaBuffer, mediaBuffer)
	}
	ctlChild, mediaChild := os.NewFile(uintptr(ctlPair[1]), "ctl"), os.NewFile(uintptr(mediaPair[1]), "media")
	ctlFile, mediaFile := os.NewFile(uintptr(ctlPair[0]), "ctl"), os.NewFile(uintptr(mediaPair[0]), "media")
	defer ctlChild.Close()
	defer mediaChild.Close()
	defer ctlFile.Close()
	defer mediaFile.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer errW.Close()

	cmd := exec.Command(exe)
	cmd.Env = append(childEnv(), fmt.Sprintf("%s=3,4,%d", workerEnv, lim.memory))
	cmd.ExtraFiles = []*os.File{ctlChild, mediaChild}
	cmd.Stdout, cmd.Stderr = errW, errW
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		errR.Close()
		return nil, fmt.Errorf("gst: cannot start a GStreamer worker: %w", err)
	}
	w := &worker{pid: cmd.Process.Pid, cmd: cmd, started: start, limits: lim, pending: map[uint64]chan wp.Reply{},
		pipes: map[uint32]*Pipeline{}, sinks: map[uint32]*sink{}, done: make(chan struct{})}
	w.events.init()
	c1, err1 := net.FileConn(ctlFile)
	c2, err2 := net.FileConn(mediaFile)
	if err := errors.Join(err1, err2); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		errR.Close()
		return nil, err
	}
	w.ctl, w.media = c1.(*net.UnixConn), c2.(*net.UnixConn)
	w.raw, _ = w.media.SyscallConn()
	w.enc = gob.NewEncoder(w.ctl)
	dec := gob.NewDecoder(w.ctl)

	hello := make(chan error, 1)
	go w.logStderr(errR)
	w.readers.Add(2)
	go w.readControl(dec, hello)
	go w.readMedia()
	go w.events.run()
	go w.supervise()
	select {
	case err = <-hello:
	case <-time.After(helloTimeout):
		err = errors.New("no greeting")
	}
	if err != nil {
		w.kill("did not start")
		<-w.done
		return nil, fmt.Errorf("gst: GStreamer worker failed to start: %v", err)
	}
	spawnTime.Store(int64(time.Since(start)))
	register(w)
	return w, nil
}

// childEnv is the server's environment without worker markers (GST_* and the rest pass through).
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, workerEnv+"=") {
			env = append(env, kv)
		}
	}
	return env
}

// logStderr copies the worker's output to the log, a line at a time.
func (w *worker) logStderr(r *os.File) {
	defer r.Close()
	l := log()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64<<10)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "failed to allocate") {
			w.allocFail.Store(true)
		}
		l.Warn("GStreamer worker [" + strconv.Itoa(w.pid) + "]: " + line)
	}
}

func (w *worker) readControl(dec *gob.Decoder, hello chan<- error) {
	defer w.readers.Done()
	greeted := false
	for {
		var f wp.Frame
		if err := dec.Decode(&f); err != nil {
			if !greeted {
				hello <- err
			}
			return
		}
		switch {
		case f.Reply != nil && f.Reply.Hello:
			w.version, greeted = f.Reply.Str, true
			hello <- nil
		case f.Reply != nil:
			w.mu.Lock()
			ch := w.pending[f.Reply.ID]
			delete(w.pending, f.Reply.ID)
			w.mu.Unlock()
			if ch != nil {
				ch <- *f.Reply
			}
		case f.Event != nil:
			w.mu.Lock()
			p := w.pipes[f.Event.Pipe]
			w.mu.Unlock()
			if p != nil {
				w.events.push(p, f.Event.Msg)
			}
		}
	}
}

func (w *worker) readMedia() {
	defer w.readers.Done()
	buf := make([]byte, wp.MaxPacket)
	frame := w.mediaFrame // bound once: a datagram allocates nothing
	for {
		n, err := w.media.Read(buf)
		if err != nil {
			return
		}
		wp.Split(buf[:n], frame)
	}
}

// mediaFrame gives a frame from the worker to its sink.
func (w *worker) mediaFrame(h wp.Header, payload []byte) {
	w.mu.Lock()
	s := w.sinks[h.Handle]
	w.mu.Unlock()
	if s == nil {
		return
	}
	switch h.Kind {
	case wp.KindSink:
		s.deliver(h, payload)
	case wp.KindSinkEnd:
		s.end()
	}
}

// streamSocket makes the socket of appsrc handle: the worker's end goes to it over the media socket
// (before the request that names the appsrc, which waits for it), the other end is returned.
func (w *worker) streamSocket(handle uint32) (*net.UnixConn, error) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	for _, fd := range pair {
		sockbuf.SetFD(fd, mediaBuffer, mediaBuffer)
	}
	var hdr [wp.HeaderSize]byte
	wp.Header{Kind: wp.KindSocket, Flags: wp.First | wp.Last, Handle: handle, PTS: wp.NoPTS}.Put(hdr[:])
	rights := unix.UnixRights(pair[1])
	var serr error
	err = w.raw.Write(func(fd uintptr) bool {
		serr = unix.Sendmsg(int(fd), hdr[:], rights, nil, 0)
		return serr != unix.EAGAIN
	})
	unix.Close(pair[1])
	if err = errors.Join(err, serr); err != nil {
		unix.Close(pair[0])
		return nil, fmt.Errorf("%w: cannot pass an appsrc's socket to the worker: %v", ErrClosed, err)
	}
	f := os.NewFile(uintptr(pair[0]), "appsrc")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, err
	}
	return c.(*net.UnixConn), nil
}

// errWorkerGone is what calls on a dead worker's objects return.
type errWorkerGone struct{ cause *Error }

func (e *errWorkerGone) Error() string   { return ErrClosed.Error() + ": " + e.cause.Message }
func (e *errWorkerGone) Unwrap() []error { return []error{ErrClosed, ErrWorkerCrashed} }

// call sends a request and waits for its reply; an error answer comes back as an error.
func (w *worker) call(r wp.Request) (wp.Reply, error) {
	ch := make(chan wp.Reply, 1)
	w.mu.Lock()
	if w.gone {
		err := w.goneErr()
		w.mu.Unlock()
		return wp.Reply{}, err
	}
	w.nextID++
	r.ID = w.nextID
	w.pending[r.ID] = ch
	w.mu.Unlock()
	w.encMu.Lock()
	err := w.enc.Encode(&r)
	w.encMu.Unlock()
	if err != nil {
		w.mu.Lock()
		delete(w.pending, r.ID)
		w.mu.Unlock()
		<-w.done
		return wp.Reply{}, w.goneErr()
	}
	timer := time.NewTimer(callTimeout)
	defer timer.Stop()
	select {
	case rep := <-ch:
		return rep, rep.Err.Err()
	case <-w.done:
		return wp.Reply{}, w.goneErr()
	case <-timer.C:
		w.kill("unresponsive for " + callTimeout.String())
		<-w.done
		return wp.Reply{}, w.goneErr()
	}
}

func (w *worker) goneErr() error {
	if w.dead != nil {
		return &errWorkerGone{cause: w.dead}
	}
	return ErrClosed
}

// handle numbers a new pipeline, appsrc, sink or overlay of this worker.
func (w *worker) handle() uint32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.handles++
	return w.handles
}

// kill ends the process with SIGKILL, recording why for the report.
func (w *worker) kill(reason string) {
	w.killReason.CompareAndSwap(nil, &reason)
	w.cmd.Process.Kill()
}

// stop ends an idle worker in order: it exits when its control socket closes.
func (w *worker) stop() {
	w.stopping.Store(true)
	w.ctl.CloseWrite()
	select {
	case <-w.done:
	case <-time.After(5 * time.Second):
		w.cmd.Process.Kill()
		<-w.done
	}
}

// supervise reaps the process and, unless it was stopped, fails its pipelines over: a MessageError
// each, sinks ended, calls answered with errors.
func (w *worker) supervise() {
	stopWatch := w.watch()
	err := w.cmd.Wait()
	stopWatch()
	w.ctl.Close()
	w.media.Close()
	w.readers.Wait()

	crash, reason := w.describeEnd(err)
	w.mu.Lock()
	w.gone = true
	if crash != nil {
		w.dead = crash
	}
	pending := w.pending
	w.pending = map[uint64]chan wp.Reply{}
	pipes, sinks := w.pipes, w.sinks
	w.mu.Unlock()
	for _, ch := range pending {
		ch <- wp.Reply{Err: wp.EncodeError(w.goneErr())}
	}
	if crash != nil {
		countCrash(reason)
		log().Error("GStreamer worker died", "workerPid", w.pid, "reason", crash.Message, "pipelines", len(pipes))
		for _, p := range pipes {
			w.events.push(p, Message{Type: MessageError, Source: "worker", Err: crash})
		}
	}
	for _, s := range sinks {
		s.end()
	}
	w.events.close()
	unregister(w)
	close(w.done)
}

// describeEnd tells why the process ended: nil for an orderly stop, else its Error and the reason
// label of the crash counter.
func (w *worker) describeEnd(waitErr error) (*Error, string) {
	if w.stopping.Load() && w.killReason.Load() == nil {
		return nil, ""
	}
	e := &Error{Domain: DomainWorker, Code: 1, Source: "worker"}
	reason := "exit"
	var ee *exec.ExitError
	status := "exited"
	if errors.As(waitErr, &ee) {
		status = ee.String()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			reason = "signal"
		}
	}
	switch {
	case w.killReason.Load() != nil:
		e.Code = 2
		why := *w.killReason.Load()
		e.Message = "GStreamer worker killed: " + why
		reason = limitLabel(why)
	case w.allocFail.Load() && w.limits.memory > 0:
		e.Code = 2
		e.Message = fmt.Sprintf("GStreamer worker killed: memory limit %s exceeded (%s)", sizeText(w.limits.memory), status)
		reason = "memory_limit"
	default:
		e.Message = "GStreamer worker crashed: " + status
	}
	e.Debug = fmt.Sprintf("worker pid %d", w.pid)
	return e, reason
}

// eventQueue hands bus messages to the pipelines' callbacks on a goroutine of its own, so that a
// callback may call the pipeline (its reply comes on the control reader).
type eventQueue struct {
	mu     sync.Mutex
	items  []queued
	wake   chan struct{}
	closed bool
}

type queued struct {
	p   *Pipeline
	msg Message
}

func (q *eventQueue) init() { q.wake = make(chan struct{}, 1) }

func (q *eventQueue) push(p *Pipeline, m Message) {
	q.mu.Lock()
	q.items = append(q.items, queued{p, m})
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *eventQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *eventQueue) run() {
	for range q.wake {
		for {
			q.mu.Lock()
			if len(q.items) == 0 {
				closed := q.closed
				q.mu.Unlock()
				if closed {
					return
				}
				break
			}
			it := q.items[0]
			q.items = q.items[1:]
			q.mu.Unlock()
			it.p.deliver(it.msg)
		}
	}
}
