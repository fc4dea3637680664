// Package inspector is a read-only web page of the live server: its sessions and pipelines, each
// pipeline drawn as a graph of elements and links with per-element figures refreshed every second,
// the GStreamer DOT of elements, and a search by object id. The page is plain HTML and a small
// script embedded in the binary; its data is JSON under /inspector/api/.
package inspector

import (
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"os/exec"
	"strings"
	"time"

	"github.com/kurento-go/kms/api"
	"github.com/kurento-go/kms/objects"
	"github.com/kurento-go/kms/observe"
)

//go:embed web
var web embed.FS

// Handler serves the inspector under /inspector/ (mount it with that prefix).
func Handler(r *objects.Registry) http.Handler {
	mux := http.NewServeMux()
	files, _ := fs.Sub(web, "web")
	mux.Handle("GET /inspector/", http.StripPrefix("/inspector/", http.FileServerFS(files)))
	mux.HandleFunc("GET /inspector/api/overview", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, overview(r))
	})
	mux.HandleFunc("GET /inspector/api/pipelines/{id}", func(w http.ResponseWriter, req *http.Request) {
		p, err := r.Get(req.PathValue("id"))
		if err != nil || className(p) != "MediaPipeline" {
			http.Error(w, "no such pipeline", http.StatusNotFound)
			return
		}
		writeJSON(w, struct {
			Time int64 `json:"time"` // ms, for rates
			observe.Pipeline
		}{time.Now().UnixMilli(), observe.ReadPipeline(r, p)})
	})
	mux.HandleFunc("GET /inspector/api/objects/{id}", func(w http.ResponseWriter, req *http.Request) {
		o, err := r.Get(req.PathValue("id"))
		if err != nil {
			http.Error(w, "no such object", http.StatusNotFound)
			return
		}
		writeJSON(w, describe(r, o))
	})
	mux.HandleFunc("GET /inspector/api/dot/{id}", func(w http.ResponseWriter, req *http.Request) {
		o, err := r.Get(req.PathValue("id"))
		if err != nil {
			http.Error(w, "no such object", http.StatusNotFound)
			return
		}
		dot, err := r.Query(o, "getGstreamerDot")
		text, _ := dot.(string)
		if err != nil || text == "" {
			http.Error(w, "no GStreamer DOT for this object", http.StatusNotFound)
			return
		}
		if req.URL.Query().Get("format") == "svg" {
			if svg, err := render(req.Context(), text); err == nil {
				w.Header().Set("Content-Type", "image/svg+xml")
				w.Write(svg)
				return
			}
			// Without Graphviz the page shows the text.
			w.Header().Set("X-Inspector-Render", "unavailable")
		}
		w.Header().Set("Content-Type", "text/vnd.graphviz; charset=utf-8")
		w.Write([]byte(text))
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(v)
}

// summary is a pipeline in the list.
type summary struct {
	ID       string   `json:"id"`
	Elements int      `json:"elements"`
	Sessions []string `json:"sessions"`
}

func overview(r *objects.Registry) any {
	out := struct {
		Sessions  []string  `json:"sessions"`
		Pipelines []summary `json:"pipelines"`
	}{Sessions: r.Sessions(), Pipelines: []summary{}}
	for _, p := range r.Pipelines() {
		out.Pipelines = append(out.Pipelines, summary{ID: p.ID(), Elements: countElements(r, p), Sessions: r.SessionsOf(p)})
	}
	return out
}

func countElements(r *objects.Registry, o objects.Object) int {
	n := 0
	for _, c := range r.Children(o) {
		n += 1 + countElements(r, c)
	}
	return n
}

// found is what a search by id finds: the object and the pipeline to show.
type found struct {
	ID       string   `json:"id"`
	Class    string   `json:"class"`
	Pipeline string   `json:"pipeline,omitempty"`
	Sessions []string `json:"sessions"`
}

func describe(r *objects.Registry, o objects.Object) found {
	f := found{ID: o.ID(), Class: className(o), Sessions: r.SessionsOf(o)}
	for p := o; p != nil; p = p.(node).Parent() {
		if className(p) == "MediaPipeline" {
			f.Pipeline = p.ID()
		}
	}
	return f
}

// node is what every registry object is (they all embed objects.Base).
type node interface {
	Class() *api.Class
	Parent() objects.Object
}

func className(o objects.Object) string { return o.(node).Class().Name }

// render draws DOT as SVG with Graphviz's dot, when installed.
func render(ctx context.Context, dot string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "dot", "-Tsvg")
	cmd.Stdin = strings.NewReader(dot)
	return cmd.Output()
}
