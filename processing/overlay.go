package processing

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"image"
	"image/draw"
	_ "image/gif" // image formats overlays accept
	_ "image/jpeg"
	_ "image/png"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/webp"

	"github.com/kurento-go/kms/gst"
	"github.com/kurento-go/kms/media"
)

// Limits of the images overlays take.
const (
	ImageTimeout   = 10 * time.Second // a download, whole
	MaxImageBytes  = 32 << 20
	MaxImagePixels = 4096 * 4096
)

// ErrNoFaceModel is returned when no Haar cascade for frontal faces is installed (opencv-data).
var ErrNoFaceModel = errors.New("processing: no face model (haarcascade_frontalface_default.xml; install opencv-data)")

// faceModels are where OpenCV's data packages put the face model.
var faceModels = []string{
	"/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml",
	"/usr/share/opencv/haarcascades/haarcascade_frontalface_default.xml",
	"/usr/local/share/opencv4/haarcascades/haarcascade_frontalface_default.xml",
}

// FaceModel is the path of the installed face model, or "" when there is none.
func FaceModel() string {
	for _, p := range faceModels {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// httpClient downloads overlay images. As KMS does (libsoup with ssl-strict off), a certificate
// that does not verify is accepted with a warning; unlike KMS, a download has a time limit.
func httpClient(log *slog.Logger) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{
		InsecureSkipVerify: true, // verified below, only to warn
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return nil
			}
			opts := x509.VerifyOptions{DNSName: cs.ServerName, Intermediates: x509.NewCertPool()}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
				log.Warn("overlay image: HTTPS is not secure", "server", cs.ServerName, "err", err)
			}
			return nil
		},
	}
	tr.DisableKeepAlives = true // one request per image: keep no idle connections (nor their goroutines)
	return &http.Client{Transport: tr, Timeout: ImageTimeout}
}

// LoadImage reads an overlay image as KMS's overlay filters do: a local file (a path or a file://
// URI) or an http(s) URL, downloaded within ImageTimeout. PNG (with alpha), JPEG, GIF, BMP and
// WebP are decoded.
func LoadImage(ctx context.Context, uri string, log *slog.Logger) (*image.NRGBA, error) {
	if log == nil {
		log = slog.Default()
	}
	var data []byte
	u, err := url.Parse(uri)
	switch {
	case uri == "":
		return nil, errors.New("empty image URI")
	case err == nil && (u.Scheme == "http" || u.Scheme == "https"):
		ctx, cancel := context.WithTimeout(ctx, ImageTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
		if err != nil {
			return nil, err
		}
		c := httpClient(log)
		defer c.CloseIdleConnections()
		resp, err := c.Do(req)
		if err != nil {
			return nil, fmt.Errorf("download %s: %w", uri, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return nil, fmt.Errorf("download %s: HTTP %s", uri, resp.Status)
		}
		data, err = io.ReadAll(io.LimitReader(resp.Body, MaxImageBytes+1))
		if err != nil {
			return nil, fmt.Errorf("download %s: %w", uri, err)
		}
	case err == nil && u.Scheme == "file":
		data, err = readFile(u.Path)
	case err == nil && u.Scheme == "" || strings.HasPrefix(uri, "/"):
		data, err = readFile(uri)
	default:
		return nil, fmt.Errorf("unsupported image URI %q", uri)
	}
	if err != nil {
		return nil, err
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("image %s is empty", uri)
	}
	if len(data) > MaxImageBytes {
		return nil, fmt.Errorf("image %s is larger than %d bytes", uri, MaxImageBytes)
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", uri, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > MaxImagePixels {
		return nil, fmt.Errorf("image %s is %dx%d: too large", uri, cfg.Width, cfg.Height)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", uri, err)
	}
	if n, ok := img.(*image.NRGBA); ok {
		return n, nil
	}
	n := image.NewNRGBA(image.Rect(0, 0, img.Bounds().Dx(), img.Bounds().Dy()))
	draw.Draw(n, n.Rect, img, img.Bounds().Min, draw.Src)
	return n, nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxImageBytes+1))
}

// Names of the overlay elements inside the filter bins.
const (
	faceDetectName = "kms_facedetect"
	overlayName    = "kms_overlay"
)

// faceBin detects faces as KMS's face detector does: on a copy of the video scaled down to at most
// 320 pixels wide, with a Haar cascade (scale 1.2, 3 neighbours, faces from 16 pixels: 1/20 of
// that width). Detection runs in its own branch behind a leaky queue, so a slow detector costs
// detections, not video frames; the overlay, in the main branch, draws over the faces of the
// latest frame looked at. facedetect's own drawing and bus messages are off.
// The eyes/nose/mouth profiles keep their defaults: an empty profile makes OpenCV throw (abort),
// and Debian ships none of those cascades, so facedetect only looks for faces.
func faceBin(model string) string {
	return fmt.Sprintf("videoconvert ! video/x-raw,format=BGRx ! tee name=kms_faces ! identity name=%s "+
		"kms_faces. ! queue leaky=downstream max-size-buffers=1 max-size-bytes=0 max-size-time=0 ! "+
		"videoscale ! video/x-raw,width=[1,%d],pixel-aspect-ratio=1/1 ! videoconvert ! "+
		"facedetect name=%s profile=%q display=false updates=none scale-factor=1.2 min-neighbors=3 "+
		"min-size-width=16 min-size-height=16 ! fakesink sync=false async=false",
		overlayName, DetectWidth, faceDetectName, model)
}

