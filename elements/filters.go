package elements

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/kurento-go/kms/dotgraph"
	"github.com/kurento-go/kms/gst"
	"github.com/kurento-go/kms/kerr"
	"github.com/kurento-go/kms/media"
	"github.com/kurento-go/kms/objects"
	"github.com/kurento-go/kms/processing"
)

// filterElement is the object side shared by the filter classes: the graph element and its
// GStreamer pipeline (processing.Filter).
type filterElement struct {
	*objects.Element
	filter *processing.Filter
	// onMessage receives the element messages of the pipeline (barcode, facedetect...), on the
	// pipeline's bus goroutine.
	onMessage func(gst.Message)
	log       *slog.Logger
}

// Close takes the element out of the graph first (no more packets), then stops its pipeline.
func (f *filterElement) Close() {
	f.Element.Close()
	if f.filter != nil {
		f.filter.Close()
	}
}

// GstPipelines is the filter's pipeline, for getGstreamerDot.
func (f *filterElement) GstPipelines() []dotgraph.NamedGst {
	if f.filter == nil {
		return nil
	}
	return []dotgraph.NamedGst{{Label: "filter", Pipe: f.filter.Pipeline()}}
}

func (f *filterElement) onEvent(ev media.Event) {
	switch ev := ev.(type) {
	case processing.Error:
		f.Emit("Error", map[string]any{"description": ev.Description, "errorCode": ev.Code, "type": ev.Type})
	case processing.ElementMessage:
		if f.onMessage != nil {
			f.onMessage(ev.Message)
		}
	}
}

// newFilterElement makes the element and its pipeline around el (taken over).
func (d *definer) newFilterElement(b *objects.Base, initial map[string]any, t media.Type, el *gst.Element) (*filterElement, error) {
	return d.newFilterElementWith(b, initial, func(e *media.Element, cfg processing.Config) (*processing.Filter, error) {
		cfg.Type, cfg.Element = t, el
		return processing.NewFilter(e, cfg)
	})
}

// newFilterElementWith makes the element, its media part being made by build.
func (d *definer) newFilterElementWith(b *objects.Base, initial map[string]any,
	build func(*media.Element, processing.Config) (*processing.Filter, error)) (*filterElement, error) {
	f := &filterElement{Element: objects.NewElement(b, initial), log: d.r.Logger().With("element", b.ID())}
	f.OnOtherEvent = f.onEvent
	var err error
	f.filter, err = build(f.Media, processing.Config{Log: f.log})
	if err != nil {
		f.Element.Close()
		var pe *gst.ParseError
		switch {
		case errors.Is(err, processing.ErrWrongKind):
			return nil, kerr.New(kerr.MarshallError, "%s", processing.ErrWrongKind.Error())
		case errors.Is(err, processing.ErrNoFaceModel), errors.As(err, &pe):
			// KMS: the filter's GStreamer element could not be made.
			return nil, kerr.New(kerr.ObjectNotAvailable, "Media Object not available: %v", err)
		}
		return nil, kerr.New(kerr.UnexpectedError, "GStreamer pipeline cannot be created: %v", err)
	}
	return f, nil
}

// parseFilterElement builds the one element of a GStreamerFilter command, with KMS's errors.
func parseFilterElement(command string) (*gst.Element, error) {
	el, err := processing.ParseElement(command)
	var pe *gst.ParseError
	switch {
	case errors.As(err, &pe):
		return nil, kerr.New(kerr.MarshallError, "GStreamer element cannot be created: %s", pe.Message)
	case errors.Is(err, gst.ErrNotSingle):
		return nil, kerr.New(kerr.MarshallError, "Given command is not valid, only one element can be created")
	case err != nil:
		return nil, kerr.New(kerr.UnexpectedError, "GStreamer element cannot be created: %v", err)
	}
	return el, nil
}

