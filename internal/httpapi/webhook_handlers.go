package httpapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"app/internal/store"
	"app/internal/webhook"
)

// WebhookBackend is what the webhook routes need from the database.
type WebhookBackend interface {
	CreateWebhook(ctx context.Context, w *store.Webhook) error
	Webhook(ctx context.Context, id string) (store.Webhook, error)
	Webhooks(ctx context.Context) ([]store.Webhook, error)
	UpdateWebhook(ctx context.Context, w *store.Webhook) error
	DeleteWebhook(ctx context.Context, id string) error
	WebhookState(ctx context.Context, id string) (store.WebhookState, error)
	Deliveries(ctx context.Context, id string, beforeSeq int64, status string, limit int) ([]store.WebhookDelivery, error)
	LastEventSeq(ctx context.Context) (int64, error)
	FirstEventSeq(ctx context.Context) (int64, error)
	EventSeqAt(ctx context.Context, t time.Time) (int64, error)
}

// MaxWebhooks bounds the subscriptions: the primary runs a delivery loop
// for each.
const MaxWebhooks = 100

// Webhook subscriptions see every event they ask for, messages and
// session included, and send them elsewhere: they need the admin scope.
func (s *Server) webhookRoutes(r routes) {
	r.handle("POST", "/v1/webhooks", s.auth(store.ScopeAdmin, s.createWebhook))
	r.handle("GET", "/v1/webhooks", s.auth(store.ScopeAdmin, s.listWebhooks))
	r.handle("GET", "/v1/webhooks/:id", s.auth(store.ScopeAdmin, s.getWebhook))
	r.handle("PATCH", "/v1/webhooks/:id", s.auth(store.ScopeAdmin, s.updateWebhook))
	r.handle("DELETE", "/v1/webhooks/:id", s.auth(store.ScopeAdmin, s.deleteWebhook))
	r.handle("GET", "/v1/webhooks/:id/deliveries", s.auth(store.ScopeAdmin, s.webhookDeliveries))
	r.handle("POST", "/v1/webhooks/:id/replay", s.auth(store.ScopeAdmin, s.replayWebhook))
}

// webhookRequest is the body of POST /v1/webhooks and of PATCH (where
// every field is optional and version is required).
type webhookRequest struct {
	URL         *string   `json:"url"`
	Types       *[]string `json:"types"`
	Description *string   `json:"description"`
	Enabled     *bool     `json:"enabled"`
	Version     *int      `json:"version"`
}

