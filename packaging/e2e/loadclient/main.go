// Command loadclient is the e2e test's keep-alive client: a few goroutines
// share one http.Transport (connections kept alive, several idle per host),
// each sending GETs to one URL until a stop file appears or it has sent its
// share, and it prints how the requests ended. A request that Go's
// Transport had to send again (a connection closed under it) counts as
// failed: Node's fetch and most other clients do not retry.
//
//	loadclient -name healthz -conns 3 -pace 5ms -max 20000 -stop /tmp/stop http://127.0.0.1:8080/healthz
//
// Output: one line per outcome, "<count> <name> <status> <outcome>", the
// outcome "0" for a request answered on its first attempt, "retried" or
// "error"; then "<count> <name> reused" for the answers that came on a
// reused connection.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"sort"
	"sync"
	"time"
)

func main() {
	name := flag.String("name", "load", "the route's name in the output")
	conns := flag.Int("conns", 3, "concurrent requests (and idle connections kept)")
	pace := flag.Duration("pace", 5*time.Millisecond, "each goroutine's pause between requests")
	maxN := flag.Int("max", 20000, "requests per goroutine at most")
	stop := flag.String("stop", "/tmp/stop", "stop once this file exists")
	auth := flag.String("auth", "", "an Authorization header value")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: loadclient [flags] URL")
		os.Exit(2)
	}
	url := flag.Arg(0)
	tr := &http.Transport{MaxIdleConnsPerHost: *conns, IdleConnTimeout: 90 * time.Second}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	var mu sync.Mutex
	outcomes := map[string]int{}
	reused := 0
	var wg sync.WaitGroup
	for range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < *maxN; i++ {
				if _, err := os.Stat(*stop); err == nil {
					return
				}
				attempts, wasReused := 0, false
				trace := &httptrace.ClientTrace{GotConn: func(c httptrace.GotConnInfo) { attempts++; wasReused = c.Reused }}
				req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", url, nil)
				if *auth != "" {
					req.Header.Set("Authorization", *auth)
				}
				status, outcome := "000", "0"
				res, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					status = fmt.Sprint(res.StatusCode)
				}
				switch {
				case err != nil:
					outcome = "error"
					fmt.Fprintf(os.Stderr, "%s: %v\n", *name, err)
				case attempts > 1:
					outcome = "retried"
				}
				mu.Lock()
				outcomes[status+" "+outcome]++
				if err == nil && attempts == 1 && wasReused {
					reused++
				}
				mu.Unlock()
				time.Sleep(*pace)
			}
		}()
	}
	wg.Wait()
	keys := make([]string, 0, len(outcomes))
	for k := range outcomes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("%d %s %s\n", outcomes[k], *name, k)
	}
	fmt.Printf("%d %s reused\n", reused, *name)
}
