package elements

import (
	"fmt"
	"time"

	"github.com/kurento-go/kms/api"
	"github.com/kurento-go/kms/dotgraph"
	"github.com/kurento-go/kms/endpoints/player"
	"github.com/kurento-go/kms/endpoints/recorder"
	"github.com/kurento-go/kms/kerr"
	"github.com/kurento-go/kms/media"
	"github.com/kurento-go/kms/objects"
)

// GstPipelines is the player's decoding pipeline, for getGstreamerDot.
func (e *playerEndpoint) GstPipelines() []dotgraph.NamedGst {
	return []dotgraph.NamedGst{{Label: "player " + e.uri, Pipe: e.pl}}
}

// playerEndpoint is the PlayerEndpoint class: the object side over endpoints/player.
type playerEndpoint struct {
	*objects.Element
	uri string // as given (with %2F decoded), for getUri
	pl  *player.Player
}

// Close tears the player's pipeline down, then takes the element out of the graph.
func (e *playerEndpoint) Close() {
	e.pl.Close()
	e.Element.Close()
}

// uriEvents turns the events of a UriEndpoint's media side into Kurento events.
func uriEvents(e *objects.Element, ev media.Event) {
	switch ev := ev.(type) {
	case player.StateChanged:
		e.Emit("UriEndpointStateChanged", map[string]any{"state": string(ev.State)})
	case player.EndOfStream:
		e.Emit("EndOfStream", nil)
	case player.Error:
		e.Emit("Error", map[string]any{"description": ev.Description, "errorCode": ev.Code, "type": ev.Type})
	}
}

func (d *definer) definePlayer() {
	pl := func(o objects.Object) *player.Player { return o.(*playerEndpoint).pl }
	d.r.Define("PlayerEndpoint", objects.Class{
		New: func(b *objects.Base, a objects.Args) (objects.Object, error) {
			uri := a.String("uri")
			u, err := recorder.ResolveURI(uri, d.cfg.Modules.UriEndpoint.DefaultPath)
			if err == nil {
				if err := d.playerURIs.Check(u); err != nil {
					return nil, kerr.New(kerr.IllegalParam, "PlayerEndpoint uri refused: %v", err)
				}
			}
			e := &playerEndpoint{Element: objects.NewElement(b, nil), uri: recorder.DecodeSlashes(uri)}
			e.OnOtherEvent = func(ev media.Event) { uriEvents(e.Element, ev) }
			cfg := player.Config{
				Name:            e.uri,
				UseEncodedMedia: a.Bool("useEncodedMedia"),
				NetworkCache:    2 * time.Second,
				Bitrate:         e.Media.EncoderBitrate().For(0),
				Log:             d.r.Logger().With("element", b.ID()),
			}
			if a.Has("networkCache") {
				cfg.NetworkCache = time.Duration(a.Int("networkCache")) * time.Millisecond
			}
			if r := d.cfg.Modules.PlayerEndpoint.RtspClientPortRange; r.Min > 0 {
				cfg.PortRange = fmt.Sprintf("%d-%d", r.Min, r.Max)
			}
			// Reachability (and even validity) of the URI is found out by play, as an Error event.
			if err != nil {
				cfg.Invalid = err
			} else {
				cfg.URI = u.String()
			}
			e.pl = player.New(e.Media, cfg)
			return e, nil
		},
		Ops: map[string]objects.Handler{
			"play":     func(o objects.Object, _ objects.Args) (any, error) { pl(o).Play(); return nil, nil },
			"pause":    func(o objects.Object, _ objects.Args) (any, error) { pl(o).Pause(); return nil, nil },
			"stop":     func(o objects.Object, _ objects.Args) (any, error) { pl(o).Stop(); return nil, nil },
			"getUri":   func(o objects.Object, _ objects.Args) (any, error) { return o.(*playerEndpoint).uri, nil },
			"getState": func(o objects.Object, _ objects.Args) (any, error) { return string(pl(o).State()), nil },
			"getPosition": func(o objects.Object, _ objects.Args) (any, error) {
				return pl(o).Position().Milliseconds(), nil
			},
			"setPosition": func(o objects.Object, a objects.Args) (any, error) {
				if err := pl(o).SetPosition(time.Duration(a.Int64("position")) * time.Millisecond); err != nil {
					return nil, kerr.New(kerr.PlayerSeekFail, "Seek fails")
				}
				return nil, nil
			},
			"getVideoInfo": func(o objects.Object, _ objects.Args) (any, error) {
				vi := pl(o).VideoInfo()
				return &api.Register{Type: "VideoInfo", Fields: map[string]any{
					"isSeekable":   vi.Seekable,
					"seekableInit": vi.SeekableInit.Milliseconds(),
					"seekableEnd":  vi.SeekableEnd.Milliseconds(),
					"duration":     vi.Duration.Milliseconds(),
				}}, nil
			},
			"getElementGstreamerDot": func(o objects.Object, a objects.Args) (any, error) {
				return pl(o).Dot(uint(dotgraph.ParseDetails(a.String("details")))), nil
			},
		},
	})
}
