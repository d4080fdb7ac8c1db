package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"

	"app/internal/schedule"
	"app/internal/store"
)

// ScheduleBackend is what the schedule routes need from the database.
type ScheduleBackend interface {
	CreateSchedule(ctx context.Context, sc *store.Schedule) error
	Schedule(ctx context.Context, id string) (store.Schedule, error)
	UpdateSchedule(ctx context.Context, sc *store.Schedule) error
	SchedulesPage(ctx context.Context, beforeNS int64, beforeID string, limit int) ([]store.Schedule, error)
	ScheduleState(ctx context.Context, id string) (store.ScheduleState, error)
	ScheduleRuns(ctx context.Context, id string, beforeNS int64, limit int) ([]store.ScheduleRun, error)
	MediaInfo(ctx context.Context, id string) (store.MediaInfo, error)
}

func (s *Server) scheduleRoutes(r routes) {
	r.handle("POST", "/v1/schedules", s.auth(store.ScopeMessagesWrite, s.createSchedule))
	r.handle("GET", "/v1/schedules", s.auth(store.ScopeMessagesRead, s.listSchedules))
	r.handle("GET", "/v1/schedules/:id", s.auth(store.ScopeMessagesRead, s.getSchedule))
	r.handle("PATCH", "/v1/schedules/:id", s.auth(store.ScopeMessagesWrite, s.updateSchedule))
	r.handle("DELETE", "/v1/schedules/:id", s.auth(store.ScopeMessagesWrite, s.deleteSchedule))
	r.handle("POST", "/v1/schedules/:id/pause", s.auth(store.ScopeMessagesWrite, s.pauseSchedule(true)))
	r.handle("POST", "/v1/schedules/:id/resume", s.auth(store.ScopeMessagesWrite, s.pauseSchedule(false)))
	r.handle("GET", "/v1/schedules/:id/runs", s.auth(store.ScopeMessagesRead, s.scheduleRuns))
	r.handle("GET", "/v1/schedule-preview", s.auth(store.ScopeMessagesRead, s.previewSchedule))
}

// scheduleRequest is the body of POST /v1/schedules and PATCH (where every
// field is optional and version is required).
type scheduleRequest struct {
	SendAt   *timeValue      `json:"send_at"`
	Cron     *string         `json:"cron"`
	Timezone *string         `json:"timezone"`
	StartAt  *timeValue      `json:"start_at"`
	EndAt    *timeValue      `json:"end_at"`
	MaxRuns  *int            `json:"max_runs"`
	Missed   *string         `json:"missed"`
	Message  *MessageRequest `json:"message"`
	Version  *int            `json:"version"`
}

type scheduleView struct {
	ID        string         `json:"id"`
	Kind      string         `json:"kind"`
	SendAt    time.Time      `json:"send_at,omitzero"`
	Cron      string         `json:"cron,omitempty"`
	Timezone  string         `json:"timezone,omitempty"`
	StartAt   time.Time      `json:"start_at,omitzero"`
	EndAt     time.Time      `json:"end_at,omitzero"`
	MaxRuns   int            `json:"max_runs,omitempty"`
	Missed    string         `json:"missed"`
	Message   map[string]any `json:"message"`
	Paused    bool           `json:"paused"`
	Version   int            `json:"version"`
	CreatedAt time.Time      `json:"created_at"`
	// From the primary's progress, when it has seen the schedule.
	NextRunAt time.Time   `json:"next_run_at,omitzero"`
	LastRunAt time.Time   `json:"last_run_at,omitzero"`
	Runs      int         `json:"runs"`
	Done      bool        `json:"done"`
	NextRuns  []time.Time `json:"next_runs,omitempty"`
}

func scheduleOf(sc store.Schedule) scheduleView {
	msg := map[string]any{"to": sc.Chat}
	if sc.Text != "" {
		msg["text"] = sc.Text
	}
	if sc.ReplyTo != "" {
		msg["reply_to"] = sc.ReplyTo
	}
	if sc.MediaID != "" {
		msg["media_id"] = sc.MediaID
	}
	return scheduleView{ID: sc.ID, Kind: sc.Kind, SendAt: sc.SendAt, Cron: sc.Cron, Timezone: sc.Timezone, StartAt: sc.StartAt,
		EndAt: sc.EndAt, MaxRuns: sc.MaxRuns, Missed: sc.Missed, Message: msg, Paused: sc.Paused, Version: sc.Version, CreatedAt: sc.CreatedAt}
}

