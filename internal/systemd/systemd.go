// Package systemd is the suite's only door to systemd: socket activation,
// sd_notify (READY, STATUS, WATCHDOG, STOPPING) and journald logging.
package systemd

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/coreos/go-systemd/v22/journal"
	"github.com/rs/zerolog/journald"
)

// ErrNoSocket means systemd (or `app run`) handed over no listening socket.
var ErrNoSocket = errors.New("no listening socket was handed over (LISTEN_FDS is not set for this process)")

// Listener returns the one socket handed over with the systemd protocol
// (LISTEN_FDS/LISTEN_PID). activation.Listeners unsets the environment on
// its first call, so it is called here once and only here.
func Listener() (net.Listener, error) {
	ls, err := activation.Listeners()
	if err != nil {
		return nil, fmt.Errorf("systemd: socket activation: %w", err)
	}
	var got []net.Listener
	for _, l := range ls {
		if l != nil {
			got = append(got, l)
		}
	}
	switch len(got) {
	case 0:
		return nil, ErrNoSocket
	case 1:
		return got[0], nil
	default:
		for _, l := range got[1:] {
			_ = l.Close()
		}
		return got[0], fmt.Errorf("systemd: %d sockets handed over, expected one", len(got))
	}
}

// Notifier sends sd_notify messages; outside systemd every call is a no-op.
type Notifier struct{}

func (Notifier) send(state string) { _, _ = daemon.SdNotify(false, state) }

// Ready tells systemd the service is up; status is shown by systemctl status.
func (n Notifier) Ready(status string) { n.send(daemon.SdNotifyReady + "\nSTATUS=" + status) }

// Status updates the one-line state shown by systemctl status.
func (n Notifier) Status(status string) { n.send("STATUS=" + status) }

// Stopping tells systemd the service is shutting down.
func (n Notifier) Stopping() { n.send(daemon.SdNotifyStopping) }

// Watchdog pets the watchdog.
func (n Notifier) Watchdog() { n.send(daemon.SdNotifyWatchdog) }

// WatchdogInterval is how often to pet the watchdog (half of WatchdogSec=),
// or 0 when systemd watches nothing.
func (Notifier) WatchdogInterval() time.Duration {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil || d <= 0 {
		return 0
	}
	return d / 2
}

// UnderJournal reports whether stderr is connected to journald, in which
// case logs go to the journal with structured fields.
func UnderJournal() bool {
	ok, err := journal.StderrIsJournalStream()
	return err == nil && ok
}

// JournalWriter writes zerolog events as journald entries with one field per
// event field (WORKER=, PID=, REQUEST_ID=, ...).
func JournalWriter() io.Writer { return journald.NewJournalDWriter() }

// UnderSystemd reports whether the process was started by systemd as a service.
func UnderSystemd() bool {
	return os.Getenv("INVOCATION_ID") != "" || os.Getenv("NOTIFY_SOCKET") != ""
}
