package elements

import (
	"errors"
	"fmt"

	"github.com/kurento-go/kms/endpoints/recorder"
	"github.com/kurento-go/kms/kerr"
	"github.com/kurento-go/kms/media"
	"github.com/kurento-go/kms/objects"
	"github.com/kurento-go/kms/uriguard"
)

// recorderEndpoint is the RecorderEndpoint class: the object side over endpoints/recorder.
type recorderEndpoint struct {
	*objects.Element
	uri string // as given (with %2F decoded), for getUri
	rec *recorder.Recorder
}

// Close finalizes a recording in progress first (KMS: release = stopAndWait, then release), then
// takes the element out of the graph. registry.ReleaseAll calls it at shutdown.
func (e *recorderEndpoint) Close() {
	e.rec.Close()
	e.Element.Close()
}

// RecordingStats tells how many bytes the recording has written, how many packets it dropped because
// its writer lagged, and whether it is being written now, for metrics and the inspector.
func (e *recorderEndpoint) RecordingStats() (bytes int64, drops uint64, writing bool) {
	st, state := e.rec.Stats(), e.rec.State()
	return st.Bytes, st.Drops, state == recorder.StateStart || state == recorder.StatePause
}

// DotDescription is what getGstreamerDot shows of the pure-Go recorder.
func (e *recorderEndpoint) DotDescription() []string {
	st := e.rec.Stats()
	return []string{"recorder (Go muxer)", "uri " + e.uri, "state " + string(e.rec.State()),
		fmt.Sprintf("%d frames, %d bytes written", st.Frames, st.Bytes)}
}

// Finalize ends a recording in progress at shutdown, with its Stopped event and its index written.
func (e *recorderEndpoint) Finalize() { e.rec.StopAndWait(recorder.StopTimeout) }

func (e *recorderEndpoint) onEvent(ev media.Event) {
	switch ev := ev.(type) {
	case recorder.StateChanged:
		e.Emit("UriEndpointStateChanged", map[string]any{"state": string(ev.State)})
	case recorder.Recording:
		e.Emit("Recording", nil)
	case recorder.Paused:
		e.Emit("Paused", nil)
	case recorder.Stopped:
		e.Emit("Stopped", nil)
	case recorder.Error:
		e.Emit("Error", map[string]any{"description": ev.Description, "errorCode": ev.Code, "type": ev.Type})
	}
}

func (d *definer) defineRecorder() {
	rec := func(o objects.Object) *recorder.Recorder { return o.(*recorderEndpoint).rec }
	d.r.Define("RecorderEndpoint", objects.Class{
		New: func(b *objects.Base, a objects.Args) (objects.Object, error) {
			profile, err := recorder.ParseProfile(a.String("mediaProfile"))
			switch {
			case errors.Is(err, recorder.ErrSplitRecorder):
				return nil, kerr.New(kerr.IllegalParam, "%v", err)
			case err != nil:
				return nil, kerr.New(kerr.NotImplemented, "%v", err)
			}
			uri := a.String("uri")
			u, err := recorder.ResolveURI(uri, d.cfg.Modules.UriEndpoint.DefaultPath)
			if err != nil {
				return nil, kerr.New(kerr.IllegalParam, "%v", err)
			}
			if err := d.recorderURIs.Check(u); err != nil {
				return nil, kerr.New(kerr.IllegalParam, "RecorderEndpoint uri refused: %v", err)
			}
			if u.Scheme == "file" {
				if err := uriguard.CheckWritable(u.Path); err != nil {
					return nil, kerr.New(kerr.IllegalParam, "RecorderEndpoint uri refused: %v", err)
				}
			}
			e := &recorderEndpoint{Element: objects.NewElement(b, nil), uri: recorder.DecodeSlashes(uri)}
			e.OnOtherEvent = e.onEvent
			e.rec = recorder.New(e.Media, recorder.Config{
				URI:               u,
				Profile:           profile,
				StopOnEndOfStream: a.Bool("stopOnEndOfStream"),
				Log:               d.r.Logger().With("element", b.ID()),
			})
			return e, nil
		},
		Ops: map[string]objects.Handler{
			"record": func(o objects.Object, _ objects.Args) (any, error) { rec(o).Record(); return nil, nil },
			"pause":  func(o objects.Object, _ objects.Args) (any, error) { rec(o).Pause(); return nil, nil },
			"stop":   func(o objects.Object, _ objects.Args) (any, error) { rec(o).Stop(); return nil, nil },
			"stopAndWait": func(o objects.Object, _ objects.Args) (any, error) {
				rec(o).StopAndWait(recorder.StopTimeout)
				return nil, nil
			},
			"getUri":   func(o objects.Object, _ objects.Args) (any, error) { return o.(*recorderEndpoint).uri, nil },
			"getState": func(o objects.Object, _ objects.Args) (any, error) { return string(rec(o).State()), nil },
		},
	})
}
