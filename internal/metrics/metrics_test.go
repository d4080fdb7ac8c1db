package metrics

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"app/internal/testutil"
)

func scrape(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, res.StatusCode, b)
	}
	return string(b)
}

// Two workers' registries gathered through their listeners by a third
// (the primary): one exposition, each series once, labelled by worker.
func TestPrimaryGathersTheWorkers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base := freeAddr(t)
	var g prometheus.Gatherers
	own := NewRegistry(nil)
	g = append(g, own.Gatherer)
	for n, hits := range []int{3, 5} {
		r := NewRegistry(prometheus.Labels{"worker": string(rune('1' + n))})
		m := NewHTTP(r.Reg)
		for range hits {
			m.Begin()("/v1/messages/:id", "GET", 200)
		}
		done := m.Subscribed("sse")
		if n == 1 {
			done() // worker 2's client left
		}
		addr, err := WorkerAddr(base, n+1)
		if err != nil {
			t.Fatal(err)
		}
		go Serve(ctx, addr, r.Gatherer, zerolog.Nop())
		waitListening(t, addr)
		g = append(g, Remote{URL: "http://" + addr + "/metrics"})
	}
	// A worker that is not there (restarting) leaves only its series out.
	missing, _ := WorkerAddr(base, 3)
	g = append(g, Remote{URL: "http://" + missing + "/metrics"})
	srv := httptest.NewServer(Handler(g, zerolog.Nop()))
	defer srv.Close()
	out := scrape(t, srv.URL)
	for _, want := range []string{
		`app_http_requests_total{code="200",method="GET",route="/v1/messages/:id",worker="1"} 3`,
		`app_http_requests_total{code="200",method="GET",route="/v1/messages/:id",worker="2"} 5`,
		`app_http_request_duration_seconds_count{method="GET",route="/v1/messages/:id",worker="2"} 5`,
		`app_realtime_subscribers{transport="sse",worker="1"} 1`,
		`app_realtime_subscribers{transport="sse",worker="2"} 0`,
		`app_http_requests_in_flight{worker="1"} 0`,
		`go_goroutines{worker="2"}`,
		"\ngo_goroutines ", // the primary's own, unlabelled
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the exposition lacks %s", want)
		}
	}
	if n := strings.Count(out, "# TYPE app_http_requests_total counter"); n != 1 {
		t.Errorf("app_http_requests_total is declared %d times", n)
	}
}

func TestInFlightAndWorkerAddr(t *testing.T) {
	r := NewRegistry(nil)
	m := NewHTTP(r.Reg)
	done := m.Begin()
	mfs, _ := r.Gatherer.Gather()
	if v := value(mfs, "app_http_requests_in_flight"); v != 1 {
		t.Errorf("in flight during a request: %v", v)
	}
	done("/healthz", "GET", 200)
	mfs, _ = r.Gatherer.Gather()
	if v := value(mfs, "app_http_requests_in_flight"); v != 0 {
		t.Errorf("in flight after: %v", v)
	}
	var nilHTTP *HTTP // metrics off: measuring costs nothing and fails nothing
	nilHTTP.Begin()("/", "GET", 200)
	nilHTTP.Subscribed("ws")()
	if a, err := WorkerAddr("127.0.0.1:9464", 3); err != nil || a != "127.0.0.1:9467" {
		t.Errorf("WorkerAddr: %q %v", a, err)
	}
	if _, err := WorkerAddr("127.0.0.1:65535", 1); err == nil {
		t.Error("a port past 65535 was made")
	}
}

func value(mfs []*dto.MetricFamily, name string) float64 {
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

func freeAddr(t *testing.T) string {
	t.Helper()
	// A base port whose next few ports are free too.
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		ok := true
		for n := 1; n <= 3; n++ {
			a, err := WorkerAddr(addr, n)
			if err != nil {
				ok = false
				break
			}
			l, err := net.Listen("tcp", a)
			if err != nil {
				ok = false
				break
			}
			_ = l.Close()
		}
		if ok {
			return addr
		}
	}
	t.Fatal("no run of free ports")
	return ""
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, addr+" listening", func() (bool, string) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return false, err.Error()
		}
		_ = c.Close()
		return true, ""
	})
}