// merge applies req to sc and checks the result; on failure it returns
// the field at fault (a *fieldError), or the store's error when it could
// not check. create says whether this is a new schedule.
func (s *Server) merge(ctx context.Context, sc *store.Schedule, req scheduleRequest, create bool, now time.Time) error {
	if req.SendAt != nil && req.Cron != nil {
		return &fieldError{"cron", "give send_at (once) or cron (recurring), not both"}
	}
	if req.SendAt != nil {
		sc.Kind, sc.SendAt, sc.Cron, sc.Timezone = "once", req.SendAt.UTC(), "", ""
	}
	if req.Cron != nil {
		sc.Kind, sc.SendAt, sc.Cron = "cron", time.Time{}, *req.Cron
	}
	if req.Timezone != nil {
		sc.Timezone = *req.Timezone
	}
	if req.StartAt != nil {
		sc.StartAt = req.StartAt.UTC()
	}
	if req.EndAt != nil {
		sc.EndAt = req.EndAt.UTC()
	}
	if req.MaxRuns != nil {
		if *req.MaxRuns < 0 || *req.MaxRuns > 1000000 {
			return &fieldError{"max_runs", "max_runs must be from 0 (no limit) to 1000000"}
		}
		sc.MaxRuns = *req.MaxRuns
	}
	if req.Missed != nil {
		switch *req.Missed {
		case "skip", "run_once", "run_all":
			sc.Missed = *req.Missed
		default:
			return &fieldError{"missed", "missed must be skip, run_once or run_all"}
		}
	}
	switch sc.Kind {
	case "":
		return &fieldError{"send_at", "give send_at (a one-shot time) or cron (with timezone) for a recurring schedule"}
	case "once":
		if sc.Timezone != "" || !sc.StartAt.IsZero() || !sc.EndAt.IsZero() || sc.MaxRuns != 0 {
			return &fieldError{"send_at", "timezone, start_at, end_at and max_runs apply to cron schedules only"}
		}
		if (create || req.SendAt != nil) && !sc.SendAt.After(now) {
			return &fieldError{"send_at", "send_at is in the past"}
		}
	case "cron":
		if _, err := schedule.Parse(sc.Cron, sc.Timezone); err != nil {
			var pe *schedule.Error
			if errors.As(err, &pe) {
				return &fieldError{pe.Field, pe.Message}
			}
			return &fieldError{"cron", err.Error()}
		}
		if !sc.EndAt.IsZero() && !sc.EndAt.After(sc.StartAt) {
			return &fieldError{"end_at", "end_at must be after start_at"}
		}
	}
	if sc.Missed == "" {
		sc.Missed = "skip"
		if sc.Kind == "once" {
			sc.Missed = "run_once"
		}
	}
	if req.Message != nil {
		m, ferr := req.Message.Validate()
		if ferr != nil {
			return &fieldError{"message." + ferr.field, ferr.msg}
		}
		if m.MediaID != "" {
			_, err := s.Schedules.MediaInfo(ctx, m.MediaID)
			if errors.Is(err, store.ErrNotFound) {
				return &fieldError{"message.media_id", "no media " + strconv.Quote(m.MediaID) + "; upload it with POST /v1/media"}
			}
			if err != nil {
				return err
			}
		}
		sc.Chat, sc.Text, sc.ReplyTo, sc.MediaID = m.Chat, m.Text, m.ReplyTo, m.MediaID
	} else if create {
		return &fieldError{"message", "message is required: {\"to\": ..., \"text\": ...}"}
	}
	return nil
}

func (s *Server) createSchedule(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	var req scheduleRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.Version != nil {
		writeError(w, r, http.StatusBadRequest, "invalid", "version is for PATCH", "version")
		return
	}
	ctx, cancel := dbContext(r)
	defer cancel()
	k, _ := KeyOf(r)
	sc := store.Schedule{ID: "sch_" + store.NewMessageID()[4:], KeyID: k.ID}
	if err := s.merge(ctx, &sc, req, true, time.Now()); err != nil {
		s.mergeFailed(w, r, err)
		return
	}
	ctx, again, err := s.insertSettled(ctx, r, func(ctx context.Context) error { return s.Schedules.CreateSchedule(ctx, &sc) })
	if errors.Is(err, store.ErrExists) && again {
		err = nil // the first try stored it
	}
	if err != nil {
		s.writeFailed(w, r, err, sc.ID, "/v1/schedules/"+sc.ID)
		return
	}
	w.Header().Set("Location", "/v1/schedules/"+sc.ID)
	writeJSON(w, http.StatusCreated, s.withProgress(ctx, sc, 5))
}