type webhookView struct {
	ID             string    `json:"id"`
	URL            string    `json:"url"`
	Types          []string  `json:"types"`
	Description    string    `json:"description,omitempty"`
	Enabled        bool      `json:"enabled"`
	DisabledReason string    `json:"disabled_reason,omitempty"`
	Version        int       `json:"version"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	// Secret is shown once, in the answer to POST.
	Secret string `json:"secret,omitempty"`
	// DeliveredThrough is the primary's cursor: every event up to it is
	// settled; LogPosition is the log's newest event.
	DeliveredThrough int64 `json:"delivered_through"`
	LogPosition      int64 `json:"log_position,omitempty"`
}

func (s *Server) webhookOf(ctx context.Context, wh store.Webhook) webhookView {
	v := webhookView{ID: wh.ID, URL: wh.URL, Types: wh.Types, Description: wh.Description, Enabled: wh.Enabled,
		DisabledReason: wh.DisabledReason, Version: wh.Version, CreatedAt: wh.CreatedAt, UpdatedAt: wh.UpdatedAt,
		DeliveredThrough: wh.StartSeq}
	if v.Types == nil {
		v.Types = []string{}
	}
	if st, err := s.Webhooks.WebhookState(ctx, wh.ID); err == nil {
		v.DeliveredThrough = st.Cursor
	}
	return v
}

// mergeWebhook applies req to wh and checks the result.
func (s *Server) mergeWebhook(wh *store.Webhook, req webhookRequest, create bool) *fieldError {
	if req.URL != nil {
		if err := s.webhookGuard().CheckURL(*req.URL); err != nil {
			return &fieldError{"url", err.Error()}
		}
		wh.URL = *req.URL
	} else if create {
		return &fieldError{"url", "url is required: where to POST the events"}
	}
	if req.Types != nil {
		types := []string{}
		for _, t := range *req.Types {
			if !slices.Contains(store.EventTypes, t) {
				return &fieldError{"types", "unknown event type " + strconv.Quote(t) + "; known: " + strings.Join(store.EventTypes, ", ")}
			}
			if !slices.Contains(types, t) {
				types = append(types, t)
			}
		}
		wh.Types = types
	}
	if req.Description != nil {
		if len(*req.Description) > 200 {
			return &fieldError{"description", "description must be at most 200 bytes"}
		}
		wh.Description = *req.Description
	}
	if req.Enabled != nil {
		if *req.Enabled && !wh.Enabled {
			wh.DisabledReason = ""
		}
		if !*req.Enabled && wh.Enabled {
			wh.DisabledReason = "disabled through the API"
		}
		wh.Enabled = *req.Enabled
	}
	return nil
}

func (s *Server) webhookGuard() *webhook.Guard {
	if s.WebhookGuard != nil {
		return s.WebhookGuard
	}
	return webhook.NewGuard(nil)
}

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	var req webhookRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.Version != nil {
		writeError(w, r, http.StatusBadRequest, "invalid", "version is for PATCH", "version")
		return
	}
	k, _ := KeyOf(r)
	wh := store.Webhook{ID: "wh_" + store.NewMessageID()[4:], KeyID: k.ID, Secret: webhook.NewSecret(), Enabled: true}
	if ferr := s.mergeWebhook(&wh, req, true); ferr != nil {
		writeError(w, r, http.StatusBadRequest, "invalid", ferr.msg, ferr.field)
		return
	}
	ctx, cancel := dbContext(r)
	defer cancel()
	all, err := s.Webhooks.Webhooks(ctx)
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	if len(all) >= MaxWebhooks {
		writeError(w, r, http.StatusConflict, "too_many", "there are "+strconv.Itoa(len(all))+" subscriptions, the most there may be; delete one first", "")
		return
	}
	// Events from now on: the log's position when the subscription is made.
	if wh.StartSeq, err = s.Webhooks.LastEventSeq(ctx); err != nil {
		s.storeFailed(w, r, err)
		return
	}
	ctx, again, err := s.insertSettled(ctx, r, func(ctx context.Context) error { return s.Webhooks.CreateWebhook(ctx, &wh) })
	if errors.Is(err, store.ErrExists) && again {
		err = nil // the first try stored it
	}
	if err != nil {
		s.writeFailed(w, r, err, wh.ID, "/v1/webhooks/"+wh.ID)
		return
	}
	v := s.webhookOf(ctx, wh)
	v.Secret, v.LogPosition = wh.Secret, wh.StartSeq
	w.Header().Set("Location", "/v1/webhooks/"+wh.ID)
	writeJSON(w, http.StatusCreated, v)
}

func (s *Server) loadWebhook(ctx context.Context, w http.ResponseWriter, r *http.Request, id string) (store.Webhook, bool) {
	wh, err := s.Webhooks.Webhook(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, r, http.StatusNotFound, "not_found", "no webhook "+strconv.Quote(id), "id")
		return wh, false
	}
	if err != nil {
		s.storeFailed(w, r, err)
		return wh, false
	}
	return wh, true
}

func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	for k := range r.URL.Query() {
		writeError(w, r, http.StatusBadRequest, "invalid", "unknown query parameter "+strconv.Quote(k), k)
		return
	}
	ctx, cancel := dbContext(r)
	defer cancel()
	all, err := s.Webhooks.Webhooks(ctx)
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	last, _ := s.Webhooks.LastEventSeq(ctx)
	page := struct {
		Webhooks []webhookView `json:"webhooks"`
	}{Webhooks: make([]webhookView, 0, len(all))}
	for _, wh := range all {
		v := s.webhookOf(ctx, wh)
		v.LogPosition = last
		page.Webhooks = append(page.Webhooks, v)
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	ctx, cancel := dbContext(r)
	defer cancel()
	wh, ok := s.loadWebhook(ctx, w, r, ps.ByName("id"))
	if !ok {
		return
	}
	v := s.webhookOf(ctx, wh)
	v.LogPosition, _ = s.Webhooks.LastEventSeq(ctx)
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) updateWebhook(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	var req webhookRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if !versionGiven(w, r, req.Version) {
		return
	}
	ctx, cancel := dbContext(r)
	defer cancel()
	wh, ok := s.loadWebhook(ctx, w, r, ps.ByName("id"))
	if !ok || !sameVersion(w, r, "webhook", wh.Version, *req.Version) {
		return
	}
	if ferr := s.mergeWebhook(&wh, req, false); ferr != nil {
		writeError(w, r, http.StatusBadRequest, "invalid", ferr.msg, ferr.field)
		return
	}
	if !s.saveWebhook(ctx, w, r, &wh) {
		return
	}
	writeJSON(w, http.StatusOK, s.webhookOf(ctx, wh))
}

func (s *Server) saveWebhook(ctx context.Context, w http.ResponseWriter, r *http.Request, wh *store.Webhook) bool {
	err := s.Webhooks.UpdateWebhook(ctx, wh)
	if errors.Is(err, store.ErrConflict) {
		writeError(w, r, http.StatusConflict, "conflict", "the webhook changed meanwhile; read it again", "version")
		return false
	}
	if err != nil {
		s.writeFailed(w, r, err, wh.ID, "/v1/webhooks/"+wh.ID)
		return false
	}
	return true
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	ctx, cancel := dbContext(r)
	defer cancel()
	err := s.Webhooks.DeleteWebhook(ctx, ps.ByName("id"))
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, r, http.StatusNotFound, "not_found", "no webhook "+strconv.Quote(ps.ByName("id")), "id")
		return
	}
	if err != nil {
		s.writeFailed(w, r, err, ps.ByName("id"), "/v1/webhooks/"+ps.ByName("id"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type deliveryView struct {
	Seq            int64     `json:"seq"`
	Type           string    `json:"type"`
	EventAt        time.Time `json:"event_at"`
	Status         string    `json:"status"`
	Attempts       int       `json:"attempts"`
	ResponseStatus int       `json:"response_status,omitempty"`
	Error          string    `json:"error,omitempty"`
	DurationMS     int64     `json:"duration_ms"`
	FirstAttemptAt time.Time `json:"first_attempt_at"`
	LastAttemptAt  time.Time `json:"last_attempt_at"`
	NextAttemptAt  time.Time `json:"next_attempt_at,omitzero"`
	DeliveredAt    time.Time `json:"delivered_at,omitzero"`
}

var deliveryStatuses = []string{store.DeliveryRetrying, store.DeliveryDelivered, store.DeliveryDead, store.DeliveryHalted}

func (s *Server) webhookDeliveries(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	q, limit, before, _, ok := pageParams(w, r, "status")
	if !ok {
		return
	}
	status := q.Get("status")
	if status != "" && !slices.Contains(deliveryStatuses, status) {
		writeError(w, r, http.StatusBadRequest, "invalid", "status must be one of "+strings.Join(deliveryStatuses, ", "), "status")
		return
	}
	ctx, cancel := dbContext(r)
	defer cancel()
	id := ps.ByName("id")
	if _, ok := s.loadWebhook(ctx, w, r, id); !ok {
		return
	}
	list, err := s.Webhooks.Deliveries(ctx, id, before, status, limit)
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	page := struct {
		Deliveries []deliveryView `json:"deliveries"`
		Next       string         `json:"next,omitempty"`
	}{Deliveries: make([]deliveryView, 0, len(list))}
	for _, d := range list {
		page.Deliveries = append(page.Deliveries, deliveryView{Seq: d.Seq, Type: d.Type, EventAt: d.EventAt, Status: d.Status,
			Attempts: d.Attempts, ResponseStatus: d.ResponseStatus, Error: d.Error, DurationMS: d.DurationMS,
			FirstAttemptAt: d.FirstAttemptAt, LastAttemptAt: d.LastAttemptAt, NextAttemptAt: d.NextAttemptAt, DeliveredAt: d.DeliveredAt})
	}
	if len(list) == limit {
		page.Next = encodeCursor(list[len(list)-1].Seq, "seq")
	}
	writeJSON(w, http.StatusOK, page)
}

type replayRequest struct {
	FromSeq  *int64     `json:"from_seq"`
	FromTime *timeValue `json:"from_time"`
}

// replayWebhook asks the primary to deliver again from a position: the
// subscription's cursor moves back, so every wanted event from there on
// is sent again, in order (receivers drop repeats by webhook-id).
func (s *Server) replayWebhook(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	var req replayRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if (req.FromSeq == nil) == (req.FromTime == nil) {
		writeError(w, r, http.StatusBadRequest, "invalid", "give from_seq (an event's seq) or from_time (RFC 3339), one of them", "from_seq")
		return
	}
	ctx, cancel := dbContext(r)
	defer cancel()
	id := ps.ByName("id")
	if _, ok := s.loadWebhook(ctx, w, r, id); !ok {
		return
	}
	first, err := s.Webhooks.FirstEventSeq(ctx)
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	last, err := s.Webhooks.LastEventSeq(ctx)
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	var from int64 // replay the events after it
	field := "from_seq"
	if req.FromSeq != nil {
		from = *req.FromSeq - 1
		if *req.FromSeq < 1 || *req.FromSeq > last+1 {
			writeError(w, r, http.StatusBadRequest, "invalid", "from_seq must be from 1 to the log's next position "+strconv.FormatInt(last+1, 10), field)
			return
		}
	} else {
		field = "from_time"
		if from, err = s.Webhooks.EventSeqAt(ctx, req.FromTime.Time); err != nil {
			s.storeFailed(w, r, err)
			return
		}
	}
	if first > 0 && from < first-1 {
		if req.FromTime == nil {
			writeError(w, r, http.StatusBadRequest, "position_expired", "events before "+strconv.FormatInt(first, 10)+
				" are no longer kept (APP_EVENT_RETENTION); replay from "+strconv.FormatInt(first, 10)+" or later", field)
			return
		}
		from = first - 1 // a time before the log's start: all the log keeps
	}
	for range 3 { // a concurrent edit (or the primary disabling it) is retried
		wh, ok := s.loadWebhook(ctx, w, r, id)
		if !ok {
			return
		}
		wh.Replay = &store.WebhookReplay{ID: store.NewMessageID()[4:], FromSeq: from, RequestedAt: time.Now()}
		err := s.Webhooks.UpdateWebhook(ctx, &wh)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			s.writeFailed(w, r, err, id, "/v1/webhooks/"+id)
			return
		}
		v := s.webhookOf(ctx, wh)
		v.LogPosition = last
		writeJSON(w, http.StatusAccepted, struct {
			FromSeq int64       `json:"from_seq"`
			Webhook webhookView `json:"webhook"`
		}{from + 1, v})
		return
	}
	writeError(w, r, http.StatusConflict, "conflict", "the webhook keeps changing; try again", "")
}
