package media

// DataMessage is one data-channel message crossing the graph on a DATA pad.
type DataMessage struct {
	IsString bool
	Data     []byte
}

// DataInput is a sink pad that takes data messages (MediaType DATA) rather than RTP. WriteData runs on
// the producer's goroutine; it must not block nor keep m or its bytes.
type DataInput interface {
	Input
	WriteData(src *Source, m *DataMessage)
}

// WriteData hands a message to every linked input that takes data. Called by the producer only.
func (s *Source) WriteData(m *DataMessage) {
	s.packets.Add(1)
	s.bytes.Add(uint64(len(m.Data)))
	s.flow.Mark()
	for _, in := range *s.sinks.Load() {
		if d, ok := in.(DataInput); ok {
			d.WriteData(s, m)
		}
	}
}

// WriteData lets pass-through elements forward data as well.
func (r *relay) WriteData(src *Source, m *DataMessage) {
	if r.cur.Load() != src {
		return
	}
	r.meter.Mark()
	r.out.WriteData(m)
}
