package elements

import (
	"time"

	"github.com/kurento-go/kms/endpoints/httppost"
	"github.com/kurento-go/kms/kerr"
	"github.com/kurento-go/kms/media"
	"github.com/kurento-go/kms/objects"
)

// httpPostEndpoint is the HttpPostEndpoint class: the object side over endpoints/httppost.
type httpPostEndpoint struct {
	*objects.Element
	ep *httppost.Endpoint
}

// Close stops serving the endpoint's URL and tears its pipeline down.
func (e *httpPostEndpoint) Close() {
	e.ep.Close()
	e.Element.Close()
}

func (d *definer) defineHttpPost() {
	d.r.Define("HttpPostEndpoint", objects.Class{
		New: func(b *objects.Base, a objects.Args) (objects.Object, error) {
			srv, err := httppost.Shared(d.cfg.Modules.HttpEndpoint)
			if err != nil {
				return nil, kerr.New(kerr.HttpEndpointRegistrationError, "Cannot start the HTTP server: %v", err)
			}
			timeout := 2
			if a.Has("disconnectionTimeout") {
				timeout = a.Int("disconnectionTimeout")
			}
			e := &httpPostEndpoint{Element: objects.NewElement(b, nil)}
			e.OnOtherEvent = func(ev media.Event) {
				if !sessionEvents(e.Element, ev) {
					uriEvents(e.Element, ev)
				}
			}
			e.ep = httppost.New(e.Media, srv, httppost.Config{
				DisconnectionTimeout: time.Duration(timeout) * time.Second,
				UseEncodedMedia:      a.Bool("useEncodedMedia"),
				Bitrate:              e.Media.EncoderBitrate().For(0),
				Log:                  d.r.Logger().With("element", b.ID()),
			})
			return e, nil
		},
		Ops: map[string]objects.Handler{
			"getUrl": func(o objects.Object, _ objects.Args) (any, error) { return o.(*httpPostEndpoint).ep.URL(), nil },
		},
	})
}
