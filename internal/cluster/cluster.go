// Package cluster is `app run`: the suite's process tree without systemd.
//
// It does what app.socket, the units and systemd do in production: opens
// the listening socket once and hands the same fd to every worker with the
// systemd protocol (LISTEN_FDS/LISTEN_PID), starts the primary, restarts
// children that die, and stops them all gracefully on SIGINT/SIGTERM. Every
// child opens the store itself: the SQLite file in the state directory
// (several processes starting at once take turns), or MONGO_URI.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"app/internal/config"
)

// ErrChildConfig means a child exited with status 2 (bad configuration):
// restarting it would only repeat the error, as RestartPreventExitStatus=2
// does under systemd.
var ErrChildConfig = errors.New("cluster: a child process cannot start as set up (exit status 2: bad configuration, or a setup error such as a worker without a socket; its last line says which)")

// Supervisor runs the cluster.
type Supervisor struct {
	Cfg    config.Config
	Log    zerolog.Logger
	Exe    string    // the app binary the children run
	Output io.Writer // children's stdout and stderr

	// Backoff is the first restart delay; it doubles per quick crash up to
	// MaxBackoff and resets once a child has run for StableAfter.
	Backoff, MaxBackoff, StableAfter time.Duration
}

// Run starts the cluster and supervises it until ctx ends.
func (s *Supervisor) Run(ctx context.Context) error {
	if s.Backoff == 0 {
		s.Backoff, s.MaxBackoff, s.StableAfter = 100*time.Millisecond, 10*time.Second, 10*time.Second
	}
	n := s.Cfg.Workers()
	s.Log.Info().Int("workers", n).Int("cpus", runtime.NumCPU()).
		Msg(fmt.Sprintf("cluster mode: %d workers (%d CPUs)", n, runtime.NumCPU()))

	ln, err := net.Listen("tcp", s.Cfg.Listen)
	if err != nil {
		return fmt.Errorf("cluster: listen on APP_LISTEN=%s: %w", s.Cfg.Listen, err)
	}
	lnFile, err := ln.(*net.TCPListener).File()
	if err != nil {
		return fmt.Errorf("cluster: listener fd: %w", err)
	}
	// The supervisor keeps the socket open for the cluster's life, as
	// app.socket does, so a connection waits in the backlog while no worker
	// runs instead of being refused.
	defer func() { _ = lnFile.Close(); _ = ln.Close() }()
	s.Log.Info().Str("listen", ln.Addr().String()).Msg("Listening; the socket is shared by every worker.")

	env := s.childEnv(n)
	failed := make(chan error, 1)
	fail := func(err error) {
		select {
		case failed <- err:
		default:
		}
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()

	children := []*child{s.newChild("primary", []string{"primary"}, env, nil)}
	for i := 1; i <= n; i++ {
		wenv := append(append([]string{}, env...), "APP_WORKER_ID="+strconv.Itoa(i), "LISTEN_FDS=1", "LISTEN_FDNAMES=app.socket")
		children = append(children, s.newChild("worker "+strconv.Itoa(i), []string{"worker"}, wenv, lnFile))
	}
	for _, c := range children {
		if err := c.start(); err != nil {
			fail(err)
			break
		}
		go c.supervise(runCtx, fail)
	}

	select {
	case <-ctx.Done():
		s.Log.Info().Msg("Stopping the cluster.")
	case err = <-failed:
		s.Log.Error().Err(err).Msg("Stopping the cluster.")
	}
	stop()
	var wg sync.WaitGroup
	for _, c := range children {
		wg.Add(1)
		go func() { defer wg.Done(); c.stop(s.Cfg.ShutdownTimeout) }()
	}
	wg.Wait()
	s.Log.Info().Msg("Cluster stopped.")
	return err
}

// childEnv is this process's environment with the settings every child must
// agree on made explicit, and systemd's per-process variables removed.
func (s *Supervisor) childEnv(workers int) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "LISTEN_"), strings.HasPrefix(name, "WATCHDOG_"),
			name == "NOTIFY_SOCKET", name == "APP_WORKER_ID", name == "CLUSTER_WORKERS",
			name == "APP_STATE_DIR":
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"CLUSTER_WORKERS="+strconv.Itoa(workers),
		"APP_STATE_DIR="+s.Cfg.StateDir,
	)
}

