package httpapi

import (
	_ "embed"
	"net/http"

	"github.com/julienschmidt/httprouter"
)

// openAPI is the API's contract (OpenAPI 3.1); TestOpenAPIMatchesRoutes
// keeps it and the routes in step.
//
//go:embed openapi.json
var openAPI []byte

// routes registers handlers and remembers every route.
type routes struct {
	*httprouter.Router
	list *[]string
}

func (r routes) handle(method, path string, h httprouter.Handle) {
	*r.list = append(*r.list, method+" "+path)
	labelled := func(w http.ResponseWriter, req *http.Request, ps httprouter.Params) {
		// The pattern, not the path, labels the request's metrics.
		if sw, ok := w.(*statusWriter); ok {
			sw.route = path
		}
		h(w, req, ps)
	}
	r.Router.Handle(method, path, labelled)
	if method == http.MethodGet {
		// HEAD is GET without the body (net/http drops what is written),
		// as load balancers probe: every GET route answers it, which the
		// OpenAPI document says once, in its description.
		r.Router.Handle(http.MethodHead, path, labelled)
	}
}

func serveOpenAPI(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(openAPI)
}
