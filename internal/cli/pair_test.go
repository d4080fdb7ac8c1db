package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// app pair says why it stopped: Ctrl-C is not "not paired in time".
func TestPairSaysWhyItStopped(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"state":"pairing","qr_available":false}`)
	}))
	defer srv.Close()

	interrupted, stop := context.WithCancel(context.Background())
	asked := make(chan struct{})
	go func() {
		// Interrupt once the first answer was read, as a user would.
		<-asked
		stop()
	}()
	probe := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.Config.Handler.ServeHTTP(w, r)
		select {
		case <-asked:
		default:
			close(asked)
		}
	}))
	defer probe.Close()
	err := pair(interrupted, probe.URL, "", "k", io.Discard)
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("interrupted pairing: %v, want it to say it was interrupted", err)
	}

	timed, cancel := context.WithTimeoutCause(context.Background(), 50*time.Millisecond, fmt.Errorf("not paired within --timeout 50ms"))
	defer cancel()
	if err := pair(timed, srv.URL, "", "k", io.Discard); err == nil || !strings.Contains(err.Error(), "--timeout") {
		t.Errorf("pairing that ran out of time: %v, want it to name --timeout", err)
	}
}