// DetectWidth is the widest picture faces are looked for in (wider video is scaled down for it).
const DetectWidth = 320

// imageBin draws into packed RGB frames.
var imageBin = "videoconvert ! capsfilter name=" + overlayName + " caps=video/x-raw,format=BGRx"

// FaceOverlay is the media part of FaceOverlayFilter: faces are found in the video and an image
// is drawn over each.
type FaceOverlay struct {
	*Filter

	mu    sync.Mutex // ov and the image: a rebuilt pipeline gets a new overlay with the same image
	ov    *gst.Overlay
	image []gst.OverlayImage
}

// Placement says where an image goes: offsets and size as fractions (of the face for a
// FaceOverlay, of the frame for an ImageOverlay).
type Placement struct {
	X, Y, Width, Height     float64
	KeepAspectRatio, Center bool
}

// NewFaceOverlay builds the filter (cfg.Type, cfg.Element and cfg.Setup are its own).
func NewFaceOverlay(e *media.Element, cfg Config) (*FaceOverlay, error) {
	model := FaceModel()
	if model == "" {
		return nil, ErrNoFaceModel
	}
	bin, err := gst.ParseBin(faceBin(model))
	if err != nil {
		return nil, err
	}
	f := &FaceOverlay{}
	cfg.Type, cfg.Element = media.Video, bin
	cfg.Setup = func(p *gst.Pipeline) error {
		ov, err := p.Overlay(overlayName)
		if err == nil {
			err = ov.FacesFrom(faceDetectName)
		}
		if err != nil {
			return err
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.ov = ov
		if f.image != nil {
			return ov.Set(f.image)
		}
		return nil
	}
	if f.Filter, err = NewFilter(e, cfg); err != nil {
		return nil, err
	}
	return f, nil
}

// SetImage draws img over every face from now on, replacing the previous image; nil removes it.
func (f *FaceOverlay) SetImage(img *image.NRGBA, p Placement) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.image = nil
	if img != nil {
		f.image = []gst.OverlayImage{{Image: img, Faces: true, X: p.X, Y: p.Y, Width: p.Width, Height: p.Height}}
	}
	return f.ov.Set(f.image)
}

func (f *FaceOverlay) overlay() *gst.Overlay {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ov
}

// Drawn is the number of times the image was drawn over a face (by the current pipeline).
func (f *FaceOverlay) Drawn() uint64 { return f.overlay().Drawn() }

// Detections is the number of frames faces were looked for in (by the current pipeline).
func (f *FaceOverlay) Detections() uint64 { return f.overlay().Detections() }

// ImageOverlay is the media part of ImageOverlayFilter: images, each under an id, drawn at fixed
// places of the video.
type ImageOverlay struct {
	*Filter
	ov *gst.Overlay

	mu     sync.Mutex     // ov and images: a rebuilt pipeline gets a new overlay with the same images
	images []overlayEntry // in drawing order
}

type overlayEntry struct {
	id  string
	img *image.NRGBA // nil: the image could not be loaded; the entry stays, drawing nothing (KMS)
	p   Placement
}

// NewImageOverlay builds the filter (cfg.Type, cfg.Element and cfg.Setup are its own).
func NewImageOverlay(e *media.Element, cfg Config) (*ImageOverlay, error) {
	bin, err := gst.ParseBin(imageBin)
	if err != nil {
		return nil, err
	}
	o := &ImageOverlay{}
	cfg.Type, cfg.Element = media.Video, bin
	cfg.Setup = func(p *gst.Pipeline) error {
		ov, err := p.Overlay(overlayName)
		if err != nil {
			return err
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		o.ov = ov
		if len(o.images) > 0 {
			return o.apply()
		}
		return nil
	}
	if o.Filter, err = NewFilter(e, cfg); err != nil {
		return nil, err
	}
	return o, nil
}

// Add draws img at p under id; an image already under that id is replaced in place, a new one is
// drawn over the others.
func (o *ImageOverlay) Add(id string, img *image.NRGBA, p Placement) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	e := overlayEntry{id: id, img: img, p: p}
	replaced := false
	for i := range o.images {
		if o.images[i].id == id {
			o.images[i], replaced = e, true
		}
	}
	if !replaced {
		o.images = append(o.images, e)
	}
	return o.apply()
}

// Remove stops drawing the image under id; false when there was none.
func (o *ImageOverlay) Remove(id string) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := range o.images {
		if o.images[i].id == id {
			o.images = append(o.images[:i], o.images[i+1:]...)
			return true, o.apply()
		}
	}
	return false, nil
}

// IDs lists the images' ids in drawing order.
func (o *ImageOverlay) IDs() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	ids := make([]string, len(o.images))
	for i, e := range o.images {
		ids[i] = e.id
	}
	return ids
}

// Drawn is the number of times an image was drawn into a frame (by the current pipeline).
func (o *ImageOverlay) Drawn() uint64 {
	o.mu.Lock()
	ov := o.ov
	o.mu.Unlock()
	return ov.Drawn()
}

func (o *ImageOverlay) apply() error {
	imgs := make([]gst.OverlayImage, 0, len(o.images))
	for _, e := range o.images {
		if e.img == nil {
			continue
		}
		imgs = append(imgs, gst.OverlayImage{Image: e.img, X: e.p.X, Y: e.p.Y, Width: e.p.Width, Height: e.p.Height,
			KeepAspectRatio: e.p.KeepAspectRatio, Center: e.p.Center})
	}
	return o.ov.Set(imgs)
}
