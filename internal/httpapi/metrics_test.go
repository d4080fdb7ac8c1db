package httpapi

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"app/internal/metrics"
	"app/internal/store"
	"app/internal/testdb"
)

// A worker's /metrics (admin key) counts its requests by route pattern,
// method and status; the labels stay bounded whatever clients send.
func TestMetricsCountRequestsByRoute(t *testing.T) {
	db := testdb.Start(t)
	st := db.Connect(nil)
	reg := metrics.NewRegistry(prometheus.Labels{"worker": "7"})
	url := serve(t, &Server{Backend: st, Keys: st, Webhooks: st, Log: zerolog.Nop(), Worker: "7",
		Metrics: metrics.NewHTTP(reg.Reg), MetricsGatherer: reg.Gatherer}, nil)
	key, k := store.NewAPIKey("ops", []string{store.ScopeAdmin})
	if err := st.CreateAPIKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	admin := map[string]string{"Authorization": "Bearer " + key}
	for _, id := range []string{"wh_a", "wh_b", "wh_c"} {
		if r := do(t, "GET", url+"/v1/webhooks/"+id, nil, admin); r.status != 404 {
			t.Fatalf("GET /v1/webhooks/%s: %d", id, r.status)
		}
	}
	do(t, "BREW", url+"/coffee/"+strings.Repeat("x", 30), nil, nil)
	if r := do(t, "GET", url+"/metrics", nil, nil); r.status != 401 {
		t.Fatalf("/metrics without a key: %d", r.status)
	}
	req, _ := http.NewRequest("GET", url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	out := string(b)
	for _, want := range []string{
		`app_http_requests_total{code="404",method="GET",route="/v1/webhooks/:id",worker="7"} 3`,
		`app_http_requests_total{code="404",method="other",route="unmatched",worker="7"} 1`,
		`app_http_requests_total{code="401",method="GET",route="/metrics",worker="7"} 1`,
		`app_http_request_duration_seconds_bucket{method="GET",route="/v1/webhooks/:id",worker="7",le="+Inf"} 3`,
		`app_http_requests_in_flight{worker="7"} 1`, // this scrape
	} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(out, "wh_a") || strings.Contains(out, "coffee") || strings.Contains(out, "BREW") {
		t.Error("a path or method from a client became a label")
	}
}
