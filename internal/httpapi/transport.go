package httpapi

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
)

var (
	nosniff   = []string{"nosniff"}
	closeConn = []string{"close"}
)

// maxQueryParams is net/url's own limit: beyond it ParseQuery returns
// nothing, so a filter would be dropped without a word.
const maxQueryParams = 10000

// queryProblem says why a query string cannot be read as the handlers read
// it (r.URL.Query() drops what does not parse: `status=bogus` among 10,001
// parameters answered 200 with an unfiltered list), or "" when it can.
func queryProblem(raw string) string {
	if raw == "" {
		return ""
	}
	if n := strings.Count(raw, "&") + 1; n > maxQueryParams {
		return "the query has " + strconv.Itoa(n) + " parameters; at most " + strconv.Itoa(maxQueryParams) + " are read"
	}
	if _, err := url.ParseQuery(raw); err != nil {
		return "the query does not parse: " + err.Error()
	}
	return ""
}

// trackedBody notes whether the handler read any of the request's body.
// A refusal sent before that closes the connection: net/http would
// otherwise wait for the whole body to arrive before it answers (to read
// the next request after it), so a client trickling a body that will be
// refused held the connection for the 60 s read timeout, unanswered.
type trackedBody struct {
	io.ReadCloser
	read atomic.Bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.ReadCloser.Read(p)
}

// transportHeaders sets what the connection needs to know before a
// handler runs: nosniff on every answer (a browser never guesses a type
// other than the one sent), and Connection: close after a request with a
// Transfer-Encoding. RFC 9112 (6.3) wants a request with both
// Transfer-Encoding and Content-Length answered and the connection closed
// (a proxy in front may have framed it by the length); net/http drops the
// Content-Length before a handler sees the request, so every chunked
// request is treated so: it costs a chunked upload its keep-alive, nothing
// else.
func transportHeaders(h http.Header, r *http.Request) {
	h["X-Content-Type-Options"] = nosniff
	if len(r.TransferEncoding) > 0 {
		h["Connection"] = closeConn
	}
}