// filterFactory makes the element of a filter class, or tells that its plugin is missing as KMS
// does (40101).
func filterFactory(desc, class string) (*gst.Element, error) {
	el, err := gst.ParseElement(desc)
	if err != nil {
		return nil, kerr.New(kerr.ObjectNotFound, "%s plugin not available: %v", class, err)
	}
	return el, nil
}

func (d *definer) defineFilters() {
	schema := d.r.Schema()
	d.r.Define("GStreamerFilter", objects.Class{
		New: func(b *objects.Base, a objects.Args) (objects.Object, error) {
			command := a.String("command")
			el, err := parseFilterElement(command)
			if err != nil {
				return nil, err
			}
			var t media.Type
			switch kind := el.Kind(); a.String("filterType") {
			case "VIDEO":
				t = media.Video
			case "AUDIO":
				t = media.Audio
			default: // AUTODETECT, as KMS: audio first, then video
				switch kind {
				case gst.KindAudio:
					t = media.Audio
				case gst.KindVideo:
					t = media.Video
				default:
					el.Close()
					return nil, kerr.New(kerr.MarshallError, "Given command is not valid, pad templates don't match")
				}
			}
			if el.Kind() == gst.KindInvalid {
				el.Close()
				return nil, kerr.New(kerr.MarshallError, "Given command is not valid, pad templates don't match")
			}
			f, err := d.newFilterElement(b, map[string]any{"command": command}, t, el)
			if err != nil {
				return nil, err
			}
			return &gstreamerFilter{filterElement: f}, nil
		},
		Ops: objects.Merge(map[string]objects.Handler{
			"setElementProperty": func(o objects.Object, a objects.Args) (any, error) {
				f := o.(*gstreamerFilter)
				err := f.filter.SetProperty(a.String("propertyName"), a.String("propertyValue"))
				var pe *gst.PropertyError
				switch {
				case err == nil:
					return nil, nil
				case errors.As(err, &pe):
					return nil, kerr.New(kerr.MarshallError, "%s", pe.Error())
				}
				return nil, kerr.New(kerr.UnexpectedError, "%v", err)
			},
		}, objects.PropertyOps(schema.Classes["GStreamerFilter"], func(o objects.Object) *objects.Properties {
			return o.(*gstreamerFilter).Props
		}, "command")),
	})

	d.r.Define("ZBarFilter", objects.Class{
		New: func(b *objects.Base, _ objects.Args) (objects.Object, error) {
			el, err := filterFactory("zbar qos=false", "ZBarFilter")
			if err != nil {
				return nil, err
			}
			f, err := d.newFilterElement(b, nil, media.Video, el)
			if err != nil {
				return nil, err
			}
			z := &zbarFilter{filterElement: f}
			f.onMessage = z.onMessage
			return z, nil
		},
	})

	d.r.Define("FaceOverlayFilter", objects.Class{
		New: func(b *objects.Base, _ objects.Args) (objects.Object, error) {
			fo := &faceOverlayFilter{}
			f, err := d.newFilterElementWith(b, nil, func(e *media.Element, cfg processing.Config) (*processing.Filter, error) {
				var err error
				if fo.media, err = processing.NewFaceOverlay(e, cfg); err != nil {
					return nil, err
				}
				return fo.media.Filter, nil
			})
			if err != nil {
				return nil, err
			}
			fo.filterElement = f
			return fo, nil
		},
		Ops: objects.Merge(map[string]objects.Handler{
			"setOverlayedImage": func(o objects.Object, a objects.Args) (any, error) {
				f := o.(*faceOverlayFilter)
				uri := a.String("uri")
				// As KMS: an image that cannot be loaded is logged and leaves no image over the
				// faces; the call itself succeeds.
				img, err := processing.LoadImage(context.Background(), uri, f.log)
				if err != nil {
					f.log.Error("FaceOverlayFilter: cannot load the overlay image; faces get none", "uri", uri, "err", err)
				}
				p := processing.Placement{X: a.Float("offsetXPercent"), Y: a.Float("offsetYPercent"),
					Width: a.Float("widthPercent"), Height: a.Float("heightPercent")}
				return nil, overlayErr(f.media.SetImage(img, p))
			},
			"unsetOverlayedImage": func(o objects.Object, _ objects.Args) (any, error) {
				return nil, overlayErr(o.(*faceOverlayFilter).media.SetImage(nil, processing.Placement{}))
			},
		}),
	})

	d.r.Define("ImageOverlayFilter", objects.Class{
		New: func(b *objects.Base, _ objects.Args) (objects.Object, error) {
			io := &imageOverlayFilter{}
			f, err := d.newFilterElementWith(b, nil, func(e *media.Element, cfg processing.Config) (*processing.Filter, error) {
				var err error
				if io.media, err = processing.NewImageOverlay(e, cfg); err != nil {
					return nil, err
				}
				return io.media.Filter, nil
			})
			if err != nil {
				return nil, err
			}
			io.filterElement = f
			return io, nil
		},
		Ops: objects.Merge(map[string]objects.Handler{
			"addImage": func(o objects.Object, a objects.Args) (any, error) {
				f := o.(*imageOverlayFilter)
				id, uri := a.String("id"), a.String("uri")
				// As KMS: an image that cannot be loaded is logged and kept under its id, drawing
				// nothing; the call itself succeeds.
				img, err := processing.LoadImage(context.Background(), uri, f.log)
				if err != nil {
					f.log.Warn("ImageOverlayFilter: image not loaded", "id", id, "uri", uri, "err", err)
				}
				p := processing.Placement{X: a.Float("offsetXPercent"), Y: a.Float("offsetYPercent"),
					Width: a.Float("widthPercent"), Height: a.Float("heightPercent"),
					KeepAspectRatio: a.Bool("keepAspectRatio"), Center: a.Bool("center")}
				return nil, overlayErr(f.media.Add(id, img, p))
			},
			"removeImage": func(o objects.Object, a objects.Args) (any, error) {
				f := o.(*imageOverlayFilter)
				found, err := f.media.Remove(a.String("id"))
				if err == nil && !found {
					f.log.Warn("ImageOverlayFilter: no image under that id", "id", a.String("id"))
				}
				return nil, overlayErr(err)
			},
		}),
	})
}

