#include "wire.h"
#include <gst/app/gstappsrc.h>
#include <gst/app/gstappsink.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void put_header(guint8 *h, int kind, int flags, guint32 handle, gint64 pts) {
  memset(h, 0, KB_WIRE_HEADER);
  h[0] = kind;
  h[1] = flags;
  for (int i = 0; i < 4; i++) h[4 + i] = handle >> (8 * i);
  for (int i = 0; i < 8; i++) h[8 + i] = (guint64)pts >> (8 * i);
}

// --- appsink → socket

struct kb_wire_sink {
  int fd;
  guint32 handle;
  gsize max_buffer;
  gint closing;
};

// send_frame writes one frame, waiting for room as a blocking write would, but giving up once the
// pipeline closes (a server that stopped reading must not hold its streaming threads forever).
static int send_frame(kb_wire_sink *l, const guint8 *hdr, const guint8 *data, gsize n) {
  struct iovec iov[2] = {{(void *)hdr, KB_WIRE_HEADER}, {(void *)data, n}};
  struct msghdr m = {0};
  m.msg_iov = iov;
  m.msg_iovlen = n > 0 ? 2 : 1;
  for (;;) {
    if (sendmsg(l->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) return 0;
    if (errno == EINTR) continue;
    if ((errno != EAGAIN && errno != EWOULDBLOCK) || g_atomic_int_get(&l->closing)) return -1;
    struct pollfd p = {l->fd, POLLOUT, 0};
    poll(&p, 1, 100);
  }
}

static GstFlowReturn on_sample(GstAppSink *sink, gpointer user) {
  kb_wire_sink *l = user;
  GstSample *s = gst_app_sink_try_pull_sample(sink, 0);
  if (s == NULL) return GST_FLOW_OK;
  GstBuffer *b = gst_sample_get_buffer(s);
  GstMapInfo mi;
  if (b != NULL && gst_buffer_map(b, &mi, GST_MAP_READ)) {
    if (mi.size <= l->max_buffer) {
      guint8 hdr[KB_WIRE_HEADER];
      gint64 pts = GST_BUFFER_PTS_IS_VALID(b) ? (gint64)GST_BUFFER_PTS(b) : -1;
      const guint8 *data = mi.data;
      gsize left = mi.size;
      int flags = KB_WIRE_FIRST;
      for (;;) { // fragments of at most a packet, as workerproto.Fragments cuts them
        gsize n = MIN(left, KB_WIRE_MAX_PACKET - KB_WIRE_HEADER);
        if (n == left) flags |= KB_WIRE_LAST;
        put_header(hdr, KB_WIRE_SINK, flags, l->handle, pts);
        if (send_frame(l, hdr, data, n) != 0 || n == left) break;
        data += n;
        left -= n;
        flags = 0;
      }
    }
    gst_buffer_unmap(b, &mi);
  }
  gst_sample_unref(s);
  return GST_FLOW_OK;
}

// Every sample was sent from on_sample when the end of stream reaches the sink.
static void on_eos(GstAppSink *sink, gpointer user) {
  kb_wire_sink *l = user;
  if (g_atomic_int_get(&l->closing)) return;
  guint8 hdr[KB_WIRE_HEADER];
  put_header(hdr, KB_WIRE_SINK_END, 0, l->handle, 0);
  send_frame(l, hdr, NULL, 0);
}

// kb_wire_sink_attach sends every buffer of appsink to fd; the link lives as long as the appsink.
kb_wire_sink *kb_wire_sink_attach(GstElement *appsink, int fd, guint32 handle, gsize max_buffer) {
  kb_wire_sink *l = g_new0(kb_wire_sink, 1);
  l->fd = fd;
  l->handle = handle;
  l->max_buffer = max_buffer;
  GstAppSinkCallbacks cb = {0};
  cb.eos = on_eos;
  cb.new_sample = on_sample;
  gst_app_sink_set_callbacks(GST_APP_SINK(appsink), &cb, l, g_free);
  return l;
}

// kb_wire_sink_close makes a send waiting for room give up (before the pipeline stops).
void kb_wire_sink_close(kb_wire_sink *l) { g_atomic_int_set(&l->closing, 1); }

// --- socket → appsrc

typedef struct {
  gint refs;
  GstElement *appsrc;
  GByteArray *partial; // a fragmented buffer being put back together
  gboolean active;
} src_entry;

static GMutex srcs_mu;
static GHashTable *srcs; // handle → src_entry
static gsize reader_max;

static void entry_unref(gpointer p) {
  src_entry *e = p;
  if (!g_atomic_int_dec_and_test(&e->refs)) return;
  gst_object_unref(e->appsrc);
  g_byte_array_unref(e->partial);
  g_free(e);
}

// kb_wire_src_add makes the frames for handle go to appsrc (the table holds a reference).
void kb_wire_src_add(guint32 handle, GstElement *appsrc) {
  src_entry *e = g_new0(src_entry, 1);
  e->refs = 1;
  e->appsrc = gst_object_ref(appsrc);
  e->partial = g_byte_array_new();
  g_mutex_lock(&srcs_mu);
  g_hash_table_replace(srcs, GUINT_TO_POINTER(handle), e);
  g_mutex_unlock(&srcs_mu);
}

void kb_wire_src_remove(guint32 handle) {
  g_mutex_lock(&srcs_mu);
  g_hash_table_remove(srcs, GUINT_TO_POINTER(handle));
  g_mutex_unlock(&srcs_mu);
}

static void push(GstElement *appsrc, const guint8 *data, gsize n, gint64 pts) {
  GstBuffer *b = gst_buffer_new_allocate(NULL, n, NULL);
  if (b == NULL) return;
  gst_buffer_fill(b, 0, data, n);
  GST_BUFFER_PTS(b) = GST_BUFFER_DTS(b) = pts < 0 ? GST_CLOCK_TIME_NONE : (GstClockTime)pts;
  gst_app_src_push_buffer(GST_APP_SRC(appsrc), b); /* takes b */
}

// deliver hands one frame to its appsrc; the entry is only used by the reader thread but may have
// left the table meanwhile (its pipeline closing: a blocked push returns when it stops).
static void deliver(src_entry *e, const guint8 *h, const guint8 *payload, gsize n) {
  int kind = h[0], flags = h[1] & (KB_WIRE_FIRST | KB_WIRE_LAST);
  gint64 pts = 0;
  for (int i = 0; i < 8; i++) pts |= (gint64)h[8 + i] << (8 * i);
  if (kind == KB_WIRE_EOS) {
    gst_app_src_end_of_stream(GST_APP_SRC(e->appsrc));
    return;
  }
  if (flags == (KB_WIRE_FIRST | KB_WIRE_LAST)) {
    e->active = FALSE;
    push(e->appsrc, payload, n, pts);
    return;
  }
  if (flags & KB_WIRE_FIRST) {
    g_byte_array_set_size(e->partial, 0);
    e->active = TRUE;
  } else if (!e->active) {
    return;
  }
  if (e->partial->len + n > reader_max) { // bigger than any buffer kept: dropped
    e->active = FALSE;
    return;
  }
  g_byte_array_append(e->partial, payload, n);
  if (flags & KB_WIRE_LAST) {
    e->active = FALSE;
    push(e->appsrc, e->partial->data, e->partial->len, pts);
  }
}

// deliver_to hands a frame to the appsrc of its handle, if it is still served.
static void deliver_to(const guint8 *h, gsize len) {
  guint32 handle = h[4] | h[5] << 8 | h[6] << 16 | (guint32)h[7] << 24;
  g_mutex_lock(&srcs_mu);
  src_entry *e = g_hash_table_lookup(srcs, GUINT_TO_POINTER(handle));
  if (e != NULL) g_atomic_int_inc(&e->refs);
  g_mutex_unlock(&srcs_mu);
  if (e == NULL) return;
  deliver(e, h, h + KB_WIRE_HEADER, len);
  entry_unref(e);
}

static gpointer read_loop(gpointer user) {
  int fd = GPOINTER_TO_INT(user);
  guint8 *buf = g_malloc(KB_WIRE_MAX_PACKET);
  for (;;) {
    ssize_t n = recv(fd, buf, KB_WIRE_MAX_PACKET, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct pollfd p = {fd, POLLIN, 0};
      poll(&p, 1, -1);
      continue;
    }
    if (n <= 0) _exit(0); // the server is gone: nothing is left to serve
    // One frame, or a video frame's packets joined by KB_WIRE_NEXT (AppSrc.PushPartAt).
    for (const guint8 *h = buf, *end = buf + n; end - h >= KB_WIRE_HEADER;) {
      gsize len = end - h - KB_WIRE_HEADER;
      if (h[1] & KB_WIRE_NEXT) {
        gsize next = h[2] | h[3] << 8;
        if (next > len) break;
        len = next;
      }
      if (h[0] == KB_WIRE_PUSH || h[0] == KB_WIRE_EOS) deliver_to(h, len);
      h += KB_WIRE_HEADER + len;
    }
  }
  return NULL;
}

// kb_wire_reader_start reads fd on a thread of its own until the server closes it, which ends the
// process (as the control socket's end does).
int kb_wire_reader_start(int fd, gsize max_buffer) {
  srcs = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, entry_unref);
  reader_max = max_buffer;
  GThread *t = g_thread_try_new("kms-wire-in", read_loop, GINT_TO_POINTER(fd), NULL);
  if (t == NULL) return 0;
  g_thread_unref(t);
  return 1;
}
