package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"

	"app/internal/store"
)

// healthz says the process is alive; it never touches the database, so a
// database outage does not make systemd or a balancer kill healthy workers.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	s.healthzOnce.Do(func() {
		s.healthzBody, _ = json.Marshal(map[string]string{"status": "ok", "worker": s.Worker})
		s.healthzBody = append(s.healthzBody, '\n')
	})
	h := w.Header()
	h["Content-Type"] = jsonType
	h["Cache-Control"] = noStore
	_, _ = w.Write(s.healthzBody)
}

// readyz says whether this worker can do useful work: the database answers
// within a short deadline.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	if err := s.Backend.Ping(ctx); err != nil {
		s.logFor(r).Debug().Err(err).Msg("Not ready: the database does not answer.")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "database": "unreachable", "worker": s.Worker})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "database": "ok", "worker": s.Worker})
}

type processView struct {
	ID        string    `json:"id"`
	Role      string    `json:"role"`
	Worker    string    `json:"worker,omitempty"`
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	Version   string    `json:"version"`
	StartedAt time.Time `json:"started_at"`
	LastSeen  time.Time `json:"last_seen"`
	Requests  int64     `json:"requests"`
	State     string    `json:"state"`
	Alive     bool      `json:"alive"`
	// Stale: it did not say it stopped, and its heartbeat is more than
	// three intervals late (hung, killed, or cut off from the database).
	Stale          bool  `json:"stale"`
	HeartbeatAgeMS int64 `json:"heartbeat_age_ms"`
}

type leaseView struct {
	Holder     string    `json:"holder"`
	Host       string    `json:"host"`
	PID        int       `json:"pid"`
	Epoch      int64     `json:"epoch"`
	AcquiredAt time.Time `json:"acquired_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	Valid      bool      `json:"valid"`
}

type clusterView struct {
	Workers   []processView `json:"workers"`
	Primaries []processView `json:"primaries"`
	Lease     *leaseView    `json:"lease"`
}

// cluster lists every process's heartbeat (seen in the last ten intervals)
// and the lease holder, from MongoDB, so any worker answers for all.
func (s *Server) cluster(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	now := time.Now()
	hbs, err := s.Backend.Heartbeats(ctx, now.Add(-10*s.HeartbeatInterval))
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	view := clusterView{Workers: []processView{}, Primaries: []processView{}}
	for _, hb := range hbs {
		p := processView{ID: hb.ID, Role: hb.Role, Worker: hb.Worker, Host: hb.Host, PID: hb.PID, Version: hb.Version,
			StartedAt: hb.StartedAt, LastSeen: hb.LastSeen, Requests: hb.Requests, State: hb.State,
			Stale:          hb.Late(now, s.HeartbeatInterval),
			HeartbeatAgeMS: max(0, now.Sub(hb.LastSeen).Milliseconds())}
		p.Alive = hb.State != "stopped" && !p.Stale
		switch hb.Role {
		case "worker":
			view.Workers = append(view.Workers, p)
		case "primary":
			view.Primaries = append(view.Primaries, p)
		}
	}
	l, err := s.Backend.CurrentLease(ctx)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		s.storeFailed(w, r, err)
		return
	default:
		view.Lease = &leaseView{Holder: l.Holder, Host: l.Host, PID: l.PID, Epoch: l.Epoch,
			AcquiredAt: l.AcquiredAt, ExpiresAt: l.ExpiresAt, Valid: now.Before(l.ExpiresAt)}
	}
	writeJSON(w, http.StatusOK, view)
}