// mergeFailed answers what merge refused: 400 naming the field, or the
// store's error when the request could not be checked.
func (s *Server) mergeFailed(w http.ResponseWriter, r *http.Request, err error) {
	var fe *fieldError
	if errors.As(err, &fe) {
		writeError(w, r, http.StatusBadRequest, "invalid", fe.msg, fe.field)
		return
	}
	s.storeFailed(w, r, err)
}

// withProgress adds the primary's progress and the next runs.
func (s *Server) withProgress(ctx context.Context, sc store.Schedule, preview int) scheduleView {
	v := scheduleOf(sc)
	if st, err := s.Schedules.ScheduleState(ctx, sc.ID); err == nil && st.Version == sc.Version {
		v.NextRunAt, v.LastRunAt, v.Runs, v.Done = st.NextRunAt, st.LastRunAt, st.Runs, st.Done
	}
	switch {
	case sc.Paused:
	case sc.Kind == "once" && v.Runs == 0:
		v.NextRuns = []time.Time{sc.SendAt}
	case sc.Kind == "cron":
		if spec, err := schedule.Parse(sc.Cron, sc.Timezone); err == nil {
			from := time.Now()
			if sc.StartAt.After(from) {
				from = sc.StartAt.Add(-time.Nanosecond)
			}
			for _, t := range spec.Preview(from, preview) {
				if (!sc.EndAt.IsZero() && t.After(sc.EndAt)) || (sc.MaxRuns > 0 && v.Runs+len(v.NextRuns) >= sc.MaxRuns) {
					break
				}
				v.NextRuns = append(v.NextRuns, t)
			}
		}
	}
	return v
}

func (s *Server) loadSchedule(ctx context.Context, w http.ResponseWriter, r *http.Request, id string) (store.Schedule, bool) {
	sc, err := s.Schedules.Schedule(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, r, http.StatusNotFound, "not_found", "no schedule "+strconv.Quote(id), "id")
		return sc, false
	}
	if err != nil {
		s.storeFailed(w, r, err)
		return sc, false
	}
	return sc, true
}

func (s *Server) getSchedule(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	n := 5
	if p := r.URL.Query().Get("preview"); p != "" {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 || v > 50 {
			writeError(w, r, http.StatusBadRequest, "invalid", "preview must be an integer from 0 to 50", "preview")
			return
		}
		n = v
	}
	ctx, cancel := dbContext(r)
	defer cancel()
	sc, ok := s.loadSchedule(ctx, w, r, ps.ByName("id"))
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.withProgress(ctx, sc, n))
}

func (s *Server) updateSchedule(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	var req scheduleRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if !versionGiven(w, r, req.Version) {
		return
	}
	ctx, cancel := dbContext(r)
	defer cancel()
	sc, ok := s.loadSchedule(ctx, w, r, ps.ByName("id"))
	if !ok || !sameVersion(w, r, "schedule", sc.Version, *req.Version) {
		return
	}
	if err := s.merge(ctx, &sc, req, false, time.Now()); err != nil {
		s.mergeFailed(w, r, err)
		return
	}
	s.save(ctx, w, r, sc, http.StatusOK)
}

func (s *Server) save(ctx context.Context, w http.ResponseWriter, r *http.Request, sc store.Schedule, status int) {
	err := s.Schedules.UpdateSchedule(ctx, &sc)
	if errors.Is(err, store.ErrConflict) {
		writeError(w, r, http.StatusConflict, "conflict", "the schedule changed meanwhile; read it again", "version")
		return
	}
	if err != nil {
		s.writeFailed(w, r, err, sc.ID, "/v1/schedules/"+sc.ID)
		return
	}
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	writeJSON(w, status, s.withProgress(ctx, sc, 5))
}

func (s *Server) pauseSchedule(pause bool) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		ctx, cancel := dbContext(r)
		defer cancel()
		sc, ok := s.loadSchedule(ctx, w, r, ps.ByName("id"))
		if !ok {
			return
		}
		if sc.Paused == pause {
			writeJSON(w, http.StatusOK, s.withProgress(ctx, sc, 5))
			return
		}
		sc.Paused = pause
		s.save(ctx, w, r, sc, http.StatusOK)
	}
}