// overlayErr words a failure to change a running overlay (its pipeline is gone).
func overlayErr(err error) error {
	if err == nil {
		return nil
	}
	return kerr.New(kerr.UnexpectedError, "overlay not updated: %v", err)
}

// faceOverlayFilter is the FaceOverlayFilter class: an image drawn over each face found.
type faceOverlayFilter struct {
	*filterElement
	media *processing.FaceOverlay
}

// imageOverlayFilter is the ImageOverlayFilter class: images by id at places of the frame.
type imageOverlayFilter struct {
	*filterElement
	media *processing.ImageOverlay
}

// gstreamerFilter is the GStreamerFilter class.
type gstreamerFilter struct{ *filterElement }

// zbarFilter is the ZBarFilter class: CodeFound for each code zbar reads.
type zbarFilter struct {
	*filterElement
	mu         sync.Mutex
	lastType   string
	lastSymbol string
	lastTS     uint64
}

// onMessage emits CodeFound as KMS does: when the code changes, or again after one second of
// stream time with the same code.
func (z *zbarFilter) onMessage(m gst.Message) {
	if m.Name != "barcode" {
		return
	}
	typ, _ := m.Fields["type"].(string)
	symbol, _ := m.Fields["symbol"].(string)
	ts, _ := m.Fields["timestamp"].(uint64)
	z.mu.Lock()
	emit := symbol != z.lastSymbol || typ != z.lastType || z.lastTS == 0 || ts-z.lastTS >= 1e9
	if emit {
		z.lastType, z.lastSymbol, z.lastTS = typ, symbol, ts
	}
	z.mu.Unlock()
	if emit {
		z.Emit("CodeFound", map[string]any{"codeType": typ, "value": symbol})
	}
}
