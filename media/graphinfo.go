package media

// ToHub tells whether s is the hidden pad of a hub port that carries what is connected into the port
// to its hub (graphs of the pipeline draw it so).
func (s *Source) ToHub() bool { return s.Pad == hubPad }
