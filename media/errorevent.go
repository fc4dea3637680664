package media

// ErrorEvent is an Error event (KMS's shape) that a part of an element raises on it: a transcoder of
// one of its sources, a hub's mixer, whose GStreamer worker died.
type ErrorEvent struct {
	Type        string
	Description string
	Code        int
}