func (s *Server) deleteSchedule(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	ctx, cancel := dbContext(r)
	defer cancel()
	sc, ok := s.loadSchedule(ctx, w, r, ps.ByName("id"))
	if !ok {
		return
	}
	sc.Deleted = true
	s.save(ctx, w, r, sc, http.StatusNoContent)
}

func (s *Server) listSchedules(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	_, limit, ns, id, ok := pageParams(w, r)
	if !ok {
		return
	}
	ctx, cancel := dbContext(r)
	defer cancel()
	list, err := s.Schedules.SchedulesPage(ctx, ns, id, limit)
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	page := struct {
		Schedules []scheduleView `json:"schedules"`
		Next      string         `json:"next,omitempty"`
	}{Schedules: make([]scheduleView, 0, len(list))}
	for _, sc := range list {
		page.Schedules = append(page.Schedules, scheduleOf(sc))
	}
	if len(list) == limit {
		last := list[len(list)-1]
		page.Next = encodeCursor(last.CreatedAt.UnixNano(), last.ID)
	}
	writeJSON(w, http.StatusOK, page)
}

type runView struct {
	DueAt     time.Time `json:"due_at"`
	FiredAt   time.Time `json:"fired_at"`
	Outcome   string    `json:"outcome"`
	Reason    string    `json:"reason,omitempty"`
	MessageID string    `json:"message_id,omitempty"`
}

func (s *Server) scheduleRuns(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	_, limit, ns, _, ok := pageParams(w, r)
	if !ok {
		return
	}
	ctx, cancel := dbContext(r)
	defer cancel()
	id := ps.ByName("id")
	if _, ok := s.loadSchedule(ctx, w, r, id); !ok {
		return
	}
	runs, err := s.Schedules.ScheduleRuns(ctx, id, ns, limit)
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	page := struct {
		Runs []runView `json:"runs"`
		Next string    `json:"next,omitempty"`
	}{Runs: make([]runView, 0, len(runs))}
	for _, run := range runs {
		page.Runs = append(page.Runs, runView{DueAt: run.DueAt, FiredAt: run.FiredAt, Outcome: run.Outcome, Reason: run.Reason, MessageID: run.MessageID})
	}
	if len(runs) == limit {
		page.Next = encodeCursor(runs[len(runs)-1].DueAt.UnixNano(), "run")
	}
	writeJSON(w, http.StatusOK, page)
}

// previewSchedule shows the next runs of a cron expression in a zone,
// before a schedule is made with it.
func (s *Server) previewSchedule(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	q := r.URL.Query()
	for k := range q {
		if k != "cron" && k != "timezone" && k != "n" {
			writeError(w, r, http.StatusBadRequest, "invalid", "unknown query parameter "+strconv.Quote(k), k)
			return
		}
	}
	n := 10
	if v := q.Get("n"); v != "" {
		x, err := strconv.Atoi(v)
		if err != nil || x < 1 || x > 50 {
			writeError(w, r, http.StatusBadRequest, "invalid", "n must be an integer from 1 to 50", "n")
			return
		}
		n = x
	}
	spec, err := schedule.Parse(q.Get("cron"), q.Get("timezone"))
	if err != nil {
		var pe *schedule.Error
		if errors.As(err, &pe) {
			writeError(w, r, http.StatusBadRequest, "invalid", pe.Message, pe.Field)
			return
		}
		writeError(w, r, http.StatusBadRequest, "invalid", err.Error(), "cron")
		return
	}
	runs := spec.Preview(time.Now(), n)
	local := make([]string, 0, len(runs))
	for _, t := range runs {
		local = append(local, t.In(spec.Location()).Format(time.RFC3339))
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": runs, "local": local})
}

// versionGiven requires an edit's version: the one the client read, so a
// concurrent edit is not lost.
func versionGiven(w http.ResponseWriter, r *http.Request, v *int) bool {
	if v == nil {
		writeError(w, r, http.StatusBadRequest, "invalid", "version is required: the version you read, so a concurrent edit is not lost", "version")
	}
	return v != nil
}

// sameVersion refuses an edit of a version that is no longer current.
func sameVersion(w http.ResponseWriter, r *http.Request, what string, have, given int) bool {
	if have != given {
		writeError(w, r, http.StatusConflict, "conflict", "the "+what+" is at version "+strconv.Itoa(have)+"; read it again", "version")
	}
	return have == given
}