type child struct {
	name     string
	args     []string
	env      []string
	socket   *os.File // handed over as fd 3 with the systemd protocol
	s        *Supervisor
	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{}
	stopping bool
}

func (s *Supervisor) newChild(name string, args, env []string, socket *os.File) *child {
	return &child{name: name, args: args, env: env, socket: socket, s: s}
}

func (c *child) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.startLocked()
}

func (c *child) startLocked() error {
	var cmd *exec.Cmd
	if c.socket != nil {
		// The systemd protocol wants LISTEN_PID to be the child's own pid,
		// which exists only after fork; Go cannot run code between fork and
		// exec, so a shell sets it and execs the worker in place (same pid).
		cmd = exec.Command("/bin/sh", append([]string{"-c", `LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"`, c.s.Exe}, c.args...)...)
		cmd.ExtraFiles = []*os.File{c.socket}
	} else {
		cmd = exec.Command(c.s.Exe, c.args...)
	}
	cmd.Env = c.env
	cmd.Stdout = c.s.Output
	cmd.Stderr = c.s.Output
	// Own process group: a terminal's Ctrl-C reaches only the supervisor,
	// which then stops the children in order. Pdeathsig stops a child if
	// the supervisor itself is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("cluster: start %s: %w", c.name, err)
	}
	c.cmd, c.exited = cmd, make(chan struct{})
	c.s.Log.Info().Str("child", c.name).Int("child_pid", cmd.Process.Pid).
		Msg(fmt.Sprintf("%s started (pid %d)", c.name, cmd.Process.Pid))
	return nil
}

// supervise waits for the child and restarts it with back-off until ctx ends.
func (c *child) supervise(ctx context.Context, fail func(error)) {
	backoff := c.s.Backoff
	for {
		c.mu.Lock()
		cmd, exited := c.cmd, c.exited
		c.mu.Unlock()
		started := time.Now()
		err := cmd.Wait()
		close(exited)
		if ctx.Err() != nil {
			return
		}
		code := cmd.ProcessState.ExitCode()
		if code == 2 {
			c.s.Log.Error().Str("child", c.name).Msg(c.name + " exited with status 2 (it cannot start as set up: its last line says why); not restarting it")
			fail(ErrChildConfig)
			return
		}
		if time.Since(started) >= c.s.StableAfter {
			backoff = c.s.Backoff
		}
		if code == 0 {
			// Stopped on purpose (a SIGTERM from an operator, as a rolling
			// restart sends): not a crash, so the back-off starts over
			// unless it keeps stopping at once.
			if time.Since(started) >= time.Second {
				backoff = c.s.Backoff
			}
			c.s.Log.Info().Str("child", c.name).Int("child_pid", cmd.Process.Pid).Dur("restart_in", backoff).
				Msg(fmt.Sprintf("%s stopped cleanly (pid %d); starting it again in %s", c.name, cmd.Process.Pid, backoff))
		} else {
			c.s.Log.Warn().Str("child", c.name).Int("child_pid", cmd.Process.Pid).Str("exit", describe(err, cmd)).
				Dur("restart_in", backoff).Msg(fmt.Sprintf("%s died (%s); restarting in %s", c.name, describe(err, cmd), backoff))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, c.s.MaxBackoff)
		// Checked and started under one lock, so stop never misses a child
		// started during its call.
		c.mu.Lock()
		if c.stopping {
			c.mu.Unlock()
			return
		}
		err = c.startLocked()
		c.mu.Unlock()
		if err != nil {
			fail(err)
			return
		}
	}
}

func describe(err error, cmd *exec.Cmd) string {
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "killed by " + unix.SignalName(ws.Signal())
	}
	if err != nil {
		return err.Error()
	}
	return "exit status 0"
}

// stop sends SIGTERM and waits; after timeout plus a grace second it kills.
func (c *child) stop(timeout time.Duration) {
	c.mu.Lock()
	c.stopping = true
	cmd, exited := c.cmd, c.exited
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-exited:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(timeout + time.Second):
		c.s.Log.Warn().Str("child", c.name).Msg(c.name + " did not stop in time; killing it")
		_ = cmd.Process.Kill()
		<-exited
	}
}
