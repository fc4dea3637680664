package webrtc

// ProcessCPU is cpuTime, for the benchmarks of package webrtc_test.
var ProcessCPU = cpuTime
