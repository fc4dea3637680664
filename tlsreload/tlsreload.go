// Package tlsreload serves a TLS certificate from a PEM file (chain and key, as KMS's
// mediaServer.net.websocket.secure.certificate names it) and loads it again when the file changes, so
// that a renewed certificate is used without a restart.
package tlsreload

import (
	"crypto/tls"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Reloader holds the current certificate of a file.
type Reloader struct {
	file string
	log  *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time
	size    int64
	checked time.Time
}

// checkEvery bounds how often handshakes look at the file.
const checkEvery = time.Second

// New loads the file; it fails when the first load does.
func New(file string, log *slog.Logger) (*Reloader, error) {
	r := &Reloader{file: file, log: log}
	st, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	if err := r.load(st); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Reloader) load(st os.FileInfo) error {
	cert, err := tls.LoadX509KeyPair(r.file, r.file)
	if err != nil {
		return err
	}
	r.cert, r.modTime, r.size = &cert, st.ModTime(), st.Size()
	return nil
}

// GetCertificate is tls.Config.GetCertificate: the certificate of the file as it is now. A file being
// rewritten (unreadable for a moment) leaves the previous certificate in use.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.checked) >= checkEvery {
		r.checked = now
		if st, err := os.Stat(r.file); err == nil && (!st.ModTime().Equal(r.modTime) || st.Size() != r.size) {
			if err := r.load(st); err != nil {
				r.log.Warn("certificate changed but cannot be loaded, keeping the previous one", "file", r.file, "err", err)
			} else {
				r.log.Info("certificate reloaded", "file", r.file)
			}
		}
	}
	return r.cert, nil
}
