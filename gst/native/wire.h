// The media sockets of a worker process, served from C threads: buffers of appsinks go out on the
// media socket from the streaming thread that made them; buffers for an appsrc come in on a socket of
// its own, read by the appsrc's streaming thread. No Go code runs per packet in a
// worker (see wire.go).
#ifndef KMS_GST_WIRE_H
#define KMS_GST_WIRE_H

#include <gst/gst.h>

// The frame layout of gst/workerproto (a test checks that both agree).
#define KB_WIRE_HEADER 16
#define KB_WIRE_MAX_PACKET (64 * 1024)
#define KB_WIRE_PUSH 1
#define KB_WIRE_SINK 2
#define KB_WIRE_SINK_END 3
#define KB_WIRE_EOS 4
#define KB_WIRE_SOCKET 5 // server → worker over the media socket: handle's stream socket (SCM_RIGHTS)
#define KB_WIRE_FIRST 1
#define KB_WIRE_LAST 2
#define KB_WIRE_NEXT 4 // a whole buffer of h[2..3] bytes, another frame follows in the datagram

typedef struct kb_wire_sink kb_wire_sink;

kb_wire_sink *kb_wire_sink_attach(GstElement *appsink, int fd, guint32 handle, gsize max_buffer);
void kb_wire_sink_close(kb_wire_sink *l);
int kb_wire_reader_start(int fd, gsize max_buffer);
int kb_wire_src_add(guint32 handle, GstElement *appsrc);
void kb_wire_src_remove(guint32 handle);

#endif
